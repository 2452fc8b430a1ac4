"""Measure how fast the series runs and print the results as a markdown table.

    python tools/benchmark.py                          # everything (about 10-15 min on 2 CPU cores)
    python tools/benchmark.py --fast-only              # notebooks in fast mode only (a few minutes)
    python tools/benchmark.py --parts batchnorm training --output benchmarks/RESULTS.md
    python tools/benchmark.py --lessons 01 04 --parts notebooks sliders

Four parts, each compared with its target (2 CPU cores):
  notebooks  each lesson's wall time and the kernel's peak memory (peak RSS), fast and full mode, each
             in a fresh kernel; the series total. Targets: series <= 2 min fast, <= 8 min full;
             <= 1.5 GB per notebook.
  sliders    every slider panel's redraw, update(**values) + figure_png(fig), timed in the kernel that
             has just run the notebook (full mode when it ran): for each control, the median over
             repeated calls that move that control across its range. Target <= 40 ms.
  batchnorm  lesson 04's scratch BatchNorm and batch_norm against nn.BatchNorm1d/2d and
             F.batch_norm: forward + backward, interleaved repeats in the same process, ratio of
             medians. Target <= 1.5x.
  training   lesson 05's training loop, with and without batch norm, against (a) a bare loop over
             in-memory tensors and (b) the DataLoader(datasets.MNIST(transform=ToTensor())) loop a
             course would write, interleaved in the same process, steps/s as ratios. Target: within
             1.3x of (a), far ahead of (b).

Ratios measured in the same run are the comparison; absolute figures hold for the machine named in
the table's header. Parts for lessons that are not in notebooks/ are skipped with a note. Notebooks
run in a scratch folder (the repository's figures/ are left as they are), with MNIST from data/.
"""

import argparse
import contextlib
import datetime
import inspect
import json
import os
import platform
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_notebooks import NOTEBOOKS, ROOT, environment, load_saved_cells  # noqa: E402
from shared_cells import DATA_CELL  # noqa: E402

PARTS = ("notebooks", "sliders", "batchnorm", "training")
DATA = ROOT / "data"

# Targets from the benchmark issue (2 CPU cores).
SERIES_FAST_S, SERIES_FULL_S = 120.0, 480.0
PEAK_MB = 1536.0
REDRAW_MS = 40.0
BN_RATIO = 1.5
TRAIN_RATIO = 1.3

BN_SHAPES = [(60, 100), (100, 16, 784), (64, 16, 28, 28), (256, 64, 16, 16)]
HIDDEN = (100, 100, 100)
BATCH = 60


# ----------------------------------------------------------------------------------------------
# The machine


def machine():
    """What the absolute figures were measured on."""
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        memory = f", {kib / 2**20:.0f} GiB RAM"
    load = ""
    if hasattr(os, "getloadavg"):
        load = ", load average {:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg())
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "busy": hasattr(os, "getloadavg") and os.getloadavg()[0] > usable,
        "text": (f"{cpu}, {usable} of {os.cpu_count()} cores usable{memory}; "
                 f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
                 f"torch {torch.__version__} ({torch.get_num_threads()} threads){load}"),
    }


# ----------------------------------------------------------------------------------------------
# Lessons


def lesson_path(prefix, folder=NOTEBOOKS):
    """folder/<prefix>_*.ipynb, or None when the lesson is not there."""
    paths = sorted(Path(folder).glob(f"{prefix}_*.ipynb"))
    return paths[0] if len(paths) == 1 else None


def all_lessons(folder=NOTEBOOKS):
    return sorted(path.name[:2] for path in Path(folder).glob("[0-9][0-9]_*.ipynb"))


# ----------------------------------------------------------------------------------------------
# Part 1 and 2: notebooks in a fresh kernel, then their sliders in the same kernel

PEAK_RSS_CODE = """\
def _benchmark_peak_rss_mb():
    import resource, sys
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024
print(_benchmark_peak_rss_mb())
del _benchmark_peak_rss_mb
"""

