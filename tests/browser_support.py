"""A private JupyterLab in headless Chromium, driven as a person drives it (tests/test_browser.py;
tools/benchmark.py may call measure_round_trips).

A lesson is copied alone into an empty folder, opened, run with "Run All Cells"; then every control
of every slider panel is moved with the keyboard (sliders) or the mouse (buttons, checkboxes), and
the image the page shows is compared, byte for byte, with the PNG this process draws from the
lesson's own #@save cells for the same control values. Only what a person sees is used: ARIA roles
and the CSS classes of ipywidgets and of the notebook's prompts, never the application's objects.
"""

import base64
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from run_notebooks import load_saved_cells, saved_panels  # noqa: E402

DATA_DIR = ROOT / "data"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKEN = "bn-browser-tests"  # the server listens on 127.0.0.1 only
SETTINGS = {  # no news pop-up over the widgets; every cell kept in the page
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
SLOW_MS = 300_000  # page loads and Run All on a loaded 2-core machine
CHANGE_MS = 60_000  # a control's new image must appear within this
QUIET_MS = 400  # ... and no other image follow it for this long
MAX_PRESSES = 3  # presses on a slider until its figure changes (a step may change nothing visible)
PAGE = 5  # steps a slider moves on PageUp/PageDown (noUiSlider's default keyboardPageMultiplier)
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
PANEL = ".widget-vbox:has(> img.widget-image)"  # slider_panel: VBox([Box(controls), Image, HTML])


def find_chromium():
    """$BN_CHROMIUM, else Chromium or Chrome on PATH; None when there is none."""
    for name in filter(None, [os.environ.get("BN_CHROMIUM"), "chromium", "chromium-browser",
                              "google-chrome"]):
        if shutil.which(name):
            return shutil.which(name)
    return None


@contextlib.contextmanager
def jupyter_server(**env):
    """JupyterLab (it also serves Notebook 7) on 127.0.0.1 with everything it writes in a temporary
    folder; kernels inherit `env`. Yields (base URL, folder it serves)."""
    folder = Path(tempfile.mkdtemp(prefix="bn-browser-"))
    for name, values in SETTINGS.items():
        (folder / "settings" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "settings" / name).write_text(json.dumps(values))
    (folder / "root").mkdir()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    environment = dict(os.environ, **env, JUPYTER_CONFIG_DIR=str(folder / "config"),
                       JUPYTER_RUNTIME_DIR=str(folder / "runtime"),
                       IPYTHONDIR=str(folder / "ipython"),
                       JUPYTERLAB_WORKSPACES_DIR=str(folder / "workspaces"),
                       JUPYTERLAB_SETTINGS_DIR=str(folder / "settings"))
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
               f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
               f"--ServerApp.root_dir={folder / 'root'}",
               "--LanguageServerManager.autodetect=False"]
    with open(folder / "server.log", "w") as log:
        server = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=10).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n"
                                       + (folder / "server.log").read_text()[-3000:]) from None
                time.sleep(0.3)
        yield url, folder / "root"
    finally:
        server.send_signal(signal.SIGTERM)  # it shuts its kernels down
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(30)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def chromium(executable=None):
    """Headless Chromium through Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable or find_chromium(),
                                             args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


class ExpectedPanel:
    """A panel drawn in this process from the lesson's #@save cells: the PNG the page must show.
    A panel that draws what the lesson computes outside them (lesson 05 replays a training run)
    cannot be drawn here: `missing` says why, and its image is then only checked to change."""

    def __init__(self, name, panel):
        self.name, self.panel, self.controls = name, panel, panel.controls
        for control in self.controls.values():  # a slider in the page puts its value on its grid
            if type(control).__name__ == "FloatSlider":
                control.value = on_grid(control.min, control.max, control.step, control.value)
            elif type(control).__name__ == "FloatLogSlider":
                exponent = math.log(control.value) / math.log(control.base)
                snapped = on_grid(control.min, control.max, control.step, exponent)
                if snapped != exponent:
                    control.value = control.base ** snapped
        try:
            self.fig, self.update = panel.build()
            self.missing = None
        except NameError as error:
            self.fig, self.missing = None, str(error)
        self.png = self.draw()

    def draw(self):
        if self.fig is None:
            return None
        return self.panel.render(self.fig, self.update, self.panel.values())

    def shows(self, png):
        """Whether `png` is this panel's PNG (any PNG where it cannot be drawn here)."""
        return self.png in (None, png)


