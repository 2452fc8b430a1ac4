"""Lesson 04: batch normalization from scratch, held to torch.nn.BatchNorm1d/2d and
torch.nn.functional.batch_norm. Property-based tests (hypothesis) draw shapes, settings and data;
six tests hold the differences PyTorch's own unit tests once found; the rest check the exercises'
checks, the lesson's stated numbers, its errors and its slider panels."""

import math

import nbformat
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lessons import exercise_count, load_lesson, notebook_path, outputs_text, printed_number, run_lesson
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


# ---------------------------------------------------------------- six differences PyTorch's own tests found
# (test/test_nn.py, test/test_modules.py and the gradient and forward-AD tests, run against the layer)

def float64_case(shape, seed=0):
    generator = torch.Generator().manual_seed(seed)

    def tensor(*size, low=None):
        t = torch.randn(size, dtype=torch.float64, generator=generator)
        return t if low is None else t.abs() + low

    x = tensor(*shape) * 2 + 1
    return x, tensor(shape[1], low=0.5), tensor(shape[1]), tensor(shape[1]), tensor(shape[1], low=0.5)


@pytest.mark.parametrize("training", [True, False], ids=["training", "eval"])
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 5), (3, 2, 3, 3)])
def test_1_double_backward_passes_gradgradcheck_and_equals_pytorchs(shape, training):
    x, weight, bias, running_mean, running_var = float64_case(shape)

    def ours(x, w, b):
        return L.batch_norm(x, running_mean, running_var, w, b, training, 0.0)

    inputs = tuple(t.clone().requires_grad_() for t in (x, weight, bias))
    assert torch.autograd.gradgradcheck(ours, inputs)
    second = []                     # the gradient of a function of the gradient, both ways
    for function in (ours, lambda x, w, b: F.batch_norm(x, running_mean, running_var, w, b,
                                                        training, 0.0)):
        leaves = tuple(t.clone().requires_grad_() for t in (x, weight, bias))
        grads = torch.autograd.grad((function(*leaves) ** 3).sum(), leaves, create_graph=True)
        second.append(torch.autograd.grad(sum((g ** 2).sum() for g in grads), leaves))
    for name, o, t in zip(["input", "weight", "bias"], *second):
        torch.testing.assert_close(o, t, rtol=1e-9, atol=1e-9, msg=name)


@pytest.mark.parametrize("training", [True, False], ids=["training", "eval"])
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 5), (3, 2, 3, 3)])
def test_2_forward_mode_ad_matches_pytorchs(shape, training):
    import torch.autograd.forward_ad as forward_ad

    x, weight, bias, running_mean, running_var = float64_case(shape, seed=1)
    tangents = tuple(torch.randn_like(t) for t in (x, weight, bias))

    def call(function):
        return lambda x, w, b: function(x, running_mean.clone(), running_var.clone(), w, b,
                                        training, 0.1)

    _, ours = torch.func.jvp(call(L.batch_norm), (x, weight, bias), tangents)
    _, theirs = torch.func.jvp(call(F.batch_norm), (x, weight, bias), tangents)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    results = []                    # dual tensors, a tangent on the input only
    for function in (L.batch_norm, F.batch_norm):
        with forward_ad.dual_level():
            dual = forward_ad.make_dual(x, tangents[0])
            y = function(dual, running_mean.clone(), running_var.clone(), weight, bias,
                         training, 0.1)
            results.append(forward_ad.unpack_dual(y).tangent)
    torch.testing.assert_close(results[0], results[1], rtol=1e-10, atol=1e-10)
    inputs = tuple(t.clone().requires_grad_() for t in (x, weight, bias))
    assert torch.autograd.gradcheck(
        lambda x, w, b: L.batch_norm(x, running_mean, running_var, w, b, training, 0.0),
        inputs, check_forward_ad=True)


