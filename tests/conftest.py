import shutil

from lessons import SCRATCH

TIMINGS = []  # (notebook, mode, seconds), filled by the notebook execution tests


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.section("notebook run times (fresh kernel)")
        for name, mode, seconds in TIMINGS:
            terminalreporter.write_line(f"{name:<36} {mode:<5} {seconds:6.1f} s")


def pytest_sessionfinish(session):
    shutil.rmtree(SCRATCH, ignore_errors=True)
