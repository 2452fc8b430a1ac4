"""Lesson 06: batch norm across processes. The from-scratch SyncBatchNorm against single-process
nn.BatchNorm on the concatenated batch (real gloo processes, float64), the exercise checks against
each mistake they name, the process launcher's failure handling, the panel, and the numbers the
lesson and the README state, read from the lesson's own output."""

import json
import math
import multiprocessing
import re
import signal
import time

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from lessons import ROOT, load_lesson, outputs_text, printed_number, run_lesson
from torch import nn

L = load_lesson("06")


# ---------------------------------------------------------------- SyncBatchNorm across processes

def sync_steps(rank, world_size, sizes, shape, dtype, steps=3):
    """Our SyncBatchNorm in this process on its rows of `steps` global batches (the same in
    every process); per step: output, input gradient, γ and β gradients, running buffers."""
    generator = torch.Generator().manual_seed(7)
    layer = L.SyncBatchNorm(shape[0], momentum=0.3).to(dtype)
    with torch.no_grad():
        layer.weight.copy_(torch.linspace(0.5, 2.0, shape[0]))
        layer.bias.copy_(torch.linspace(-1.0, 1.0, shape[0]))
    start = sum(sizes[:rank])
    rows = slice(start, start + sizes[rank])
    found = []
    for _ in range(steps):
        x = torch.randn(sum(sizes), *shape, generator=generator, dtype=dtype) * 2 + 3
        w = torch.randn(x.shape, generator=generator, dtype=dtype)
        mine = x[rows].clone().requires_grad_()
        layer.zero_grad()
        y = layer(mine)
        (y * w[rows]).sum().backward()
        found.append((y.detach(), mine.grad, layer.weight.grad.clone(), layer.bias.grad.clone(),
                      layer.running_mean.clone(), layer.running_var.clone(),
                      layer.num_batches_tracked.item()))
    return found


def single_process_steps(sizes, shape, dtype, steps=3):
    generator = torch.Generator().manual_seed(7)
    layer = (nn.BatchNorm1d if len(shape) < 3 else nn.BatchNorm2d)(shape[0], momentum=0.3)
    layer = layer.to(dtype)
    with torch.no_grad():
        layer.weight.copy_(torch.linspace(0.5, 2.0, shape[0]))
        layer.bias.copy_(torch.linspace(-1.0, 1.0, shape[0]))
    found = []
    for _ in range(steps):
        x = torch.randn(sum(sizes), *shape, generator=generator, dtype=dtype) * 2 + 3
        w = torch.randn(x.shape, generator=generator, dtype=dtype)
        x.requires_grad_()
        layer.zero_grad()
        y = layer(x)
        (y * w).sum().backward()
        found.append((y.detach(), x.grad, layer.weight.grad.clone(), layer.bias.grad.clone(),
                      layer.running_mean.clone(), layer.running_var.clone(),
                      layer.num_batches_tracked.item()))
    return found


def assert_close(ours, theirs, what, tolerance=1e-12):
    scale = max(1.0, theirs.abs().max().item()) if theirs.numel() else 1.0
    gap = (ours - theirs).abs().max().item() if theirs.numel() else 0.0
    assert ours.shape == theirs.shape and gap <= tolerance * scale, f"{what}: differs by {gap:.2e}"


@pytest.mark.parametrize("sizes", [(8, 8), (3, 13), (1, 9), (4, 4, 4, 4), (1, 6, 0, 9),
                                   (2, 7, 3, 5)], ids=str)
@pytest.mark.parametrize("shape", [(5,), (3, 4, 4)], ids=["NC", "NCHW"])
def test_sync_batch_norm_equals_batch_norm_on_the_whole_batch_in_float64(sizes, shape):
    processes = L.run_processes(sync_steps, len(sizes), sizes, shape, torch.float64, timeout=120)
    expected = single_process_steps(sizes, shape, torch.float64)
    for step, whole in enumerate(expected):
        mine = [process[step] for process in processes]
        assert_close(torch.cat([m[0] for m in mine]), whole[0], f"step {step} output")
        assert_close(torch.cat([m[1] for m in mine]), whole[1], f"step {step} input gradient")
        assert_close(sum(m[2] for m in mine), whole[2], f"step {step} γ gradient")
        assert_close(sum(m[3] for m in mine), whole[3], f"step {step} β gradient")
        for rank, m in enumerate(mine):
            assert_close(m[4], whole[4], f"step {step} running_mean of process {rank}")
            assert_close(m[5], whole[5], f"step {step} running_var of process {rank}")
            assert m[6] == whole[6] == step + 1


