"""Lesson 04: batch normalization from scratch, held to torch.nn.BatchNorm1d/2d and
torch.nn.functional.batch_norm. Property-based tests (hypothesis) draw shapes, settings and data;
the rest check the lesson's stated numbers, its errors and its slider panels."""

import math
import re

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lessons import load_lesson, outputs_text, run_lesson
from torch import nn

L = load_lesson("04")
TOLERANCE = {torch.float32: 1e-6, torch.float64: 1e-12}
PROPERTY_SETTINGS = settings(max_examples=80, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


def assert_matches(ours, theirs, dtype, what, scale=1.0):
    """Equal up to rounding: max |ours − theirs| ≤ tolerance · max(scale, max |theirs|).
    `scale` is the size of the terms that cancel in the result, where that exceeds the result."""
    if theirs is None or ours is None:
        assert ours is None and theirs is None, f"{what}: one is None"
        return
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, what
    if theirs.numel() == 0:
        return
    scale = max(1.0, scale, theirs.detach().abs().max().item())
    difference = (ours.detach() - theirs.detach()).abs().max().item()
    assert difference <= TOLERANCE[dtype] * scale, f"{what}: differs by {difference:.3e} (scale {scale:.3g})"


# ---------------------------------------------------------------- strategies

@st.composite
def batch_norm_cases(draw):
    rank = draw(st.integers(2, 4))
    shape = (draw(st.integers(2, 7)), draw(st.integers(1, 5))) + tuple(
        draw(st.integers(1, 4)) for _ in range(rank - 2))
    return {
        "shape": shape,
        "dtype": draw(st.sampled_from([torch.float32, torch.float64])),
        "momentum": draw(st.one_of(st.none(), st.sampled_from([0.0, 0.1, 0.5, 1.0]),
                                   st.floats(0.001, 0.999))),
        "eps": draw(st.sampled_from([1e-5, 1e-3, 0.1, 1.0])),
        "affine": draw(st.booleans()),
        "track_running_stats": draw(st.booleans()),
        "steps": draw(st.integers(1, 3)),
        "scale": draw(st.floats(0.1, 5.0)),
        "shift": draw(st.floats(-3.0, 3.0)),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


def rounding_scales(x, grad, weight, eps, mean=None, var=None):
    """How large the rounding differences between two correct float implementations can be, for
    each compared quantity, normalizing with the batch's own statistics or, when given, with the
    running `mean` and `var` (eval mode).

    The sizes of the terms that cancel: y = x·(γ·invstd) + (β − μ·γ·invstd) in PyTorch's kernel,
    dL/dx = γ·invstd·(g − mean(g) − x̂·mean(g·x̂)), and the sums Σ g, Σ g·x̂. And the condition of
    x − μ: a mean rounded to the last bit of |μ| moves x̂ by ulp(μ)·invstd, so every difference is
    amplified by 1 + |μ|·invstd when a channel's values sit far from 0 compared with their spread.
    """
    dims = [0] + list(range(2, x.dim()))
    shape = (x.shape[1],) + (1,) * (x.dim() - 2)
    x, grad = x.double(), grad.double()
    mean = x.mean(dims) if mean is None else mean.detach().double()
    var = x.var(dims, unbiased=False) if var is None else var.detach().double()
    invstd = torch.rsqrt(var + eps)
    gamma = 1.0 if weight is None else weight.detach().double().abs().view(shape)
    x_hat = (x - mean.view(shape)) * invstd.view(shape)
    condition = 1.0 + (mean.abs() * invstd).max().item()
    return {"output": condition * (x.abs() * gamma * invstd.view(shape)).max().item(),
            "input gradient": condition * (grad.abs() * gamma * invstd.view(shape)).max().item(),
            "weight gradient": condition * (grad.abs() * (1 + x_hat.abs())).sum(dims).max().item(),
            "bias gradient": grad.abs().sum(dims).max().item()}


def reference_module(shape, channels=None, **kwargs):
    """nn.BatchNorm1d for 2-D and 3-D shapes, nn.BatchNorm2d for 4-D ones."""
    return (nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d)(channels or shape[1], **kwargs)


# ---------------------------------------------------------------- the module, property-based

@PROPERTY_SETTINGS
@given(batch_norm_cases())
@example({"shape": (4, 5), "dtype": torch.float32, "momentum": None, "eps": 1e-5, "affine": False,
          "track_running_stats": True, "steps": 1, "scale": 0.125, "shift": 2.0, "seed": 0})
def test_module_matches_pytorch_over_training_steps_then_eval(case):
    shape, dtype = case["shape"], case["dtype"]
    generator = torch.Generator().manual_seed(case["seed"])
    options = dict(eps=case["eps"], momentum=case["momentum"], affine=case["affine"],
                   track_running_stats=case["track_running_stats"])
    theirs = reference_module(shape, **options).to(dtype)
    ours = L.BatchNorm(shape[1], **options).to(dtype)
    if case["affine"]:
        with torch.no_grad():
            theirs.weight.uniform_(-2.0, 2.0, generator=generator)
            theirs.bias.uniform_(-1.0, 1.0, generator=generator)
    ours.load_state_dict(theirs.state_dict())
    for step in range(case["steps"] + 2):
        training = step < case["steps"]        # then two steps in eval mode
        batch_statistics = training or not case["track_running_stats"]
        theirs.train(training), ours.train(training)
        x = torch.randn(shape, dtype=dtype, generator=generator) * case["scale"] + case["shift"]
        grad = torch.randn(shape, dtype=dtype, generator=generator)
        x_theirs, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
        y_theirs, y_ours = theirs(x_theirs), ours(x_ours)
        y_theirs.backward(grad), y_ours.backward(grad)
        running = {} if batch_statistics else {"mean": theirs.running_mean, "var": theirs.running_var}
        scales = rounding_scales(x, grad, theirs.weight, case["eps"], **running)
        assert_matches(y_ours, y_theirs, dtype, f"output, step {step}", scales.get("output", 1.0))
        assert_matches(x_ours.grad, x_theirs.grad, dtype, f"input gradient, step {step}",
                       scales.get("input gradient", 1.0))
        if case["affine"]:
            assert_matches(ours.weight.grad, theirs.weight.grad, dtype, f"weight gradient, step {step}",
                           scales.get("weight gradient", 1.0))
            assert_matches(ours.bias.grad, theirs.bias.grad, dtype, f"bias gradient, step {step}",
                           scales.get("bias gradient", 1.0))
        assert_matches(ours.running_mean, theirs.running_mean, dtype, f"running_mean, step {step}")
        assert_matches(ours.running_var, theirs.running_var, dtype, f"running_var, step {step}")
        if case["track_running_stats"]:
            assert torch.equal(ours.num_batches_tracked, theirs.num_batches_tracked)
        else:
            assert ours.num_batches_tracked is None and theirs.num_batches_tracked is None
    # state dicts: same keys, and they load both ways with nothing missing or unexpected
    assert list(ours.state_dict()) == list(theirs.state_dict())
    fresh_theirs = reference_module(shape, **options).to(dtype)
    fresh_theirs.load_state_dict(ours.state_dict())
    fresh_ours = L.BatchNorm(shape[1], **options).to(dtype)
    fresh_ours.load_state_dict(theirs.state_dict())
    for name, value in theirs.state_dict().items():
        assert torch.equal(fresh_ours.state_dict()[name], value), name
        assert torch.equal(fresh_theirs.state_dict()[name], ours.state_dict()[name]), name


# ---------------------------------------------------------------- the function, property-based

@PROPERTY_SETTINGS
@given(batch_norm_cases(), st.booleans(), st.booleans(), st.booleans())
def test_function_matches_torch_functional_batch_norm(case, training, with_buffers, with_weight):
    shape, dtype = case["shape"], case["dtype"]
    if not training:
        with_buffers = True       # eval mode needs running statistics (an error case, tested below)
    generator = torch.Generator().manual_seed(case["seed"])
    momentum = 0.1 if case["momentum"] is None else case["momentum"]   # F.batch_norm takes a float
    channels = shape[1]
    x = torch.randn(shape, dtype=dtype, generator=generator) * case["scale"] + case["shift"]
    grad = torch.randn(shape, dtype=dtype, generator=generator)
    weight = torch.rand(channels, dtype=dtype, generator=generator) * 2 - 0.5 if with_weight else None
    bias = torch.randn(channels, dtype=dtype, generator=generator) if case["affine"] else None
    buffers = (None, None)
    if with_buffers:
        buffers = (torch.randn(channels, dtype=dtype, generator=generator),
                   torch.rand(channels, dtype=dtype, generator=generator) + 0.5)
    results = []
    for function in (F.batch_norm, L.batch_norm):
        x_leaf = x.clone().requires_grad_()
        leaves = [t.clone().requires_grad_() if t is not None else None for t in (weight, bias)]
        running = [t.clone() if t is not None else None for t in buffers]
        y = function(x_leaf, running[0], running[1], leaves[0], leaves[1], training, momentum, case["eps"])
        y.backward(grad)
        results.append((y, x_leaf.grad, *(t.grad if t is not None else None for t in leaves), *running))
    names = ["output", "input gradient", "weight gradient", "bias gradient", "running_mean", "running_var"]
    statistics = {} if training else {"mean": buffers[0], "var": buffers[1]}
    terms = rounding_scales(x, grad, weight, case["eps"], **statistics)
    for name, theirs, ours in zip(names, *results):
        assert_matches(ours, theirs, dtype, name, terms.get(name, 1.0))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 4), st.integers(1, 3), st.booleans(), st.booleans(), st.integers(0, 10**6))