def test_3_device_and_dtype_are_accepted_as_nn_batchnorm_accepts_them():
    for arguments, keywords in [((3,), {"device": "cpu", "dtype": torch.float64}),
                                ((3, 1e-3, 0.2, True, True, "cpu", torch.float64), {}),
                                ((3,), {"dtype": torch.float16})]:
        ours, theirs = L.BatchNorm(*arguments, **keywords), nn.BatchNorm1d(*arguments, **keywords)
        for (name, mine), (their_name, value) in zip(ours.state_dict().items(),
                                                     theirs.state_dict().items()):
            assert name == their_name and mine.dtype == value.dtype and mine.device == value.device
            assert torch.equal(mine, value), name
        assert repr(ours) == repr(theirs).replace("BatchNorm1d", "BatchNorm")


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 4), (0, 3, 2, 2)])
def test_4_an_empty_batch_in_training_leaves_the_running_statistics_as_pytorch_does(shape, momentum):
    ours, theirs = L.BatchNorm(3, momentum=momentum), reference_module(shape, 3, momentum=momentum)
    full = torch.randn((6,) + shape[1:], generator=torch.Generator().manual_seed(0)) * 2 + 1
    ours(full), theirs(full)
    before = {name: value.clone() for name, value in ours.state_dict().items()}
    empty = torch.randn(shape)
    results = []
    for layer in (ours, theirs):
        layer.zero_grad()
        x = empty.clone().requires_grad_()
        y = layer(x)
        y.backward(torch.ones_like(y))
        results.append((y, x.grad, layer.weight.grad, layer.bias.grad))
    for name in ("running_mean", "running_var"):
        assert torch.equal(getattr(ours, name), before[name]), f"{name} moved"
        assert not getattr(ours, name).isnan().any()
        torch.testing.assert_close(getattr(ours, name), getattr(theirs, name))
    assert torch.equal(ours.num_batches_tracked, theirs.num_batches_tracked)
    for what, mine, value in zip(["output", "input gradient", "weight gradient", "bias gradient"],
                                 *results):
        assert mine is not None and value is not None and torch.equal(mine, value), what


@pytest.mark.parametrize("saved, strict", [("plain dict", True), ("plain dict", False),
                                           ("version 1", True), ("version 1", False),
                                           ("version 2", False)])   # strict: a missing key
def test_5_a_state_dict_without_num_batches_tracked_keeps_the_count_as_pytorch_does(saved, strict):
    results = []
    for make in (L.BatchNorm, nn.BatchNorm1d):
        layer = make(3)
        layer.num_batches_tracked.fill_(7)
        state = nn.BatchNorm1d(3).state_dict()
        del state["num_batches_tracked"]
        if saved == "plain dict":
            state = dict(state)                          # no _metadata: version unknown
        else:
            state._metadata[""]["version"] = int(saved[-1])
        keys = layer.load_state_dict(state, strict=strict)
        results.append((layer.num_batches_tracked.item(), list(keys.missing_keys)))
    assert results[0] == results[1]
    assert results[0][0] == 7


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("buffers", [False, True])
def test_6_one_dimensional_empty_input_gives_what_f_batch_norm_gives(training, affine, buffers):
    arguments = [(torch.zeros(3), torch.ones(3)) if buffers else (None, None),
                 (torch.rand(3), torch.rand(3)) if affine else (None, None)]
    results = []
    for function in (L.batch_norm, F.batch_norm):
        x = torch.randn(0, requires_grad=True)
        leaves = [t.clone().requires_grad_() if t is not None else None for t in arguments[1]]
        y = function(x, *arguments[0], *leaves, training)
        y.sum().backward()
        results.append((y, x.grad, *(t.grad if t is not None else None for t in leaves)))
    for mine, theirs in zip(*results):
        assert (mine is None) == (theirs is None)
        if mine is not None:
            assert mine.shape == theirs.shape and mine.dtype == theirs.dtype
            assert torch.equal(mine, theirs)
    assert results[0][0].shape == (0,)


# ---------------------------------------------------------------- the exercises' checks

