"""Lesson 01, sigmoid saturation: the taught functions against independent computations (autograd,
the normal CDF, quadrature, a hand-written backward pass, F.batch_norm); the two exercise checks,
which accept the reference solutions and name each classic mistake; the slider panels; and every
number the lesson's prose (and the README) states, read from the prose and compared with what the
lesson computes and prints."""

import math
import re
import statistics
import struct

import nbformat
import pytest
import torch
import torch.nn.functional as F
from lessons import ROOT, load_lesson, notebook_path, outputs_text, printed_number, run_lesson
from sync_notebooks import is_generated  # tools/, which tests/lessons.py puts on the path


@pytest.fixture(scope="module")
def lesson():
    return load_lesson("01")


def sigmoid_by_hand(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def sigmoid_grad_by_hand(x):
    """sigma'(x) = e^-|x| / (1 + e^-|x|)^2, written out independently of the lesson (it is even)."""
    e = math.exp(-abs(x))
    return e / (1 + e) ** 2


def normal_expectation(f, mean, std, step=0.002):
    """E[f(x)] for x ~ N(mean, std^2): Simpson's rule in x over mean +- 14 std (not the lesson's)."""
    half = 14 * std
    n = int(math.ceil(2 * half / min(step, std / 50) / 2)) * 2
    x = torch.linspace(mean - half, mean + half, n + 1, dtype=torch.float64)
    density = torch.exp(-((x - mean) / std) ** 2 / 2) / (std * math.sqrt(2 * math.pi))
    y = f(x) * density
    h = (x[-1] - x[0]).item() / n
    return h / 3 * (y[0] + y[-1] + 4 * y[1:-1:2].sum() + 2 * y[2:-1:2].sum()).item()


def tensor_sigmoid_grad(x):
    e = torch.exp(-x.abs())
    return e / (1 + e) ** 2


# --- 1, 2: sigma, sigma' and the saturation cutoff ------------------------------------------------

def test_sigmoid_grad_equals_autograd(lesson):
    x = torch.linspace(-40, 40, 2001, dtype=torch.float64, requires_grad=True)
    torch.sigmoid(x).sum().backward()
    torch.testing.assert_close(lesson.sigmoid_grad(x.detach()), x.grad, rtol=1e-12, atol=1e-300)


def test_the_peak_is_a_quarter_at_zero_and_sigma_prime_is_even(lesson):
    grid = torch.linspace(-30, 30, 6001, dtype=torch.float64)
    slopes = lesson.sigmoid_grad(grid)
    assert slopes.max().item() == lesson.sigmoid_grad(0.0).item() == lesson.SIGMOID_GRAD_PEAK
    assert abs(grid[slopes.argmax()].item()) < 1e-12
    torch.testing.assert_close(slopes, lesson.sigmoid_grad(-grid), rtol=1e-12, atol=1e-15)
    for x in (0.0, 1.0, 4.0, 6.0, 10.0):
        assert lesson.sigmoid(x).item() == pytest.approx(sigmoid_by_hand(x), rel=1e-14)
        assert lesson.sigmoid_grad(x).item() == pytest.approx(sigmoid_grad_by_hand(x), rel=1e-12)


@pytest.mark.parametrize("level", [0.10, 0.01, 0.001])
def test_saturation_cutoff_solves_sigma_prime_equals_level_times_peak(lesson, level):
    low, high = 0.0, 50.0  # bisection on the hand-written sigma', which falls on x > 0
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if sigmoid_grad_by_hand(middle) > level * 0.25 else (low, middle)
    cutoff = lesson.saturation_cutoff(level)
    assert cutoff == pytest.approx(low, abs=1e-10)
    assert sigmoid_grad_by_hand(cutoff + 1e-6) < level * 0.25 < sigmoid_grad_by_hand(cutoff - 1e-6)


def test_bad_saturation_levels_are_refused(lesson):
    assert lesson.SATURATION_CUTOFF == lesson.saturation_cutoff(lesson.SATURATION_LEVEL)
    for bad in (0, 1, -0.5, 2):
        with pytest.raises(ValueError, match="between 0 and 1"):
            lesson.saturation_cutoff(bad)


def test_the_carried_saturation_cell_runs_alone_and_defines_the_series_rule(lesson):
    """Other lessons carry the cell with id `saturation`: alone, it defines the same four names."""
    cells = nbformat.read(notebook_path("01"), as_version=4).cells
    [cell] = [c for c in cells if c.get("id") == "saturation"]
    alone = {}
    exec(cell.source, alone)  # no other cell of the lesson: its own imports must do
    for name in ("SATURATION_LEVEL", "SATURATION_CUTOFF"):
        assert alone[name] == getattr(lesson, name)
    assert alone["saturation_cutoff"](0.1) == lesson.saturation_cutoff(0.1)
    x = torch.tensor([0.0, 5.9, -5.9, 6.0, -6.0, 100.0, -1e9, 3.0])  # |x| > 5.9864 for 4 of 8
    assert alone["fraction_saturated"](x) == lesson.fraction_saturated(x) == 0.5
    # "saturated" = sigma' below SATURATION_LEVEL of its peak
    cutoff = alone["SATURATION_CUTOFF"]
    assert sigmoid_grad_by_hand(cutoff) == pytest.approx(alone["SATURATION_LEVEL"] * 0.25, rel=1e-9)


# --- 3: saturation as a function of the pre-activation distribution --------------------------------

SETTINGS = [(0, 1), (0, 3), (0, 5), (4, 1), (-2, 0.5), (1, 8), (0, 8.875)]


@pytest.mark.parametrize("mean, std", SETTINGS)
def test_exact_fraction_saturated_matches_the_normal_cdf(lesson, mean, std):
    c = lesson.SATURATION_CUTOFF
    expected = 0.5 * math.erfc((c + mean) / (std * math.sqrt(2))) + 0.5 * math.erfc(
        (c - mean) / (std * math.sqrt(2)))
    assert lesson.gaussian_fraction_saturated(mean, std) == pytest.approx(expected, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("mean, std", SETTINGS)
def test_exact_mean_gradient_matches_independent_quadrature(lesson, mean, std):
    expected = normal_expectation(tensor_sigmoid_grad, mean, std)
    assert lesson.gaussian_mean_gradient(mean, std) == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("mean, std", SETTINGS)
def test_sample_estimates_agree_with_the_exact_values_within_sampling_error(lesson, mean, std):
    x = mean + std * lesson.STANDARD_NORMAL_SAMPLE
    n = len(x)
    p = lesson.gaussian_fraction_saturated(mean, std)
    assert abs(lesson.fraction_saturated(x) - p) <= 4.5 * math.sqrt(p * (1 - p) / n) + 1e-12
    exact = normal_expectation(tensor_sigmoid_grad, mean, std)
    spread = math.sqrt(normal_expectation(lambda t: tensor_sigmoid_grad(t) ** 2, mean, std) - exact**2)
    assert abs(lesson.mean_gradient_factor(x) - exact) <= 4.5 * spread / math.sqrt(n)


def test_the_sample_is_fixed_and_standard_normal(lesson):
    sample = lesson.standard_normal_sample()
    assert torch.equal(sample, lesson.STANDARD_NORMAL_SAMPLE) and sample.dtype == torch.float64
    assert abs(sample.mean().item()) < 4.5 / math.sqrt(len(sample))
    assert abs(sample.std().item() - 1) < 0.02


# --- exercise 1: the gradient through a chain -----------------------------------------------------

def forward(x, weights):
    """The pre-activations z_l and activations h_l of the chain h_l = sigmoid(w_l h_(l-1))."""
    zs, hs, h = [], [], x
    for w in weights:
        zs.append(w * h)
        h = sigmoid_by_hand(zs[-1])
        hs.append(h)
    return zs, hs


def chain_sigma_not_slope(x, weights):
    zs, _ = forward(x, weights)
    return math.prod(w * sigmoid_by_hand(z) for w, z in zip(weights, zs))


def chain_sum(x, weights):
    zs, _ = forward(x, weights)
    return sum(w * sigmoid_grad_by_hand(z) for w, z in zip(weights, zs))


def chain_skips_first_layer(x, weights):
    zs, _ = forward(x, weights)
    return math.prod(weights[i] * sigmoid_grad_by_hand(zs[i]) for i in range(1, len(weights)))


def chain_skips_last_layer(x, weights):
    zs, _ = forward(x, weights)
    return math.prod(weights[i] * sigmoid_grad_by_hand(zs[i]) for i in range(len(weights) - 1))


def chain_starts_at_sigma_prime_of_x(x, weights):
    zs, _ = forward(x, weights)
    gradient = sigmoid_grad_by_hand(x)
    for w, z in zip(weights, zs):
        gradient *= w * sigmoid_grad_by_hand(z)
    return gradient


def chain_peak_not_slope(x, weights):
    return math.prod(w * 0.25 for w in weights)


def chain_without_weights(x, weights):
    zs, _ = forward(x, weights)
    return math.prod(sigmoid_grad_by_hand(z) for z in zs)


def chain_slope_of_activation(x, weights):
    _, hs = forward(x, weights)
    return math.prod(w * sigmoid_grad_by_hand(h) for w, h in zip(weights, hs))


def chain_slope_of_layer_input(x, weights):
    _, hs = forward(x, weights)
    return math.prod(w * sigmoid_grad_by_hand(h) for w, h in zip(weights, [x] + hs[:-1]))


def chain_returns_every_factor(x, weights):
    zs, _ = forward(x, weights)
    return torch.tensor([w * sigmoid_grad_by_hand(z) for w, z in zip(weights, zs)])


def chain_off_by_a_little(x, weights):
    zs, _ = forward(x, weights)
    return 1.01 * math.prod(w * sigmoid_grad_by_hand(z) for w, z in zip(weights, zs))


CHAIN_MISTAKES = [
    (chain_sigma_not_slope, "multiplied sigma(z) where the chain rule needs the slope"),
    (chain_sum, "you added the layers' factors"),
    (chain_skips_first_layer, "one layer short"),
    (chain_skips_last_layer, "one layer short"),
    (chain_starts_at_sigma_prime_of_x, "a factor too many"),
    (chain_peak_not_slope, "the peak 1/4 in place of sigma'"),
    (chain_without_weights, "the weights are missing"),
    (chain_slope_of_activation, "sigma' of the activation"),
    (chain_slope_of_layer_input, "sigma' at the layer's input"),
    (chain_returns_every_factor, "should return one number"),
    (chain_off_by_a_little, "autograd gives"),
]


def test_check_chain_gradient_accepts_the_reference_and_a_by_hand_solution(lesson):
    def by_hand(x, weights):
        zs, _ = forward(x, weights)
        return math.prod(w * sigmoid_grad_by_hand(z) for w, z in zip(weights, zs))

    assert lesson.check_chain_gradient(lesson.chain_gradient) is None
    assert lesson.check_chain_gradient(by_hand) is None


@pytest.mark.parametrize("broken, message", CHAIN_MISTAKES, ids=[f.__name__ for f, _ in CHAIN_MISTAKES])
def test_check_chain_gradient_names_each_mistake(lesson, broken, message):
    with pytest.raises(AssertionError) as verdict:
        lesson.check_chain_gradient(broken)
    assert message in str(verdict.value)


def test_every_chain_slip_the_check_knows_has_its_own_message_and_a_test_above(lesson):
    messages = [message for message, _ in lesson.chain_slips(0.3, [1.5, -2.0])]
    assert len(set(messages)) == len(messages)
    for message in messages:
        assert [phrase for _, phrase in CHAIN_MISTAKES if phrase in message], message


def test_the_chain_gradient_stub_lets_the_lesson_go_on(lesson):
    def stub(x, weights):
        raise NotImplementedError("hint")

    with pytest.raises(NotImplementedError):
        lesson.check_chain_gradient(stub)


def test_chain_gradient_is_autograds_and_within_the_bound(lesson):
    generator = torch.Generator().manual_seed(3)
    for depth in (1, 2, 5, 12):
        for _ in range(5):
            weights = (torch.randn(depth, generator=generator, dtype=torch.float64) * 3).tolist()
            x = torch.randn(1, generator=generator, dtype=torch.float64).item()
            start = torch.tensor(x, dtype=torch.float64, requires_grad=True)
            h = start
            for w in weights:
                h = torch.sigmoid(w * h)
            (expected,) = torch.autograd.grad(h, start)
            answer = lesson.chain_gradient(x, weights)
            assert answer == pytest.approx(expected.item(), rel=1e-12, abs=1e-300)
            assert abs(answer) <= math.prod(abs(w) / 4 for w in weights)  # "at most |w| / 4" each


# --- exercise 2: standardize over the batch -------------------------------------------------------

def standardize_rows(z, eps=1e-5):
    return (z - z.mean(1, keepdim=True)) / torch.sqrt(z.var(1, unbiased=False, keepdim=True) + eps)


def standardize_rows_without_keepdim(z, eps=1e-5):
    return (z - z.mean(1)) / torch.sqrt(z.var(1, unbiased=False) + eps)


def standardize_whole_tensor(z, eps=1e-5):
    return (z - z.mean()) / torch.sqrt(z.var(unbiased=False) + eps)


def standardize_by_variance(z, eps=1e-5):
    return (z - z.mean(0)) / (z.var(0, unbiased=False) + eps)


def standardize_unbiased(z, eps=1e-5):
    return (z - z.mean(0)) / torch.sqrt(z.std(0) ** 2 + eps)


def standardize_without_mean(z, eps=1e-5):
    return z / torch.sqrt(z.var(0, unbiased=False) + eps)


def standardize_eps_outside(z, eps=1e-5):
    return (z - z.mean(0)) / (z.std(0, unbiased=False) + eps)


def standardize_without_eps(z, eps=1e-5):
    return (z - z.mean(0)) / z.std(0, unbiased=False)


def standardize_fixed_eps(z, eps=1e-5):
    return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5)


def standardize_in_place(z, eps=1e-5):
    z -= z.mean(0)
    return z / torch.sqrt(z.var(0, unbiased=False) + eps)


def standardize_keeps_only_the_statistics(z, eps=1e-5):
    return z.mean(0)


def standardize_scaled(z, eps=1e-5):
    return 2 * (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + eps)


STANDARDIZE_MISTAKES = [
    (standardize_rows, "layer normalization"),
    (standardize_rows_without_keepdim, "one per column, over the batch: dim 0"),
    (standardize_whole_tensor, "for the whole tensor"),
    (standardize_by_variance, "you divided by the variance"),
    (standardize_unbiased, "the unbiased variance"),
    (standardize_without_mean, "forgot to subtract the mean"),
    (standardize_eps_outside, "eps is outside the square root"),
    (standardize_without_eps, "you left eps out"),
    (standardize_fixed_eps, "ignores the eps it is given"),
    (standardize_in_place, "changed its input z in place"),
    (standardize_keeps_only_the_statistics, "should return a tensor of z's shape (8, 5)"),
    (standardize_scaled, "your result is off by up to"),
]


def test_check_standardize_accepts_the_reference_and_pytorchs_batch_norm(lesson):
    def by_pytorch(z, eps=1e-5):
        return F.batch_norm(z, None, None, training=True, eps=eps)

    assert lesson.check_standardize(lesson.standardize) is None
    assert lesson.check_standardize(by_pytorch) is None


@pytest.mark.parametrize("broken, message", STANDARDIZE_MISTAKES,
                         ids=[f.__name__ for f, _ in STANDARDIZE_MISTAKES])
def test_check_standardize_names_each_mistake(lesson, broken, message):
    with pytest.raises(AssertionError) as verdict:
        lesson.check_standardize(broken)
    assert message in str(verdict.value)


def test_every_standardize_slip_the_check_knows_has_its_own_message_and_a_test_above(lesson):
    z = torch.randn(4, 3, dtype=torch.float64)
    messages = [message for message, _ in lesson.standardize_slips(z, 0.1)]
    assert len(set(messages)) == len(messages)
    for message in messages:
        assert [phrase for _, phrase in STANDARDIZE_MISTAKES if phrase in message], message


def test_the_standardize_stub_lets_the_lesson_go_on(lesson):
    def stub(z, eps=1e-5):
        raise NotImplementedError("hint")

    with pytest.raises(NotImplementedError):
        lesson.check_standardize(stub)


@pytest.mark.parametrize("shape", [(128, 100), (2, 7), (5, 1)])
def test_standardize_is_pytorchs_batch_norm_without_gamma_and_beta(lesson, shape):
    z = torch.randn(*shape, dtype=torch.float64) * 4 + 3
    for eps in (1e-5, 0.5):
        expected = F.batch_norm(z, None, None, training=True, eps=eps)
        torch.testing.assert_close(lesson.standardize(z, eps), expected, rtol=1e-12, atol=1e-12)


def test_standardize_says_what_shape_it_wants(lesson):
    with pytest.raises(ValueError, match=r"\(batch, units\) tensor; got shape \(3, 4, 5\)"):
        lesson.standardize(torch.zeros(3, 4, 5))


# --- 6: the deep chain ------------------------------------------------------------------------------

def test_chain_gradients_are_autograds_and_match_a_hand_written_backward_pass(lesson):
    for standardized in (False, True):
        chain = lesson.run_chain(depth=6, scale=2.0, standardized=standardized, dtype=torch.float64)
        eps = 1e-5
        grad = chain["grad"][-1]
        for layer in range(5, 0, -1):  # dL/dh_{l-1} from dL/dh_l, by the chain rule written out
            h, weight = chain["act"][layer], chain["weights"][layer]
            d_pre = grad * h * (1 - h)
            if standardized:
                z = chain["act"][layer - 1] @ weight
                std = torch.sqrt(z.var(dim=0, unbiased=False) + eps)
                z_hat = (z - z.mean(dim=0)) / std
                d_pre = (d_pre - d_pre.mean(dim=0) - z_hat * (d_pre * z_hat).mean(dim=0)) / std
            grad = d_pre @ weight.T
            torch.testing.assert_close(grad, chain["grad"][layer - 1], rtol=1e-9, atol=1e-300)
        assert chain["grad_norm"] == [g.norm().item() for g in chain["grad"]]


def test_chain_top_gradient_is_the_cross_entropy_gradient(lesson):
    chain = lesson.run_chain(depth=3, dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)  # the lesson draws inputs, read-out, labels in this order
    torch.randn(128, 100, generator=generator, dtype=torch.float64)
    readout = torch.randn(100, 10, generator=generator, dtype=torch.float64) / 10
    labels = torch.randint(0, 10, (128,), generator=generator)
    probabilities = torch.softmax(chain["act"][-1] @ readout, dim=1)
    d_logits = (probabilities - F.one_hot(labels, 10)) / 128
    torch.testing.assert_close(chain["grad"][-1], d_logits @ readout.T)


@pytest.mark.parametrize("depth", [2, 5, 10, 20])
@pytest.mark.parametrize("scale", [0.25, 1.0, 4.0])
def test_plain_chain_gradient_decays_towards_the_first_layer(lesson, depth, scale):
    norms = lesson.run_chain(depth, scale)["grad_norm"]
    assert all(0 < below < above for below, above in zip(norms, norms[1:])), norms


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("depth", [2, 10, 20])
def test_standardized_chains_of_other_seeds_keep_their_gradient_too(lesson, seed, depth):
    chain = lesson.run_chain(depth, 4.0, standardized=True, seed=seed)
    norms = chain["grad_norm"]
    assert all(0.5 <= norm / norms[-1] <= 2 for norm in norms), norms
    assert lesson.chain_fraction_saturated(chain) == 0


def test_standardized_chain_does_not_care_about_the_weight_scale(lesson):
    reference = lesson.run_chain(10, 1.0, standardized=True, dtype=torch.float64)["grad_norm"]
    for scale in (0.25, 4.0, 16.0):
        norms = lesson.run_chain(10, scale, standardized=True, dtype=torch.float64)["grad_norm"]
        assert norms == pytest.approx(reference, rel=0.01)  # only epsilon breaks the invariance
    tiny_eps = lesson.run_chain(10, 0.25, standardized=True, dtype=torch.float64, eps=1e-12)["grad_norm"]
    assert tiny_eps == pytest.approx(reference, rel=1e-3)


def test_float32_chains_tell_the_float64_story(lesson):
    ratio32 = lesson.first_to_last_ratio(lesson.run_chain(10, 1.0))
    ratio64 = lesson.first_to_last_ratio(lesson.run_chain(10, 1.0, dtype=torch.float64))
    assert ratio32 == pytest.approx(ratio64, rel=1e-3)


def test_the_bisection_finds_ratio_one(lesson):
    answer = lesson.scale_for_constant_gradient(depth=10)
    assert lesson.first_to_last_ratio(lesson.run_chain(10, answer)) == pytest.approx(1, abs=1e-3)
    below, above = lesson.run_chain(10, answer / 1.5), lesson.run_chain(10, answer * 1.5)
    assert lesson.first_to_last_ratio(below) < 0.5 and lesson.first_to_last_ratio(above) > 2


def test_bad_chain_arguments_say_what_is_expected(lesson):
    with pytest.raises(ValueError, match="depth >= 1"):
        lesson.run_chain(depth=0)
    with pytest.raises(ValueError, match="scale > 0"):
        lesson.run_chain(scale=0.0)


# --- the slider panels ----------------------------------------------------------------------------

MOVES = [("distribution_panel", "mean", 2.5), ("distribution_panel", "std", 4.0),
         ("chain_panel", "depth", 20), ("chain_panel", "scale", 0.25),
         ("chain_panel", "standardized", True)]


@pytest.mark.parametrize("name, control, value", MOVES)
def test_panels_redraw_deterministically_and_visibly_when_a_control_moves(lesson, name, control, value):
    panel = getattr(lesson, name)
    defaults = panel.values()
    moved = {**defaults, control: value}
    fig, update = panel.build()
    update(**defaults)
    a = lesson.figure_png(fig)
    update(**moved)
    b = lesson.figure_png(fig)
    update(**defaults)
    fresh_fig, fresh_update = panel.build()
    fresh_update(**defaults)
    assert a == lesson.figure_png(fig) == lesson.figure_png(fresh_fig)
    assert a != b


@pytest.mark.parametrize("name", ["distribution_panel", "chain_panel"])
def test_panels_fit_the_notebook_column(lesson, name):
    panel = getattr(lesson, name)
    fig, _ = panel.build()
    assert fig.get_size_inches()[0] * fig.dpi <= 830
    widths = [int(control.layout.width.removesuffix("px")) for control in panel.controls.values()]
    assert all(width <= 400 for width in widths)  # two controls side by side in the column


def test_distribution_panel_shows_the_computed_numbers(lesson):
    fig, update = lesson.make_distribution_panel()
    update(mean=0.0, std=5.0)
    text = " ".join(t.get_text() for t in fig.texts)
    x = 5.0 * lesson.STANDARD_NORMAL_SAMPLE
    assert f"{lesson.fraction_saturated(x):.1%} of the units saturated" in text
    assert f"= {lesson.mean_gradient_factor(x):.4f}" in text
    with pytest.raises(ValueError, match="std must be positive"):
        update(mean=0.0, std=0.0)


def test_chain_panel_headline_states_both_ratios(lesson):
    fig, update = lesson.make_chain_panel()
    update(depth=10, scale=1.0, standardized=False)
    text = " ".join(t.get_text() for t in fig.texts)
    plain = lesson.first_to_last_ratio(lesson.run_chain(10, 1.0))
    standardized = lesson.first_to_last_ratio(lesson.run_chain(10, 1.0, standardized=True))
    assert f"plain {plain:.3g}, standardized {standardized:.3g}" in text


def test_histograms_count_every_value_once_and_put_outliers_in_the_edge_bins(lesson):
    values = torch.tensor([-100.0, -20.0, 0.0, 0.1, 19.99, 20.0, 1e9], dtype=torch.float64)
    fractions = lesson.histogram(values, lesson.X_EDGES)
    assert fractions.sum().item() == pytest.approx(1.0)
    assert fractions[0].item() == pytest.approx(2 / 7) and fractions[-1].item() == pytest.approx(3 / 7)


# --- the notebook as shipped ---------------------------------------------------------------------

def test_one_header_and_one_footer(lesson):
    cells = nbformat.read(notebook_path("01"), as_version=4).cells
    generated = [cell.get("id") for cell in cells if is_generated(cell)]
    assert generated == ["series-header", "series-footer"]
    assert cells[0].get("id") == "series-header" and cells[-1].get("id") == "series-footer"


# --- every number the prose states, against the lesson's results ----------------------------------

@pytest.fixture(scope="module")
def printed():
    nb, _, _ = run_lesson("01", True)  # the same call (and cache key) as test_notebooks_run.py
    return outputs_text(nb)


@pytest.fixture(scope="module")
def prose():
    cells = nbformat.read(notebook_path("01"), as_version=4).cells
    text = "\n".join(cell.source for cell in cells if cell.cell_type == "markdown")
    return re.sub(r"\s+", " ", text)


STATED = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?:\s*(?:\\cdot|·)\s*10\^\{(-?\d+)\})?(%?)")