def test_gradcheck_in_float64(rank, channels, training, affine, seed):
    generator = torch.Generator().manual_seed(seed)
    shape = (3, channels) + (2,) * (rank - 2)
    x = torch.randn(shape, dtype=torch.float64, generator=generator, requires_grad=True)
    weight = (torch.rand(channels, dtype=torch.float64, generator=generator) + 0.5).requires_grad_()
    bias = torch.randn(channels, dtype=torch.float64, generator=generator, requires_grad=True)
    running_mean = torch.randn(channels, dtype=torch.float64, generator=generator)
    running_var = torch.rand(channels, dtype=torch.float64, generator=generator) + 0.5
    if affine:
        inputs = (x, weight, bias)

        def function(x, w, b):
            return L.batch_norm(x, running_mean, running_var, w, b, training, 0.0)
    else:
        inputs = (x,)

        def function(x):
            return L.batch_norm(x, running_mean, running_var, None, None, training, 0.0)
    assert torch.autograd.gradcheck(function, inputs)


def test_double_backward_is_refused_rather_than_wrong():
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = L.batch_norm(x, None, None, training=True)
    (grad,) = torch.autograd.grad((y ** 3).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|differentiable"):
        grad.sum().backward()


def test_zero_variance_channel_matches_pytorch():
    x = torch.randn(6, 3, 4, generator=torch.Generator().manual_seed(0))
    x[:, 1] = 2.5                                   # a constant channel: σ² = 0, x̂ = 0
    grad = torch.randn(6, 3, 4, generator=torch.Generator().manual_seed(1))
    results = []
    for function in (F.batch_norm, L.batch_norm):
        x_leaf = x.clone().requires_grad_()
        y = function(x_leaf, torch.zeros(3), torch.ones(3), torch.ones(3), torch.zeros(3), True)
        y.backward(grad)
        results.append((y, x_leaf.grad))
    scales = rounding_scales(x, grad, None, 1e-5)
    assert_matches(results[1][0], results[0][0], torch.float32, "output", scales["output"])
    assert_matches(results[1][1], results[0][1], torch.float32, "input gradient", scales["input gradient"])
    assert torch.equal(results[1][0][:, 1], torch.zeros(6, 4))    # ours: exactly 0 (PyTorch: ±1.5e-5)


# ---------------------------------------------------------------- module semantics

def test_momentum_none_is_the_cumulative_average_and_momentum_zero_never_moves():
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randn(16, 3, dtype=torch.float64, generator=generator) * 2 + 5 for _ in range(12)]
    cumulative = L.BatchNorm(3, momentum=None).double()
    frozen = L.BatchNorm(3, momentum=0.0).double()
    for batch in batches:
        cumulative(batch), frozen(batch)
    means = torch.stack([b.mean(0) for b in batches]).mean(0)
    variances = torch.stack([b.var(0, unbiased=True) for b in batches]).mean(0)
    torch.testing.assert_close(cumulative.running_mean, means, rtol=0, atol=1e-12)
    torch.testing.assert_close(cumulative.running_var, variances, rtol=0, atol=1e-12)
    assert torch.equal(frozen.running_mean, torch.zeros(3, dtype=torch.float64))
    assert torch.equal(frozen.running_var, torch.ones(3, dtype=torch.float64))
    assert cumulative.num_batches_tracked.item() == frozen.num_batches_tracked.item() == 12