# Runs in the kernel after the notebook: times every control of every panel in PANELS.
SLIDER_CODE = """\
import json as _benchmark_json


def _benchmark_sliders(repeats):
    import random, statistics, time

    def spread(low, high, count, integer):
        values = [low + (high - low) * i / max(count - 1, 1) for i in range(count)]
        return [int(round(v)) for v in values] if integer else values

    def values_for(control, count):
        if hasattr(control, "options") and hasattr(control, "index"):  # Dropdown, SelectionSlider...
            options = getattr(control, "_options_values", None)
            if options is None:
                raw = control.options
                raw = list(raw.items()) if isinstance(raw, dict) else list(raw)
                options = [o[1] if isinstance(o, (tuple, list)) and len(o) == 2 else o for o in raw]
            options = list(options)
            return [options[i % len(options)] for i in range(count)] if options else []
        if isinstance(control.value, bool):
            return [bool(i % 2) != control.value for i in range(count)]
        if type(control).__name__ == "FloatLogSlider":
            return [control.base ** e for e in spread(control.min, control.max, count, False)]
        if hasattr(control, "min") and hasattr(control, "max") and not isinstance(control.value, tuple):
            values = spread(control.min, control.max, count, isinstance(control.value, int))
            step = getattr(control, "step", None)
            if step:
                values = [min(control.max, control.min + round((v - control.min) / step) * step)
                          for v in values]
                values = [int(v) if isinstance(control.value, int) else v for v in values]
            random.Random(0).shuffle(values)  # consecutive calls move the control, back and forth
            return values
        return [control.value] * count

    rows = []
    for number, panel in enumerate(PANELS, 1):
        fig, update, controls = panel["fig"], panel["update"], panel["controls"]
        title = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) else ""
        if not title and fig.axes:
            title = fig.axes[0].get_title()
        title = " ".join(title.split())
        title = title if len(title) <= 40 else title[:39].rstrip() + "…"
        defaults = {name: control.value for name, control in controls.items()}
        for name, control in controls.items():
            row = {"panel": number, "title": title, "control": name,
                   "description": str(getattr(control, "description", "") or name),
                   "kind": type(control).__name__}
            try:
                values = values_for(control, repeats)
                update(**defaults)
                figure_png(fig)  # warm-up
                times = []
                for value in values:
                    start = time.perf_counter()
                    update(**{**defaults, name: value})
                    figure_png(fig)
                    times.append(time.perf_counter() - start)
                row.update(calls=len(times), distinct=len({repr(v) for v in values}),
                           median_ms=1e3 * statistics.median(times), max_ms=1e3 * max(times))
            except Exception as error:
                row["error"] = f"{type(error).__name__}: {error}"[:200]
            rows.append(row)
        try:
            update(**defaults)
        except Exception:
            pass
    return rows
print("BENCHMARK-SLIDERS " + _benchmark_json.dumps(_benchmark_sliders({repeats})))
del _benchmark_sliders, _benchmark_json
"""


def run_in_kernel(client, source):
    """Execute `source` as an extra cell at the end of the client's notebook; the text it printed."""
    cell = nbformat.v4.new_code_cell(source)
    client.nb.cells.append(cell)
    client.execute_cell(cell, len(client.nb.cells) - 1)
    return "".join(output.get("text", "") for output in cell.outputs
                   if output.output_type == "stream" and output.name == "stdout")


