"""Every slider and toggle of every lesson, driven in a real browser.

A headless run proves that a lesson's code runs; this proves that a learner who moves a slider in
JupyterLab (and, for some notebooks, in Notebook 7) sees the figure the kernel draws for the new
value. For each notebook: a private JupyterLab on 127.0.0.1, a fresh kernel, Run All; then the
kernel is asked for its PANELS (tools/shared_cells.py: every slider_panel, in notebook order), and
every control of every panel is changed the way a person does: a slider's handle is dragged and a
value is typed into its readout, a checkbox is clicked, every other toggle button and dropdown option
is chosen. After each change the test waits until the panel's output has settled and checks

  * that the page shows the kernel's new value of every control of the panel,
  * that the displayed PNG is, byte for byte, the PNG the kernel draws for those values,
  * that the figure changed,

and at the end that no error output appeared anywhere, that every control was exercised (a panel
control of a kind this suite cannot drive fails the test) and that no control sits outside a panel.
Screenshots of each panel after each change go to test-artifacts/browser/, with the round-trip
times (the last input event of a change -> the new image in the page) in round-trips.json.

Needs Chromium (Debian: apt-get install chromium; .ci/run installs it). Without one, the tests say
so loudly and skip; with BN_REQUIRE_BROWSER=1 they fail instead.
"""

import base64
import json
import math
import os
import re
import shutil
import statistics
import sys
import time
import warnings

import nbformat
import pytest
from browser_support import (
    CHROMIUM_FLAGS,
    PAGE_HELPERS,
    QUIET_MS,
    RUN_STATE,
    SLIDERS,
    SLOW,
    SUPPORTED_KINDS,
    WAIT_KERNEL,
    JupyterServer,
    KernelProbe,
    drivable,
    find_chromium,
    png_of,
    say,
    shown_number,
    slider_fraction,
    typed_target,
    unexercised,
    values_agree,
)
from lessons import DATA_DIR, ROOT, lesson_paths

sys.path.insert(0, str(ROOT / "tools"))
from shared_cells import CELLS  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "widgets_demo.ipynb"  # every kind of control, not a lesson
ARTIFACTS = ROOT / "test-artifacts" / "browser"
LESSONS = lesson_paths()
MAX_OPTIONS = 8  # toggle buttons / dropdown options tried per control
SETTLE_TIMEOUT = 120  # s: one change must be drawn within this (a loaded machine is slow)
MAX_CHECKS = 8  # settled-and-compared rounds before a mismatch counts (a queued update may land late)
RUN_ALL_TIMEOUT = 900  # s: a lesson's Run All in fast mode


def targets():
    """(interface, notebook): every lesson and the widgets fixture in JupyterLab; Notebook 7 for the
    first lesson (and the fixture, which drives every kind of control there too)."""
    cases = [("lab", path) for path in [*LESSONS, FIXTURE]]
    cases += [("notebook7", path) for path in [*LESSONS[:1], FIXTURE]]
    return [pytest.param(interface, path, id=f"{interface}-{path.stem}") for interface, path in cases]