def test_eval_without_running_statistics_uses_the_batch():
    layer = L.BatchNorm(4, track_running_stats=False).eval()
    x = torch.randn(10, 4) * 3 + 2
    y = layer(x)
    torch.testing.assert_close(y.mean(0), torch.zeros(4), atol=1e-6, rtol=0)
    assert layer.running_mean is None and layer.num_batches_tracked is None


def test_eval_uses_running_statistics_and_updates_nothing():
    layer = L.BatchNorm(2)
    layer(torch.randn(8, 2) + 3)
    layer.eval()
    state = {k: v.clone() for k, v in layer.state_dict().items()}
    x = torch.randn(5, 2)
    expected = (x - layer.running_mean) / torch.sqrt(layer.running_var + layer.eps)
    torch.testing.assert_close(layer(x), expected, rtol=1e-6, atol=1e-6)
    for key, value in layer.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_repr_and_state_dict_keys_match_pytorch_for_every_configuration():
    for affine in (True, False):
        for track in (True, False):
            for momentum in (0.1, None):
                ours = L.BatchNorm(16, momentum=momentum, affine=affine, track_running_stats=track)
                theirs = nn.BatchNorm1d(16, momentum=momentum, affine=affine, track_running_stats=track)
                assert repr(ours) == repr(theirs).replace("BatchNorm1d", "BatchNorm")
                assert list(ours.state_dict()) == list(theirs.state_dict())
                assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


