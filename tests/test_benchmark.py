"""The benchmark tool's pieces work: a notebook is run and its sliders timed in the same kernel, the
batch-norm and training comparisons produce their ratios, and the report is well-formed markdown.
Nothing here asserts a speed: speed is reported by `tools/benchmark.py`, never tested."""

import sys
import types

import nbformat
import pytest
import torch
import torch.nn.functional as F
from lessons import DATA_DIR, ROOT, lesson_paths, load_lesson
from torch import nn

sys.path.insert(0, str(ROOT / "tools"))
import benchmark  # noqa: E402
from shared_cells import SETUP  # noqa: E402

PANEL = '''\
from matplotlib.figure import Figure

fig = Figure(figsize=(4, 2), dpi=72)
ax = fig.add_subplot()
(line,) = ax.plot([0, 1], [0, 1])
ax.set_title("a tiny panel")
seen = []


def update(count=3, scale=1.0, rate=0.1, step="b", flip=False, kind="x", pick=2):
    # every value the benchmark passes must be one the control can take
    assert isinstance(count, int) and 1 <= count <= 9, count
    assert isinstance(scale, float) and -2.0 <= scale <= 2.0, scale
    assert 1e-3 - 1e-12 <= rate <= 1.0 + 1e-12, rate
    assert step in ("a", "b", "c"), step
    assert isinstance(flip, bool), flip
    assert kind in ("x", "y"), kind
    assert pick in (1, 2), pick
    seen.append((count, scale, rate, step, flip, kind, pick))
    line.set_ydata([0, count * scale * rate * (-1 if flip else 1) * pick])


panel = slider_panel(
    fig, update,
    count=widgets.IntSlider(value=3, min=1, max=9, description="count"),
    scale=widgets.FloatSlider(value=1.0, min=-2.0, max=2.0, step=0.25, description="scale"),
    rate=widgets.FloatLogSlider(value=0.1, base=10, min=-3, max=0, description="rate"),
    step=widgets.SelectionSlider(options=["a", "b", "c"], value="b", description="step"),
    flip=widgets.Checkbox(value=False, description="flip"),
    kind=widgets.ToggleButtons(options=["x", "y"], description="kind"),
    pick=widgets.Dropdown(options=[("one", 1), ("two", 2)], value=2, description="pick"),
)
panel
'''
CONTROLS = ["count", "scale", "rate", "step", "flip", "kind", "pick"]


def write_notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# a tiny lesson")]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in sources]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def table_rows(markdown):
    """Each markdown table in the text as a list of rows (lists of cells)."""
    tables, inside = [], False
    for line in markdown.splitlines():
        if line.startswith("|"):
            if not inside:
                tables.append([])
            tables[-1].append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
        inside = line.startswith("|")
    return tables


def test_markdown_table_has_as_many_cells_in_every_row_as_in_the_header():
    text = benchmark.markdown_table(["a", "b"], [[1, "x|y"], ["2", "z"]])
    lines = text.splitlines()
    assert lines[0] == "| a | b |" and lines[1] == "| --- | --- |"
    assert lines[2] == "| 1 | x\\|y |"  # a | inside a cell is escaped
    with pytest.raises(ValueError, match="cells"):
        benchmark.markdown_table(["a", "b"], [[1, 2, 3]])


def test_verdict_says_by_how_much_a_target_is_missed():
    assert benchmark.verdict(30.0, 40.0) == "ok"
    assert benchmark.verdict(50.0, 40.0) == "**missed** (+25%)"
    assert benchmark.verdict(None, 40.0) == "—"


def test_a_notebook_runs_in_a_fresh_kernel_and_every_control_of_its_panel_is_timed(tmp_path):
    path = write_notebook(tmp_path / "notebooks" / "01_tiny.ipynb", SETUP, PANEL)
    result = benchmark.run_notebook(path, fast=True, scratch=tmp_path, sliders=True, repeats=4)
    assert result["error"] is None
    assert result["seconds"] > 0 and result["peak_mb"] > 10  # a Python kernel with matplotlib
    rows = result["sliders"]
    assert [row["control"] for row in rows] == CONTROLS
    for row in rows:
        assert "error" not in row, row
        assert row["panel"] == 1 and row["title"] == "a tiny panel"
        assert row["calls"] == 4 and row["distinct"] >= 2  # the control really moved
        assert 0 < row["median_ms"] <= row["max_ms"]
    assert {row["kind"] for row in rows} == {"IntSlider", "FloatSlider", "FloatLogSlider", "SelectionSlider",
                                            "Checkbox", "ToggleButtons", "Dropdown"}


def test_a_failing_notebook_is_reported_not_raised(tmp_path):
    path = write_notebook(tmp_path / "02_broken.ipynb", "x = 1", "1 / 0")
    result = benchmark.run_notebook(path, fast=True, scratch=tmp_path)
    assert result["seconds"] is None and "ZeroDivisionError" in result["error"]


class TorchBatchNorm(nn.Module):
    """A stand-in for lesson 04's BatchNorm: PyTorch's own, so the ratios are about 1."""

    def __init__(self, num_features):
        super().__init__()
        self.layers = nn.ModuleDict({"1d": nn.BatchNorm1d(num_features), "2d": nn.BatchNorm2d(num_features)})

    def forward(self, x):
        return self.layers["2d" if x.dim() == 4 else "1d"](x)


