"""Every lesson runs top to bottom in a fresh kernel, alone in an empty folder, without an error."""

import pytest
from conftest import TIMINGS
from lessons import lesson_paths, notebook_path, run_lesson

PREFIXES = [path.name[:2] for path in lesson_paths()]


def problems(nb):
    """Error outputs and warnings a learner would see."""
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                found.append(f"cell {index}: {output.ename}: {output.evalue}")
            elif output.output_type == "stream" and output.name == "stderr":
                if any(word in output.text for word in ("Error", "Warning", "Traceback")):
                    found.append(f"cell {index} stderr: {output.text.strip()[:300]}")
    return found


def drawn_panels(nb):
    """How many Output widgets of the executed notebook show an image (a drawn slider panel)."""
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    outputs = [m["state"].get("outputs", []) for m in state.get("state", {}).values()
               if m["model_name"] == "OutputModel"]
    return sum(any("image/png" in o.get("data", {}) for o in shown) for shown in outputs)


def panels_made(nb):
    """How many slider_panel(...) calls the lesson's own code cells make."""
    return sum(cell.source.count("slider_panel(") for cell in nb.cells
               if cell.cell_type == "code" and not cell.metadata.get("tags"))


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "full"])
@pytest.mark.parametrize("prefix", PREFIXES)
def test_lesson_runs_alone_in_a_fresh_kernel(prefix, fast):
    nb, seconds, folder = run_lesson(prefix, fast)
    TIMINGS.append((notebook_path(prefix).name, "fast" if fast else "full", seconds))
    assert problems(nb) == []
    assert drawn_panels(nb) >= panels_made(nb), "a slider panel showed no figure"
    figures = sorted(path.name for path in (folder / "figures").glob(f"{prefix}-*.png"))
    assert figures, f"the lesson saved no figures/{prefix}-*.png"


def test_every_lesson_is_found():
    assert PREFIXES, "no notebooks/NN_*.ipynb found"
