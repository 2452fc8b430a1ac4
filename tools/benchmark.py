"""Measure how fast the series runs and write the tables into BENCHMARKS.md.

    python tools/benchmark.py                       # everything (about 15 min on 2 CPU cores)
    python tools/benchmark.py --fast-only --output /tmp/fast.md  # notebooks, fast mode only
    python tools/benchmark.py --parts sliders --lessons 01 04 --output /tmp/sliders.md

notebooks  each lesson top to bottom in a fresh kernel, fast and full mode: wall time, peak RSS.
sliders    every control of every slider panel the lessons' #@save cells make: its redraw,
           SliderPanel.render (update(**values), then figure_png(fig)), while it moves
           across its range.
browser    each panel's round trip in JupyterLab in headless Chromium, from a key press or click
           to the new image on the page, driven as the browser tests drive it (needs Chromium).
batchnorm  lesson 04's scratch BatchNorm and batch_norm against PyTorch's, forward + backward.
training   lesson 05's train_together (K networks side by side) against train (one at a time).
--lessons chooses the lessons of the first two parts. The tables replace what lies between the
markers of the output file: give a partial run (--parts, --lessons, --fast-only) its own --output.
"""

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.benchmark import Timer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_notebooks import ROOT, execute, lesson_paths, load_saved_cells, saved_panels  # noqa: E402

DATA = ROOT / "data"
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
PARTS = ("notebooks", "sliders", "browser", "batchnorm", "training")
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
BN_SHAPES = [(60, 100), (100, 16, 784), (64, 16, 28, 28), (256, 64, 16, 16)]
NETWORKS = (3, 18)  # lesson 05 trains 3 seeds side by side; its full learning-rate sweep 6 × 3
PEAK_RSS_CELL = ("import resource, sys\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss"
                 " / (2**20 if sys.platform == 'darwin' else 2**10))  # the peak RSS, in MB")


def load_lesson(path, scratch):
    """The lesson's #@save cells as a module: fast mode, MNIST from data/, figures to scratch."""
    return load_saved_cells(path, BN_FAST="1", BN_DATA_DIR=str(DATA), BN_FIGURES_DIR=str(scratch))


def run_notebook(path, fast, scratch):
    """(seconds, peak RSS in MB, error) of the lesson run top to bottom in a fresh kernel by
    run_notebooks.execute, from a copy in a scratch folder with one cell appended that prints
    the kernel's peak RSS (the kernel process's own, not that of processes it starts)."""
    print(f"{path.name}, {'fast' if fast else 'full'} mode", file=sys.stderr, flush=True)
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PEAK_RSS_CELL))
    folder = Path(tempfile.mkdtemp(prefix=f"{path.name[:2]}-", dir=scratch))
    nbformat.write(nb, folder / path.name)
    try:
        nb, seconds = execute(folder / path.name, folder, fast, BN_DATA_DIR=str(DATA),
                              BN_FIGURES_DIR=str(folder))
    except Exception as error:  # a failed cell: reported in the table, the others still run
        lines = [line for line in str(error).splitlines() if line.strip()] or [repr(error)]
        return None, None, lines[-1][:200]
    text = "".join(output.get("text", "") for output in nb.cells[-1].outputs)
    return seconds, float(text.split()[-1]), None


def control_values(control, count):
    """`count` values of a control across its range: each option in turn, a checkbox off and
    on, a slider from its min to its max (a log slider evenly in its exponent)."""
    default, values = control.value, []
    for i in range(count):
        if hasattr(control, "index"):  # Dropdown, SelectionSlider, ToggleButtons, ...
            control.index = i % len(control.options)
        elif isinstance(default, bool):
            control.value = (i % 2 == 0) != default
        else:
            x = control.min + (control.max - control.min) * i / max(count - 1, 1)
            control.value = (control.base ** x if hasattr(control, "base")
                             else round(x) if isinstance(default, int) else x)
        values.append(control.value)
    control.value = default
    return values


