"""Helpers of the browser tests (tests/test_browser.py): a private Jupyter server, Chromium through
Playwright, a side channel to the notebook's kernel, and the ways a person changes each kind of
control.

The page is driven like a person drives it (drag a slider handle, type into its readout, click a
checkbox or a toggle button, pick a dropdown option). The kernel is only asked questions: which
panels and controls exist, and which PNG it draws for the values the page shows.
"""

import base64
import json
import os
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

# The kinds of control a lesson may use (CONTRIBUTING.md): all core ipywidgets, all work in Colab.
SLIDERS = ("IntSlider", "FloatSlider", "FloatLogSlider")
CHOICES = ("SelectionSlider", "ToggleButtons", "Dropdown")
SUPPORTED_KINDS = (*SLIDERS, *CHOICES, "Checkbox")

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKEN = "browser-tests"  # the private server listens on 127.0.0.1 only
QUIET_MS = 600  # the output has settled when it has not changed for this long and the kernel is idle
SLOW = 240_000  # ms: generous limits for page loads and waits, the CPU is shared
MARK = "@@browser-test@@"


# --------------------------------------------------------------------------------------------------
# Chromium


def find_chromium():
    """The Chromium (or Chrome) binary to drive: $BN_CHROMIUM, then the usual names on PATH."""
    candidates = [os.environ.get("BN_CHROMIUM"), "chromium", "chromium-browser", "google-chrome",
                  "google-chrome-stable"]
    for name in filter(None, candidates):
        path = shutil.which(name) or (name if Path(name).is_file() else None)
        if path:
            return path
    return None


# --------------------------------------------------------------------------------------------------
# Processes (Linux: /proc; elsewhere the leftover check is skipped)


def processes_mentioning(text):
    """PIDs of running processes whose command line contains `text` (not zombies)."""
    found = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def wait_until_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
        if not alive:
            return []
        time.sleep(0.2)
    return alive


