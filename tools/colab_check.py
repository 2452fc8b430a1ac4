"""Run lessons as a learner's kernel does and move every slider of every panel through its range.

    python tools/colab_check.py              # every lesson
    python tools/colab_check.py 01 04        # some lessons (a path to a notebook works too)

Each notebook runs alone in an empty folder, in fast mode (BN_FAST=1, MNIST from the repository's
data/), in a kernel on the Python that runs this tool: run it with the Python of the environment to
check. `tools/colab_check.sh` does so in a venv pinned to Colab's packages (ipywidgets 7); the tests
(tests/test_notebooks_run.py) run the same slider check in .venv (ipywidgets 8, as JupyterLab users
have it).

After the last cell, the kernel takes each control of every slider panel through its range (ends
included), one control at a time with the others at their defaults, then back to its default, in a
new widget of the panel (showing a panel makes one); each change runs the panel's redraw. A notebook
passes when no cell fails, nothing is written to stderr, every panel it makes is shown, and every
change redraws its panel without an error.
"""

import argparse
import importlib.metadata
import inspect
import json
import platform
import re
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient.exceptions import CellExecutionError
from run_notebooks import ROOT, execute, lesson_paths

ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colours in a kernel's traceback
PANEL_CALL = re.compile(r"(?<!def )(?<![\w.])slider_panel\(")
STOPS = 7  # positions per control, both ends included (fewer when its range has fewer)
VERSIONS = ["ipywidgets", "ipykernel", "ipython", "jupyter_client", "traitlets", "torch", "torchvision",
            "numpy", "matplotlib"]


# The functions from here to _move_every_control run in the kernel: their source is the last cell.

def _spread(values, count):
    """At most `count` evenly spaced items of `values`, first and last included."""
    values = list(values)
    if len(values) <= count:
        return values
    return [values[round(i * (len(values) - 1) / (count - 1))] for i in range(count)]


def _grid(low, high, step, count):
    """At most `count` evenly spaced points of low, low + step, ..., high."""
    step = step or (high - low) / (count - 1)
    return _spread([min(high, low + i * step) for i in range(round((high - low) / step) + 1)], count)


def _stops(control, count):
    """(attribute, values): setting control.<attribute> to each value takes it across its range."""
    if hasattr(control, "options") and hasattr(control, "index"):  # Dropdown, ToggleButtons, ...
        return "index", _spread(range(len(control.options)), count)
    if isinstance(control.value, bool):  # Checkbox, ToggleButton
        return "value", [not control.value]
    if hasattr(control, "base"):  # FloatLogSlider: min, max and step are exponents of base
        return "value", [control.base ** e for e in _grid(control.min, control.max, control.step, count)]
    if hasattr(control, "min") and hasattr(control, "max"):  # IntSlider, FloatSlider, ...
        return "value", _grid(control.min, control.max, control.step, count)
    raise TypeError(f"cannot move a {type(control).__name__}: teach tools/colab_check.py its range")


def _counting_updates(panel):
    """Make panel.build count the calls of the update function it returns (in calls[0])."""
    build, calls = panel.build, [0]

    def counted_build():
        fig, update = build()

        def counted_update(**values):
            calls[0] += 1
            return update(**values)

        return fig, counted_update

    counted_build.__name__ = build.__name__
    panel.build = counted_build
    return calls


def _move_every_control(namespace, panels_expected, count):
    """Take each control of every SliderPanel alive in the kernel through its range and back to
    its default, in a new widget of the panel (as showing it makes one), counting the redraws.
    Returns {"kernel", "panels", "failures"}: a line per panel, and for each control that failed
    to move or to redraw, its first failure."""
    import gc
    import sys

    import ipywidgets

    panel_class = namespace.get("SliderPanel")  # defined by the series setup cell
    # type() rather than isinstance(): some objects (weak proxies, deprecated module attributes)
    # raise or warn when asked for their __class__
    panels = [thing for thing in gc.get_objects() if panel_class and type(thing) is panel_class]
    kernel = f"Python {sys.version.split()[0]}, ipywidgets {ipywidgets.__version__}, prefix {sys.prefix}"
    lines, failures, redraws = [], [], 0
    if len(panels) < panels_expected:
        failures.append(f"the notebook makes {panels_expected} slider panel(s); "
                        f"{len(panels)} are alive in the kernel")
    for panel in panels:
        label = next((name for name, value in namespace.items() if value is panel and
                      not name.startswith("_")), panel.make_figure.__name__)  # its name in the lesson
        calls = _counting_updates(panel)
        panel.widget()  # what showing the panel does: draws it and redraws it on every change
        seen, moves = {repr(panel.values())}, []
        for name, control in panel.controls.items():
            try:
                attribute, values = _stops(control, count)
            except TypeError as error:
                failures.append(f"{label}: {name}: {error}")
                continue
            default, failed = getattr(control, attribute), []
            for value in [*values, default]:
                before, errors = calls[0], len(panel.errors)
                where = f"{label}: {name}.{attribute} = {value!r}"
                try:
                    setattr(control, attribute, value)
                except Exception as error:
                    failed.append(f"{where}: could not be set: {type(error).__name__}: {error}")
                    continue
                if len(panel.errors) > errors:
                    failed.append(f"{where}: the redraw failed:\n{panel.errors[-1].strip()}")
                elif repr(panel.values()) not in seen and calls[0] == before:
                    failed.append(f"{where}: nothing was redrawn")
                seen.add(repr(panel.values()))
            if failed:  # the first failure of this control says what is wrong
                more = f"\n(and {len(failed) - 1} more of its stops)" if len(failed) > 1 else ""
                failures.append(failed[0] + more)
            moves.append(f"{name} ({type(control).__name__}, {len(values)} stops)")
        lines.append(f"{label}: " + ", ".join(moves))
        redraws += calls[0]
    lines.append(f"{redraws} redraws")
    return {"kernel": kernel, "panels": lines, "failures": failures}


