"""Run lessons top to bottom in a fresh kernel and report how long each took.

    python tools/run_notebooks.py            # every lesson, full mode: regenerates figures/
    python tools/run_notebooks.py --fast 01  # lesson 01 in the fast mode the tests use

Lessons run in notebooks/, so the figures they save land in the repository's figures/. The
notebooks on disk are left as they are (without outputs). A full run also records the lesson's
code fingerprint in figures/full-runs.json: the tests check that the figures and results in
figures/ come from the lesson's current code.
"""

import argparse
import contextlib
import hashlib
import json
import os
import sys
import time
import types
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
FULL_RUNS = ROOT / "figures" / "full-runs.json"  # lesson file -> code fingerprint of its last full run
SAVE_MARK = "#@save"  # the first line of a cell that holds code a lesson teaches (or the second,
# after a collapsed cell's #@title line)


def is_saved(cell):
    """A code cell marked #@save: tests, the benchmark and other lessons' checks import it."""
    lines = cell.source.splitlines()[:2] if cell.cell_type == "code" else []
    if lines and lines[0].startswith("#@title"):
        lines = lines[1:]
    return bool(lines) and lines[0].strip() == SAVE_MARK


def lesson_paths(prefixes=()):
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if prefixes:
        paths = [p for p in paths if any(p.name.startswith(prefix) for prefix in prefixes)]
    return paths


@contextlib.contextmanager
def environment(**values):
    """Set (or, for None, unset) environment variables for the kernels started inside."""
    saved = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


def load_saved_cells(path, **env):
    """The notebook's #@save cells executed in order as a module (with `env` set while they run)."""
    nb = nbformat.read(path, as_version=4)
    module = types.ModuleType(f"lesson_{path.name[:2]}", f"The #@save cells of {path.name}")
    module.__file__ = str(path)
    with environment(**env):
        for index, cell in enumerate(nb.cells):
            if is_saved(cell):
                exec(compile(cell.source, f"{path.name}[#@save cell {index}]", "exec"), module.__dict__)
    return module


def saved_panels(module):
    """The slider panels a lesson's #@save cells made, in notebook order: (name, SliderPanel)
    for each `name = slider_panel(build, **controls)` (tools/shared_cells.py)."""
    panel_type = getattr(module, "SliderPanel", None)
    if panel_type is None:
        return []
    return [(name, value) for name, value in vars(module).items()
            if isinstance(value, panel_type)]


def code_fingerprint(path):
    """SHA-1 of the lesson's code cells, the shared setup cell aside (it sets modes, panels and
    checks, not what a lesson computes): what the figures of a full run depend on."""
    nb = nbformat.read(path, as_version=4)
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"
            and "series-setup" not in cell.metadata.get("tags", [])]
    return hashlib.sha1("\n\0".join(code).encode()).hexdigest()


def record_full_run(path):
    """Note in figures/full-runs.json that figures/ now holds the full run of this code."""
    runs = json.loads(FULL_RUNS.read_text()) if FULL_RUNS.exists() else {}
    runs[path.name] = code_fingerprint(path)
    FULL_RUNS.write_text(json.dumps(dict(sorted(runs.items())), indent=1) + "\n")


def execute(path, folder, fast, timeout=None, **env):
    """Execute the notebook at `path` with `folder` as its working directory; returns
    (executed notebook, seconds). Raises nbclient's CellExecutionError on the first error.

    A cell that gets no reply within `timeout` seconds (default: 180 fast, 900 full) is a lost
    kernel message more often than a slow cell: the run is then repeated once in a fresh kernel."""
    timeout = timeout or (180 if fast else 900)
    for attempt in (1, 2):
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(folder)}})
        with environment(BN_FAST="1" if fast else None, **env):
            start = time.perf_counter()
            try:
                client.execute()
            except CellTimeoutError:
                if attempt == 2:
                    raise
                print(f"WARNING: {path.name}: a cell had no reply after {timeout} s; running it again "
                      "in a fresh kernel", file=sys.stderr, flush=True)
                continue
            return nb, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lessons", nargs="*", help="lesson numbers, e.g. 01 04 (default: all)")
    parser.add_argument("--fast", action="store_true", help="the fast mode (BN_FAST=1)")
    args = parser.parse_args(argv)
    total = 0.0
    for path in lesson_paths(args.lessons):
        _, seconds = execute(path, NOTEBOOKS, args.fast)
        if not args.fast:
            record_full_run(path)
        total += seconds
        print(f"{path.name}: {seconds:.1f} s", flush=True)
    print(f"total: {total:.1f} s ({'fast' if args.fast else 'full'} mode)")


if __name__ == "__main__":
    sys.exit(main())