def stated_numbers(text, label, count=1):
    """The first `count` numbers written after `label` in `text`, each as (value, half a unit of
    its last digit): '83%' -> (0.83, 0.005), '$2.3 \\cdot 10^{-6}$' -> (2.3e-6, 5e-8)."""
    start = text.find(label)
    assert start >= 0, f"the lesson no longer says {label!r}"
    found = []
    for match in STATED.finditer(text, start + len(label)):
        digits, exponent, percent = match.groups()
        digits = digits.replace(",", "")
        decimals = len(digits.partition(".")[2])
        scale = 10.0 ** int(exponent or 0) / (100 if percent else 1)
        found.append((float(digits) * scale, 0.5 * 10.0**-decimals * scale))
        if len(found) == count:
            return found
    raise AssertionError(f"fewer than {count} numbers after {label!r}")


def says(text, label, value, count=1, index=0):
    """The number stated after `label` is `value` as rounded to the digits the text gives."""
    stated, half_unit = stated_numbers(text, label, count)[index]
    assert abs(value - stated) <= half_unit * (1 + 1e-9), (label, stated, value)


def line_starting(printed, pattern):
    """The first printed line that matches `pattern` at its start."""
    return next(line for line in printed.splitlines() if re.match(pattern, line))


def test_section_1_states_the_printed_values_of_sigma(lesson, prose, printed):
    def row(x):
        line = line_starting(printed, rf"x =\s+{x}:")
        share = float(re.search(r"([\d.]+)% of the peak", line).group(1)) / 100
        return printed_number(line, "sigma(x) ="), printed_number(line, "sigma'(x) ="), share

    sigma, slope, share = row(4)
    assert sigma == round(lesson.sigmoid(4.0).item(), 4)
    assert slope == round(lesson.sigmoid_grad(4.0).item(), 4)
    says(prose, r"$\sigma(4) = ", sigma)
    says(prose, r"$\sigma'(4) = ", slope)
    says(prose, r"$\sigma'(4) = ", share, count=2, index=1)  # "about 7% of the peak"
    _, slope, share = row(6)
    says(prose, "At $|x| = 6$ it is $", slope)
    says(prose, "At $|x| = 6$ it is $", share, count=2, index=1)
    says(prose, "its derivative is below ", lesson.SATURATION_LEVEL)