def _zombie(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


# --------------------------------------------------------------------------------------------------
# The Jupyter server


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


USER_SETTINGS = {
    # no "news" pop-up over the widgets, no update checks
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
    # every cell attached to the page, so that every panel can be found and driven
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


class JupyterServer:
    """JupyterLab (which also serves Notebook 7) on 127.0.0.1, with every folder it writes to
    inside one temporary folder. Kernels inherit `env`."""

    def __init__(self, python, env):
        self.folder = Path(tempfile.mkdtemp(prefix="bn-browser-"))
        self.root = self.folder / "root"
        self.runtime = self.folder / "runtime"
        settings = self.folder / "settings"
        for path in (self.root, self.runtime, settings, self.folder / "config", self.folder / "workspaces",
                     self.folder / "ipython"):
            path.mkdir(parents=True)
        for name, values in USER_SETTINGS.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(values))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, **env, JUPYTER_CONFIG_DIR=str(self.folder / "config"),
                        JUPYTER_RUNTIME_DIR=str(self.runtime),
                        JUPYTERLAB_WORKSPACES_DIR=str(self.folder / "workspaces"),
                        JUPYTERLAB_SETTINGS_DIR=str(settings), IPYTHONDIR=str(self.folder / "ipython"),
                        PYTHONUNBUFFERED="1")
        self.log_path = self.folder / "server.log"
        self.process = None
        self.python = python

    def start(self, timeout=180):
        log = open(self.log_path, "w")
        command = [self.python, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
                   f"--port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
                   f"--ServerApp.root_dir={self.root}", "--LabApp.expose_app_in_browser=True",
                   "--JupyterNotebookApp.expose_app_in_browser=True",
                   "--LanguageServerManager.autodetect=False"]
        self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                self.api("GET", "/api/status")
                return self
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"JupyterLab did not answer within {timeout} s:\n{self.log_tail()}")

    def log_tail(self, chars=4000):
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def api(self, method, path, timeout=60):
        request = urllib.request.Request(self.url + path, method=method,
                                         headers={"Authorization": f"token {TOKEN}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def lab_url(self, relative):
        return f"{self.url}/lab/workspaces/bt-{uuid.uuid4().hex[:12]}/tree/{relative}?token={TOKEN}"

    def notebook7_url(self, relative):
        return f"{self.url}/notebooks/{relative}?token={TOKEN}"

    def kernel_pids(self, kernel_id):
        return processes_mentioning(f"kernel-{kernel_id}.json")

    def shutdown_session(self, session_id, kernel_id, timeout=60):
        """Shut the session's kernel down through the REST API; returns PIDs still alive after."""
        pids = self.kernel_pids(kernel_id)
        try:
            self.api("DELETE", f"/api/sessions/{session_id}")
        except OSError:
            pass
        try:
            self.api("DELETE", f"/api/kernels/{kernel_id}")
        except OSError:
            pass  # already gone with its session
        return wait_until_gone(pids, timeout)

    def stop(self, timeout=60):
        """Stop the server by its PID (it shuts its kernels down), then make sure that nothing it
        started still runs; remove the temporary folder. Returns a list of problems found."""
        problems = []
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                problems.append(f"JupyterLab (PID {self.process.pid}) ignored SIGTERM; killed")
                self.process.kill()
                self.process.wait(30)
        leftovers = processes_mentioning(str(self.folder))
        for pid in leftovers:
            problems.append(f"process {pid} was still running after the server stopped; killed")
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        wait_until_gone(leftovers, 30)
        shutil.rmtree(self.folder, ignore_errors=True)
        return problems


# --------------------------------------------------------------------------------------------------
# Asking the kernel (through its connection file, beside the page's own connection)

KERNEL_HELPERS = r'''
def _browser_test_state(index=None):
    """What the browser tests need to know about PANELS (all, or one panel and its PNG)."""
    import base64 as _base64
    import json as _json
    import math as _math
    import time as _time
    chosen = range(len(PANELS)) if index is None else [index]
    panels = []
    for i in chosen:
        panel = PANELS[i]
        controls = []
        for name, widget in panel["controls"].items():
            kind = type(widget).__name__
            control = {"name": name, "kind": kind, "description": widget.description,
                       "disabled": bool(getattr(widget, "disabled", False)), "value": repr(widget.value)}
            if kind in ("IntSlider", "FloatSlider", "FloatLogSlider"):
                control.update(min=widget.min, max=widget.max, step=widget.step, readout=widget.readout,
                               orientation=widget.orientation, number=widget.value)
                if kind == "FloatLogSlider":
                    control.update(base=widget.base, exponent=_math.log(widget.value, widget.base))
            elif kind in ("SelectionSlider", "ToggleButtons", "Dropdown"):
                control.update(labels=list(widget._options_labels), index=widget.index)
                if kind == "SelectionSlider":
                    control.update(orientation=widget.orientation)
            elif kind == "Checkbox":
                control.update(checked=bool(widget.value))
            controls.append(control)
        entry = {"index": i, "controls": controls}
        if index is not None:
            started = _time.perf_counter()
            panel["update"](**{name: w.value for name, w in panel["controls"].items()})
            png = figure_png(panel["fig"])
            entry["redraw_ms"] = 1000 * (_time.perf_counter() - started)
            entry["png"] = _base64.b64encode(png).decode()
        panels.append(entry)
    print(MARK + _json.dumps(panels))
'''.replace("MARK", repr(MARK))


class KernelProbe:
    """A second client of the notebook's kernel. It defines two helper functions in the kernel
    (after Run All) and calls them; it never changes a widget."""

    def __init__(self, connection_file):
        from jupyter_client import BlockingKernelClient

        self.client = BlockingKernelClient(connection_file=str(connection_file))
        self.client.load_connection_file()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=120)
        self.run(KERNEL_HELPERS)

    def run(self, code, timeout=180):
        printed, errors = [], []

        def hook(message):
            kind, content = message["header"]["msg_type"], message["content"]
            if kind == "stream":
                printed.append(content["text"])
            elif kind == "error":
                errors.append("\n".join(content["traceback"]))

        reply = self.client.execute_interactive(code, timeout=timeout, output_hook=hook, store_history=False,
                                                allow_stdin=False)
        if reply["content"]["status"] != "ok" or errors:
            raise RuntimeError(f"the kernel failed to run the test's query:\n{''.join(errors)}")
        return "".join(printed)

    def state(self, index=None):
        text = self.run(f"_browser_test_state({index!r})")
        return json.loads(text.split(MARK, 1)[1])

    def panels(self):
        return self.state()

    def panel(self, index):
        return self.state(index)[0]

    def close(self):
        self.client.stop_channels()


# --------------------------------------------------------------------------------------------------
# The page

PAGE_HELPERS = r"""
() => {
  if (window.__bt) return;
  const controlSelector = [
    ".widget-slider", ".widget-checkbox", ".widget-toggle-buttons", ".widget-dropdown",
    ".widget-text", ".widget-textarea", ".widget-button", ".widget-radio", ".widget-select",
    ".widget-select-multiple", ".widget-colorpicker", ".widget-datepicker", ".widget-toggle-button",
    ".widget-play", ".widget-combobox", ".widget-tagsinput", ".widget-upload"
  ].join(",");
  const visible = () => document.querySelector(".jp-NotebookPanel:not(.lm-mod-hidden)");
  const panels = () => Array.from(visible().querySelectorAll(".widget-vbox")).filter(box =>
    box.children.length === 2 && box.children[0].classList.contains("widget-box") &&
    box.children[1].classList.contains("widget-output"));
  const kindOf = el => {
    if (el.classList.contains("widget-checkbox")) return "Checkbox";
    if (el.classList.contains("widget-toggle-buttons")) return "ToggleButtons";
    if (el.classList.contains("widget-dropdown")) return "Dropdown";
    if (el.classList.contains("widget-slider")) return "slider";
    return "other:" + el.className;
  };
  const describe = el => {
    if (el.classList.contains("widget-checkbox")) {
      const span = el.querySelector(".widget-label-basic span");
      return span ? span.textContent : "";
    }
    const label = el.querySelector(":scope > .widget-label");
    return label ? label.textContent : "";
  };
  const shown = el => {
    const kind = kindOf(el);
    if (kind === "Checkbox") return {checked: el.querySelector("input[type=checkbox]").checked};
    if (kind === "ToggleButtons") {
      const buttons = Array.from(el.querySelectorAll("button.widget-toggle-button"));
      return {index: buttons.findIndex(b => b.classList.contains("mod-active")),
              labels: buttons.map(b => b.textContent)};
    }
    if (kind === "Dropdown") {
      const select = el.querySelector("select");
      return {index: select.selectedIndex, labels: Array.from(select.options).map(o => o.textContent)};
    }
    const handle = el.querySelector(".noUi-handle");
    const readout = el.querySelector(".widget-readout");
    return {now: handle ? handle.getAttribute("aria-valuenow") : null,
            readout: readout ? readout.textContent : null,
            disabled: handle ? handle.hasAttribute("disabled") : true};
  };
  const image = box => {
    const imgs = box.children[1].querySelectorAll("img");
    return imgs.length === 1 ? imgs[0].getAttribute("src") : (imgs.length ? "several images" : null);
  };
  const kernel = () => window.__btNotebook.sessionContext.session.kernel;
  window.__bt = {
    panels,
    controlsOutsidePanels() {
      const inPanels = new Set(panels().flatMap(p => Array.from(p.children[0].children)));
      return Array.from(visible().querySelectorAll(controlSelector)).filter(el =>
        !inPanels.has(el) && !Array.from(inPanels).some(p => p.contains(el))).map(el =>
        el.className + ": " + el.textContent.slice(0, 60));
    },
    layout() {
      return panels().map(p => Array.from(p.children[0].children).map(el =>
        ({kind: kindOf(el), description: describe(el)})));
    },
    shown(i) {
      const p = panels()[i];
      return {controls: Array.from(p.children[0].children).map(shown), image: image(p)};
    },
    kernelIdle() {
      const k = kernel();
      return !!k && k.connectionStatus === "connected" && k.status === "idle";
    },
    arm(i) {
      if (window.__btWatch) window.__btWatch.stop();
      const p = panels()[i];
      const st = {mutations: 0, last: 0, firstInput: null, lastInput: null, lastInputType: null,
                  before: image(p), armed: performance.now()};
      const observer = new MutationObserver(() => { st.mutations += 1; st.last = performance.now(); });
      observer.observe(p.children[1],
                       {childList: true, subtree: true, attributes: true, characterData: true});
      const onInput = event => {
        if (event.type === "pointermove" && !event.buttons) return;
        const t = performance.now();
        if (st.firstInput === null && event.type !== "pointermove") st.firstInput = t;
        st.lastInput = t; st.lastInputType = event.type;
      };
      const types = ["pointerdown", "pointermove", "pointerup", "keydown", "click", "change"];
      for (const type of types) document.addEventListener(type, onInput, true);
      window.__btWatch = {st, stop() {
        observer.disconnect();
        for (const type of types) document.removeEventListener(type, onInput, true);
      }};
    },
    settled(quietMs) {
      const w = window.__btWatch;
      return !!w && w.st.mutations > 0 && performance.now() - w.st.last > quietMs && window.__bt.kernelIdle();
    },
    drawn(count) {
      const all = panels();
      return all.length === count && all.every(p => image(p) !== null) && window.__bt.kernelIdle();
    },
    watch() { const st = window.__btWatch.st; return Object.assign({now: performance.now()}, st); },
    problems() {
      const found = [];
      const model = window.__btNotebook.context.model.toJSON();
      model.cells.forEach((cell, index) => {
        for (const out of (cell.outputs || [])) {
          if (out.output_type === "error") found.push(`cell ${index}: ${out.ename}: ${out.evalue}`);
          const text = Array.isArray(out.text) ? out.text.join("") : (out.text || "");
          if (out.output_type === "stream" && out.name === "stderr" &&
              /Error|Warning|Traceback/.test(text)) found.push(`cell ${index} stderr: ${text.slice(0, 300)}`);
        }
      });
      for (const p of panels()) {
        for (const el of p.children[1].querySelectorAll(
          "[data-mime-type='application/vnd.jupyter.stderr']")) {
          found.push("in a slider panel's output: " + el.textContent.slice(0, 300));
        }
      }
      const text = visible().innerText;
      for (const phrase of ["Error displaying widget", "Error rendering output", "Model not found",
                            "Failed to display", "Javascript Error"]) {
        if (text.includes(phrase)) found.push("on the page: " + phrase);
      }
      return found;
    },
  };
}
"""

WAIT_KERNEL = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  if (!(k && k.connectionStatus === "connected" && k.status === "idle" && w.context && w.context.isReady)) {
    return false;
  }
  window.__btNotebook = w;
  return true;
}"""

RUN_STATE = """() => {
  const w = window.__btNotebook;
  const cells = w.context.model.toJSON().cells.filter(c => c.cell_type === "code" &&
    (Array.isArray(c.source) ? c.source.join("") : c.source).trim());
  const ran = cells.filter(c => c.execution_count).length;
  const errors = cells.filter(c => (c.outputs || []).some(o => o.output_type === "error")).length;
  const k = w.sessionContext.session.kernel;
  const running = w.content.node.querySelectorAll(".jp-InputPrompt").length &&
    Array.from(w.content.node.querySelectorAll(".jp-InputPrompt")).some(n => n.textContent.includes("*"));
  return {total: cells.length, ran, errors, idle: k.status === "idle", running};
}"""


def drivable(control):
    """Whether this suite knows how to change the control the way a person does."""
    return control["kind"] in SUPPORTED_KINDS and not control["disabled"]


def unexercised(panels, exercised):
    """The controls of `panels` (the kernel's PANELS) missing from `exercised`, a set of (panel
    number, description) pairs, each with the reason."""
    gaps = []
    for index, panel in enumerate(panels):
        for control in panel["controls"]:
            if (index + 1, control["description"]) in exercised:
                continue
            if control["kind"] not in SUPPORTED_KINDS:
                why = f"a kind this suite cannot drive (it drives {', '.join(SUPPORTED_KINDS)})"
            elif control["disabled"]:
                why = "disabled, so a learner cannot change it either"
            else:
                why = "no change could be made"
            gaps.append(f"panel {index + 1} {control['description']!r} ({control['kind']}): {why}")
    return gaps


def png_of(src):
    """The bytes of a data:image/png;base64,... URL."""
    if not src or not src.startswith("data:image/png;base64,"):
        return None
    return base64.b64decode(src.split(",", 1)[1])


def slider_fraction(control, shown_now):
    """Where the handle is along the track (0..1), from the handle's aria-valuenow."""
    if control["kind"] == "SelectionSlider":
        low, high = 0, len(control["labels"]) - 1
    else:
        low, high = control["min"], control["max"]
    return 0.5 if high == low else (shown_now - low) / (high - low)