class Report:
    """Collects round-trip times and problems of the whole run; prints them at the end."""

    def __init__(self):
        self.started = time.perf_counter()
        self.finished = self.started  # when the last browser test ended
        self.round_trips = []  # dicts, one per change
        self.notes = []
        self.skipped = None

    def pytest_terminal_summary(self, terminalreporter):
        if self.skipped:
            terminalreporter.section("BROWSER TESTS DID NOT RUN", sep="!", red=True, bold=True)
            terminalreporter.write_line(self.skipped, red=True, bold=True)
            return
        terminalreporter.section("browser round trips (last input event -> new figure in the page)")
        terminalreporter.write_line(f"browser suite wall time: {self.finished - self.started:.1f} s "
                                    "(server and browser start included)")
        for line in self.summary_lines():
            terminalreporter.write_line(line)
        for note in self.notes:
            terminalreporter.write_line(note)

    def summary_lines(self):
        lines = []
        groups = {}
        for entry in self.round_trips:
            groups.setdefault(entry["test"], []).append(entry)
        for test, entries in groups.items():
            every = [e["round_trip_ms"] for e in entries]
            typed = [e["round_trip_ms"] for e in entries if e["action"] != "drag"]
            dragged = [e["round_trip_ms"] for e in entries if e["action"] == "drag"]
            redraw = [e["kernel_redraw_ms"] for e in entries]
            line = f"{test:<36} {len(entries):3d} changes, median {statistics.median(every):5.0f} ms"
            if typed:
                line += f" (type/click/select {statistics.median(typed):5.0f}"
            if dragged:
                line += f", drag {statistics.median(dragged):5.0f}"
            line += f"); kernel update+PNG {statistics.median(redraw):4.0f} ms"
            lines.append(line)
        return lines

    def write(self):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "round-trips.json").write_text(json.dumps(self.round_trips, indent=1))
        (ARTIFACTS / "summary.txt").write_text("\n".join(self.summary_lines()) + "\n")


@pytest.fixture(scope="session")
def report(request):
    report = Report()
    request.config.pluginmanager.register(report, "browser-tests-report")
    yield report
    report.write()


