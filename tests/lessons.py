"""Test helpers: load a lesson's reusable cells as a module, and run a lesson in a fresh kernel.

Cells whose first line is `#@save` hold the code a lesson teaches; tests import it from the
notebook itself, so the notebook stays the one source of truth.
"""

import functools
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from run_notebooks import execute, lesson_paths, load_saved_cells  # noqa: E402

DATA = ROOT / "data"
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
    return load_saved_cells(path, BN_FAST="1", BN_DATA_DIR=str(DATA), BN_FIGURES_DIR=str(figures))


def run_lesson(prefix, fast=True):
    """Execute the lesson alone in an empty folder (data from data/, as a learner could download
    it); returns (executed notebook, seconds, folder). Cached: each lesson runs once per mode."""
    return _run_lesson(prefix, bool(fast))


@functools.cache
def _run_lesson(prefix, fast):
    path = notebook_path(prefix)
    folder = SCRATCH / f"run-{prefix}-{'fast' if fast else 'full'}"
    folder.mkdir()
    shutil.copy(path, folder)
    nb, seconds = execute(folder / path.name, folder, fast, BN_DATA_DIR=str(DATA), BN_FIGURES_DIR=None)
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