def test_section_2_states_the_printed_cutoffs(lesson, prose, printed):
    series = printed_number(line_starting(printed, r"sigma'\(x\) <\s+1\.0%"), "|x| >")
    tenth = printed_number(line_starting(printed, r"sigma'\(x\) <\s+10\.0%"), "|x| >")
    assert series == round(lesson.SATURATION_CUTOFF, 4)
    says(prose, 'So "saturated" means $|x| > ', series)
    says(prose, "the 10% line sits at $|x| > ", tenth)


def test_section_3_states_the_printed_sample_estimates(lesson, prose, printed):
    def estimates(mean, std):
        line = line_starting(printed, re.escape(f"x ~ N({mean}, {std}^2)"))
        x = mean + std * lesson.STANDARD_NORMAL_SAMPLE
        assert printed_number(line, "mean gradient factor") == round(lesson.mean_gradient_factor(x), 4)
        return printed_number(line, "saturated"), printed_number(line, "mean gradient factor")

    saturated, factor = estimates(0, 1)
    assert saturated == 0  # "no unit saturates"
    says(prose, "the sigmoid passes on average $", factor)
    says(prose, "of the gradient, ", factor / lesson.SIGMOID_GRAD_PEAK)
    says(prose, "there it passes back ", factor / lesson.SIGMOID_GRAD_PEAK)  # the summary
    saturated, factor = estimates(0, 5)
    says(prose, "Widen the spread to $s = 5$ and ", saturated)
    says(prose, "the mean factor drops to $", factor)
    says(prose, "the mean factor drops to $", factor / lesson.SIGMOID_GRAD_PEAK, count=2, index=1)
    saturated, factor = estimates(4, 1)
    says(prose, "instead ($s = 1$): only ", saturated)
    says(prose, "the factor falls to $", factor)
    says(prose, "the factor falls to $", factor / lesson.SIGMOID_GRAD_PEAK, count=2, index=1)
    says(prose, "$\\sigma'(x)$ over the ", len(lesson.STANDARD_NORMAL_SAMPLE))