@pytest.fixture(scope="module")
def browser(report):
    """Chromium through Playwright, once for all the browser tests; a loud skip when there is none."""
    def cannot_run(reason):
        message = f"BROWSER TESTS SKIPPED: {reason}"
        if os.environ.get("BN_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " (and BN_REQUIRE_BROWSER=1)")
        report.skipped = message
        say("\n" + "!" * 100 + "\n" + message + "\n" + "!" * 100)
        warnings.warn(message, stacklevel=1)
        pytest.skip(message)

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        cannot_run("Playwright for Python is not installed (pip install -r requirements-test.txt)")
    executable = find_chromium()
    if executable is None:
        cannot_run("no Chromium found (Debian/Ubuntu: apt-get install chromium; or set BN_CHROMIUM to a "
                   "Chromium or Chrome binary)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def jupyter(browser, report):
    """A private JupyterLab serving copies of the notebooks; kernels run in fast mode."""
    server = JupyterServer(sys.executable, env={"BN_FAST": "1", "BN_DATA_DIR": str(DATA_DIR)})
    server.env["BN_FIGURES_DIR"] = str(server.folder / "figures")
    notebooks = server.root / "notebooks"
    notebooks.mkdir()
    for path in LESSONS:
        shutil.copy(path, notebooks / path.name)
    fixture = nbformat.read(FIXTURE, as_version=4)  # its setup cell is kept in step with the lessons'
    for cell in fixture.cells:
        for tag in cell.metadata.get("tags", []):
            if tag in CELLS:
                cell.source = CELLS[tag].rstrip("\n")
    nbformat.write(fixture, notebooks / FIXTURE.name)
    try:
        yield server.start()
    finally:
        problems = server.stop()
        report.notes.extend(problems)
        assert problems == [], problems


def slug(text):
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "control"


class Lesson:
    """One notebook open in one browser page, with a side channel to its kernel."""

    def __init__(self, page, server, interface, path, shots, report, test):
        self.page, self.server, self.interface, self.path = page, server, interface, path
        self.shots, self.report, self.test = shots, report, test
        self.probe = None
        self.session = self.kernel = None
        self.phase = "load"  # the application's own start-up; then "run" (Run All and the changes)
        self.page_errors = {"load": [], "run": []}
        self.console_errors = []
        page.on("pageerror", lambda error: self.page_errors[self.phase].append(str(error)))
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text[:500]))

    # -- opening and running

    def open(self):
        relative = f"notebooks/{self.path.name}"
        if self.interface == "lab":
            url = self.server.lab_url(relative)
        else:
            url = self.server.notebook7_url(relative)
        self.page.goto(url, wait_until="domcontentloaded", timeout=SLOW)
        self.page.wait_for_function(WAIT_KERNEL, timeout=SLOW, polling=250)
        opened = self.page.evaluate("() => window.__btNotebook.context.path")
        assert opened == relative, f"the page shows {opened}, not {relative}"
        ids = self.page.evaluate("""() => { const s = window.__btNotebook.sessionContext.session;
                                      return [s.id, s.kernel.id]; }""")
        self.session, self.kernel = ids
        self.page.evaluate(PAGE_HELPERS)

    def run_all(self):
        """Run All from the Run menu, as a person does; once more if the first click was lost."""
        self.phase = "run"
        for attempt in range(2):
            self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).first.click()
            self.page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()
            try:
                started = f"() => {{ const s = ({RUN_STATE})(); return s.ran > 0 || !s.idle; }}"
                self.page.wait_for_function(started, timeout=30_000 * (attempt + 1), polling=100)
                break
            except Exception:
                if attempt:
                    raise
        self.page.wait_for_function(
            f"""() => {{ const s = ({RUN_STATE})();
                return s.idle && !s.running && (s.ran === s.total || s.errors > 0); }}""",
            timeout=RUN_ALL_TIMEOUT * 1000, polling=250)
        state = self.page.evaluate(f"({RUN_STATE})")
        assert state["errors"] == 0 and state["ran"] == state["total"], (
            f"Run All did not finish cleanly: {state}; problems: {self.problems()}")
        self.probe = KernelProbe(self.server.runtime / f"kernel-{self.kernel}.json")

    def problems(self):
        return self.page.evaluate("() => window.__bt.problems()")

    def close(self):
        """Close the page and shut the kernel down through the REST API; returns what failed."""
        problems = []
        if self.probe is not None:
            self.probe.close()
        self.page.close()
        if self.session:
            alive = self.server.shutdown_session(self.session, self.kernel)
            if alive:
                problems.append(f"kernel {self.kernel} still running as PIDs {alive}")
        return problems

    # -- one panel

    def panel_handle(self, index):
        return self.page.evaluate_handle("i => window.__bt.panels()[i]", index).as_element()

    def control_handle(self, index, position):
        return self.panel_handle(index).query_selector_all(":scope > .widget-box > *")[position]

    def check_panel(self, index, action=None, expect=None, label=None):
        """Wait until panel `index` settles after a change (or, without `action`, until it is
        drawn), then compare it with the kernel: the page shows the kernel's values, the image is
        the kernel's PNG for them. `expect(kernel_panel)` -> error text or None checks the change."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        if action is not None:
            self.page.evaluate("i => window.__bt.arm(i)", index)
            action()
        attempts, last_problem = 0, "nothing checked"
        while time.monotonic() < deadline and attempts < MAX_CHECKS:
            attempts += 1
            remaining = max(1000, int((deadline - time.monotonic()) * 1000))
            try:
                if action is not None:
                    self.page.wait_for_function("q => window.__bt.settled(q)", arg=QUIET_MS,
                                                timeout=remaining, polling=50)
                else:
                    self.page.wait_for_function("() => window.__bt.kernelIdle()", timeout=remaining,
                                                polling=100)
            except Exception as error:
                last_problem = f"the output never settled: {error}"
                break
            shown = self.page.evaluate("i => window.__bt.shown(i)", index)
            kernel = self.probe.panel(index)
            last_problem = self.compare(shown, kernel, expect)
            if last_problem is None:
                break
            self.page.wait_for_timeout(QUIET_MS)  # a queued update may still be on its way
        assert last_problem is None, f"panel {index + 1}{' after ' + label if label else ''}: {last_problem}"
        if action is None:
            return None
        watch = self.page.evaluate("() => window.__btWatch.st")
        if png_of(watch["before"]) == png_of(shown["image"]):
            raise AssertionError(f"panel {index + 1} after {label}: the control's value changed but the "
                                 "figure did not (a control should change what the learner sees)")
        return {"round_trip_ms": round(watch["last"] - watch["lastInput"], 1),
                "kernel_redraw_ms": round(kernel["redraw_ms"], 1),
                "first_input_to_image_ms": round(watch["last"] - watch["firstInput"], 1),
                "last_input": watch["lastInputType"], "checks": attempts}

    @staticmethod
    def compare(shown, kernel, expect):
        controls = kernel["controls"]
        if len(shown["controls"]) != len(controls):
            return f"the page shows {len(shown['controls'])} controls, the kernel has {len(controls)}"
        for control, on_page in zip(controls, shown["controls"]):
            ok, explanation = values_agree(control, on_page)
            if not ok:
                return f"control {control['description']!r} disagrees: {explanation}"
        image = png_of(shown["image"])
        if image is None:
            return f"no PNG in the panel's output (found {str(shown['image'])[:80]!r})"
        expected = base64.b64decode(kernel["png"])
        if image != expected:
            return (f"the displayed PNG ({len(image)} bytes) is not the one the kernel draws for the "
                    f"values shown ({len(expected)} bytes); values: "
                    + ", ".join(f"{c['name']}={c['value']}" for c in controls))
        return expect(kernel) if expect else None

    def screenshot(self, index, name):
        self.panel_handle(index).screenshot(path=str(self.shots / f"{name}.png"))

    def record(self, timing, index, control, action):
        if timing is not None:
            self.report.round_trips.append({"test": self.test, "panel": index + 1,
                                            "control": control["description"], "kind": control["kind"],
                                            "action": action, **timing})

    # -- the ways a person changes each kind of control

    def exercise(self, index, position, control):
        """Change one control every way this suite knows for its kind; returns the actions done."""
        kind, description = control["kind"], control["description"]
        name = f"panel{index + 1}-{slug(description)}"
        done = []

        def change(action_name, action, expect):
            timing = self.check_panel(index, action, expect, label=f"{action_name} of {description!r}")
            self.record(timing, index, control, action_name.split(" ")[0])
            self.screenshot(index, f"{name}-{len(done) + 1}-{slug(action_name)}")
            done.append(action_name)

        def current():
            return next(c for c in self.probe.panel(index)["controls"] if c["name"] == control["name"])

        if kind in (*SLIDERS, "SelectionSlider"):
            before = current()

            def moved(kernel):
                now = kernel["controls"][position]
                return None if now["value"] != before["value"] else f"{description!r} did not move"

            change("drag", lambda: self.drag(index, position, before), moved)
            if kind in SLIDERS and before["readout"]:
                target, text = typed_target(current())

                def typed(kernel, target=target):
                    now = kernel["controls"][position]
                    value = now["number"]
                    tolerance = 1e-6 * max(1.0, abs(target)) + (1e-9 if kind == "IntSlider" else 0)
                    if kind == "FloatLogSlider":
                        tolerance = 1e-3 * abs(target)
                    return None if abs(value - target) <= tolerance else (
                        f"typed {text} into {description!r}, the kernel has {now['value']}")

                change(f"type {text}", lambda: self.type_readout(index, position, text), typed)
        elif kind == "Checkbox":
            for _ in range(2):
                wanted = not current()["checked"]
                change(f"click {'on' if wanted else 'off'}", lambda: self.click_checkbox(index, position),
                       lambda k, wanted=wanted: None if k["controls"][position]["checked"] == wanted
                       else f"{description!r} is not {'checked' if wanted else 'unchecked'}")
        elif kind in ("ToggleButtons", "Dropdown"):
            start = current()["index"]
            for option, label in list(enumerate(control["labels"]))[:MAX_OPTIONS]:
                if option == start:
                    continue
                act = self.click_toggle if kind == "ToggleButtons" else self.select_option
                change(f"choose {label}", lambda option=option: act(index, position, option),
                       lambda k, option=option: None if k["controls"][position]["index"] == option
                       else f"{description!r} is not at option {option}")
        return done

    def drag(self, index, position, control):
        element = self.control_handle(index, position)
        handle = element.query_selector(".noUi-handle")
        base = element.query_selector(".noUi-base")
        handle.scroll_into_view_if_needed()
        shown = self.page.evaluate("i => window.__bt.shown(i)", index)["controls"][position]
        fraction = slider_fraction(control, float(shown["now"]))
        target = 0.85 if fraction < 0.5 else 0.15
        h, b = handle.bounding_box(), base.bounding_box()
        x0, y0 = h["x"] + h["width"] / 2, h["y"] + h["height"] / 2
        if control.get("orientation") == "vertical":
            x1, y1 = x0, b["y"] + (1 - target) * b["height"]
        else:
            x1, y1 = b["x"] + target * b["width"], y0
        self.page.mouse.move(x0, y0)
        self.page.mouse.down()
        self.page.mouse.move(x1, y1, steps=8)
        self.page.mouse.up()

    def type_readout(self, index, position, text):
        readout = self.control_handle(index, position).query_selector(".widget-readout")
        readout.click()
        self.page.keyboard.press("ControlOrMeta+A")
        self.page.keyboard.type(text)
        self.page.keyboard.press("Enter")

    def click_checkbox(self, index, position):
        self.control_handle(index, position).query_selector("input[type=checkbox]").click()

    def click_toggle(self, index, position, option):
        self.control_handle(index, position).query_selector_all("button.widget-toggle-button")[option].click()

    def select_option(self, index, position, option):
        self.control_handle(index, position).query_selector("select").select_option(index=option)


@pytest.mark.parametrize("interface, path", targets())
def test_every_control_redraws_its_figure(interface, path, browser, jupyter, report, request):
    test = f"{interface}-{path.stem}"
    shots = ARTIFACTS / test
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(SLOW)
    lesson = Lesson(page, jupyter, interface, path, shots, report, test)
    cleanup_problems = []
    try:
        lesson.open()
        lesson.run_all()
        panels = lesson.probe.panels()
        # the page shows exactly the panels the kernel made, in order, each drawn
        lesson.page.wait_for_function("n => window.__bt.drawn(n)", arg=len(panels), timeout=SLOW, polling=250)
        layout = page.evaluate("() => window.__bt.layout()")
        expected_layout = [[{"kind": "slider" if c["kind"].endswith("Slider") else c["kind"],
                             "description": c["description"]} for c in panel["controls"]] for panel in panels]
        assert layout == expected_layout, "the panels on the page are not the kernel's PANELS, in order"
        outside = page.evaluate("() => window.__bt.controlsOutsidePanels()")
        assert outside == [], f"controls outside slider_panel (not driven by this suite): {outside}"
        for index in range(len(panels)):
            lesson.check_panel(index, label="Run All")
            lesson.screenshot(index, f"panel{index + 1}-0-after-run-all")

        exercised = set()
        for index, panel in enumerate(panels):
            for position, control in enumerate(panel["controls"]):
                if drivable(control) and lesson.exercise(index, position, control):
                    exercised.add((index + 1, control["description"]))
        gaps = unexercised(panels, exercised)
        assert gaps == [], "controls not exercised: " + "; ".join(gaps)
        problems = lesson.problems()
        assert problems == [], f"error output on the page: {problems}"
        assert lesson.page_errors["run"] == [], f"JavaScript errors in the page: {lesson.page_errors['run']}"
        if lesson.page_errors["load"]:  # Notebook 7.6 throws one while it starts, with any notebook
            report.notes.append(f"{test}: JavaScript errors while the application started (not failing "
                                f"the test): {lesson.page_errors['load']}")
        page.screenshot(path=str(shots / "page-at-end.png"), full_page=False)
        if not panels:
            report.notes.append(f"{test}: no slider panels")
    except BaseException:
        try:
            page.screenshot(path=str(shots / "page-on-failure.png"))
        except Exception:
            pass
        raise
    finally:
        if lesson.console_errors:
            (shots / "console-errors.txt").write_text("\n".join(lesson.console_errors))
        cleanup_problems = lesson.close()
        report.finished = time.perf_counter()
    assert cleanup_problems == [], cleanup_problems


# --------------------------------------------------------------------------------------------------
# The suite's own logic, checked without a browser


def test_the_fixture_uses_every_kind_of_control_the_suite_drives():
    source = "\n".join(cell.source for cell in nbformat.read(FIXTURE, as_version=4).cells)
    assert "slider_panel(" in source
    assert [kind for kind in SUPPORTED_KINDS if f"widgets.{kind}(" not in source] == []
    assert not re.match(r"\d\d_", FIXTURE.name), "the fixture must not be named like a lesson"


def test_a_control_that_was_not_exercised_is_reported():
    panels = [{"controls": [{"kind": "FloatSlider", "description": "mean", "disabled": False},
                            {"kind": "IntRangeSlider", "description": "window", "disabled": False}]},
              {"controls": [{"kind": "Checkbox", "description": "mean", "disabled": True}]}]
    assert [drivable(c) for panel in panels for c in panel["controls"]] == [True, False, False]
    gaps = unexercised(panels, {(1, "mean")})
    assert len(gaps) == 2
    assert "'window' (IntRangeSlider)" in gaps[0] and "cannot drive" in gaps[0]
    assert "panel 2 'mean'" in gaps[1] and "disabled" in gaps[1]
    assert unexercised(panels, {(1, "mean"), (1, "window"), (2, "mean")}) == []


def test_numbers_are_read_as_the_page_shows_them():
    assert shown_number("\u22122.50") == (-2.5, 0.005)
    assert shown_number("1,000") == (1000.0, 0.5)
    assert shown_number("3.8") == (3.8, pytest.approx(0.05))
    assert shown_number("1.0e-3") == (0.001, pytest.approx(0.00005))
    assert shown_number("tanh") is None and shown_number(None) is None


def test_page_and_kernel_values_must_agree_to_the_shown_precision():
    slider = {"kind": "FloatSlider", "number": 3.75, "value": "3.75", "readout": True}
    assert values_agree(slider, {"now": "3.8", "readout": "3.75"})[0]
    assert not values_agree(slider, {"now": "3.8", "readout": "3.70"})[0]
    assert not values_agree(slider, {"now": "3.6", "readout": "3.75"})[0]
    log = {"kind": "FloatLogSlider", "number": 0.01, "exponent": -2.0, "value": "0.01", "readout": True}
    assert values_agree(log, {"now": "-2.0", "readout": "0.0100"})[0]
    assert not values_agree(log, {"now": "-1.0", "readout": "0.0100"})[0]
    choice = {"kind": "Dropdown", "index": 1, "labels": ["a", "b"]}
    assert values_agree(choice, {"index": 1, "labels": ["a", "b"]})[0]
    assert not values_agree(choice, {"index": 0, "labels": ["a", "b"]})[0]


@pytest.mark.parametrize("control", [
    {"kind": "IntSlider", "min": -4, "max": 4, "step": 1, "number": -2},
    {"kind": "FloatSlider", "min": 0.25, "max": 10.0, "step": 0.25, "number": 1.0},
    {"kind": "FloatSlider", "min": 0.0, "max": 0.95, "step": 0.05, "number": 0.35},
    {"kind": "FloatLogSlider", "min": -1, "max": 1.5, "step": 0.05, "base": 10, "exponent": 1.0},
], ids=lambda c: c["kind"])
def test_a_typed_value_lies_on_the_slider_grid_away_from_the_current_value(control):
    value, text = typed_target(control)
    low, high, step = control["min"], control["max"], control["step"]
    if control["kind"] == "FloatLogSlider":
        position, current = math.log(value, control["base"]), control["exponent"]
    else:
        position, current = value, control["number"]
        assert float(text) == value
    assert low <= position <= high and abs(position - current) >= step / 2
    assert abs((position - low) / step - round((position - low) / step)) < 1e-6
