"""The slider-panel helper of the series setup cell (tools/shared_cells.py), held to its contract
on the lessons' own panels: what a panel shows for some control values is the PNG that
SliderPanel.render draws for them on a fresh figure, byte for byte, whatever was shown before;
that PNG is the figure as matplotlib draws it; a failed redraw is caught and shown, a failed
first drawing fails the cell.

Each lesson's #@save cells are loaded into a module of this file's own (the widgets made here
observe the lesson's controls; other tests' modules are left alone). A panel that draws what a
cell outside #@save computed (lesson 05 replays a training run) cannot be built from them; a
lesson with no other panel is skipped, saying so.
"""

import io
import tempfile

import numpy as np
import pytest
from lessons import DATA_DIR, lesson_paths
from PIL import Image
from run_notebooks import load_saved_cells, saved_panels

LESSONS = [path.name[:2] for path in lesson_paths()]


@pytest.fixture(scope="module", params=LESSONS)
def lesson(request):
    path = lesson_paths([request.param])[0]
    with tempfile.TemporaryDirectory() as figures:
        module = load_saved_cells(path, BN_FAST="1", BN_DATA_DIR=str(DATA_DIR),
                                  BN_FIGURES_DIR=figures)
        panels = saved_panels(module)
        assert panels, f"lesson {request.param} makes no slider panel"
        buildable, needing = [], []
        for name, panel in panels:
            try:
                panel.build()
                buildable.append((name, panel))
            except NameError as error:  # it draws what a cell outside #@save computed
                needing.append(f"{name} ({error})")
        if not buildable:
            pytest.skip(f"lesson {request.param}: no panel builds from the #@save cells alone: "
                        + ", ".join(needing))
        yield module, buildable


def another_value(control):
    """A value of `control` other than its current one (the farthest along its range)."""
    value = control.value
    if isinstance(value, bool):
        return not value
    if hasattr(control, "index") and hasattr(control, "options"):  # a selection
        options = list(control._options_values)
        return options[-1] if control.index != len(options) - 1 else options[0]
    if type(control).__name__ == "FloatLogSlider":
        low, high = control.base ** control.min, control.base ** control.max
    else:
        low, high = control.min, control.max
    return high if value - low < high - value else low


def fresh_png(panel, values):
    """The PNG for `values` drawn on a figure just built: no history at all."""
    fig, update = panel.build()
    return panel.render(fig, update, values)


def parts(widget):
    """The image and the error line of a panel's widget."""
    _, image, error = widget.children
    return image, error


def test_a_panel_shows_for_each_set_of_values_the_png_a_fresh_figure_gives(lesson):
    _, panels = lesson
    for name, panel in panels:
        defaults = panel.values()
        first = fresh_png(panel, defaults)
        image, error = parts(panel.widget())
        assert image.value == first, f"{name}: the first drawing"
        try:
            for control_name, control in panel.controls.items():
                control.value = another_value(control)
                moved = panel.values()
                assert moved != defaults, f"{name}: {control_name} did not move"
                assert image.value == fresh_png(panel, moved), f"{name}: {control_name} moved"
                assert image.value != first, f"{name}: {control_name} changed nothing"
                control.value = defaults[control_name]
                assert image.value == first, f"{name}: {control_name} back to its default"
            # the same values after a long history, drawn on a figure that has shown others
            fig, update = panel.build()
            for control_name, control in panel.controls.items():
                panel.render(fig, update, {**defaults, control_name: another_value(control)})
            assert panel.render(fig, update, defaults) == first, name
            assert panel.errors == [] and error.value == "", name
        finally:
            for control_name, control in panel.controls.items():
                control.value = defaults[control_name]


def test_the_png_is_the_figure_as_matplotlib_draws_it(lesson):
    _, panels = lesson
    for name, panel in panels:
        fig, update = panel.build()
        png = panel.render(fig, update, panel.values())
        shown = Image.open(io.BytesIO(png))
        size = fig.canvas.get_width_height(physical=True)  # 8.2 in at 100 dpi: 819 or 820 px
        assert shown.format == "PNG" and shown.size == size, name
        raw = io.BytesIO()
        fig.savefig(raw, format="rgba")  # matplotlib's own pixels, at the figure's dpi
        drawn = np.frombuffer(raw.getvalue(), np.uint8).reshape(size[1], size[0], 4)
        assert np.array_equal(np.asarray(shown.convert("RGBA")), drawn), name


def test_the_panel_style_changes_no_pixel(lesson):
    module, panels = lesson
    for name, panel in panels:
        plain_fig, plain_update = panel.make_figure()  # the lesson's build, matplotlib's style
        styled_fig, styled_update = panel.build()
        defaults = panel.values()
        for control_name, control in panel.controls.items():
            for values in (defaults, {**defaults, control_name: another_value(control)}):
                plain_update(**values)
                assert panel.render(styled_fig, styled_update, values) == \
                    module.figure_png(plain_fig), f"{name}: {values}"


class Failure(RuntimeError):
    pass


def failing(build, when):
    """`build` whose update raises Failure (after redrawing) while when() is true; it counts
    the calls of update in .calls."""

    def failing_build():
        fig, update = build()

        def checked_update(**values):
            failing_build.calls += 1
            update(**values)
            if when():
                raise Failure("this redraw <fails> & says so")

        return fig, checked_update

    failing_build.calls = 0
    return failing_build


def test_a_failed_redraw_is_caught_and_shown_and_a_failed_first_drawing_raises(lesson):
    module, panels = lesson
    name, panel = panels[0]
    control_name, control = next(iter(panel.controls.items()))
    default, other = control.value, another_value(control)
    with pytest.raises(Failure):
        module.slider_panel(failing(panel.build, lambda: True), **panel.controls).widget()
    fail = [False]
    build = failing(panel.build, lambda: fail[0])
    broken = module.slider_panel(build, **panel.controls)
    image, error = parts(broken.widget())
    first = image.value
    try:
        fail[0] = True
        control.value = other
        assert len(broken.errors) == 1 and "Failure: this redraw <fails> & says so" in broken.errors[0]
        assert "this redraw &lt;fails> &amp; says so" in error.value, name
        assert image.value == first, f"{name}: a failed redraw keeps the last picture"
        fail[0] = False
        control.value = default
        assert error.value == "" and image.value == first, name
        calls = build.calls
        control.value = other  # the failed drawing was not kept: it is drawn again
        assert build.calls == calls + 1 and error.value == "", name
        assert image.value == fresh_png(panel, {**panel.values(), control_name: other}), name
        assert len(broken.errors) == 1, name
    finally:
        control.value = default


def test_a_panel_draws_once_per_change_and_not_again_for_values_it_still_keeps(lesson):
    module, panels = lesson
    name, panel = panels[0]
    control = next(iter(panel.controls.values()))
    default, other = control.value, another_value(control)
    for memory in (1, module.SliderPanel.MEMORY):
        build = failing(panel.build, lambda: False)  # counts the calls of update
        counted = module.slider_panel(build, **panel.controls)
        counted.MEMORY = memory  # 1: it keeps the PNG of the latest values only
        image, _ = parts(counted.widget())
        first = image.value
        try:
            assert build.calls == 1, name
            control.value = other
            assert build.calls == 2, name
            control.value = default  # drawn again only if forgotten
            assert build.calls == (3 if memory == 1 else 2) and image.value == first, name
        finally:
            control.value = default
