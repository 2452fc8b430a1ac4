"""Test helpers: load a lesson's reusable cells as a module, run a lesson in a fresh kernel, and
read what it printed.

Cells marked `#@save` hold the code a lesson teaches; tests import it from the notebook itself,
so the notebook stays the one source of truth.
"""

import functools
import re
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from run_notebooks import execute, lesson_paths, load_saved_cells  # noqa: E402
from sync_notebooks import SOLUTION_MARK  # noqa: E402

DATA_DIR = ROOT / "data"
SCRATCH = Path(tempfile.mkdtemp(prefix="bn-tests-"))


def notebook_path(prefix):
    """notebooks/<prefix>_*.ipynb, e.g. notebook_path("01")."""
    paths = lesson_paths([prefix])
    if len(paths) != 1:
        raise FileNotFoundError(f"expected one notebook notebooks/{prefix}*.ipynb, found {paths}")
    return paths[0]


@functools.cache
def load_lesson(prefix):
    """The lesson's #@save cells, executed in order as a module (in fast mode, data from data/)."""
    path = notebook_path(prefix)
    figures = SCRATCH / f"figures-{prefix}"
    return load_saved_cells(path, BN_FAST="1", BN_DATA_DIR=str(DATA_DIR), BN_FIGURES_DIR=str(figures))


def exercise_count(prefix):
    """How many exercises the lesson has: its stubs, the code cells that raise
    NotImplementedError until the learner writes them."""
    nb = nbformat.read(notebook_path(prefix), as_version=4)
    return sum(cell.cell_type == "code" and "raise NotImplementedError" in cell.source
               for cell in nb.cells)


def with_solutions_pasted(nb):
    """The notebook as a learner who solved every exercise has it: each reference solution's code
    (without its #@title and #@save lines) in place of the stub before it."""
    stub = None
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.source.startswith(SOLUTION_MARK):
            lines = cell.source.splitlines()[1:]
            if lines and lines[0].strip() == "#@save":
                lines = lines[1:]
            stub.source = "\n".join(lines)
        elif "raise NotImplementedError" in cell.source:
            stub = cell
    return nb


def run_lesson(prefix, fast=True, transform=None):
    """Execute the lesson alone in an empty folder (data from data/, as a learner could download
    it), after `transform(nb)` if given; returns (executed notebook, seconds, folder). Cached:
    each lesson runs once per mode and transform."""
    return _run_lesson(prefix, bool(fast), transform)


@functools.cache
def _run_lesson(prefix, fast, transform):
    path = notebook_path(prefix)
    label = f"{prefix}-{'fast' if fast else 'full'}{'-' + transform.__name__ if transform else ''}"
    return execute_alone(path, label, fast, transform)


def execute_alone(path, label, fast=True, transform=None):
    """Execute the notebook at `path` alone in an empty folder named after `label` (data from
    data/, as a learner could download it); returns (executed notebook, seconds, folder)."""
    folder = SCRATCH / f"run-{label}"
    folder.mkdir()
    nb = nbformat.read(path, as_version=4)
    if transform:
        nb = transform(nb)
    nbformat.write(nb, folder / path.name)
    nb, seconds = execute(folder / path.name, folder, fast, BN_DATA_DIR=str(DATA_DIR),
                          BN_FIGURES_DIR=None)
    return nb, seconds, folder


def outputs_text(nb):
    """All text the executed notebook printed or displayed, joined (for checking stated numbers)."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif "data" in output and "text/plain" in output.data:
                parts.append(output.data["text/plain"])
    return "\n".join(parts)


NUMBER = r"[-+−]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?%?"


def printed_number(text, *labels):
    """The number printed right after the last of `labels`, on the first line that holds them
    all in this order, e.g. printed_number(outputs_text(nb), "ratio") for "... ratio 2.3e-06 ..."
    or printed_number(text, "eval mode:", "moved by") for "eval mode:      moved by 0.000". A
    space in a label stands for any run of spaces, so a label need not copy a table's alignment.
    A trailing % divides by 100; thousands separators are allowed. Fails clearly when the labels
    or the number are absent."""
    parts = [r"[ \t]+".join(map(re.escape, re.split(" +", label))) for label in labels]
    pattern = r"[^\n]*?".join(parts) + r"\s*[:=]?\s*(" + NUMBER + ")"
    match = re.search(pattern, text)
    if match is None:
        raise AssertionError(f"the lesson printed no number after {' ... '.join(labels)!r}")
    token = match.group(1).replace(",", "").replace("−", "-")
    return float(token[:-1]) / 100 if token.endswith("%") else float(token)