def forward_with(mistake):
    """batch_norm_forward written with one classic mistake (None: written right)."""
    def forward(input, running_mean, running_var, weight=None, bias=None, training=False,
                momentum=0.1, eps=1e-5):
        dims = [0, *range(2, input.dim())]
        if mistake == "dims (0,)" or (mistake == "dims (0, 2) in 4-D" and input.dim() == 4):
            dims = [0] if mistake == "dims (0,)" else [0, 2]
        shape = L.channel_shape(input)
        if mistake == "reshape(C, -1)":
            flat = input.reshape(input.shape[1], -1)
            mean, var = flat.mean(1).view(shape), flat.var(1, unbiased=False).view(shape)
        else:
            mean = input.mean(dims, keepdim=True)
            var = input.var(dims, unbiased=mistake == "unbiased in the forward", keepdim=True)
        if training and running_mean is not None:
            n = input.shape[0] if mistake == "n is the batch size" else input.numel() / input.shape[1]
            stored = var.flatten() * (1 if mistake == "biased running_var" else n / (n - 1))
            m = 1 - momentum if mistake == "Keras momentum" else momentum
            new_mean = (1 - m) * running_mean + m * mean.flatten()
            new_var = (1 - m) * running_var + m * stored
            if mistake == "buffers replaced":
                running_mean, running_var = new_mean, new_var
            else:
                running_mean.copy_(new_mean), running_var.copy_(new_var)
        if not training and mistake != "batch statistics in eval":
            mean, var = running_mean.view(shape), running_var.view(shape)
        if mistake == "eps outside the root":
            y = (input - mean) / (var.sqrt() + eps)
        else:
            y = (input - mean) / (var + eps).sqrt()
        if weight is not None and mistake not in ("γ ignored", "γ and β ignored"):
            y = weight.view(shape) * y
        if bias is not None and mistake not in ("β ignored", "γ and β ignored"):
            y = y + bias.view(shape)
        return y
    return forward


FORWARD_MISTAKES = {   # mistake: what the check's message must say
    "biased running_var": "holds the biased variance",
    "Keras momentum": "the Keras way",
    "eps outside the root": "outside the square root",
    "dims (0,)": "for (N, C, L) input you take the statistics over the wrong dimensions, dims (0,)",
    "dims (0, 2) in 4-D": "for (N, C, H, W) input you take the statistics over the wrong dimensions, "
                          "dims (0, 2)",
    "reshape(C, -1)": "mix the channels",
    "batch statistics in eval": "in eval mode you normalize with the batch's own statistics",
    "buffers replaced": "unchanged after a training step: update the buffer in place",
    "γ ignored": "you ignore γ",
    "β ignored": "you ignore β",
    "γ and β ignored": "you ignore both γ (weight) and β (bias)",
    "unbiased in the forward": "you normalize with the unbiased variance",
    "n is the batch size": "the batch size; n is the number of values per channel",
}


def test_forward_check_accepts_the_reference_solution_and_pytorch():
    for right in (L.batch_norm_forward, forward_with(None), L.batch_norm, F.batch_norm):
        assert L.check_batch_norm_forward(right) is None


@pytest.mark.parametrize("mistake", list(FORWARD_MISTAKES))
def test_forward_check_names_each_mistake(mistake):
    with pytest.raises(AssertionError) as caught:
        L.check_batch_norm_forward(forward_with(mistake))
    assert FORWARD_MISTAKES[mistake] in str(caught.value)


def test_forward_check_says_when_the_function_fails():
    def no_none_check(input, running_mean, running_var, weight=None, bias=None,
                      training=False, momentum=0.1, eps=1e-5):
        running_mean.copy_(running_mean)          # fails when running_mean is None
        return L.batch_norm_forward(input, running_mean, running_var, weight, bias,
                                    training, momentum, eps)

    with pytest.raises(AssertionError, match="running_mean=None.*AttributeError"):
        L.check_batch_norm_forward(no_none_check)

    def stub(*args, **kwargs):
        raise NotImplementedError("write batch_norm_forward")

    with pytest.raises(NotImplementedError):          # check_exercise says "not written yet"
        L.check_batch_norm_forward(stub)


