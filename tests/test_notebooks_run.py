"""Every lesson runs top to bottom in a fresh kernel, alone in an empty folder, without an error:
as it ships (exercise stubs in place), and with every reference solution pasted into its stub and
then every control of every slider panel moved through its range (ipywidgets 8, as in JupyterLab;
CI does the same under Colab's ipywidgets 7 with tools/colab_check.sh).

Full mode: lessons whose full run takes a minute or less run in it here too. Lessons 05 and 06 train
for minutes in full mode; the tests hold their prose on the results that run saved in figures/, and
test_figures_come_from_the_lessons_current_code makes sure that run is the current code's."""

import json

import pytest
from colab_check import slider_check_problems, with_slider_check
from conftest import TIMINGS
from lessons import lesson_paths, notebook_path, run_lesson, with_solutions_pasted
from run_notebooks import FULL_RUNS, code_fingerprint

PREFIXES = [path.name[:2] for path in lesson_paths()]
FULL_RUN_SAVED_ONLY = {"05", "06"}  # minutes in full mode: held by their saved results instead
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


RUNS = [(prefix, True) for prefix in PREFIXES] + [
    (prefix, False) for prefix in PREFIXES if prefix not in FULL_RUN_SAVED_ONLY]


@pytest.mark.parametrize(("prefix", "fast"), RUNS,
                         ids=[f"{p}-{'fast' if fast else 'full'}" for p, fast in RUNS])
def test_lesson_runs_alone_in_a_fresh_kernel(prefix, fast):
    nb, seconds, folder = run_lesson(prefix, fast)
    TIMINGS.append((notebook_path(prefix).name, "fast" if fast else "full", seconds))
    assert problems(nb) == []
    assert drawn_panels(nb) >= panels_made(nb), "a slider panel showed no figure"
    figures = sorted(path.name for path in (folder / "figures").glob(f"{prefix}-*.png"))
    assert figures, f"the lesson saved no figures/{prefix}-*.png"
    verdicts = check_verdicts(nb)
    assert verdicts and all(v.startswith(STUB) for v in verdicts), verdicts


def solved_then_sliders_moved(nb):
    """The notebook with every reference solution pasted in and, as its last cell, the slider check
    of tools/colab_check.py (every control of every panel through its range, in the kernel)."""
    return with_slider_check(with_solutions_pasted(nb))


@pytest.mark.parametrize("prefix", PREFIXES)
def test_lesson_runs_with_every_solution_pasted_in_and_every_slider_moved(prefix):
    nb, seconds, _ = run_lesson(prefix, fast=True, transform=solved_then_sliders_moved)
    TIMINGS.append((notebook_path(prefix).name, "fast, solved, sliders", seconds))
    assert problems(nb) == []
    verdicts = check_verdicts(nb)
    assert verdicts and all(v.startswith(RIGHT) for v in verdicts), verdicts
    slider_problems, report = slider_check_problems(nb)
    assert slider_problems == [], "\n".join(slider_problems)
    assert len(report) > 1, report  # a line per panel, then the count of redraws


@pytest.mark.parametrize("prefix", PREFIXES)
def test_figures_come_from_the_lessons_current_code(prefix):
    path = notebook_path(prefix)
    recorded = json.loads(FULL_RUNS.read_text()).get(path.name) if FULL_RUNS.exists() else None
    assert recorded == code_fingerprint(path), (
        f"figures/ does not hold a full run of {path.name}'s current code: run "
        f"`.venv/bin/python tools/run_notebooks.py {prefix}` and commit figures/")


def test_every_lesson_is_found():
    assert PREFIXES, "no notebooks/NN_*.ipynb found"