def typed_target(control):
    """A value to type into a slider's readout: on the grid of the slider, away from the current
    value, written the way a person would."""
    kind = control["kind"]
    if kind == "FloatLogSlider":
        low, high, step, now = control["min"], control["max"], control["step"], control["exponent"]
    else:
        low, high, step, now = control["min"], control["max"], control["step"], control["number"]
    steps = max(1, round((high - low) / step)) if step else 1
    candidates = [round(steps * f) for f in (0.35, 0.65, 0.1, 0.9, 0.0, 1.0)]
    for k in candidates:
        grid = low + k * step if step else low + (high - low) * k / steps
        grid = min(max(grid, low), high)
        if abs(grid - now) > 1e-9 * max(1.0, abs(now)) + (step or 0) / 2:
            break
    if kind == "IntSlider":
        return int(round(grid)), str(int(round(grid)))
    if kind == "FloatLogSlider":
        value = control["base"] ** grid
        return value, f"{value:.6g}"
    text = f"{round(grid, 10):.10g}"
    return float(text), text


def shown_number(text):
    """(value, half a unit of its last digit) of a number as a readout or aria-valuenow shows it
    (Unicode minus, thousands separators, an exponent); None for text that is not a number."""
    if text is None:
        return None
    text = str(text).strip().replace("\u2212", "-").replace(",", "")
    try:
        value = float(text)
    except ValueError:
        return None
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return value, 0.5 * 10.0 ** (int(exponent or 0) - decimals)