def test_batch_norm_comparison_gives_a_ratio_for_each_shape_and_checks_agreement():
    shapes = [(6, 4), (5, 3, 7), (4, 3, 5, 5)]
    rows = benchmark.compare_batch_norm(F.batch_norm, TorchBatchNorm, shapes=shapes, repeats=3)
    assert [row["shape"] for row in rows] == shapes
    assert [row["reference"] for row in rows] == ["BatchNorm1d", "BatchNorm1d", "BatchNorm2d"]
    for row in rows:
        assert row["agrees"] is True
        assert row["module_ratio"] > 0 and row["function_ratio"] > 0
    text = benchmark.batchnorm_section(rows)
    assert len(table_rows(text)[0]) == 2 + len(shapes)


def test_batch_norm_that_disagrees_or_fails_is_noted():
    class Wrong(TorchBatchNorm):
        def forward(self, x):
            return super().forward(x) + 1

    def broken(*args, **kwargs):
        raise RuntimeError("not written yet")

    rows = benchmark.compare_batch_norm(broken, Wrong, shapes=[(6, 4)], repeats=2)
    text = benchmark.batchnorm_section(rows)
    assert "differs from nn.BatchNorm1d" in text and "not written yet" in text


def fake_lesson_05():
    """What the benchmark needs from lesson 05: make_mlp(batch_norm) and train(model, data, steps)."""
    lesson = types.SimpleNamespace(calls=[])
    lesson.make_mlp = benchmark.bare_mlp

    def train(model, data, steps, lr=0.1, eval_every=4, progress=True):
        lesson.calls.append((steps, progress))
        benchmark.bare_loop(False, data)(steps)
    lesson.train = train
    return lesson


def test_training_comparison_measures_all_three_loops_with_and_without_batch_norm():
    lesson = fake_lesson_05()
    assert benchmark.lesson_steps(lesson, 5) == 8  # whole evaluation intervals
    rows = benchmark.compare_training(lesson, benchmark.mnist_root(), rounds=2, steps=5, dataloader_steps=3)
    assert [row["batch_norm"] for row in rows] == [False, True]
    for row in rows:
        assert row["errors"] == {}
        assert all(row[f"{name}_steps_s"] > 0 for name in ("lesson", "bare", "dataloader"))
    assert lesson.calls and all(steps in (8, 5) and progress is False for steps, progress in lesson.calls)
    text = benchmark.training_section(rows, lesson_present=True)
    (table,) = table_rows(text)
    assert [row[0] for row in table[2:]] == ["without BN", "with BN"]
    assert all("×" in row[4] and "faster" in row[5] for row in table[2:])


def test_the_command_skips_missing_lessons_with_a_note_and_writes_the_table(tmp_path, capsys):
    folder = tmp_path / "notebooks"
    write_notebook(folder / "01_tiny.ipynb", SETUP, PANEL)
    output = tmp_path / "benchmarks" / "RESULTS.md"
    argv = ["--notebooks", str(folder), "--lessons", "01", "04", "05", "--fast-only", "--repeats", "3",
            "--parts", "notebooks", "sliders", "batchnorm", "--output", str(output)]
    assert benchmark.main(argv) == 0
    text = output.read_text()
    assert capsys.readouterr().out.strip() == text.strip()
    assert "Measured " in text and "torch " + torch.__version__ in text
    notebooks, sliders = table_rows(text)
    assert notebooks[0] == ["Notebook", "fast: wall time", "fast: peak RSS"]
    assert [row[0] for row in notebooks[2:]] == ["01_tiny.ipynb", "**series total**"]
    assert [row[2].split(" (")[0] for row in sliders[2:]] == CONTROLS
    for table in (notebooks, sliders):
        assert len({len(row) for row in table}) == 1
    assert "skipped: lessons 04, 05" in text
    assert "Lesson 04 batch norm: skipped" in text


LESSONS = [path.name[:2] for path in lesson_paths()]


@pytest.mark.skipif("04" not in LESSONS, reason="lesson 04 is not in notebooks/ yet")
def test_lesson_04_has_the_names_the_benchmark_times():
    lesson = load_lesson("04")
    assert callable(lesson.batch_norm) and issubclass(lesson.BatchNorm, nn.Module)
    rows = benchmark.compare_batch_norm(lesson.batch_norm, lesson.BatchNorm, shapes=[(6, 4)], repeats=1)
    assert rows[0]["agrees"] is True and "function_ratio" in rows[0]


@pytest.mark.skipif("05" not in LESSONS, reason="lesson 05 is not in notebooks/ yet")
def test_lesson_05_has_the_names_the_benchmark_times():
    threads = torch.get_num_threads()
    try:
        lesson = load_lesson("05")
        data = benchmark.training_data(lesson, benchmark.mnist_root())
        assert {"x_train", "y_train", "x_test", "y_test"} <= set(data)
        benchmark.lesson_loop(lesson, True, data)(3)
    finally:
        torch.set_num_threads(threads)


def test_the_offline_data_is_where_the_benchmark_looks():
    assert benchmark.DATA_DIR == DATA_DIR