def run_notebook(path, fast, scratch, sliders=False, repeats=15, timeout=900):
    """Run the notebook at `path` top to bottom in a fresh kernel, alone in a scratch folder (as
    tests/lessons.py:run_lesson does). Returns {"seconds", "peak_mb", "sliders": [...] or None,
    "error": text or None}. Seconds: from kernel start to the end of the last cell."""
    folder = Path(tempfile.mkdtemp(prefix=f"{path.stem[:2]}-{'fast' if fast else 'full'}-", dir=scratch))
    copy = Path(shutil.copy(path, folder))
    nb = nbformat.read(copy, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}})
    result = {"seconds": None, "peak_mb": None, "sliders": None, "error": None}
    with environment(BN_FAST="1" if fast else None, BN_DATA_DIR=str(DATA), BN_FIGURES_DIR=None):
        start = time.perf_counter()
        try:
            with client.setup_kernel():
                client.wait_for_reply(client.kc.kernel_info())
                for index, cell in enumerate(list(nb.cells)):
                    client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
                result["seconds"] = time.perf_counter() - start
                result["peak_mb"] = float(run_in_kernel(client, PEAK_RSS_CODE))
                if sliders:
                    text = run_in_kernel(client, SLIDER_CODE.replace("{repeats}", str(repeats)))
                    marker = "BENCHMARK-SLIDERS "
                    line = next((x for x in text.splitlines() if x.startswith(marker)), None)
                    if line is None:
                        result["error"] = "the slider measurement printed nothing"
                    else:
                        result["sliders"] = json.loads(line[len(marker):])
        except CellExecutionError as error:
            last = (str(error).strip().splitlines() or ["a cell failed"])[-1]
            result["error"] = re.sub(r"\x1b\[[0-9;]*m", "", last)[:300]
        except Exception as error:  # a kernel that died or timed out
            result["error"] = f"{type(error).__name__}: {error}"[:300]
    shutil.rmtree(folder, ignore_errors=True)
    return result


# ----------------------------------------------------------------------------------------------
# Part 3: lesson 04's batch norm against PyTorch's


def _median_pair(first, second, repeats):
    """Interleaved timing of two zero-argument callables (order alternating each round); the
    medians of their per-call seconds, and how unsteady the second was (its median over its fastest
    round). Each round calls a callable enough times to last ~10 ms."""
    first(), second()  # warm-up
    start = time.perf_counter()
    second()
    once = max(time.perf_counter() - start, 1e-6)
    inner = max(1, min(200, int(0.01 / once)))
    times = ([], [])
    for round_ in range(repeats):
        order = ((0, first), (1, second)) if round_ % 2 == 0 else ((1, second), (0, first))
        for slot, function in order:
            start = time.perf_counter()
            for _ in range(inner):
                function()
            times[slot].append((time.perf_counter() - start) / inner)
    first_median, second_median = statistics.median(times[0]), statistics.median(times[1])
    return first_median, second_median, second_median / min(times[1])


def compare_batch_norm(batch_norm, BatchNorm, shapes=BN_SHAPES, repeats=15, seed=0):
    """Forward + backward (train mode) of the scratch module and function against nn.BatchNorm1d/2d
    and F.batch_norm on each shape. Rows: shape, reference, medians (ms), ratios, agreement."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(seed)
    rows = []
    for shape in shapes:
        channels = shape[1]
        reference = nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d
        x = torch.randn(shape, requires_grad=True)
        grad = torch.randn(shape)
        theirs, ours = reference(channels), BatchNorm(channels)
        weight = torch.ones(channels, requires_grad=True)
        bias = torch.zeros(channels, requires_grad=True)
        buffers = {name: (torch.zeros(channels), torch.ones(channels)) for name in ("ours", "theirs")}

        def module_step(layer):
            def step():
                x.grad = None
                for parameter in layer.parameters():
                    parameter.grad = None
                layer(x).backward(grad)
            return step

        def function_step(function, key):
            def step():
                x.grad = weight.grad = bias.grad = None
                mean, var = buffers[key]
                function(x, mean, var, weight, bias, training=True).backward(grad)
            return step

        row = {"shape": shape, "reference": reference.__name__, "threads": torch.get_num_threads()}
        try:
            same = torch.allclose(ours(x), theirs(x), atol=1e-4, rtol=1e-4)
            mine, torch_, unsteady = _median_pair(module_step(ours), module_step(theirs), repeats)
            row.update(module_ms=1e3 * mine, reference_ms=1e3 * torch_, module_ratio=mine / torch_,
                       agrees=bool(same), unsteady=unsteady)
        except Exception as error:
            row["module_error"] = f"{type(error).__name__}: {error}"[:200]
        if batch_norm is not None:
            try:
                mine, torch_, _ = _median_pair(function_step(batch_norm, "ours"),
                                               function_step(F.batch_norm, "theirs"), repeats)
                row.update(function_ms=1e3 * mine, function_reference_ms=1e3 * torch_,
                           function_ratio=mine / torch_)
            except Exception as error:
                row["function_error"] = f"{type(error).__name__}: {error}"[:200]
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------
# Part 4: lesson 05's training loop against a bare loop and the conventional DataLoader loop


def mnist_root():
    """The MNIST root the lessons' shared data cell finds with BN_DATA_DIR=DATA (no download)."""
    namespace = {"os": os, "Path": Path}
    with environment(BN_DATA_DIR=str(DATA)):
        exec(DATA_CELL, namespace)
        return namespace["mnist_root"]()