def lesson_05_runs(lesson):
    """Lesson 05's replay panel replays the two runs of a cell that is not #@save: trained
    here as that cell trains them (in fast mode: lesson.STEPS steps)."""
    data = lesson.mnist_tensors(*lesson.load_mnist())
    lesson.replication = {
        name: lesson.train(lesson.make_mlp(batch_norm, seed=0), data, lesson.STEPS,
                           eval_every=lesson.EVAL_EVERY, early_evals=lesson.EARLY_EVALS,
                           progress=False)
        for name, batch_norm in (("without_bn", False), ("with_bn", True))}


PANEL_INPUTS = {"05": lesson_05_runs}  # what a lesson's panels use that #@save cells don't make


def time_sliders(lessons, repeats):
    """Rows (lesson, panel, control, median ms, slowest ms) for every control of every panel of
    the modules {notebook name: lesson}: `repeats` redraws that move that control across its
    range, the others at their defaults."""
    rows = []
    for name, lesson in lessons.items():
        PANEL_INPUTS.get(name[:2], lambda lesson: None)(lesson)
        for panel_name, panel in saved_panels(lesson):
            fig, update = panel.build()
            defaults = panel.values()
            panel.render(fig, update, defaults)  # the first drawing (what showing it does)
            for control_name, control in panel.controls.items():
                times = []
                for value in control_values(control, repeats):
                    start = time.perf_counter()
                    panel.render(fig, update, {**defaults, control_name: value})  # a redraw
                    times.append(time.perf_counter() - start)
                label = f"{control.description or control_name} ({type(control).__name__})"
                rows.append((name, panel_name, label, 1e3 * statistics.median(times),
                             1e3 * max(times)))
    return rows


def race_batch_norm(lesson, shapes=BN_SHAPES, rounds=5, min_run_time=0.05):
    """For each input shape, the median seconds of forward + backward in training mode of
    lesson 04's BatchNorm and batch_norm and of PyTorch's, each from `rounds` alternating
    torch.utils.benchmark measurements; ratios ours / PyTorch's."""
    rows = []
    for shape in shapes:
        torch.manual_seed(0)
        x, grad, c = torch.randn(shape, requires_grad=True), torch.randn(shape), shape[1]
        weight, bias = torch.ones(c, requires_grad=True), torch.zeros(c, requires_grad=True)
        mean, var = torch.zeros(c), torch.ones(c)
        reference = nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d

        def module_step(layer):
            return lambda: torch.autograd.grad(layer(x), [x, *layer.parameters()], grad)

        def function_step(function):
            return lambda: torch.autograd.grad(
                function(x, mean, var, weight, bias, training=True), [x, weight, bias], grad)

        steps = {"ours": module_step(lesson.BatchNorm(c)), "nn": module_step(reference(c)),
                 "ours_f": function_step(lesson.batch_norm), "F": function_step(F.batch_norm)}
        samples = {name: [] for name in steps}
        for turn in range(rounds):
            for name, step in steps.items() if turn % 2 == 0 else reversed(steps.items()):
                timer = Timer("step()", globals={"step": step},
                              num_threads=torch.get_num_threads())
                samples[name].append(timer.blocked_autorange(min_run_time=min_run_time).median)
        row = {name: statistics.median(values) for name, values in samples.items()}
        rows.append({**row, "shape": shape, "reference": reference.__name__,
                     "module_ratio": row["ours"] / row["nn"],
                     "function_ratio": row["ours_f"] / row["F"]})
    return rows