def test_the_printed_half_saturated_spread_saturates_half(lesson, printed):
    spread = printed_number(printed, "half of the units are saturated at spread s =")
    assert (lesson.gaussian_fraction_saturated(0, spread - 0.005) < 0.5
            < lesson.gaussian_fraction_saturated(0, spread + 0.005))
    exact = lesson.SATURATION_CUTOFF / statistics.NormalDist().inv_cdf(0.75)
    assert round(exact, 2) == spread


def test_section_4_states_the_printed_chain_factors_and_bounds(lesson, prose, printed):
    def row(weight):
        line = line_starting(printed, f"10 layers, every weight {weight}:")
        return printed_number(line, "dh/dx ="), printed_number(line, "bound (w/4)^10 =")

    (factor_1, bound_1), (factor_4, bound_4), (factor_8, bound_8) = row(1), row(4), row(8)
    assert factor_1 == float(f"{lesson.chain_gradient(0.0, [1.0] * 10):.2e}")
    says(prose, "With unit weights the chain passes back $", factor_1)
    says(prose, "less than half of the bound $0.25^{10} = ", bound_1)
    assert factor_1 < bound_1 / 2  # "less than half of the bound"
    says(prose, "At weight 4 the bound is ", bound_4)
    says(prose, "At weight 4 the bound is ", factor_4, count=2, index=1)
    says(prose, "at weight 8 the bound is $", bound_8)
    says(prose, "at weight 8 the bound is $", factor_8, count=2, index=1)


