"""Every lesson runs top to bottom in a fresh kernel, alone in an empty folder, without an error:
as it ships (exercise stubs in place) and with every reference solution pasted into its stub."""

import pytest
from conftest import TIMINGS
from lessons import lesson_paths, notebook_path, run_lesson, with_solutions_pasted

PREFIXES = [path.name[:2] for path in lesson_paths()]
STUB, WRONG, RIGHT = "⏳ Not written yet", "✗ ", "✓ Right"


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
    """How many panel images the executed notebook holds (Image widgets with a picture)."""
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    return sum(model["model_name"] == "ImageModel"
               and any(buffer["path"] == ["value"] for buffer in model.get("buffers", []))
               for model in state.get("state", {}).values())


def panels_made(nb):
    """How many slider_panel(...) calls the lesson's code cells make (the setup cell aside)."""
    return sum(cell.source.count("slider_panel(") for cell in nb.cells
               if cell.cell_type == "code" and "series-setup" not in cell.metadata.get("tags", []))


def check_verdicts(nb):
    """What each exercise check printed: one line per check_exercise(...) call, in order."""
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "code" and "check_exercise(" in cell.source:
            text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
            lines += [line for line in text.splitlines() if line.startswith((STUB, WRONG, RIGHT))]
    return lines


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "full"])
@pytest.mark.parametrize("prefix", PREFIXES)
def test_lesson_runs_alone_in_a_fresh_kernel(prefix, fast):
    nb, seconds, folder = run_lesson(prefix, fast)
    TIMINGS.append((notebook_path(prefix).name, "fast" if fast else "full", seconds))
    assert problems(nb) == []
    assert drawn_panels(nb) >= panels_made(nb), "a slider panel showed no figure"
    figures = sorted(path.name for path in (folder / "figures").glob(f"{prefix}-*.png"))
    assert figures, f"the lesson saved no figures/{prefix}-*.png"
    verdicts = check_verdicts(nb)
    assert verdicts and all(v.startswith(STUB) for v in verdicts), verdicts


@pytest.mark.parametrize("prefix", PREFIXES)
def test_lesson_runs_with_every_reference_solution_pasted_in(prefix):
    nb, seconds, _ = run_lesson(prefix, fast=True, transform=with_solutions_pasted)
    TIMINGS.append((notebook_path(prefix).name, "fast, solutions pasted", seconds))
    assert problems(nb) == []
    verdicts = check_verdicts(nb)
    assert verdicts and all(v.startswith(RIGHT) for v in verdicts), verdicts


def test_every_lesson_is_found():
    assert PREFIXES, "no notebooks/NN_*.ipynb found"