def race_training(lesson, networks=NETWORKS, steps=200, rounds=3):
    """Network-steps per second of lesson 05's train_together (K networks in one pass) and of
    its train (the same K networks one after the other), without and with batch norm: medians
    over `rounds` alternating rounds of `steps` steps of every network, after a warm-up."""
    data = lesson.mnist_tensors(*lesson.load_mnist())
    rows = []
    for batch_norm in (False, True):
        for k in networks:
            seeds = list(range(k))
            together = [lesson.make_mlp(batch_norm, seed=seed) for seed in seeds]
            alone = [lesson.make_mlp(batch_norm, seed=seed) for seed in seeds]
            loops = {
                "together": lambda count: lesson.train_together(
                    together, data, count, seeds=seeds, eval_every=count, progress=False),
                "alone": lambda count: [
                    lesson.train(net, data, count, seed=seed, eval_every=count, progress=False)
                    for net, seed in zip(alone, seeds)]}
            rates = {name: [] for name in loops}
            for turn in range(rounds + 1):  # the first: a warm-up
                for name, loop in loops.items() if turn % 2 else reversed(loops.items()):
                    start = time.perf_counter()
                    loop(steps)
                    if turn:
                        rates[name].append(k * steps / (time.perf_counter() - start))
            row = {name: statistics.median(values) for name, values in rates.items()}
            rows.append({**row, "batch_norm": batch_norm, "networks": k,
                         "ratio": row["together"] / row["alone"]})
    return rows


def table(header, rows):
    lines = [header, "|" + " --- |" * header.count(" | ") + " --- |"]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def duration(seconds):
    if seconds is None:
        return "—"
    minutes = f"{seconds // 60:.0f} min {seconds % 60:04.1f} s"
    return f"{seconds:.1f} s" if seconds < 120 else minutes


def notebooks_section(results, modes):
    rows = [[name] + [cell for seconds, peak, error in (by_mode[mode] for mode in modes)
                      for cell in (f"**failed**: {error}" if error else duration(seconds),
                                   "—" if peak is None else f"{peak:,.0f} MB")]
            for name, by_mode in results.items()]
    times = {mode: [by_mode[mode][0] for by_mode in results.values()] for mode in modes}
    rows.append(["**all lessons**"] + [cell for mode in modes for cell in (
        "—" if None in times[mode] else f"**{duration(sum(times[mode]))}**", "")])
    header = "| Notebook | " + " | ".join(f"{m}: wall time | {m}: peak RSS" for m in modes) + " |"
    return "### Notebooks: each top to bottom in a fresh kernel\n\n" + table(header, rows)


def sliders_section(rows, repeats):
    return (f"### Slider redraws in the kernel: {repeats} per control, fast mode\n\n"
            + table("| Notebook | Panel | Control | Median | Slowest |",
                    [(name, f"`{panel}`", control, f"{median:.1f} ms", f"{slowest:.1f} ms")
                     for name, panel, control, median, slowest in rows]))


def round_trips(paths):
    """{(lesson, panel): round trips in ms}, measured by the browser tests' own driver
    (tests/browser_support.py); None when Chromium or Playwright is missing."""
    sys.path.insert(0, str(ROOT / "tests"))
    import browser_support

    if browser_support.find_chromium() is None:
        return None
    try:
        results = browser_support.measure_round_trips(paths)
    except ImportError:  # no Playwright
        return None
    return {(stem, panel): result["round_trips_ms"]
            for stem, panels in results.items() for panel, result in panels.items()}


def browser_section(trips):
    title = "### Browser round trips: key press or click to the new image, JupyterLab\n\n"
    if trips is None:
        return title + "Not measured: no Chromium (or Playwright) on this machine."
    return title + table("| Notebook | Panel | Moves | Median | Slowest |", [
        (f"{stem}.ipynb", f"`{panel}`", len(times), f"{statistics.median(times):.0f} ms",
         f"{max(times):.0f} ms") for (stem, panel), times in trips.items() if times])


def batchnorm_section(rows, threads):
    body = [("(" + ", ".join(map(str, row["shape"])) + ")", f"`nn.{row['reference']}`",
             f"{1e3 * row['nn']:.2f} ms", f"{row['module_ratio']:.2f}×",
             f"{row['function_ratio']:.2f}×") for row in rows]
    return (f"### Lesson 04's batch norm against PyTorch's, {threads} torch thread(s)\n\n"
            + table("| Input shape | PyTorch module | its fwd+bwd | `BatchNorm` / module "
                    "| `batch_norm` / `F.batch_norm` |", body))


