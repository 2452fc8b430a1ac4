"""Every control of every lesson's slider panels, moved in a real browser.

A private JupyterLab on 127.0.0.1, headless Chromium (tests/browser_support.py). Each lesson is
copied alone into an empty folder, opened and run with Run All in fast mode; every control of every
panel is then moved as a person moves it (arrow keys on a slider's handle, a click on a checkbox or
a toggle button), and after each move the image shown must be, byte for byte, the PNG this process
draws from the lesson's #@save cells for the same values. Lesson 01 is also opened in Notebook 7.
Round trips (input event -> new image shown) go to the terminal summary and to
test-artifacts/browser/round-trips.json; they are measured, never asserted.

Without Chromium (or Playwright) the tests skip loudly; BN_REQUIRE_BROWSER=1 makes that a failure.
"""

import json
import os
import statistics
import sys

import pytest
from browser_support import (
    DATA_DIR,
    chromium,
    drive_lesson,
    find_chromium,
    jupyter_server,
    moves,
    on_grid,
)
from lessons import ROOT, lesson_paths

ARTIFACTS = ROOT / "test-artifacts" / "browser"
CASES = [("lab", path) for path in lesson_paths()] + [("notebook", lesson_paths()[0])]


class Summary:
    """Round trips of the whole run, printed at the end and written to round-trips.json."""

    def __init__(self):
        self.round_trips, self.skipped = {}, None

    def pytest_terminal_summary(self, terminalreporter):
        if self.skipped:
            terminalreporter.section("BROWSER TESTS DID NOT RUN", sep="!", red=True, bold=True)
            terminalreporter.write_line(self.skipped, red=True, bold=True)
            return
        terminalreporter.section("browser round trips: input event -> new image shown (median)")
        for test, panels in self.round_trips.items():
            for panel, result in panels.items():
                times = result["round_trips_ms"]
                median = f"{statistics.median(times):6.0f} ms" if times else "     - ms"
                terminalreporter.write_line(f"{test:<32} {panel:<18} {median} ({len(times)} "
                                            f"moves); image checked {result['checked']}")


@pytest.fixture(scope="session")
def summary(request):
    summary = Summary()
    request.config.pluginmanager.register(summary, "browser-round-trips")
    yield summary
    if summary.round_trips:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for panels in summary.round_trips.values():
            for result in panels.values():
                times = result["round_trips_ms"]
                result["median_ms"] = statistics.median(times) if times else None
        (ARTIFACTS / "round-trips.json").write_text(json.dumps(summary.round_trips, indent=1))


@pytest.fixture(scope="session")
def browser(summary):
    """Chromium through Playwright, once for the session; a loud skip where there is none."""
    try:
        import playwright.sync_api  # noqa: F401
        reason = None if find_chromium() else "no Chromium (Debian: apt-get install chromium; or " \
                                              "set BN_CHROMIUM to a Chromium or Chrome binary)"
    except ImportError:
        reason = "Playwright is not installed (pip install -r requirements-test.txt)"
    if reason:
        message = f"BROWSER TESTS SKIPPED: {reason}"
        if os.environ.get("BN_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{message}, and BN_REQUIRE_BROWSER=1")
        summary.skipped = message
        print(f"\n{'!' * 100}\n{message}\n{'!' * 100}", file=sys.__stderr__, flush=True)
        pytest.skip(message)
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="session")
def jupyter(browser):
    with jupyter_server(BN_FAST="1", BN_DATA_DIR=str(DATA_DIR)) as server:
        yield server


@pytest.mark.parametrize("interface, path", CASES, ids=[f"{i}-{p.stem[:2]}" for i, p in CASES])
def test_every_control_redraws_its_panel(interface, path, browser, jupyter, summary, tmp_path):
    url, root = jupyter
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"{interface}-{path.stem[:2]}-on-failure.png"
    shot.unlink(missing_ok=True)
    round_trips = drive_lesson(browser, url, root, path, tmp_path, interface, shot)
    summary.round_trips[f"{interface}-{path.stem}"] = round_trips
    if not round_trips:
        pytest.skip(f"{path.name} has no slider panel")  # said, not hidden


def test_each_kind_of_control_is_moved_as_a_person_moves_it():
    import ipywidgets as widgets

    slider = widgets.FloatSlider(value=7.75, min=0, max=8, step=0.25)
    assert [m[0] for m in moves(slider)][:1] == [("press", "ArrowLeft")]
    assert [m[2] for m in moves(slider)] == [7.5, 7.25, 7.0]
    assert on_grid(0.05, 2.0, 0.01, 0.9) == 0.9000000000000001  # what the kernel got from the page
    assert on_grid(-3.0, 3.0, 0.1, 2.0) == 2.000000000000001 and on_grid(0, 1, 0.25, 0.3) == 0.25
    log = widgets.FloatLogSlider(value=0.1, base=10, min=-3, max=0, step=0.25)
    assert [m[2] for m in moves(log)][0] == pytest.approx(10 ** -1.25)  # the farther end
    assert [m[:2] for m in moves(slider, page_keys=True)] == [(("press", "PageDown"), "value")] * 3
    assert [m[2] for m in moves(slider, page_keys=True)] == [6.5, 5.25, 4.0]
    choice = widgets.SelectionSlider(options=[8, 16, 32], value=16)
    assert list(moves(choice, page_keys=True)) == [(("press", "PageUp"), "index", 2)]
    assert list(moves(choice)) == [(("press", "ArrowRight"), "index", 2)]  # not past the end
    toggles = widgets.ToggleButtons(options=[("a", 1), ("b", 2), ("c", 3)], value=2)
    assert list(moves(toggles)) == [(("click", "a"), "index", 0), (("click", "c"), "index", 2)]
    assert list(moves(widgets.Checkbox(value=False, description="on"))) == [
        (("check", "on"), "value", True)]
    with pytest.raises(AssertionError, match="cannot move a IntRangeSlider"):
        list(moves(widgets.IntRangeSlider()))