def backward_with(mistake):
    """batch_norm_backward written with one classic mistake (None: written right)."""
    def backward(grad_output, input, weight, eps):
        dims = [0, *range(2, input.dim())]
        sums = [0] if mistake == "sums over dim 0" else dims
        means = [0] if mistake in ("sums over dim 0", "means over dim 0 in grad_input") else dims
        mean = input.mean(means, keepdim=True)
        invstd = 1 / torch.sqrt(input.var(means, unbiased=False, keepdim=True) + eps)
        x_hat, g = (input - mean) * invstd, grad_output
        gamma = 1.0 if mistake == "γ missing" else weight.view(L.channel_shape(input))
        through_mean = 0 if mistake == "path through μ dropped" else g.mean(means, keepdim=True)
        through_var = (0 if mistake == "path through σ² dropped"
                       else x_hat * (g * x_hat).mean(means, keepdim=True))
        grad_input = gamma * invstd * (g - through_mean - through_var)
        total = torch.mean if mistake == "mean for sum" else torch.sum
        return grad_input, total(g * x_hat, sums), total(g, sums)
    return backward


BACKWARD_MISTAKES = {
    "path through μ dropped": "drops the path through μ",
    "path through σ² dropped": "drops the path through σ²",
    "γ missing": "missing γ",
    "sums over dim 0": "for (N, C, L) input your grad_weight has shape (3, 4): it sums over the "
                       "wrong dimensions",
    "means over dim 0 in grad_input": "for (N, C, L) input your grad_input sums over the wrong "
                                      "dimensions, dims (0,)",
    "mean for sum": "your grad_bias is the mean of g",
}


def autograd_backward(grad_output, input, weight, eps):
    x, w = input.clone().requires_grad_(), weight.clone().requires_grad_()
    b = torch.zeros_like(weight, requires_grad=True)
    F.batch_norm(x, None, None, w, b, True, eps=eps).backward(grad_output)
    return x.grad, w.grad, b.grad


def test_backward_check_accepts_the_reference_solution_and_autograd():
    for right in (L.batch_norm_backward, backward_with(None), autograd_backward):
        assert L.check_batch_norm_backward(right) is None


@pytest.mark.parametrize("mistake", list(BACKWARD_MISTAKES))
def test_backward_check_names_each_mistake(mistake):
    with pytest.raises(AssertionError) as caught:
        L.check_batch_norm_backward(backward_with(mistake))
    assert BACKWARD_MISTAKES[mistake] in str(caught.value)


def test_backward_check_wants_three_tensors():
    with pytest.raises(AssertionError, match="return three tensors"):
        L.check_batch_norm_backward(lambda g, x, w, eps: L.batch_norm_backward(g, x, w, eps)[0])


def recalibrate_with(mistake):
    """recalibrate_batch_norm written with one classic mistake (None: written right)."""
    def recalibrate(model, batches):
        modules = model.children() if mistake == "children, not modules" else model.modules()
        layers = [module for module in modules if isinstance(module, L.BatchNorm)]
        momenta, was_training = [layer.momentum for layer in layers], model.training
        for layer in layers:
            if mistake != "no reset":
                layer.reset_running_stats()
            if mistake != "momentum kept":
                layer.momentum = None
        model.train(mistake != "eval mode")
        with torch.no_grad():
            for batch in batches:
                model(batch)
        if mistake == "weights changed":
            model[0].weight.data.mul_(2)
        if mistake != "momentum not restored":
            for layer, momentum in zip(layers, momenta):
                layer.momentum = momentum
        model.train(False if mistake == "always eval afterwards" else
                    True if mistake == "left in training mode" else was_training)
    return recalibrate