def training_section(rows, threads):
    body = [("with BN" if row["batch_norm"] else "without BN", row["networks"],
             f"{row['together']:,.0f}", f"{row['alone']:,.0f}", f"{row['ratio']:.1f}×")
            for row in rows]
    return (f"### Lesson 05: network-steps per second, {threads} torch thread(s)\n\n"
            + table("| Network | K | `train_together` | `train`, one at a time | ratio |", body))


def machine():
    """The CPU, its cores, Python, torch and its threads, the load average (1, 5, 15 min)."""
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
               platform.processor() or platform.machine())
    load = " / ".join(f"{value:.1f}" for value in os.getloadavg())
    return (f"{cpu}, {CORES} cores; Python {platform.python_version()}, torch "
            f"{torch.__version__} ({torch.get_num_threads()} threads); load average {load}")


def write_between_markers(path, text):
    """Put `text` between the markers of the file at `path` (made, or given markers, if needed)."""
    old = path.read_text() if path.exists() else ""
    if START not in old:
        old += f"{START}\n{END}\n"
    head, rest = old.split(START, 1)
    path.write_text(f"{head}{START}\n{text.strip()}\n{END}{rest.split(END, 1)[1]}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=PARTS)
    parser.add_argument("--lessons", nargs="+", default=(), metavar="NN")
    parser.add_argument("--fast-only", action="store_true", help="notebooks in fast mode only")
    parser.add_argument("--repeats", type=int, default=15, help="redraws per slider control")
    parser.add_argument("--threads", type=int, help="torch threads of the batch-norm race")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    started, date = time.perf_counter(), datetime.datetime.now(datetime.timezone.utc)
    busy = os.getloadavg()[0] > CORES
    before, threads, sections = machine(), torch.get_num_threads(), []
    paths = lesson_paths(args.lessons)
    with tempfile.TemporaryDirectory(prefix="bn-benchmark-") as scratch:
        scratch = Path(scratch)
        if "notebooks" in args.parts:
            modes = ("fast",) if args.fast_only else ("fast", "full")
            results = {path.name: {mode: run_notebook(path, mode == "fast", scratch)
                                   for mode in modes} for path in paths}
            sections.append(notebooks_section(results, modes))
        if "sliders" in args.parts:
            lessons = {path.name: load_lesson(path, scratch) for path in paths}
            sections.append(sliders_section(time_sliders(lessons, args.repeats), args.repeats))
            torch.set_num_threads(threads)  # as it was before lesson 05 set its own
        if "browser" in args.parts:
            sections.append(browser_section(round_trips(paths)))
        if "batchnorm" in args.parts:
            lesson = load_lesson(lesson_paths(["04"])[0], scratch)
            torch.set_num_threads(args.threads or threads)
            sections.append(batchnorm_section(race_batch_norm(lesson), torch.get_num_threads()))
            torch.set_num_threads(threads)
        if "training" in args.parts:
            lesson = load_lesson(lesson_paths(["05"])[0], scratch)
            sections.append(training_section(race_training(lesson), torch.get_num_threads()))
            torch.set_num_threads(threads)
    command = " ".join(["python tools/benchmark.py", *(argv if argv is not None else sys.argv[1:])])
    header = (f"Measured {date:%Y-%m-%d %H:%M} UTC by `{command}` in "
              f"{duration(time.perf_counter() - started)}.\n\n- At the start: {before}\n"
              f"- At the end: {machine()}")
    if busy or os.getloadavg()[0] > CORES:
        header += ("\n\n**The machine was busy** (load average above its cores): other "
                   "processes shared the cores, so these figures are noisy.")
    write_between_markers(args.output, "\n\n".join([header, *sections]))
    print(f"written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