def values_agree(control, shown):
    """Whether the page shows the kernel's value of this control; (bool, explanation). A slider's
    handle (aria-valuenow, rounded by noUiSlider) and its readout must both agree with the kernel's
    value to the precision they display."""
    kind = control["kind"]
    if kind not in SUPPORTED_KINDS:
        return True, "not compared: a kind this suite cannot drive (the coverage check reports it)"
    if kind == "Checkbox":
        ok = shown["checked"] == control["checked"]
        return ok, f"page {shown['checked']} vs kernel {control['checked']}"
    if kind in ("ToggleButtons", "Dropdown"):
        ok = shown["index"] == control["index"] and shown["labels"] == control["labels"]
        return ok, f"page option {shown['index']} of {shown['labels']} vs kernel {control['index']}"
    if kind == "SelectionSlider":
        ok = shown["now"] is not None and round(float(shown["now"])) == control["index"]
        ok = ok and (shown["readout"] is None or shown["readout"] == control["labels"][control["index"]])
        return ok, (f"page index {shown['now']} ({shown['readout']!r}) vs kernel {control['index']} "
                    f"({control['labels'][control['index']]!r})")
    handle = control["exponent"] if kind == "FloatLogSlider" else control["number"]
    checks = [(shown["now"], handle)]
    if control["readout"]:
        checks.append((shown["readout"], control["number"]))
    for text, expected in checks:
        parsed = shown_number(text)
        if parsed is None or abs(parsed[0] - expected) > parsed[1] + 1e-9 * max(1.0, abs(expected)):
            return False, (f"page handle at {shown['now']}, readout {shown['readout']!r}; kernel "
                           f"{control['value']}")
    return True, ""


def say(message):
    """Print past pytest's capture (for warnings a person must see)."""
    print(message, file=sys.__stderr__, flush=True)
