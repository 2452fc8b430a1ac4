"""Colab as learners have it: requirements.txt asks Colab for nothing it lacks; the README's Colab
section gives the two lines the data cell gives; tools/colab_check.py moves every kind of control
across its range, and reports each way a notebook can break for a learner (a failing cell, a failing
redraw, a panel that does not redraw, is not shown or is not kept, output on stderr), while a sound
notebook passes."""

import sys

import ipywidgets as widgets
import nbformat
import pytest
from lessons import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

sys.path.insert(0, str(ROOT / "tools"))
from colab_check import STOPS, _stops, check  # noqa: E402
from run_notebooks import environment  # noqa: E402
from shared_cells import DATA_CELL, SETUP_CELL  # noqa: E402

CONTROLS = {
    "shift": "widgets.FloatSlider(value=0.0, min=-2.0, max=2.0, step=0.05)",
    "points": "widgets.IntSlider(value=2, min=2, max=3)",
    "scale": "widgets.FloatLogSlider(value=1.0, base=10, min=-1, max=1, step=0.05)",
    "flip": "widgets.Checkbox(value=False)",
    "curve": "widgets.ToggleButtons(options=['tanh', 'sine'])",
    "colour": "widgets.Dropdown(options=[('blue', 'C0'), ('orange', 'C1'), ('green', 'C2')])",
    "power": "widgets.SelectionSlider(options=[0.5, 1, 1.5, 2], value=1)",
}
PANEL_CELL = """\
#@save
from matplotlib.figure import Figure


def make_curve_panel():
    fig = Figure(figsize=(3, 2), dpi=50)
    axes = fig.add_subplot()
    (line,) = axes.plot([0, 1], [0, 1])

    def update(shift, points, scale, flip, curve, colour, power):
        line.set_data([0, 1, 2][:points], [shift, scale ** power, -1 if flip else 1][:points])
        line.set_color(colour)
        axes.set_title(f"{curve} {shift:+.2f}")

    return fig, update


curve_panel = slider_panel(
    make_curve_panel,
""" + "".join(f"    {name}={code},\n" for name, code in CONTROLS.items()) + """)
curve_panel
"""

BROKEN_CELLS = [
    '''\
def make_offset_panel():
    fig = Figure(figsize=(3, 2), dpi=50)
    axes = fig.add_subplot()

    def update(offset):
        if offset > 2:
            widgets.NoSuchWidget()  # fails only once the slider moves past 2
        axes.set_title(str(offset))

    return fig, update


offset_panel = slider_panel(make_offset_panel, offset=widgets.IntSlider(value=0, min=-4, max=4))
offset_panel''',
    "hidden_panel = slider_panel(make_offset_panel, offset=widgets.IntSlider(value=-1, min=-4, max=0))",
    "slider_panel(make_offset_panel, offset=widgets.IntSlider(value=-2, min=-4, max=0))\nNone  # lost",
    'import sys\n\nprint("a warning a learner would see", file=sys.stderr)',
]


def notebook(tmp_path, *cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A notebook as lessons are made"),
                nbformat.v4.new_code_cell(SETUP_CELL, metadata={"tags": ["series-setup"]})]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    path = tmp_path / "demo.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("control, attribute, first, last", [
    (widgets.IntSlider(value=0, min=-4, max=4), "value", -4, 4),
    (widgets.FloatSlider(value=0.0, min=-2.0, max=2.0, step=0.05), "value", -2.0, 2.0),
    (widgets.FloatLogSlider(value=1.0, base=10, min=-1, max=1, step=0.05), "value", 0.1, 10.0),
    (widgets.SelectionSlider(options=[0.5, 1, 1.5, 2], value=1), "index", 0, 3),
    (widgets.Dropdown(options=[(str(k), k) for k in range(10)]), "index", 0, 9),
    (widgets.ToggleButtons(options=["with BN", "without BN"]), "index", 0, 1),
    (widgets.Checkbox(value=False), "value", True, True),
])
def test_each_kind_of_control_is_taken_across_its_whole_range(control, attribute, first, last):
    name, values = _stops(control, STOPS)
    assert name == attribute and 1 <= len(values) <= STOPS
    assert values[0] == pytest.approx(first) and values[-1] == pytest.approx(last)
    for value in values:  # each stop is a value the control accepts as it is
        setattr(control, attribute, value)
        assert getattr(control, attribute) == value