RECALIBRATE_MISTAKES = {
    "no reset": "you did not reset its running statistics",
    "momentum kept": "holds an exponential average",
    "eval mode": "updates them only in training mode",
    "children, not modules": "go through model.modules()",
    "momentum not restored": "has momentum None after your function; it had 0.1",
    "always eval afterwards": "was in training mode and your function leaves it in eval mode",
    "left in training mode": "was in eval mode and your function leaves it in training mode",
    "weights changed": "your function changes 0.weight",
}


def test_recalibrate_check_accepts_the_reference_solution():
    assert L.check_recalibrate_batch_norm(L.recalibrate_batch_norm) is None
    assert L.check_recalibrate_batch_norm(recalibrate_with(None)) is None


@pytest.mark.parametrize("mistake", list(RECALIBRATE_MISTAKES))
def test_recalibrate_check_names_each_mistake(mistake):
    with pytest.raises(AssertionError) as caught:
        L.check_recalibrate_batch_norm(recalibrate_with(mistake))
    assert RECALIBRATE_MISTAKES[mistake] in str(caught.value)


def test_recalibrated_statistics_are_the_plain_averages_pytorch_update_bn_computes():
    from torch.optim.swa_utils import update_bn

    model, batches, _ = L._recalibration_case()
    twin = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.ReLU(),
                         nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)))
    twin.load_state_dict(model.state_dict())
    L.recalibrate_batch_norm(model, batches)
    update_bn(batches, twin)
    for (name, ours), theirs in zip(model.state_dict().items(), twin.state_dict().values()):
        torch.testing.assert_close(ours, theirs, msg=name)


# ---------------------------------------------------------------- the four carried cells

CARRIED = ["batch-norm-forward", "batch-norm-backward", "batch-norm-functional", "batch-norm-module"]


def test_the_four_carried_cells_are_self_contained_and_in_order():
    nb = nbformat.read(notebook_path("04"), as_version=4)
    ids = [cell.get("id") for cell in nb.cells]
    assert [i for i in ids if i in CARRIED] == CARRIED
    namespace = {"math": math, "torch": torch, "nn": nn, "F": F}
    for cell_id in CARRIED:
        source = nb.cells[ids.index(cell_id)].source
        assert "#@save" in source.splitlines()[:2], cell_id
        exec(compile(source, cell_id, "exec"), namespace)
    ours, theirs = namespace["BatchNorm"](4), nn.BatchNorm1d(4)
    x = torch.randn(8, 4, 3) * 2 + 1
    torch.testing.assert_close(ours(x), theirs(x))
    torch.testing.assert_close(ours.running_var, theirs.running_var)
    assert namespace["batch_norm_forward"] is not None and namespace["batch_norm_backward"]


# ---------------------------------------------------------------- the lesson's numbers and panels

def test_saturation_is_lesson_01s_rule_one_percent_of_the_peak():
    slope = torch.sigmoid(torch.tensor(L.SATURATION_CUTOFF, dtype=torch.float64))
    assert (slope * (1 - slope)).item() == pytest.approx(L.SATURATION_LEVEL * 0.25, rel=1e-9)
    cutoff = L.SATURATION_CUTOFF
    assert L.fraction_saturated(torch.tensor([0.0, cutoff + 1, -cutoff - 0.5, 3.0])) == 0.5


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


def test_momentum_panel_claims_small_lags_large_follows_noise_none_lags_a_drift():
    fig, update = L.make_momentum_panel()

    def shown_error(**values):               # the error the panel's title prints
        update(**values)
        return printed_number(fig.axes[0].get_title(), "RMS error", "after step 50 =")

    default = shown_error(momentum=0.1)
    assert shown_error(momentum=0.001) > default and shown_error(momentum=1.0) > default
    assert shown_error(momentum=0.1, cumulative=True) > default
    truth, batch_means = L.drifting_batch_means()
    cumulative = torch.tensor(L.pytorch_running_average(batch_means.tolist(), None))
    lag = (truth - cumulative).abs()
    assert lag[300:].mean() > lag[100:200].mean()      # further and further behind the drift