KERNEL_FUNCTIONS = [_spread, _grid, _stops, _counting_updates, _move_every_control]
REPORT = "colab_check report: "
WIDGET = "application/vnd.jupyter.widget-view+json"  # what showing a widget outputs


def panels_made(cells):
    """How many slider_panel(...) calls these code cells make (its definition aside)."""
    return sum(len(PANEL_CALL.findall(cell.source)) for cell in cells if cell.cell_type == "code")


def with_slider_check(nb, count=STOPS):
    """The notebook with a last cell that moves every control of its panels and prints a report."""
    functions = "\n\n".join(inspect.getsource(f) for f in KERNEL_FUNCTIONS)
    call = f"_move_every_control(globals(), panels_expected={panels_made(nb.cells)}, count={count})"
    source = f"{functions}\n\nimport json\n\nprint({REPORT!r} + json.dumps({call}))\n"
    nb.cells.append(nbformat.v4.new_code_cell(source))
    return nb


def check(path, count=STOPS):
    """Run the notebook at `path` alone in an empty folder with the slider check as its last cell.
    Returns (problems, report lines, seconds or None): it passed when there are no problems."""
    folder = Path(tempfile.mkdtemp(prefix="colab-check-"))
    nb = with_slider_check(nbformat.read(path, as_version=4), count)
    try:
        nbformat.write(nb, folder / path.name)
        nb, seconds = execute(folder / path.name, folder, fast=True, BN_DATA_DIR=str(ROOT / "data"),
                              BN_FIGURES_DIR=None, MPLBACKEND=None,
                              PYDEVD_DISABLE_FILE_VALIDATION="1")  # debugpy's note on the kernel's
        # own stderr, which no notebook shows, about Python's frozen modules
    except CellExecutionError as error:  # the failing cell's source, what it printed, its traceback
        text = ANSI.sub("", str(error)).replace(nb.cells[-1].source, "(the slider check's cell)\n")
        return [text.strip()], [], None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    problems, report = slider_check_problems(nb)
    return problems, report, seconds


def slider_check_problems(nb):
    """What went wrong in `nb`, executed with with_slider_check's last cell, and the check's
    report: (problems, report lines). Problems: output on stderr, a panel not shown, a control that
    did not move or redraw, a kernel that is not this environment's Python."""
    problems = [f"cell {index}: stderr: {output.text.strip()}"
                for index, cell in enumerate(nb.cells) for output in cell.get("outputs", [])
                if output.output_type == "stream" and output.name == "stderr"]
    made = panels_made(nb.cells[:-1])
    shown = sum(WIDGET in output.get("data", {}) for cell in nb.cells[:-1]
                for output in cell.get("outputs", []))
    if shown < made:
        problems.append(f"the notebook makes {made} slider panel(s) and shows {shown} widget(s)")
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    [report] = [json.loads(line[len(REPORT):]) for line in printed.splitlines() if line.startswith(REPORT)]
    if not report["kernel"].endswith(f"prefix {sys.prefix}"):
        problems.append(f"the kernel is not this environment's Python ({sys.prefix}): {report['kernel']}")
    return problems + report["failures"], report["panels"]


def versions():
    found = []
    for name in VERSIONS:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return f"Python {platform.python_version()}; " + ", ".join(found)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", help="lesson numbers (e.g. 01 04) or notebook paths; "
                        "default: every lesson")
    args = parser.parse_args(argv)
    paths = [Path(n) for n in args.notebooks if n.endswith(".ipynb")]
    prefixes = [n for n in args.notebooks if not n.endswith(".ipynb")]
    if prefixes or not args.notebooks:
        paths += lesson_paths(prefixes)
    print(f"Checking {len(paths)} notebook(s) in {sys.prefix}: {versions()}", flush=True)
    failed = 0
    for path in paths:
        problems, report, seconds = check(path)
        failed += bool(problems)
        took = f" ({seconds:.1f} s)" if seconds else ""
        print(f"{'FAIL' if problems else 'ok'}   {path.name}{took}", flush=True)
        for line in report if not problems else problems:
            print("       " + line.replace("\n", "\n       "), flush=True)
    print(f"colab_check: {len(paths) - failed} passed, {failed} failed")
    return 1 if failed or not paths else 0


if __name__ == "__main__":
    sys.exit(main())