def test_the_lessons_own_proof_finds_rounding_only():
    cases = [(sizes, shape, torch.float64) for sizes, shape in L.PROOF_CASES[2]]
    results = L.run_processes(L.proof_worker, 2, cases)
    for index, case in enumerate(cases):
        largest = L.largest_differences(case, [process[index] for process in results])
        assert set(largest) == {"output", "grad input", "grad γ", "grad β", "running mean",
                                "running var"}
        assert max(largest.values()) < 1e-12, (case, largest)


def test_in_one_process_the_layer_is_batch_norm_in_train_and_eval_mode():
    torch.manual_seed(0)
    for shape in [(16, 4), (8, 4, 5), (6, 4, 3, 3)]:
        ours, theirs = L.SyncBatchNorm(4).double(), nn.BatchNorm2d(4).double()
        for _ in range(3):
            x = torch.randn(shape, dtype=torch.float64) * 3 + 1
            assert_close(ours(x), F.batch_norm(x, theirs.running_mean, theirs.running_var,
                                               theirs.weight, theirs.bias, True, 0.1, 1e-5),
                         f"{shape} train")
        assert_close(ours.running_var, theirs.running_var, "running_var")
        ours.eval()
        x = torch.randn(shape, dtype=torch.float64)
        assert_close(ours(x), F.batch_norm(x, theirs.running_mean, theirs.running_var,
                                           theirs.weight, theirs.bias, False), "eval")
    assert list(L.SyncBatchNorm(3).state_dict()) == list(nn.BatchNorm1d(3).state_dict())


def test_the_layer_names_the_shape_it_expects():
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 4\).*got \(3, 5\)"):
        L.SyncBatchNorm(4)(torch.randn(3, 5))


# ---------------------------------------------------------------- the process launcher

def returns_rank(rank, world_size):
    value = torch.tensor([float(rank)])
    dist.all_reduce(value)
    return rank, world_size, value.item()


def fails_in_process_1(rank, world_size):
    if rank == 1:
        raise ValueError("broken on purpose")
    dist.all_reduce(torch.ones(1))          # process 0 waits here for process 1


def process_1_never_joins(rank, world_size):
    if rank == 1:
        time.sleep(300)
    dist.all_reduce(torch.ones(1))


def never_ends(rank, world_size):
    while True:
        time.sleep(0.05)


def test_a_wrong_number_of_processes_is_named():
    with pytest.raises(ValueError, match="world_size must be a whole number"):
        L.run_processes(returns_rank, 0)


def test_results_come_back_in_rank_order():
    assert L.run_processes(returns_rank, 3) == [(r, 3, 3.0) for r in range(3)]


def test_a_failing_process_stops_the_run_with_its_traceback_at_once():
    start = time.monotonic()
    with pytest.raises(L.WorkerError) as error:
        L.run_processes(fails_in_process_1, 2, timeout=60)
    assert time.monotonic() - start < 20
    assert str(error.value).startswith("process 1 of 2 failed")
    assert "ValueError: broken on purpose" in str(error.value)
    assert multiprocessing.active_children() == []


def test_a_collective_that_waits_too_long_fails_after_its_timeout():
    start = time.monotonic()
    with pytest.raises(L.WorkerError, match=r"process 0 of 2 failed[\s\S]*[Tt]imed out"):
        L.run_processes(process_1_never_joins, 2, timeout=60, collective_timeout=2)
    assert time.monotonic() - start < 30
    assert multiprocessing.active_children() == []


def test_an_interrupted_call_stops_every_process():
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)   # what a kernel interrupt raises
    signal.setitimer(signal.ITIMER_REAL, 2.0)
    try:
        with pytest.raises(KeyboardInterrupt):
            L.run_processes(never_ends, 2, timeout=60)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert multiprocessing.active_children() == []


def test_a_run_longer_than_its_timeout_is_stopped():
    start = time.monotonic()
    with pytest.raises(L.WorkerError, match="did not finish within 1 s"):
        L.run_processes(never_ends, 2, timeout=1)
    assert time.monotonic() - start < 20
    assert multiprocessing.active_children() == []


