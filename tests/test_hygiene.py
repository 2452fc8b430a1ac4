"""The repository's promises about its own files: clean notebooks, headers and links in step,
lint-clean code, requirements that agree, and a README that gives the two commands."""

import re
import subprocess
import sys

import nbformat
import pytest
from lessons import ROOT, lesson_paths

sys.path.insert(0, str(ROOT / "tools"))
import sync_notebooks  # noqa: E402
from run_notebooks import is_saved  # noqa: E402
from series import LESSONS  # noqa: E402

NOTEBOOKS = lesson_paths()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_valid_and_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, "a lesson without code"
    assert [i for i, cell in enumerate(code) if cell.outputs or cell.execution_count] == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_title_summary_badge_and_navigation(path):
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "markdown"
    assert re.match(rf"# {path.name[:2]} · \S", first.source)
    assert "**What you will learn:**" in first.source
    assert "colab.research.google.com/github/" in first.source and "colab-badge.svg" in first.source
    assert "Series overview" in first.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_uses_the_series_setup_and_one_way_to_make_sliders(path):
    nb = nbformat.read(path, as_version=4)
    tags = [cell.metadata.get("tags", []) for cell in nb.cells]
    assert ["series-setup"] in tags, "the shared setup cell (tag series-setup) is missing"
    code = [c for c, t in zip(nb.cells, tags) if c.cell_type == "code" and "series-setup" not in t]
    # slider_panel draws each panel once with its defaults, so a headless run draws every figure
    for direct in ("interact(", "interactive(", "interactive_output(", ".observe("):
        assert not any(direct in c.source for c in code), f"use slider_panel(...), not {direct}...)"
    # panels live in #@save cells: the tests and the benchmark build them from the notebook
    unsaved = [c.source.splitlines()[0] for c in code if "slider_panel(" in c.source and not is_saved(c)]
    assert unsaved == [], "a slider_panel(...) call outside a #@save cell"


TIMING = re.compile(r"perf_counter|process_time|time\.time\(|\btimeit\b|time\.monotonic")
COST_IS_THE_SUBJECT = {"06"}  # lesson 06 measures what synchronising batch norm costs


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lessons_time_nothing_speed_is_the_benchmarks_business(path):
    if path.name[:2] in COST_IS_THE_SUBJECT:
        pytest.skip("this lesson's subject is a cost it measures")
    nb = nbformat.read(path, as_version=4)
    timing = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and TIMING.search(c.source)]
    assert timing == [], f"timing code in cells {timing} (tools/benchmark.py measures speed)"


COLUMN = 90  # characters of code that fit JupyterLab's notebook column at 1280 px without scrolling


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_code_lines_fit_the_notebook_column(path):
    nb = nbformat.read(path, as_version=4)
    long = [f"cell {i}: {line[:60]}…" for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for line in c.source.splitlines() if len(line) > COLUMN]
    assert long == [], f"code lines longer than {COLUMN} characters scroll sideways"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_lesson_has_exercises_the_learner_writes(path):
    nb = nbformat.read(path, as_version=4)
    stubs = [c for c in nb.cells if c.cell_type == "code" and "raise NotImplementedError" in c.source]
    wanted = 3 if path.name.startswith("04") else 2
    assert len(stubs) >= wanted, f"{len(stubs)} exercise stubs, the lesson needs at least {wanted}"
    assert sync_notebooks.exercise_problems(nb) == []


def test_headers_footers_shared_cells_and_readme_table_are_in_sync():
    assert sync_notebooks.main(["--check"]) == 0, "run: python tools/sync_notebooks.py"


def test_every_notebook_is_in_the_catalogue_and_numbered():
    stems = [stem for stem, _, _ in LESSONS]
    assert [p.stem for p in NOTEBOOKS] == stems
    assert [s[:2] for s in stems] == [f"{i:02d}" for i in range(1, len(stems) + 1)]


def test_ruff_finds_nothing():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def requirement_names(lines, pattern):
    return {m.group(1).lower() for line in lines if (m := re.match(pattern, line.strip()))}


def test_environment_yml_names_the_same_packages_as_requirements_lab_txt():
    pip_lines = [line for name in ("requirements.txt", "requirements-lab.txt")
                 for line in (ROOT / name).read_text().splitlines()]
    pip = requirement_names(pip_lines, r"^([A-Za-z][\w.-]*)\s*[<>=!~]")
    conda_lines = (ROOT / "environment.yml").read_text().splitlines()
    conda = requirement_names(conda_lines, r"^-\s*([A-Za-z][\w.-]*)\s*[<>=!~]")
    conda = {"torch" if name == "pytorch" else name for name in conda} - {"python", "pip"}
    assert pip and conda == pip


def test_requirements_give_torch_a_lower_bound_only():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    for name in ("torch", "torchvision"):
        [line] = [ln for ln in lines if re.match(rf"{name}\s*[<>=]", ln)]
        assert re.fullmatch(rf"{name}>=[\d.]+", line.strip()), line


def test_readme_gives_the_two_commands_and_ci_runs_the_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "bash tools/lab.sh" in readme and "bash tools/test.sh" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^bash tools/test\.sh\s*$", ci, re.M)


def test_data_ships_with_its_provenance():
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        assert (ROOT / "data" / "MNIST" / "raw" / f"{name}.gz").is_file()
    provenance = (ROOT / "data" / "README.md").read_text()
    assert "CC BY-SA 3.0" in provenance and "LeCun" in provenance


def test_readme_shows_figures_that_exist():
    readme = (ROOT / "README.md").read_text()
    shown = re.findall(r"\]\((figures/[^)]+)\)", readme)
    assert shown and [f for f in shown if not (ROOT / f).is_file()] == []