def test_batch_statistics_shrink_like_one_over_root_b():
    std = 1.5
    study = L.batch_statistics_study(mean=-1.0, std=std)
    for size, result in study.items():
        assert result["batch_means"].std().item() == pytest.approx(std / math.sqrt(size), rel=0.15)
    gaps = [study[size]["gap"] for size in L.BATCH_SIZES]
    assert all(later < earlier for earlier, later in zip(gaps, gaps[1:]))


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
        assert set(worst) >= {"output", "grad input", "grad weight", "running_var",
                              "num_batches_tracked"}
        assert max(worst.values()) < bound and worst["num_batches_tracked"] == 0.0


PANELS = {"gamma_beta_panel": (dict(gamma=1.0, beta=0.0), dict(gamma=5.0, beta=-3.0)),
          "momentum_panel": (dict(momentum=0.1, cumulative=False),
                             dict(momentum=0.1, cumulative=True)),
          "batch_size_panel": (dict(batch_size=32), dict(batch_size=2))}


@pytest.mark.parametrize("name", list(PANELS))
def test_slider_panels_redraw_deterministically_and_change_with_their_controls(name):
    panel = getattr(L, name)
    first, second = PANELS[name]
    assert set(panel.controls) == set(first)
    fig, update = panel.build()
    width = fig.get_size_inches()[0] * fig.dpi
    assert width <= 830, f"{name} is {width:.0f} px wide"
    update(**panel.values())
    update(**first)
    image = L.figure_png(fig)
    update(**second)
    assert L.figure_png(fig) != image
    update(**first)
    assert L.figure_png(fig) == image
    other_fig, other_update = panel.build()
    other_update(**first)
    assert L.figure_png(other_fig) == image


# ---------------------------------------------------------------- the executed notebook

@pytest.fixture(scope="module")
def run():
    nb, _, folder = run_lesson("04", True)
    return outputs_text(nb), folder


@pytest.fixture(scope="module")
def text(run):
    return run[0]


def line_with(text, label):
    """The printed line that contains `label`."""
    lines = [line for line in text.splitlines() if label in line]
    assert lines, f"the lesson printed no line with {label!r}"
    return lines[0]


def test_saved_figures_fit_the_notebook_column(run):
    from PIL import Image

    figures = sorted((run[1] / "figures").glob("04-*.png"))
    assert {path.stem for path in figures} >= {"04-what-is-averaged", "04-computational-graph",
                                                "04-matches-pytorch"}
    for path in figures:
        assert Image.open(path).size[0] <= 830, path.name


def test_the_notes_experiment(text):
    images, pixels = printed_number(text, "values per channel:"), printed_number(text, "images x")
    assert printed_number(text, "pixels =") == images * pixels
    assert printed_number(text, "variance 1/12 =") == pytest.approx(1 / 12, abs=5e-5)
    for name, tolerance in (("running_mean", 5e-4), ("running_var", 2e-4)):
        predicted = printed_number(text, "predicted from U(0,1):", name)
        measured = printed_number(text, "measured:", name)
        assert measured == pytest.approx(predicted, abs=tolerance), name
    assert repr(nn.BatchNorm1d(16)) in text
    assert "weight shape (16,) bias shape (16,)" in text
    assert "expected 4D input (got 3D input)" in text
    assert "running_mean.requires_grad: False | running_mean.grad: None" in text
    assert printed_number(text, "eval-mode output:", "mean") > 0.3      # "stays near 0.5"


def test_the_exercises_print_not_written_yet_as_shipped(text):
    assert text.count("⏳ Not written yet") == exercise_count("04") > 0


