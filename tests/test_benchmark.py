"""tools/benchmark.py measures what it says, on tiny settings: every control of every panel moved
across its range, the races' ratios from their own medians, a lesson run in a fresh kernel, the
tables written between the markers only. Nothing here asserts a speed: the benchmark reports
speed, tests never do."""

import sys

import ipywidgets as widgets
import nbformat
import pytest
import torch
from lessons import ROOT, SCRATCH, load_lesson

sys.path.insert(0, str(ROOT / "tools"))
import benchmark  # noqa: E402
from run_notebooks import lesson_paths, saved_panels  # noqa: E402

CONTROLS = [  # a control, how many values asked for, the values expected
    (widgets.IntSlider(value=3, min=1, max=9), 5, [1, 3, 5, 7, 9]),
    (widgets.FloatSlider(value=0.5, min=-2.0, max=2.0), 3, [-2.0, 0.0, 2.0]),
    (widgets.FloatLogSlider(value=0.1, base=10, min=-3, max=0), 4, [1e-3, 1e-2, 1e-1, 1.0]),
    (widgets.Checkbox(value=False), 3, [True, False, True]),
    (widgets.SelectionSlider(options=[2, 4, 8], value=4), 4, [2, 4, 8, 2]),
    (widgets.ToggleButtons(options=[("one", 1), ("two", 2)], value=2), 3, [1, 2, 1]),
    (widgets.Dropdown(options=["a", "b", "c"], value="b"), 3, ["a", "b", "c"]),
]


@pytest.mark.parametrize("control, count, expected", CONTROLS,
                         ids=[type(control).__name__ for control, _, _ in CONTROLS])
def test_a_control_moves_across_its_range_then_back_to_its_default(control, count, expected):
    default = control.value
    assert benchmark.control_values(control, count) == pytest.approx(expected)
    assert control.value == default


def test_every_control_of_every_panel_is_timed_as_the_panel_redraws():
    paths = lesson_paths(["04", "05"])
    lessons = {path.name: benchmark.load_lesson(path, SCRATCH) for path in paths}
    rows = benchmark.time_sliders(lessons, repeats=2)
    expected = [(name, panel_name, type(control).__name__)
                for name, lesson in lessons.items()
                for panel_name, panel in saved_panels(lesson)
                for control in panel.controls.values()]
    assert len({panel for _, panel, _ in expected}) >= 4  # 04's three panels, 05's replay panel
    assert [(name, panel, label.rsplit("(", 1)[1].rstrip(")"))
            for name, panel, label, _, _ in rows] == expected
    assert all(0 < median <= slowest for *_, median, slowest in rows)
    section = benchmark.sliders_section(rows, 2)
    assert section.count("\n| 0") == len(rows) and "2 per control" in section


def test_the_batch_norm_race_gives_ours_over_pytorchs_for_each_shape():
    shapes = [(6, 4), (5, 3, 7), (4, 3, 5, 5)]
    rows = benchmark.race_batch_norm(load_lesson("04"), shapes, rounds=2, min_run_time=0.001)
    assert [(row["shape"], row["reference"]) for row in rows] == [
        ((6, 4), "BatchNorm1d"), ((5, 3, 7), "BatchNorm1d"), ((4, 3, 5, 5), "BatchNorm2d")]
    for row in rows:
        assert all(row[name] > 0 for name in ("ours", "nn", "ours_f", "F"))
        assert row["module_ratio"] == row["ours"] / row["nn"]
        assert row["function_ratio"] == row["ours_f"] / row["F"]
    section = benchmark.batchnorm_section(rows, torch.get_num_threads())
    assert f"{rows[2]['module_ratio']:.2f}×" in section and section.count("\n| (") == 3


def test_the_training_race_runs_k_networks_together_and_one_at_a_time():
    threads = torch.get_num_threads()
    try:
        rows = benchmark.race_training(load_lesson("05"), networks=(2, 3), steps=3, rounds=1)
    finally:
        torch.set_num_threads(threads)  # lesson 05 sets its own
    assert [(row["batch_norm"], row["networks"]) for row in rows] == [
        (False, 2), (False, 3), (True, 2), (True, 3)]
    for row in rows:
        assert row["together"] > 0 and row["alone"] > 0
        assert row["ratio"] == row["together"] / row["alone"]
    assert benchmark.training_section(rows, 1).count("\n| with") == 4


def test_the_command_runs_a_lesson_in_a_fresh_kernel_and_writes_between_the_markers(tmp_path):
    output = tmp_path / "BENCHMARKS.md"
    output.write_text(f"intro\n{benchmark.START}\nold tables\n{benchmark.END}\nafter\n")
    argv = ["--parts", "notebooks", "--lessons", "02", "--fast-only", "--output", str(output)]
    assert benchmark.main(argv) == 0
    text = output.read_text()
    assert text.startswith(f"intro\n{benchmark.START}\nMeasured ")
    assert text.endswith(f"{benchmark.END}\nafter\n") and "old tables" not in text
    assert f"torch {torch.__version__}" in text and "--lessons 02" in text
    (row,) = [line.split(" | ") for line in text.splitlines() if line.startswith("| 02_")]
    assert float(row[1].removesuffix(" s")) > 0 and float(row[2].split()[0].replace(",", "")) > 0


def test_a_failing_notebook_is_reported_and_a_new_file_gets_the_markers(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, tmp_path / "99_broken.ipynb")
    seconds, peak, error = benchmark.run_notebook(tmp_path / "99_broken.ipynb", True, tmp_path)
    assert seconds is None and peak is None and "ZeroDivisionError" in error
    benchmark.write_between_markers(tmp_path / "new.md", "a table")
    assert (tmp_path / "new.md").read_text() == f"{benchmark.START}\na table\n{benchmark.END}\n"


def test_the_browser_section_gives_each_panels_median_or_says_why_it_is_missing():
    trips = {("04_batchnorm_from_scratch", "gamma_beta_panel"): [120.0, 100.0, 300.0],
             ("04_batchnorm_from_scratch", "momentum_panel"): [90.0, 110.0]}
    section = benchmark.browser_section(trips)
    assert "| 04_batchnorm_from_scratch.ipynb | `gamma_beta_panel` | 3 | 120 ms | 300 ms |" in section
    assert "| `momentum_panel` | 2 | 100 ms | 110 ms |" in section
    assert "Not measured: no Chromium" in benchmark.browser_section(None)