def expected_panels(path, scratch):
    """The lesson's panels as this process draws them (fast mode, data/), in notebook order."""
    module = load_saved_cells(path, BN_FAST="1", BN_DATA_DIR=str(DATA_DIR),
                              BN_FIGURES_DIR=str(scratch))
    return [ExpectedPanel(name, panel) for name, panel in saved_panels(module)]


def on_grid(low, high, step, value):
    """`value` put on a slider's grid as noUiSlider (ipywidgets' sliders) computes it, to the last
    bit: through a percentage of the range (0.9 on 0.05..2 by 0.01 becomes 0.9000000000000001)."""
    if value >= high:
        return high
    percent = (value - low) * 100 / (high - low)
    grid = step * 100 / (high - low)
    percent = math.floor(percent / grid + 0.5) * grid  # JavaScript's Math.round
    return high if percent >= 100 else percent * (100 / 100) * (high - low) / 100 + low


def moves(control, page_keys=False):
    """What a person does to change a control, in order: (action, attribute, value), the control's
    attribute (value or index) being `value` afterwards. A slider gets up to MAX_PRESSES presses
    of an arrow key (or, with `page_keys`, of PageUp/PageDown: PAGE steps), towards its farther end
    (the driver stops once the figure changes); a checkbox one click; toggle buttons and a
    dropdown every other option, in turn."""
    kind = type(control).__name__
    if kind in ("IntSlider", "FloatSlider", "FloatLogSlider", "SelectionSlider"):
        if kind == "SelectionSlider":
            low, top, step, position = 0, len(control.options) - 1, 1, control.index
        else:
            low, top, step, position = control.min, control.max, control.step, control.value
            if kind == "FloatLogSlider":
                position = math.log(control.value) / math.log(control.base)
        stride, keys = (PAGE, ("PageUp", "PageDown")) if page_keys else (1, ("ArrowRight",
                                                                              "ArrowLeft"))
        sign = 1 if top - position >= position - low else -1
        for _ in range(MAX_PRESSES):
            moved = position + sign * stride * step
            if kind.startswith("Float"):
                moved = on_grid(low, top, step, moved)
            moved = min(max(moved, low), top)
            if moved == position:
                break  # at the end
            position = moved
            key = ("press", keys[sign < 0])
            if kind == "FloatLogSlider":
                yield key, "value", control.base ** position
            else:
                yield key, "index" if kind == "SelectionSlider" else "value", position
    elif kind == "Checkbox":
        yield ("check", control.description), "value", not control.value
    elif kind in ("ToggleButtons", "Dropdown"):
        start = control.index
        for index, option in enumerate(control.options):
            label = str(option[0] if isinstance(option, tuple) else option)
            if index != start:
                yield ("click" if kind == "ToggleButtons" else "select", label), "index", index
    else:
        raise AssertionError(f"this suite cannot move a {kind} ({control.description!r})")


WATCH = """(image, events) => {
  if (window.__bnObserver) window.__bnObserver.disconnect();
  const watch = {input: null, shown: []};
  const mark = () => { if (watch.input === null) watch.input = performance.now(); };
  for (const type of events) document.addEventListener(type, mark, {capture: true, once: true});
  const observer = new MutationObserver(() => watch.shown.push(performance.now()));
  observer.observe(image, {attributes: true, attributeFilter: ["src"]});
  [window.__bnWatch, window.__bnObserver] = [watch, observer];
}"""
RUN_ALL_DONE = """notebook => {
  const panel = document.querySelector(notebook);
  const prompts = Array.from(panel.querySelectorAll(".jp-CodeCell .jp-InputPrompt"),
                             p => p.textContent);
  const idle = Array.from(panel.querySelectorAll(".jp-Notebook-ExecutionIndicator"),
                          e => e.textContent).join().includes("Idle");
  const failed = Array.from(panel.querySelectorAll("[data-mime-type$='stderr']"),
                            e => e.textContent).some(t => /Traceback|Error/.test(t));
  return failed ||
    (idle && prompts.some(p => /\\[\\d+\\]/.test(p)) && !prompts.some(p => /\\[[ *]\\]/.test(p)));
}"""
IMAGE_BYTES = """async image => {
  const bytes = new Uint8Array(await (await fetch(image.src)).arrayBuffer());
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return btoa(text);
}"""