def test_loads_an_old_state_dict_without_num_batches_tracked():
    theirs = nn.BatchNorm1d(3)
    state = theirs.state_dict()
    del state["num_batches_tracked"]
    state._metadata[""]["version"] = 1                     # saved before the buffer existed
    ours = L.BatchNorm(3)
    ours.load_state_dict(state)
    assert ours.num_batches_tracked.item() == 0


def test_requires_grad_false_does_not_freeze_running_statistics():
    layer = L.BatchNorm(3)
    for parameter in layer.parameters():
        parameter.requires_grad_(False)
    layer(torch.randn(8, 3) + 4)
    assert layer.running_mean.abs().min() > 0.1


# ---------------------------------------------------------------- errors, as PyTorch raises them

def error_of(call):
    try:
        call()
    except Exception as error:  # noqa: BLE001 — the type is what is compared
        return type(error), str(error)
    return None


@pytest.mark.parametrize("shape, channels", [((4, 15), 16), ((4, 17, 3), 16), ((2, 3, 4, 4), 16)])
def test_wrong_channel_count_raises_pytorchs_error(shape, channels):
    x = torch.randn(shape)
    ours = error_of(lambda: L.BatchNorm(channels)(x))
    theirs = error_of(lambda: reference_module(shape, channels)(x))
    assert ours is not None and ours == theirs


@pytest.mark.parametrize("shape", [(1, 16), (1, 16, 1), (1, 16, 1, 1)])
def test_one_value_per_channel_in_training_raises_pytorchs_value_error(shape):
    x = torch.randn(shape)
    ours = error_of(lambda: L.BatchNorm(16)(x))
    theirs = error_of(lambda: reference_module(shape, 16)(x))
    assert ours == theirs
    assert ours[0] is ValueError and "Expected more than 1 value per channel when training" in ours[1]
    L.BatchNorm(16).eval()(x)                               # fine in eval mode, as in PyTorch
    L.BatchNorm(16)(torch.randn(1, 16, 5))                  # one sample with 5 values per channel: fine


@pytest.mark.parametrize("rank", [1, 5])
def test_wrong_rank_raises_a_clear_value_error(rank):
    x = torch.randn((2, 16) + (2,) * (rank - 2) if rank > 1 else (16,))
    error = error_of(lambda: L.BatchNorm(16)(x))
    assert error[0] is ValueError and f"got {rank}D input" in error[1] and "(N, C" in error[1]
    if rank == 1:
        error = error_of(lambda: L.batch_norm(x, None, None, training=True))
        assert error[0] is ValueError and "at least 2 dimensions" in error[1]