def test_section_6_states_the_printed_chain_results(lesson, prose, printed):
    plain = printed_number(printed, "first-to-last ratio: plain")
    assert plain == float(f"{lesson.first_to_last_ratio(lesson.run_chain(10, 1.0)):.2e}")
    says(prose, "the first layer receives $", plain)
    says(prose, "a plain chain of 10 layers passes $", plain)  # the summary
    per_layer = printed_number(printed, "scales the gradient by")
    says(prose, "each layer multiplies the gradient by about $", per_layer)
    says(prose, "Standardized, the ratio is $", printed_number(printed, ", standardized"))
    assert printed_number(printed, "saturated pre-activations: plain") == 0  # "Nothing is saturated"


def test_the_standardized_grid_is_stated_and_covers_the_panels_scales(lesson, prose, printed):
    lines = [line for line in printed.splitlines() if line.startswith("standardized, scale")]
    low = min(printed_number(line, "gradient norm is") for line in lines)
    high = max(float(re.search(r"to ([\d.]+) times", line).group(1)) for line in lines)
    says(prose, "Every layer keeps between ", low)
    says(prose, "Every layer keeps between ", high, count=2, index=1)
    assert high <= 2 and low >= 0.5  # "the gradient keeps its size"
    assert all(printed_number(line, "saturated at most") == 0 for line in lines)
    scales = sorted(printed_number(line, "standardized, scale") for line in lines)
    control = lesson.chain_panel.controls["scale"]
    assert (scales[0], scales[-1]) == (control.base ** control.min, control.base ** control.max)
    says(prose, "weight scales from 1/", 1 / scales[0])
    says(prose, "weight scales from 1/4 to ", scales[-1])
    says(prose, "every depth from 1 to ", lesson.chain_panel.controls["depth"].max)