class LessonPage:
    """One lesson open in one browser page (JupyterLab, or Notebook 7 with interface="notebook",
    where the arrow keys on a slider's handle move the notebook's selection, not the slider)."""

    def __init__(self, browser, url, relative, interface="lab"):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.interface = interface
        self.page.set_default_timeout(SLOW_MS)
        self.errors = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        workspace = uuid.uuid4().hex  # a new one: Lab would restore the tabs of the last
        where = "notebooks" if interface == "notebook" else f"lab/workspaces/{workspace}/tree"
        self.page.goto(f"{url}/{where}/{relative}?token={TOKEN}", wait_until="domcontentloaded")
        self.notebook = self.page.locator(NOTEBOOK)
        self.notebook.locator(".jp-Cell").first.wait_for()

    def run_all(self):
        """Run > Run All Cells once the notebook shows its kernel (again if the click was lost);
        returns when no cell waits, the kernel is idle, or an error appeared."""
        prompts = self.notebook.locator(".jp-CodeCell .jp-InputPrompt")
        self.notebook.get_by_role("button", name=re.compile("^Python")).wait_for()  # not No Kernel
        self.notebook.get_by_text("Kernel status: Idle").wait_for(state="attached")
        self.errors.clear()  # Notebook 7.6 throws two while it starts, with any notebook
        for attempt in range(3):
            self.page.get_by_role("menuitem", name="Run", exact=True).click()
            self.page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            try:
                prompts.filter(has_text="[*]").or_(prompts.filter(has_text="[1]")).first.wait_for(
                    timeout=20_000 * (attempt + 1))
                break
            except Exception:
                if attempt == 2:
                    raise
        self.page.wait_for_function(RUN_ALL_DONE, arg=NOTEBOOK, polling=250)

    def problems(self):
        """Error output, widget errors and JavaScript errors on the page."""
        found = [f"JavaScript error: {error}" for error in self.errors]
        for output in self.notebook.locator(
                "[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts():
            if "Error" in output or "Traceback" in output:
                found.append(f"error output: {output[:2000]}")
        for panel_error in self.notebook.locator(f"{PANEL} > .widget-html").all_inner_texts():
            if panel_error.strip():
                found.append(f"a panel's redraw failed: {panel_error[:2000]}")
        if self.notebook.get_by_text("Error displaying widget").count():
            found.append("Error displaying widget")
        return found

    def panels(self):
        return self.notebook.locator(PANEL)

    def image_png(self, panel):
        image = self.panels().nth(panel).locator("> img.widget-image")
        return base64.b64decode(image.evaluate(IMAGE_BYTES))

    def control(self, panel, position):
        return self.panels().nth(panel).locator("> .widget-box > *").nth(position)

    def act(self, panel, position, action, changes=True):
        """Do one thing a person does to a control; when the image `changes`, wait until the new
        one is shown (and no other follows) and return the round trip in ms: from the input
        event to the new image in the page."""
        control, (verb, what) = self.control(panel, position), action
        image = self.panels().nth(panel).locator("> img.widget-image")
        image.evaluate(WATCH, ["keydown", "pointerdown"])
        if verb == "press":
            control.get_by_role("slider").press(what)
        elif verb == "check":
            control.get_by_role("checkbox").click()
        elif verb == "click":
            control.get_by_role("button", name=what, exact=True).click()
        else:
            control.get_by_role("combobox").select_option(label=what)
        if not changes:
            return None
        try:
            self.page.wait_for_function(
                "q => { const w = window.__bnWatch; "
                "return w.shown.length && performance.now() - w.shown.at(-1) > q; }",
                arg=QUIET_MS, timeout=CHANGE_MS, polling=50)
        except Exception:
            raise AssertionError(
                f"the image in the page did not change within {CHANGE_MS / 1000:.0f} s"
                f"{''.join('; ' + p for p in self.problems())}") from None
        watch = self.page.evaluate("() => window.__bnWatch")
        return round(watch["shown"][0] - watch["input"], 1)

    def close(self):
        self.page.close()


def open_lesson(browser, url, root, path, interface="lab"):
    """Copy the lesson alone into an empty folder under `root`, open it, Run All; a LessonPage."""
    folder = root / f"{interface}-{path.stem}"
    folder.mkdir()
    shutil.copy(path, folder / path.name)
    page = LessonPage(browser, url, f"{folder.name}/{path.name}", interface)
    page.run_all()
    return page


def drive_lesson(browser, url, root, path, scratch, interface="lab", failure_screenshot=None):
    """Open the lesson (alone in a folder under `root`), Run All, then move every control of every
    panel; after each move the page's image must be the PNG drawn here for the same values.
    Returns {panel name: {"round_trips_ms": [one per move that changed the figure], "checked": how
    the image was checked}}."""
    expected = expected_panels(path, scratch)
    page = open_lesson(browser, url, root, path, interface)
    try:
        assert page.problems() == [], f"after Run All: {page.problems()}"
        assert page.panels().count() == len(expected), (
            f"the page shows {page.panels().count()} slider panels, the lesson's #@save cells make "
            f"{len(expected)}: {[panel.name for panel in expected]}")
        return {panel.name: drive_panel(page, index, panel) for index, panel in enumerate(expected)}
    except BaseException as error:
        if failure_screenshot:
            with contextlib.suppress(Exception):
                page.page.screenshot(path=str(failure_screenshot))
            for name, png in getattr(error, "pngs", {}).items():  # a mismatch: both images
                stem = failure_screenshot.stem
                failure_screenshot.with_name(f"{stem}-{name}.png").write_bytes(png)
        raise
    finally:
        page.close()


def drive_panel(page, index, panel):
    def values():
        return ", ".join(f"{name}={control.value!r}" for name, control in panel.controls.items())

    deadline = time.monotonic() + CHANGE_MS / 1000  # sliders that put their values on their grid
    while not panel.shows(shown := page.image_png(index)) and time.monotonic() < deadline:
        page.page.wait_for_timeout(QUIET_MS)  # send them after Run All: redraws may follow
    assert panel.shows(shown), f"{panel.name} after Run All: not the PNG for {values()}"
    assert page.panels().nth(index).locator("> .widget-box > *").count() == len(panel.controls)
    round_trips = []
    for position, control in enumerate(panel.controls.values()):
        label = page.control(index, position).inner_text()
        assert control.description in label, f"{panel.name}: control {position + 1} shows {label!r}"
        changed = moved_figure = False
        for action, attribute, value in moves(control, page_keys=page.interface == "notebook"):
            if changed and action[0] == "press":
                break  # the slider has moved the figure
            before = panel.png
            setattr(control, attribute, value)
            panel.png = panel.draw()
            changed = panel.png is None or panel.png != before
            moved_figure |= changed
            where = f"{panel.name}, {action[0]} {action[1]!r} on {control.description!r} " \
                    f"({values()})"
            try:
                milliseconds = page.act(index, position, action, changed)
            except AssertionError as error:
                raise AssertionError(f"{where}: {error}") from None
            if changed:
                before, shown = shown, page.image_png(index)
                assert shown != before, f"{where}: the page shows the same PNG again"
                if not panel.shows(shown):
                    error = AssertionError(
                        f"{where}: the page shows a {len(shown)}-byte PNG, not the "
                        f"{len(panel.png)}-byte one drawn here for these values")
                    error.pngs = {"page": shown, "expected": panel.png}
                    raise error
                round_trips.append(milliseconds)
        assert moved_figure, (f"{panel.name}: {action[0]} {action[1]!r} on {control.description!r} "
                              f"({values()}) changes nothing in the figure")
    assert page.problems() == [], f"{panel.name}: {page.problems()}"
    checked = (f"changes only (not drawn here: {panel.missing})" if panel.missing
               else "byte for byte against the PNG drawn in the test process")
    return {"round_trips_ms": round_trips, "checked": checked}


def measure_round_trips(paths, interface="lab", executable=None):
    """Every lesson in `paths` opened and driven as the browser tests do, in a private JupyterLab
    and headless Chromium; returns {lesson file stem: drive_lesson's result}."""
    results = {}
    with (jupyter_server(BN_FAST="1", BN_DATA_DIR=str(DATA_DIR)) as (url, root),
          chromium(executable) as browser):
        for path in paths:
            scratch = Path(tempfile.mkdtemp(prefix=f"bn-{path.stem[:2]}-"))
            try:
                results[path.stem] = drive_lesson(browser, url, root, Path(path), scratch,
                                                  interface)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
    return results