def test_the_closed_form_and_the_proof(text):
    assert printed_number(text, "full graph", "max |closed form - autograd|") < 1e-12
    assert printed_number(text, "treated as constants", "max |closed form - autograd|") > 1e-2
    for dtype in (torch.float32, torch.float64):
        relative = printed_number(text, f"largest relative difference, {dtype}:")
        in_eps = printed_number(text, f"largest relative difference, {dtype}:", "=")
        assert in_eps == pytest.approx(relative / torch.finfo(dtype).eps, rel=0.06)
        assert in_eps < 10, "the summary says a few machine epsilons"
    assert text.count("gradcheck True, gradgradcheck True") == 6
    assert "same state_dict keys: True" in text
    for mode in ("training", "eval"):
        assert printed_number(text, mode, "max |our tangent - PyTorch's| =") < 1e-12
    for name in ("BatchNorm", "BatchNorm1d"):
        assert f"{name} on an empty batch: output shape (0, 3), running_mean unchanged: True" in text


def test_momentum_none_and_the_recalibration(text):
    cumulative = line_with(text, "momentum=None").split("running_mean")[1].strip()
    average = line_with(text, "average of the 20 batch means").split("means")[1].strip()
    assert cumulative == average
    assert line_with(text, "momentum=0 ").split("running_mean")[1].strip() == "tensor([0., 0., 0., 0.])"
    stale = printed_number(text, "stale running statistics: eval-mode error")
    after = printed_number(text, "after recalibrate_batch_norm: eval-mode error")
    assert after < 0.01 and stale > 10 * after


def test_going_deeper_settles_each_confusion(text):
    assert printed_number(text, "forward with the biased variance:", "nn.BatchNorm1d|") < 1e-6
    assert printed_number(text, "forward with the unbiased variance:", "nn.BatchNorm1d|") > 1e-2
    assert printed_number(text, "running_var from the unbiased variance:", "max |diff|") < 1e-6
    n = printed_number(text, "n/(n-1) for n =")
    assert printed_number(text, "n/(n-1) for n =", ":") == n / (n - 1)
    assert printed_number(text, "PyTorch momentum 0.1 vs Keras momentum 0.9: max difference") < 1e-12
    assert printed_number(text, "PyTorch momentum 0.01 vs Keras momentum 0.99: max difference") < 1e-12
    for name in ("BatchNorm", "LayerNorm", "InstanceNorm", "GroupNorm"):
        assert printed_number(text, name, "max |ours - torch|") < 1e-5
    assert "batch sizes [10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 1]: ValueError" in text
    assert "drop_last=True: 10 batches" in text
    assert printed_number(text, "train mode: the sample's outputs differ by up to") > 0.05
    assert printed_number(text, "eval mode:", "outputs differ by up to") == 0.0
    assert printed_number(text, "requires_grad=False, train mode: running_mean moved by") > 0.1
    assert printed_number(text, "eval mode:", "running_mean moved by") == 0.0
    spread = printed_number(text, "pre-activation std:")
    assert spread > L.SATURATION_CUTOFF                      # "large pre-activations"
    without = printed_number(text, "Linear -> sigmoid (no BN):", "saturated:")
    before = printed_number(text, "Linear -> BN -> sigmoid:", "saturated:")
    assert without > 0.2 and before < 0.01
    assert printed_number(text, "max |output with bias - output without| =") < 1e-12
    assert printed_number(text, "gradient of the linear layer's bias: max |grad| =") < 1e-10


def test_the_batch_size_table_shrinks_like_one_over_root_b(text):
    ratio = printed_number(text, f"gap at B = {L.BATCH_SIZES[0]} / gap at B = {L.BATCH_SIZES[-1]}:")
    root = printed_number(text, "gap at B =", "√(", ") =")
    assert root == pytest.approx(math.sqrt(L.BATCH_SIZES[-1] / L.BATCH_SIZES[0]), abs=0.05)
    assert ratio == pytest.approx(root, rel=0.2)
    for size in L.BATCH_SIZES:
        assert printed_number(text, f"B = {size}:", "spread of batch means") == pytest.approx(
            printed_number(text, f"B = {size}:", "σ/√B ="), rel=0.15)