def test_going_deeper_states_the_printed_bisection_result(prose, printed):
    scale = printed_number(printed, "first-to-last ratio 1 at weight scale")
    saturated = printed_number(printed, "  saturated pre-activations:")
    near = printed_number(printed, "activations within 0.05 of 0 or 1:")
    assert round(scale) == 10  # "about ten times larger"
    says(prose, "about ten times larger (scale ", scale)
    says(prose, "so spread out that ", saturated)
    says(prose, "two thirds of the activations (", near)
    assert abs(near - 2 / 3) < 0.01  # "two thirds"


def test_readme_paragraph_states_the_lessons_ratio_and_cutoff(lesson, printed):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = readme[readme.index("**01 · "):readme.index("**02 · ")]
    superscripts = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")
    mantissa, exponent = re.search(r"gets ([\d.]+)·10([⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+)", paragraph).groups()
    stated = float(mantissa) * 10.0 ** int(exponent.translate(superscripts))
    plain = printed_number(printed, "first-to-last ratio: plain")
    assert abs(plain - stated) <= 0.05 * 10.0 ** int(exponent.translate(superscripts))
    cutoff = float(re.search(r"\|x\| > ([\d.]+)", paragraph).group(1))
    assert cutoff == round(lesson.SATURATION_CUTOFF, 2)


def test_saved_figures_fit_the_column(printed):
    _, _, folder = run_lesson("01", True)
    for path in sorted((folder / "figures").glob("01-*.png")):
        width = struct.unpack(">I", path.read_bytes()[16:20])[0]  # the PNG header's IHDR width
        assert width <= 830, (path.name, width)