@pytest.mark.parametrize("arguments", [
    dict(running_mean=None, running_var=None, training=False),                 # eval without stats
    dict(running_mean=torch.zeros(3), running_var=None, training=True),       # one of the pair
    dict(running_mean=None, running_var=torch.ones(3), training=False),
    dict(running_mean=torch.zeros(3), running_var=torch.ones(3), training=True, eps=0.0),
    dict(running_mean=torch.zeros(3), running_var=torch.ones(3), training=False, eps=-1.0),
    dict(running_mean=torch.zeros(3), running_var=torch.ones(4), training=True),
    dict(running_mean=None, running_var=None, training=True, weight=torch.ones(2)),
    dict(running_mean=None, running_var=None, training=True, bias=torch.ones(5)),
    dict(running_mean=torch.zeros(4), running_var=None, training=True),
    dict(running_mean=torch.zeros(3), running_var=None, training=True, weight=torch.ones(5)),
    dict(running_mean=None, running_var=torch.ones(3), training=False, eps=-1.0),
])
def test_functional_errors_match_torch(arguments):
    x = torch.randn(4, 3)
    ours = error_of(lambda: L.batch_norm(x, **arguments))
    theirs = error_of(lambda: F.batch_norm(x, **arguments))
    assert ours is not None and ours == theirs


# ---------------------------------------------------------------- the lesson's numbers

def test_the_notes_experiment_running_mean_and_variance():
    n = 100 * 784
    predicted_var = 0.9 + 0.1 * (1 / 12) * n / (n - 1)
    assert round(predicted_var, 4) == 0.9083
    for layer in (nn.BatchNorm1d(16), L.BatchNorm(16)):
        torch.manual_seed(0)
        layer(torch.rand(100, 16, 784))
        # sampling noise of one batch: std of the mean ≈ 1e-3, of the variance ≈ 3e-4 (times 0.1)
        assert (layer.running_mean - 0.05).abs().max() < 5e-4
        assert (layer.running_var - predicted_var).abs().max() < 2e-4
        assert layer.num_batches_tracked.item() == 1


def test_saturation_cutoff_is_lesson_01s():
    assert L.SATURATION_CUTOFF == pytest.approx(5.99, abs=0.005)
    slope = torch.sigmoid(torch.tensor(L.SATURATION_CUTOFF, dtype=torch.float64))
    assert (slope * (1 - slope)).item() == pytest.approx(0.01 * 0.25, rel=1e-9)
    assert L.saturated_fraction(torch.tensor([0.0, 7.0, -6.5, 3.0])) == 0.5


def test_pytorch_and_keras_momentum_conventions():
    stream = [math.sin(t / 3) + t / 20 for t in range(40)]
    for pytorch_m, keras_m in [(0.1, 0.9), (0.01, 0.99)]:
        a = L.pytorch_running_average(stream, pytorch_m)
        b = L.keras_running_average(stream, keras_m)
        assert max(abs(x - y) for x, y in zip(a, b)) < 1e-12
    same_number = zip(L.pytorch_running_average(stream, 0.9), L.keras_running_average(stream, 0.9))
    assert max(abs(x - y) for x, y in same_number) > 0.5
    cumulative = L.pytorch_running_average(stream, None)
    assert cumulative[-1] == pytest.approx(sum(stream) / len(stream), rel=1e-12)


def test_batch_statistics_shrink_like_one_over_root_b():
    study = L.batch_statistics_study()
    for size, result in study.items():
        assert result["batch_means"].std().item() == pytest.approx(3 / math.sqrt(size), rel=0.15)
    gaps = [study[size]["gap"] for size in L.BATCH_SIZES]
    assert all(later < earlier for earlier, later in zip(gaps, gaps[1:]))
    assert gaps[0] / gaps[-1] > 8                      # 2 -> 256: sqrt(128) ≈ 11