# ---------------------------------------------------------------- exercise 1: the forward's statistics

def channel_dims(x):
    return [0, *range(2, x.dim())]


def sums_then(finish, extra=lambda x: []):
    """A global_batch_statistics that all-reduces [Σx, Σx², n] and hands the result to finish."""
    def statistics_of(input, all_reduce):
        c, n = input.shape[1], input.numel() // input.shape[1]
        sums = torch.cat([input.sum(channel_dims(input)), input.square().sum(channel_dims(input)),
                          input.new_tensor([n])])
        all_reduce(sums)
        return finish(sums[:c], sums[c:2 * c], sums[-1], input, n)
    return statistics_of


def local_only(input, all_reduce):
    d = channel_dims(input)
    return input.mean(d), input.var(d, correction=0), input.new_tensor(input.numel() // input.shape[1])


def averaged_variances(input, all_reduce):          # count-weighted average of local variances
    d, n = channel_dims(input), input.numel() // input.shape[1]
    packed = torch.cat([input.mean(d) * n, input.var(d, correction=0) * n, input.new_tensor([n])])
    all_reduce(packed)
    c = input.shape[1]
    return packed[:c] / packed[-1], packed[c:2 * c] / packed[-1], packed[-1]


def plain_average_of_variances(input, all_reduce):  # mean and var averaged over processes
    d = channel_dims(input)
    packed = torch.cat([input.mean(d), input.var(d, correction=0), input.new_tensor([1.0])])
    all_reduce(packed)
    c, k = input.shape[1], packed[-1]
    total = input.new_tensor([input.numel() // c])
    all_reduce(total)
    return packed[:c] / k, packed[c:2 * c] / k, total[0]


def averaged_means(input, all_reduce):              # the variance right, the mean a plain average
    d = channel_dims(input)
    mean, var, count = L.global_batch_statistics(input, all_reduce)
    packed = torch.cat([input.mean(d), input.new_tensor([1.0])])
    all_reduce(packed)
    return packed[:-1] / packed[-1], var, count


def world_times_local_count(input, all_reduce):  # k processes × this one's n
    d, n = channel_dims(input), input.numel() // input.shape[1]
    packed = torch.cat([input.sum(d), input.square().sum(d), input.new_tensor([1.0])])
    all_reduce(packed)                                  # the last entry counts the processes
    c, count = input.shape[1], packed[-1] * n
    mean = packed[:c] / count
    return mean, packed[c:2 * c] / count - mean ** 2, count


def in_place(input, all_reduce):
    all_reduce(input)
    return L.global_batch_statistics(input, lambda t: None)


def reduced_over_batch_only(input, all_reduce):
    n = input.shape[0]
    sums = torch.stack([input.sum(0), input.square().sum(0)])
    all_reduce(sums)
    count = input.new_tensor([n])
    all_reduce(count)
    mean = sums[0] / count
    return mean, sums[1] / count - mean ** 2, count[0]


def float32_sums(input, all_reduce):
    c, n = input.shape[1], input.numel() // input.shape[1]
    sums = torch.zeros(2 * c + 1)
    sums[:c], sums[c:2 * c], sums[-1] = input.sum(channel_dims(input)), \
        input.square().sum(channel_dims(input)), n
    all_reduce(sums)
    mean = sums[:c] / sums[-1]
    return mean, sums[c:2 * c] / sums[-1] - mean ** 2, sums[-1]


def three_calls(input, all_reduce):
    d, c = channel_dims(input), input.shape[1]
    sum_x, sum_x2 = input.sum(d), input.square().sum(d)
    count = input.new_tensor([input.numel() // c])
    for tensor in (sum_x, sum_x2, count):
        all_reduce(tensor)
    mean = sum_x / count
    return mean, sum_x2 / count - mean ** 2, count[0]


def extra_call_on_some_processes(input, all_reduce):
    result = L.global_batch_statistics(input, all_reduce)
    if len(input) == 2:                              # only where a process holds 2 rows
        all_reduce(torch.zeros(1, dtype=input.dtype))
    return result


def uses_torch_distributed(input, all_reduce):
    return L.global_batch_statistics(input, dist.all_reduce)


def unwritten(input, all_reduce):
    raise NotImplementedError("not yet")


FORWARD_MISTAKES = {
    "this process's own statistics": local_only,
    "averaged the processes' variances": averaged_variances,
    "averaged the processes' variances ": plain_average_of_variances,
    "averaged the processes' means": averaged_means,
    "count is this process's number of values":
        sums_then(lambda sx, sx2, n, x, local: (sx / n, sx2 / n - (sx / n) ** 2, local)),
    "world_size × this process's count assumes equal slices": world_times_local_count,
    "you divided the global Σx by this process's count":
        sums_then(lambda sx, sx2, n, x, local: (sx / local, sx2 / n - (sx / n) ** 2, n)),
    "that is the unbiased variance":
        sums_then(lambda sx, sx2, n, x, local: (sx / n, (sx2 - sx ** 2 / n) / (n - 1), n)),
    "the − mean² is missing": sums_then(lambda sx, sx2, n, x, local: (sx / n, sx2 / n, n)),
    "your function changed its input": in_place,
    "reduce over N, H and W": reduced_over_batch_only,
    "should keep the input's dtype": float32_sums,
    "each process called all_reduce 3 times": three_calls,
    "called all_reduce different numbers of times": extra_call_on_some_processes,
    "call the all_reduce you are given": uses_torch_distributed,
}


def test_check_1_accepts_the_reference_solution():
    assert L.check_global_batch_statistics(L.global_batch_statistics) is None


@pytest.mark.parametrize("message", FORWARD_MISTAKES)
def test_check_1_names_each_mistake(message):
    with pytest.raises(AssertionError, match=re.escape(message.strip())):
        L.check_global_batch_statistics(FORWARD_MISTAKES[message])


def test_check_1_lets_the_stub_through_as_not_written():
    with pytest.raises(NotImplementedError):
        L.check_global_batch_statistics(unwritten)


# ---------------------------------------------------------------- exercise 2: the backward's sums

def backward_with(all_reduced=True, divide_by_local=False, mu_path=True, var_path=True,
                  use_weight=True, global_parameter_grads=False, separate_calls=False):
    """A sync_batch_norm_backward with the chosen parts right or wrong."""
    def backward(grad_output, x_hat, weight, invstd, count, all_reduce):
        d = channel_dims(grad_output)
        line_up = (-1, *[1] * (grad_output.dim() - 2))
        grad_bias, grad_weight = grad_output.sum(d), (grad_output * x_hat).sum(d)
        sums = torch.cat([grad_bias, grad_weight])
        if all_reduced and separate_calls:
            first, second = sums.chunk(2)
            first, second = first.clone(), second.clone()
            all_reduce(first)
            all_reduce(second)
            sums = torch.cat([first, second])
        elif all_reduced:
            all_reduce(sums)
        n = grad_output.numel() // grad_output.shape[1] if divide_by_local or not all_reduced \
            else count
        mean_g, mean_g_x_hat = (sums / n).chunk(2)
        result = grad_output.clone()
        if mu_path:
            result = result - mean_g.view(line_up)
        if var_path:
            result = result - x_hat * mean_g_x_hat.view(line_up)
        scale = weight * invstd if use_weight else invstd
        if global_parameter_grads:
            grad_bias, grad_weight = sums.chunk(2)
        return scale.view(line_up) * result, grad_weight, grad_bias
    return backward


BACKWARD_MISTAKES = {
    "grad_input uses this process's sums of g and g·x̂": backward_with(all_reduced=False),
    "you divided the all-reduced sums by this process's count":
        backward_with(divide_by_local=True),
    "the path through μ is missing": backward_with(mu_path=False),
    "the path through σ² is missing": backward_with(var_path=False),
    "γ is missing from grad_input": backward_with(use_weight=False),
    "is already summed over the processes": backward_with(global_parameter_grads=True),
    "each process called all_reduce 2 times": backward_with(separate_calls=True),
}


def test_check_2_accepts_the_reference_solution():
    assert L.check_sync_batch_norm_backward(L.sync_batch_norm_backward) is None
    assert L.check_sync_batch_norm_backward(backward_with()) is None


@pytest.mark.parametrize("message", BACKWARD_MISTAKES)
def test_check_2_names_each_mistake(message):
    with pytest.raises(AssertionError, match=re.escape(message)):
        L.check_sync_batch_norm_backward(BACKWARD_MISTAKES[message])


def test_the_checks_stand_in_for_processes_sums_like_all_reduce():
    group = L.SimulatedGroup(3)

    def add_up(rank_value):
        t = torch.tensor([rank_value, 1.0])
        group.all_reduce(t)
        return t.tolist()

    assert group.run(add_up, [(0.5,), (1.5,), (2.0,)]) == [[4.0, 3.0]] * 3


# ---------------------------------------------------------------- the panel

def test_the_panel_redraws_deterministically_and_follows_each_control():
    fig, update = L.make_spread_panel()
    update()
    first = L.figure_png(fig)
    update()
    assert L.figure_png(fig) == first
    for change in ({"processes": 4}, {"per_process_batch": 2}, {"split": "by digit"},
                   {"processes": 1}):
        update(**change)
        assert L.figure_png(fig) != first, change
        update()
    assert set(L.spread_panel.controls) == {"processes", "per_process_batch", "split"}
    width, _ = fig.get_size_inches()
    assert width * fig.dpi <= 830


# ---------------------------------------------------------------- what the lesson states

def test_section_1_shuffled_gaps_follow_the_theory_and_digit_shards_pull_away():
    for k in (2, 4):
        ratios = []
        for b in L.PER_PROCESS_BATCHES:
            shuffled, by_digit = L.SPREAD["shuffled", k, b][0], L.SPREAD["by digit", k, b][0]
            assert shuffled == pytest.approx(math.sqrt((1 - 1 / k) / b), rel=0.1)
            ratios.append(by_digit / shuffled)
            if b >= 8:
                assert by_digit > shuffled
        assert ratios == sorted(ratios), ratios           # the ratio grows with b
    for b in L.PER_PROCESS_BATCHES:
        assert L.SPREAD["shuffled", 1, b][0] == L.SPREAD["by digit", 1, b][0] == 0.0


def test_section_1_digit_shard_gaps_level_off_at_the_shards_own_means():
    for k in (2, 4):
        floor = L.shard_floor(k)
        gaps = [L.SPREAD["by digit", k, b][0] for b in L.PER_PROCESS_BATCHES]
        assert 0 < floor < gaps[-1] < gaps[0]
        assert gaps[-1] - floor < L.SPREAD["shuffled", k, L.PER_PROCESS_BATCHES[-1]][0]


@pytest.fixture(scope="module")
def printed():
    nb, _, _ = run_lesson("06", fast=True)
    return outputs_text(nb)


def test_section_6_differences_are_rounding(printed):
    assert printed_number(printed, "largest difference of all, float32:") < 1e-5
    assert printed_number(printed, "largest difference of all, float64:") < 1e-13
    assert "SyncBatchNorm expected input tensor to be on GPU" in printed
    assert "No GPU here: the comparison with nn.SyncBatchNorm was skipped." in printed


def running_means(printed, layer, synced):
    match = re.search(rf"{re.escape(layer)}\s+{synced}\s+\|\s+(\S+)\s+(\S+)", printed)
    assert match, f"no row for {layer}, {synced}"
    return float(match.group(1)), float(match.group(2))


def test_section_7_ddp_copies_process_0s_buffers(printed):
    p0, p1 = running_means(printed, "nn.BatchNorm1d", True)
    assert abs(p0) < 0.5 and p1 - p0 == pytest.approx(0.1 * 4, abs=0.15)
    assert max(p0, p1) < 1.0                              # far from the global batch's 2
    q0, q1 = running_means(printed, "nn.BatchNorm1d", False)
    assert q0 == p0 and abs(q1 - 4) < 0.5
    s0, s1 = running_means(printed, "SyncBatchNorm", True)
    assert s0 == s1 and abs(s0 - 2) < 0.2


def accuracies(printed):
    final = {}
    for norm, split, value in re.findall(r"(\w+), +(shuffled|by digit) shards: (\S+)",
                                         printed):
        final[norm, split] = float(value)
    halves = {}
    for norm, split, *values in re.findall(r"(\w+), +(shuffled|by digit) \|\s+(\S+)\s+(\S+)"
                                           r"\s+\|\s+(\S+)\s+(\S+)", printed):
        halves[norm, split] = [float(v) for v in values]
    assert len(final) == len(halves) == 4
    return final, halves


def test_section_8_local_batch_norm_fails_on_digit_shards_and_the_others_do_not(printed):
    final, halves = accuracies(printed)
    local = final["BatchNorm1d", "by digit"]
    assert abs(final["BatchNorm1d", "shuffled"] - final["SyncBatchNorm", "by digit"]) < 0.03
    for other in [("BatchNorm1d", "shuffled"), ("SyncBatchNorm", "by digit"),
                  ("GroupNorm", "by digit")]:
        assert final[other] > local + 0.02, other
    low, high, own_low, own_high = halves["BatchNorm1d", "by digit"]
    assert high < low - 0.05 and own_high > high + 0.05
    for run in [("SyncBatchNorm", "by digit"), ("BatchNorm1d", "shuffled")]:
        low, high, own_low, own_high = halves[run]
        assert own_low < low and own_high < high, run
    low, high, own_low, own_high = halves["GroupNorm", "by digit"]
    assert (low, high) == (own_low, own_high)


def test_section_9_counts_what_the_layers_send(printed):
    channels = [m.num_features for m in L.make_network("SyncBatchNorm")
                if isinstance(m, L.SyncBatchNorm)]
    floats = sum(4 * c + 1 for c in channels)             # 2C + 1 forward, 2C backward
    assert f"{2 * len(channels)} by batch norm ({floats:,} floats)" in printed
    assert "0 by batch norm (0 floats)" in printed
    for c in channels:
        assert re.search(rf"{c} channels: +{4 * (2 * c + 1):,} forward \[Σx, Σx², n\], "
                         rf"+{8 * c:,} backward", printed)
    gradients = sum(p.numel() for p in L.make_network("BatchNorm1d").parameters())
    assert printed.count(f"1 all-reduce by DDP ({gradients:,} floats)") == 2
    # "tens of megabytes take many times longer" than a kilobyte (a batch-norm message)
    largest = printed_number(printed, f"{4 * max(L.MESSAGE_FLOATS):,} bytes:")
    kilobyte = printed_number(printed, " 1,024 bytes:")
    assert 4 * max(L.MESSAGE_FLOATS) > 10_000_000 and largest > 3 * kilobyte


def test_going_deeper_cancellation_is_real_and_the_shift_repairs_it(printed):
    from_sums = printed_number(printed, "variance from the sums (float32):")
    two_pass = printed_number(printed, "two-pass x.var(correction=0):")
    assert abs(from_sums - two_pass) > 0.01 * two_pass
    assert printed_number(printed, "the same sums of x − 1000:") == pytest.approx(two_pass,
                                                                                 abs=1e-3)
    assert printed_number(printed, "the sums in float64:") == pytest.approx(two_pass, abs=1e-3)


def test_readme_states_the_full_runs_numbers():
    results = json.loads((ROOT / "figures" / "06-results.json").read_text())
    assert results["mode"] == "full"
    readme = (ROOT / "README.md").read_text()
    paragraph = readme[readme.index("**06 · Batch norm across processes.**"):]
    paragraph = paragraph[:paragraph.index("## ")]
    accuracy = results["eval accuracy"]
    quoted = [f"for {results['training steps']} steps",
              f"reaches {accuracy['BatchNorm1d, by digit']:.3f} on all test digits",
              f"{results['digits 0-4, 5-9']['BatchNorm1d, by digit'][1]:.3f} on the digits 5–9",
              f"({results['own statistics, digits 0-4, 5-9']['BatchNorm1d, by digit'][1]:.3f} when",
              f"SyncBatchNorm it reaches {accuracy['SyncBatchNorm, by digit']:.3f}",
              f"GroupNorm {accuracy['GroupNorm, by digit']:.3f}",
              f"shards {accuracy['BatchNorm1d, shuffled']:.3f}",
              f"took {results['step ms']['BatchNorm1d']:.1f} ms without and "
              f"{results['step ms']['SyncBatchNorm']:.1f} ms with"]
    flat = " ".join(paragraph.split())
    assert [q for q in quoted if q not in flat] == []
    layers = sum(isinstance(m, L.SyncBatchNorm) for m in L.make_network("SyncBatchNorm"))
    assert f"{ {1: 'two', 2: 'four', 3: 'six'}[layers]} extra all-reduces" in flat