def bare_mlp(batch_norm, seed=0):
    """784-100-100-100-10 sigmoid MLP, BatchNorm1d before each sigmoid when batch_norm."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    layers, width = [], 784
    for hidden in HIDDEN:
        layers.append(nn.Linear(width, hidden))
        if batch_norm:
            layers.append(nn.BatchNorm1d(hidden))
        layers.append(nn.Sigmoid())
        width = hidden
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def _synchronize(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_loop(batch_norm, data, lr=0.1):
    """(a) The limit: a bare SGD loop indexing shuffled mini-batches of in-memory tensors, nothing
    recorded. Returns run(steps), which trains for that many more steps."""
    import torch
    import torch.nn.functional as F

    x, y = data["x_train"], data["y_train"]
    model = bare_mlp(batch_norm).to(x.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    state = {"order": torch.randperm(len(x), device=x.device), "position": 0}

    def run(steps):
        for _ in range(steps):
            if state["position"] + BATCH > len(x):
                state["order"], state["position"] = torch.randperm(len(x), device=x.device), 0
            index = state["order"][state["position"]:state["position"] + BATCH]
            state["position"] += BATCH
            loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        _synchronize(x.device)
    return run


def dataloader_loop(batch_norm, root, device, lr=0.1):
    """(b) The loop a course would write: DataLoader(datasets.MNIST(transform=ToTensor()))."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader
    from torchvision import datasets
    from torchvision.transforms import ToTensor

    model = bare_mlp(batch_norm).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loader = DataLoader(datasets.MNIST(root, train=True, transform=ToTensor()), batch_size=BATCH,
                        shuffle=True)
    state = {"batches": iter(loader)}

    def run(steps):
        for _ in range(steps):
            try:
                images, labels = next(state["batches"])
            except StopIteration:
                state["batches"] = iter(loader)
                images, labels = next(state["batches"])
            images, labels = images.to(device), labels.to(device)
            loss = F.cross_entropy(model(images.view(len(images), -1)), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        _synchronize(device)
    return run


def lesson_steps(lesson, steps):
    """`steps` rounded up to a whole number of the lesson's evaluation intervals (train's default
    eval_every), so that each call evaluates as often as the lesson's own runs do."""
    parameter = inspect.signature(lesson.train).parameters.get("eval_every")
    every = parameter.default if parameter is not None and isinstance(parameter.default, int) else 0
    return max(1, -(-steps // every)) * every if every > 0 else steps


def lesson_loop(lesson, batch_norm, data):
    """Lesson 05's own loop as the lesson calls it: make_mlp(batch_norm), then train(model, data,
    steps) with its defaults (its learning rate, batch size and evaluations; progress bar off).
    Returns run(steps)."""
    model = lesson.make_mlp(batch_norm)
    keywords = {"progress": False} if "progress" in inspect.signature(lesson.train).parameters else {}

    def run(steps):
        lesson.train(model, data, steps, **keywords)
    return run


def training_data(lesson, root):
    """MNIST as in-memory tensors: the lesson's mnist_tensors when it has one, else x in [0, 1]."""
    import torch
    from torchvision import datasets

    train_set, test_set = (datasets.MNIST(root, train=flag) for flag in (True, False))
    if lesson is not None and hasattr(lesson, "mnist_tensors"):
        return lesson.mnist_tensors(train_set, test_set)
    device = getattr(lesson, "DEVICE", torch.device("cpu"))
    splits = (("train", train_set), ("test", test_set))
    return {f"{axis}_{split}": tensor.to(device) for split, dataset in splits
            for axis, tensor in (("x", dataset.data.reshape(len(dataset), -1).float() / 255),
                                 ("y", dataset.targets.long()))}


def compare_training(lesson, root, rounds=5, steps=1000, dataloader_steps=200):
    """Steps/s of lesson 05's loop, the bare loop (a) and the DataLoader loop (b), with and without
    BN, measured in interleaved rounds (order reversed every other round); medians and ratios. All
    three run with the same torch thread count (the one lesson 05 sets, when it sets one)."""
    import torch

    data = training_data(lesson, root)
    device = data["x_train"].device
    rows = []
    for batch_norm in (False, True):
        loops, errors = {}, {}
        if lesson is not None:
            try:
                loops["lesson"] = (lesson_loop(lesson, batch_norm, data), lesson_steps(lesson, steps))
            except Exception as error:
                errors["lesson"] = f"{type(error).__name__}: {error}"[:200]
        loops["bare"] = (bare_loop(batch_norm, data), steps)
        loops["dataloader"] = (dataloader_loop(batch_norm, root, device), dataloader_steps)
        rates = {name: [] for name in loops}
        for name, (run, count) in loops.items():  # warm-up
            try:
                run(max(count // 10, 5))
            except Exception as error:
                errors[name] = f"{type(error).__name__}: {error}"[:200]
        for round_ in range(rounds):
            for name in (list(loops) if round_ % 2 == 0 else list(loops)[::-1]):
                if name in errors:
                    continue
                run, count = loops[name]
                start = time.perf_counter()
                try:
                    run(count)
                except Exception as error:
                    errors[name] = f"{type(error).__name__}: {error}"[:200]
                    continue
                rates[name].append(count / (time.perf_counter() - start))
        row = {"batch_norm": batch_norm, "device": str(device), "threads": torch.get_num_threads(),
               "digits": len(data["x_train"]),
               "errors": errors}
        for name, values in rates.items():
            if values and name not in errors:
                row[f"{name}_steps_s"] = statistics.median(values)
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------
# The report


def markdown_table(header, rows):
    """A markdown table; every row has as many cells as the header."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    for row in rows:
        cells = [str(cell).replace("|", "\\|").replace("\n", " ") for cell in row]
        if len(cells) != len(header):
            raise ValueError(f"row {row} has {len(cells)} cells, the header {len(header)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(value, target, lower_is_better=True):
    """'ok' or how far past the target, e.g. 'missed (+23%)'."""
    if value is None:
        return "—"
    if (value <= target) if lower_is_better else (value >= target):
        return "ok"
    return f"**missed** (+{100 * (value / target - 1):.0f}%)" if lower_is_better else \
        f"**missed** (−{100 * (1 - value / target):.0f}%)"


def display_path(path):
    """`path` relative to the repository when inside it (as the README shows it)."""
    try:
        return f"{Path(path).resolve().relative_to(ROOT)}/"
    except ValueError:
        return str(path)


def _seconds(value):
    if value is None:
        return "—"
    return f"{value:.1f} s" if value < 120 else f"{int(value // 60)} min {value % 60:04.1f} s"


def _mb(value):
    return "—" if value is None else f"{value:,.0f} MB"


def notebooks_section(results, modes):
    header = ["Notebook"]
    for mode in modes:
        header += [f"{mode}: wall time", f"{mode}: peak RSS"]
    rows, totals, notes = [], {mode: 0.0 for mode in modes}, []
    worst = None
    for name, by_mode in results.items():
        row = [name]
        for mode in modes:
            result = by_mode.get(mode, {})
            if result.get("error"):
                notes.append(f"{name} ({mode}): failed — {result['error']}")
            seconds, peak = result.get("seconds"), result.get("peak_mb")
            row += [_seconds(seconds), _mb(peak)]
            totals[mode] = None if seconds is None or totals[mode] is None else totals[mode] + seconds
            worst = peak if worst is None else max(worst, peak or 0.0)
        rows.append(row)
    total_row = ["**series total**"]
    targets = {"fast": SERIES_FAST_S, "full": SERIES_FULL_S}
    for mode in modes:
        total_row += [f"**{_seconds(totals[mode])}** ({verdict(totals[mode], targets[mode])})",
                      f"max {_mb(worst)} ({verdict(worst, PEAK_MB)})"]
    rows.append(total_row)
    lines = ["### Notebooks: top to bottom in a fresh kernel",
             "", "Targets: series ≤ 2 min fast, ≤ 8 min full; peak RSS ≤ 1.5 GB per notebook "
             "(wall time from kernel start to the end of the last cell; peak RSS of the kernel "
             f"process; MNIST from `{display_path(DATA)}`).", "",
             markdown_table(header, rows)]
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines)


def sliders_section(results):
    header = ["Notebook", "Panel", "Control", "Median redraw", "Slowest", "Target ≤ 40 ms"]
    rows, notes = [], []
    for name, (mode, panels) in results.items():
        if not panels:
            notes.append(f"{name}: no slider panels measured ({mode} mode run)")
            continue
        for entry in panels:
            panel = f"{entry['panel']}" + (f": {entry['title']}" if entry.get("title") else "")
            control = f"{entry['description']} ({entry['kind']})"
            if "error" in entry:
                rows.append([name, panel, control, "—", "—", f"**error**: {entry['error']}"])
                continue
            rows.append([name, panel, control, f"{entry['median_ms']:.1f} ms", f"{entry['max_ms']:.1f} ms",
                         verdict(entry["median_ms"], REDRAW_MS)])
    modes = sorted({mode for mode, _ in results.values()})
    calls = next((e["calls"] for _, panels in results.values() for e in panels or [] if "calls" in e), 0)
    lines = ["### Slider redraws: `update(**values)` + `figure_png(fig)` in the kernel",
             "", f"Median over {calls} calls per control, each moving that control across its range "
             f"(the others at their defaults), after a {'/'.join(modes)}-mode run of the notebook.", ""]
    lines.append(markdown_table(header, rows) if rows else "No slider panels measured.")
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines)


def batchnorm_section(rows):
    header = ["Input shape", "PyTorch reference", "`BatchNorm` / reference", "`batch_norm` / `F.batch_norm`",
              "reference fwd+bwd", "Target ≤ 1.5×"]
    table, notes = [], []
    for row in rows:
        shape = "(" + ", ".join(map(str, row["shape"])) + ")"
        module = f"{row['module_ratio']:.2f}×" if "module_ratio" in row else "—"
        function = f"{row['function_ratio']:.2f}×" if "function_ratio" in row else "—"
        reference = f"{row['reference_ms']:.2f} ms" if "reference_ms" in row else "—"
        worst = max([row[k] for k in ("module_ratio", "function_ratio") if k in row], default=None)
        unsteady = row.get("unsteady", 1.0) > 2.0
        table.append([shape, f"`nn.{row['reference']}`", module, function, reference,
                      "unreliable (see note)" if unsteady else verdict(worst, BN_RATIO)])
        for key in ("module_error", "function_error"):
            if key in row:
                notes.append(f"{shape}: {key.split('_')[0]} failed — {row[key]}")
        if unsteady:
            notes.append(f"{shape}: unsteady — PyTorch's own median was {row['unsteady']:.1f}× its fastest "
                         "repeat (the cores were shared), so this ratio is unreliable; rerun on a quiet "
                         "machine (or with --threads 1)")
        if row.get("agrees") is False:
            notes.append(f"{shape}: the scratch module's output differs from nn.{row['reference']}'s")
    threads = f", {rows[0]['threads']} torch thread(s)" if rows else ""
    lines = ["### Lesson 04: scratch batch norm against PyTorch's (forward + backward, train mode)",
             "", f"Ratio of medians over interleaved repeats in the same process{threads} (1.00× = as "
             "fast as PyTorch's own; lower is better).", "", markdown_table(header, table)]
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines)


def training_section(rows, lesson_present):
    header = ["Network", "lesson 05 loop", "(a) bare loop", "(b) DataLoader loop",
              "(a) / lesson: target ≤ 1.3×", "lesson / (b)"]
    table, notes = [], []
    for row in rows:
        lesson, bare, loader = (row.get(f"{k}_steps_s") for k in ("lesson", "bare", "dataloader"))

        def rate(value):
            return "—" if value is None else f"{value:,.0f} steps/s"
        slowdown = None if lesson is None or bare is None else bare / lesson
        speedup = None if lesson is None or loader is None else lesson / loader
        table.append([
            "with BN" if row["batch_norm"] else "without BN", rate(lesson), rate(bare), rate(loader),
            "—" if slowdown is None else f"{slowdown:.2f}× ({verdict(slowdown, TRAIN_RATIO)})",
            "—" if speedup is None else f"{speedup:.1f}× faster"])
        for name, error in row["errors"].items():
            notes.append(f"{'with' if row['batch_norm'] else 'without'} BN, {name} loop failed — {error}")
    if not lesson_present:
        notes.append("lesson 05's own loop was not measured (see the notes below): only the two reference "
                     "loops were")
    device = rows[0]["device"] if rows else "cpu"
    threads = f" with {rows[0]['threads']} torch thread(s)" if rows and device == "cpu" else ""
    lines = ["### Lesson 05: training steps per second (784-100-100-100-10 sigmoid MLP, batch 60, SGD)",
             "", f"Medians over interleaved rounds in the same process, on {device}{threads}. The lesson's "
             f"loop is its own `train` with its evaluations, on {rows[0]['digits'] if rows else 0:,} "
             f"training digits from `{display_path(DATA)}`. (a) indexes shuffled "
             "mini-batches of in-memory tensors; (b) is `DataLoader(datasets.MNIST(root, "
             "transform=ToTensor()), batch_size=60, shuffle=True)`.", "", markdown_table(header, table)]
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# The command


def load_lesson_or_note(path, scratch, notes):
    """load_saved_cells(path), or None with a note saying why it could not be loaded."""
    try:
        with contextlib.redirect_stdout(sys.stderr):  # stdout is for the table
            return load_saved_cells(path, BN_FAST="1", BN_DATA_DIR=str(DATA),
                                    BN_FIGURES_DIR=str(scratch / "figures"))
    except Exception as error:
        notes.append(f"{path.name}: its #@save cells failed to load — {type(error).__name__}: {error}"[:300])
        return None


def main(argv=None):
    global DATA
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.split("\n")[1:]))
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), metavar="PART",
                        help=f"what to measure: any of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--lessons", nargs="+", default=None, metavar="NN",
                        help="lesson numbers, e.g. 01 04 (default: every lesson in notebooks/)")
    parser.add_argument("--fast-only", action="store_true",
                        help="run the notebooks in fast mode only (sliders then measured after it)")
    parser.add_argument("--output", type=Path, default=None, metavar="FILE",
                        help="also write the markdown to FILE, e.g. benchmarks/RESULTS.md")
    parser.add_argument("--repeats", type=int, default=15,
                        help="calls per slider control and repeats per batch-norm shape (default 15)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of training (default 5)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch threads for the batch-norm and training comparisons (default: torch's "
                             "own choice; lesson 05 may set its own for its comparison)")
    parser.add_argument("--data", type=Path, default=DATA, metavar="FOLDER",
                        help="MNIST for every part, as BN_DATA_DIR (default: data/, the 10,000-digit subset; "
                             "a folder with the full MNIST/raw/ measures what an online learner runs)")
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOKS, metavar="FOLDER",
                        help="where the lesson notebooks are (default: notebooks/)")
    args = parser.parse_args(argv)
    DATA = args.data.resolve()

    folder = args.notebooks
    present = all_lessons(folder)
    wanted = [prefix.zfill(2) for prefix in args.lessons] if args.lessons else present or ["04", "05"]
    missing = [prefix for prefix in wanted if prefix not in present]
    lessons = [prefix for prefix in wanted if prefix in present]
    parts = [part for part in PARTS if part in args.parts]
    about = machine()
    scratch = Path(tempfile.mkdtemp(prefix="bn-benchmark-"))
    sections, notes = [], []
    if missing:
        notes.append(f"Not in {folder.name}/ yet, so skipped: lesson{'s' if len(missing) > 1 else ''} "
                     f"{', '.join(missing)}.")

    def say(text):
        print(text, file=sys.stderr, flush=True)

    started = time.perf_counter()
    # on SIGTERM, exit through the `finally` below, which removes the scratch folder
    previous_handler = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if {"notebooks", "sliders"} & set(parts) and lessons:
            modes = ["fast"] if args.fast_only or "notebooks" not in parts else ["fast", "full"]
            timings, panels = {}, {}
            for prefix in lessons:
                path = lesson_path(prefix, folder)
                timings[path.name] = {}
                for mode in modes:
                    last = mode == modes[-1]
                    say(f"{path.name}: {mode} mode{' + sliders' if last and 'sliders' in parts else ''}...")
                    result = run_notebook(path, mode == "fast", scratch, repeats=args.repeats,
                                          sliders=last and "sliders" in parts)
                    timings[path.name][mode] = result
                    say(f"  {_seconds(result['seconds'])}, peak {_mb(result['peak_mb'])}"
                        + (f"; ERROR {result['error']}" if result["error"] else ""))
                    if last and "sliders" in parts:
                        panels[path.name] = (mode, result["sliders"])
            if "notebooks" in parts:
                sections.append(notebooks_section(timings, modes))
            if "sliders" in parts:
                sections.append(sliders_section(panels))
        elif {"notebooks", "sliders"} & set(parts):
            notes.append("No lesson notebooks selected: notebooks and sliders skipped.")

        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        if "batchnorm" in parts:
            path = lesson_path("04", folder) if "04" in wanted else None
            if path is None:
                notes.append("Lesson 04 batch norm: skipped (lesson 04 "
                             + ("not selected)." if "04" not in wanted else "is not in notebooks/ yet)."))
            else:
                say("lesson 04 batch norm against PyTorch's...")
                module = load_lesson_or_note(path, scratch, notes)
                if module is None:
                    pass
                elif not hasattr(module, "BatchNorm"):
                    notes.append(f"Lesson 04 batch norm: skipped ({path.name} defines no `BatchNorm` "
                                 "in its #@save cells).")
                else:
                    rows = compare_batch_norm(getattr(module, "batch_norm", None), module.BatchNorm,
                                              repeats=args.repeats)
                    sections.append(batchnorm_section(rows))

        if "training" in parts:
            import torch

            threads = torch.get_num_threads()
            path = lesson_path("05", folder) if "05" in wanted else None
            lesson = None
            if path is not None:
                lesson = load_lesson_or_note(path, scratch, notes)
            elif "05" in wanted:
                notes.append("Lesson 05 training loop: lesson 05 is not in notebooks/ yet.")
            if lesson is not None:
                missing_names = [n for n in ("make_mlp", "train") if not hasattr(lesson, n)]
                if missing_names:
                    notes.append(f"Lesson 05 loop: {path.name} defines no {', '.join(missing_names)} "
                                 "in its #@save cells; only the reference loops were measured.")
                    lesson = None
            if "05" in wanted:
                say("training loops: lesson 05, bare, DataLoader...")
                rows = compare_training(lesson, mnist_root(), rounds=args.rounds)
                sections.append(training_section(rows, lesson is not None))
                torch.set_num_threads(threads)  # lesson 05 may have set its own
            else:
                notes.append("Lesson 05 training loop: skipped (lesson 05 not selected).")
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        shutil.rmtree(scratch, ignore_errors=True)

    report = [f"Measured {about['date']} on {about['text']}. "
              f"`python tools/benchmark.py {' '.join(argv if argv is not None else sys.argv[1:])}`"
              .rstrip() + f" took {_seconds(time.perf_counter() - started)}.", ""]
    if about["busy"] or machine()["busy"]:
        report += ["**The machine was busy** (load average above its core count at the start or the end): "
                   "other processes shared the cores, so these times, and the ratios of the in-process "
                   "races, are noisy. Rerun on a quiet machine for the figures to publish.", ""]
    for section in sections:
        report += [section, ""]
    if notes:
        report += ["Notes:", ""] + [f"- {note}" for note in notes] + [""]
    text = "\n".join(report).rstrip() + "\n"
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        say(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