def test_normalizations_match_pytorchs_family():
    x = torch.randn(4, 6, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(L.normalize_over(x, L.NORMALIZATION_AXES["BatchNorm"]),
                               F.batch_norm(x, None, None, training=True))
    torch.testing.assert_close(L.normalize_over(x, L.NORMALIZATION_AXES["LayerNorm"]),
                               F.layer_norm(x, x.shape[1:]))
    torch.testing.assert_close(L.normalize_over(x, L.NORMALIZATION_AXES["InstanceNorm"]),
                               F.instance_norm(x))
    torch.testing.assert_close(L.group_normalize(x, 3), F.group_norm(x, 3))
    with pytest.raises(ValueError, match="4 equal groups"):
        L.group_normalize(x, 4)


def test_compare_with_pytorch_reports_rounding_level_differences():
    for dtype, bound in TOLERANCE.items():
        worst = L.compare_with_pytorch((8, 3, 5), dtype, steps=2, momentum=None)
        assert set(worst) >= {"output", "grad input", "grad weight", "running_var", "num_batches_tracked"}
        assert max(worst.values()) < bound and worst["num_batches_tracked"] == 0.0


# ---------------------------------------------------------------- slider panels

def png(fig):
    return L.figure_png(fig)


@pytest.mark.parametrize("maker, first, second", [
    ("make_gamma_beta_panel", dict(gamma=1.0, beta=0.0), dict(gamma=5.0, beta=-3.0)),
    ("make_momentum_panel", dict(momentum=0.1, cumulative=False), dict(momentum=0.1, cumulative=True)),
    ("make_batch_size_panel", dict(batch_size=32), dict(batch_size=2)),
])
def test_slider_panels_redraw_deterministically(maker, first, second):
    fig, update = getattr(L, maker)()
    update(**first)
    image = png(fig)
    update(**second)
    assert png(fig) != image
    update(**first)
    assert png(fig) == image
    other_fig, other_update = getattr(L, maker)()
    other_update(**first)
    assert png(other_fig) == image


# ---------------------------------------------------------------- the executed notebook

@pytest.fixture(scope="module")
def text():
    nb, _, _ = run_lesson("04", True)
    return outputs_text(nb)


def number_after(label, text):
    match = re.search(re.escape(label) + r"\s*([-+0-9.e]+)", text)
    assert match, f"{label!r} not printed"
    return float(match.group(1))


def test_notebook_states_the_notes_numbers(text):
    assert "4704" in text and "variance 1/12 = 0.0833" in text
    assert "predicted from U(0,1):     running_mean 0.0500, running_var 0.9083" in text
    assert ("BatchNorm1d(16, eps=1e-05, momentum=0.1, affine=True, bias=True, "
            "track_running_stats=True)") in text
    assert "weight shape (16,) bias shape (16,)" in text
    assert "expected 4D input (got 3D input)" in text
    assert "running_mean.requires_grad: False | running_mean.grad: None" in text


def test_notebook_proofs_pass(text):
    assert number_after("largest relative difference: float32", text) < 1e-6
    assert number_after("float64", text.split("largest relative difference")[1]) < 1e-12
    assert text.count(": training True, eval True") == 3
    assert "same state_dict keys: True" in text
    assert number_after("autograd, full graph               : max |closed form - autograd| =", text) < 1e-12
    assert number_after("autograd, μ, σ² treated as constants: max |closed form - autograd| =", text) > 1e-2


def test_notebook_settles_each_confusion(text):
    assert number_after("forward with the biased   variance: max |diff from nn.BatchNorm1d| =", text) < 1e-6
    assert number_after("forward with the unbiased variance: max |diff from nn.BatchNorm1d| =", text) > 1e-2
    assert number_after("running_var from the unbiased variance: max |diff| =", text) < 1e-6
    assert "n/(n-1) for n = 5: 1.25" in text
    assert number_after("PyTorch momentum 0.1 vs Keras momentum 0.9: max difference", text) < 1e-12
    assert number_after("PyTorch momentum 0.01 vs Keras momentum 0.99: max difference", text) < 1e-12
    assert "momentum=0     running_mean tensor([0., 0., 0., 0.])" in text
    assert "drop_last=False: batch sizes [10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 1]: ValueError" in text
    assert "drop_last=True: 10 batches" in text
    assert number_after("train mode: the sample's outputs differ by up to", text) > 0.05
    assert number_after("eval mode:  the sample's outputs differ by up to", text) == 0.0
    assert number_after("requires_grad=False, train mode: running_mean moved by", text) > 0.1
    assert number_after("eval mode:                        running_mean moved by", text) == 0.0
    assert number_after("Linear -> BN -> sigmoid:       sigmoid inputs saturated:", text) < 1.0
    assert number_after("Linear -> sigmoid -> BN:       sigmoid inputs saturated:", text) > 20.0
    assert number_after("max |output with bias - output without| =", text) < 1e-12
    assert number_after("gradient of the linear layer's bias: max |grad| =", text) < 1e-10
    assert text.count("median redraw") == 3


def test_pre_activation_std_in_the_before_after_cell_is_about_ten():
    torch.manual_seed(5)
    linear = nn.Linear(20, 50)
    with torch.no_grad():
        linear.weight.normal_(0, 10 / math.sqrt(20))
    assert linear(torch.randn(256, 20)).std().item() == pytest.approx(10, rel=0.15)