def test_a_control_it_cannot_move_is_named():
    with pytest.raises(TypeError, match="cannot move a Text"):
        _stops(widgets.Text(value="x"), STOPS)


def test_a_sound_notebook_passes_with_every_control_moved(tmp_path):
    problems, report, seconds = check(notebook(tmp_path, PANEL_CELL))
    assert problems == [] and seconds > 0
    [line, redraws] = report
    assert line.startswith("curve_panel: ")
    for name, code in CONTROLS.items():
        control = eval(code)
        assert f"{name} ({type(control).__name__}, {len(_stops(control, STOPS)[1])} stops)" in line
    assert redraws.endswith(" redraws") and int(redraws.split()[0]) > 0


def test_every_way_a_notebook_breaks_is_reported(tmp_path):
    problems, _, _ = check(notebook(tmp_path, PANEL_CELL, *BROKEN_CELLS))
    text = "\n".join(problems)
    assert "a warning a learner would see" in text
    assert "offset_panel: offset.value = 3: the redraw failed" in text and "NoSuchWidget" in text
    assert "(and 1 more of its stops)" in text  # 3 and 4 are the offset's stops past 2
    assert "the notebook makes 4 slider panel(s); 3 are alive in the kernel" in text
    assert "the notebook makes 4 slider panel(s) and shows 2 widget(s)" in text
    assert "curve_panel" not in text
    assert len(problems) == 4


STILL_PANELS = """\
class SliderPanel(SliderPanel):
    def widget(self):  # shows a picture that no control changes
        return widgets.Image(format="png")
"""


def test_a_panel_that_does_not_redraw_is_reported(tmp_path):
    problems, _, _ = check(notebook(tmp_path, STILL_PANELS, PANEL_CELL))
    assert len(problems) == len(CONTROLS)
    for name, problem in zip(CONTROLS, problems):
        first = problem.splitlines()[0]
        assert first.startswith(f"curve_panel: {name}.") and first.endswith(": nothing was redrawn")


def test_a_failing_cell_is_reported_with_its_error(tmp_path):
    problems, report, seconds = check(notebook(tmp_path, "1 / 0"))
    assert len(problems) == 1 and "ZeroDivisionError" in problems[0] and report == [] and seconds is None


def requirements(path):
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def test_colab_has_every_package_requirements_txt_asks_for_at_a_version_it_admits():
    pins = requirements(ROOT / "tools" / "requirements-colab.txt")
    colab = {canonicalize_name(r.name): r.specifier for r in pins}
    for wanted in requirements(ROOT / "requirements.txt"):
        pinned = colab.get(canonicalize_name(wanted.name))
        assert pinned is not None, f"Colab has no {wanted.name}: installing requirements.txt adds it"
        [version] = [spec.version for spec in pinned if spec.operator == "=="]
        assert wanted.specifier.contains(version), f"{wanted} would replace Colab's {wanted.name} {version}"


def test_the_readme_colab_section_gives_the_two_lines_the_data_cell_gives(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cells = {}
    with environment(BN_FIGURES_DIR=str(tmp_path / "figures")):
        exec(SETUP_CELL, cells)
        exec(DATA_CELL, cells)
    lines = [line.strip() for line in cells["HOW_TO_GET_MNIST"].splitlines()
             if line.strip().startswith(("!git clone --depth 1 ", 'os.environ["BN_DATA_DIR"] = '))]
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Run one lesson in Colab"):]
    section = section[:section.index("\n## ")]
    assert len(lines) == 2 and [line for line in lines if f"\n  {line}\n" not in section] == []


def test_the_readme_colab_section_names_the_versions_ci_pins():
    pins = {canonicalize_name(r.name): str(r.specifier)[2:]
            for r in requirements(ROOT / "tools" / "requirements-colab.txt")}
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Run one lesson in Colab"):]
    words = " ".join(section[:section.index("\n## ")].split())
    torch = ".".join(pins["torch"].split(".")[:2])
    for named in (f"torch {torch}", f"ipywidgets {pins['ipywidgets']}", f"ipykernel {pins['ipykernel']}",
                  "Python 3.13"):
        assert named in words, f"the README's Colab section does not say {named!r}"
    assert "sys.version_info[:2] != (3, 13)" in (ROOT / "tools" / "colab_check.sh").read_text()
