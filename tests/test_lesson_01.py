"""Lesson 01, sigmoid saturation: every number the text states, the taught functions against independent
computations (autograd, the normal CDF, quadrature, a hand-written backward pass), and the slider panels."""

import math
import re
import statistics

import numpy as np
import pytest
import torch
from lessons import load_lesson, outputs_text, run_lesson


@pytest.fixture(scope="module")
def lesson():
    return load_lesson("01")


def sigmoid_grad_by_hand(x):
    """sigma'(x) = e^-|x| / (1 + e^-|x|)^2, written out independently of the lesson (it is even)."""
    e = math.exp(-abs(x))
    return e / (1 + e) ** 2


def normal_expectation(f, mean, std, step=0.002):
    """E[f(x)] for x ~ N(mean, std^2): Simpson's rule in x over mean +- 14 std (numpy, not the lesson)."""
    half = 14 * std
    n = int(math.ceil(2 * half / min(step, std / 50) / 2)) * 2
    x = np.linspace(mean - half, mean + half, n + 1)
    density = np.exp(-((x - mean) / std) ** 2 / 2) / (std * math.sqrt(2 * math.pi))
    y = f(x) * density
    h = (x[-1] - x[0]) / n
    return h / 3 * (y[0] + y[-1] + 4 * y[1:-1:2].sum() + 2 * y[2:-1:2].sum())


def np_sigmoid_grad(x):
    e = np.exp(-np.abs(x))
    return e / (1 + e) ** 2


# --- 1. sigma and sigma' ---------------------------------------------------------------------------

def test_sigmoid_grad_equals_autograd(lesson):
    x = torch.linspace(-40, 40, 2001, dtype=torch.float64, requires_grad=True)
    torch.sigmoid(x).sum().backward()
    torch.testing.assert_close(lesson.sigmoid_grad(x.detach()), x.grad, rtol=1e-12, atol=1e-300)


def test_stated_values_of_sigma_and_its_derivative(lesson):
    assert lesson.sigmoid_grad(0.0).item() == 0.25 == lesson.SIGMOID_GRAD_PEAK
    grid = torch.linspace(-30, 30, 6001, dtype=torch.float64)
    assert lesson.sigmoid_grad(grid).max().item() <= 0.25  # the peak
    assert grid[lesson.sigmoid_grad(grid).argmax()].abs().item() < 1e-9  # at x = 0
    assert f"{lesson.sigmoid_grad(4.0).item():.4f}" == "0.0177"
    assert f"{lesson.sigmoid_grad(6.0).item():.4f}" == "0.0025"
    assert f"{lesson.sigmoid(4.0).item():.3f}" == "0.982"
    assert round(lesson.sigmoid_grad(4.0).item() / 0.25, 2) == 0.07  # "about 7% of the peak"
    assert round(lesson.sigmoid_grad(6.0).item() / 0.25, 2) == 0.01  # "1% of the peak"
    assert lesson.sigmoid_grad(-4.0).item() == pytest.approx(lesson.sigmoid_grad(4.0).item(), rel=1e-14)
    for x in (0.0, 1.0, 4.0, 6.0, 10.0):
        assert lesson.sigmoid_grad(x).item() == pytest.approx(sigmoid_grad_by_hand(x), rel=1e-12)


# --- 2. the saturation cutoff ----------------------------------------------------------------------

@pytest.mark.parametrize("level, stated", [(0.10, "3.64"), (0.01, "5.99"), (0.001, "8.29")])
def test_saturation_cutoff_solves_sigma_prime_equals_level_times_peak(lesson, level, stated):
    low, high = 0.0, 50.0  # bisection on the hand-written sigma', which falls on x > 0
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if sigmoid_grad_by_hand(middle) > level * 0.25 else (low, middle)
    cutoff = lesson.saturation_cutoff(level)
    assert cutoff == pytest.approx(low, abs=1e-10)
    assert f"{cutoff:.2f}" == stated
    assert sigmoid_grad_by_hand(cutoff + 1e-6) < level * 0.25 < sigmoid_grad_by_hand(cutoff - 1e-6)


def test_the_series_threshold_is_one_percent_and_bad_levels_are_refused(lesson):
    assert lesson.SATURATION_LEVEL == 0.01
    assert lesson.SATURATION_CUTOFF == lesson.saturation_cutoff(0.01)
    assert f"{lesson.SATURATION_CUTOFF:.4f}" == "5.9864"
    for bad in (0, 1, -0.5, 2):
        with pytest.raises(ValueError, match="between 0 and 1"):
            lesson.saturation_cutoff(bad)


# --- 3. saturation as a function of the pre-activation distribution --------------------------------

SETTINGS = [(0, 1), (0, 3), (0, 5), (4, 1), (-2, 0.5), (1, 8), (0, 8.875)]


@pytest.mark.parametrize("mean, std", SETTINGS)
def test_exact_fraction_saturated_matches_the_normal_cdf(lesson, mean, std):
    normal, c = statistics.NormalDist(mean, std), lesson.SATURATION_CUTOFF
    expected = normal.cdf(-c) + (1 - normal.cdf(c))
    assert lesson.gaussian_fraction_saturated(mean, std) == pytest.approx(expected, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("mean, std", SETTINGS)
def test_exact_mean_gradient_matches_independent_quadrature(lesson, mean, std):
    expected = normal_expectation(np_sigmoid_grad, mean, std)
    assert lesson.gaussian_mean_gradient(mean, std) == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("mean, std", SETTINGS)
def test_sample_estimates_agree_with_the_exact_values_within_sampling_error(lesson, mean, std):
    x = mean + std * lesson.STANDARD_NORMAL_SAMPLE
    n = len(x)
    p = lesson.gaussian_fraction_saturated(mean, std)
    assert abs(lesson.fraction_saturated(x) - p) <= 4.5 * math.sqrt(p * (1 - p) / n) + 1e-12
    exact = normal_expectation(np_sigmoid_grad, mean, std)
    spread = math.sqrt(normal_expectation(lambda t: np_sigmoid_grad(t) ** 2, mean, std) - exact**2)
    assert abs(lesson.mean_gradient_factor(x) - exact) <= 4.5 * spread / math.sqrt(n)


def test_the_sample_is_fixed_and_standard_normal(lesson):
    sample = lesson.standard_normal_sample()
    assert torch.equal(sample, lesson.STANDARD_NORMAL_SAMPLE) and sample.dtype == torch.float64
    assert len(sample) == 50_000  # "over the 50,000 samples"
    assert abs(sample.mean().item()) < 4.5 / math.sqrt(len(sample))
    assert abs(sample.std().item() - 1) < 0.02


def test_fraction_saturated_counts_by_hand(lesson):
    x = torch.tensor([0.0, 5.9, -5.9, 6.0, -6.0, 100.0, -1e9, 3.0])
    assert lesson.fraction_saturated(x) == 4 / 8
    assert lesson.mean_gradient_factor(torch.tensor([0.0, 0.0])) == 0.25


def test_numbers_stated_in_section_3(lesson):
    exact = lesson.gaussian_mean_gradient
    assert f"{exact(0, 1):.3f}" == "0.207" and f"{exact(0, 1):.4f}" == "0.2066"
    assert f"{exact(0, 1) / 0.25:.0%}" == "83%"
    assert lesson.gaussian_fraction_saturated(0, 1) < 1e-8  # "no unit saturates"
    assert f"{lesson.gaussian_fraction_saturated(0, 5):.0%}" == "23%"
    assert f"{exact(0, 5):.3f}" == "0.075" and f"{exact(0, 5) / 0.25:.0%}" == "30%"
    assert f"{lesson.gaussian_fraction_saturated(4, 1):.0%}" == "2%"
    assert f"{exact(4, 1):.3f}" == "0.026" and f"{exact(4, 1) / 0.25:.0%}" == "11%"
    # the sample estimates the notebook prints round to the same statements
    for mean, std, factor in [(0, 1, 0.207), (0, 5, 0.075), (4, 1, 0.026)]:
        x = mean + std * lesson.STANDARD_NORMAL_SAMPLE
        assert lesson.mean_gradient_factor(x) == pytest.approx(factor, abs=0.0015)


def test_half_saturated_spread(lesson):
    answer = lesson.SATURATION_CUTOFF / statistics.NormalDist().inv_cdf(0.75)
    assert lesson.gaussian_fraction_saturated(0, answer) == pytest.approx(0.5, abs=1e-12)
    assert f"{answer:.3f}" == "8.876"


# --- 4. the deep chain -----------------------------------------------------------------------------

def test_chain_gradients_are_autograds_and_match_a_hand_written_backward_pass(lesson):
    for standardize in (False, True):
        chain = lesson.run_chain(depth=6, scale=2.0, standardize=standardize, dtype=torch.float64)
        eps = 1e-5
        grad = chain["grad"][-1]
        for layer in range(5, 0, -1):  # dL/dh_{l-1} from dL/dh_l, by the chain rule written out
            h, weight = chain["act"][layer], chain["weights"][layer]
            d_pre = grad * h * (1 - h)
            if standardize:
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
    d_logits = (probabilities - torch.nn.functional.one_hot(labels, 10)) / 128
    torch.testing.assert_close(chain["grad"][-1], d_logits @ readout.T)


@pytest.mark.parametrize("depth", [2, 5, 10, 20])
@pytest.mark.parametrize("scale", [0.25, 0.5, 1.0, 2.0, 4.0])
def test_plain_chain_gradient_decays_towards_the_first_layer(lesson, depth, scale):
    norms = lesson.run_chain(depth, scale)["grad_norm"]
    assert all(0 < below < above for below, above in zip(norms, norms[1:])), norms
    assert norms[0] / norms[-1] < 0.7


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("depth", [1, 2, 5, 10, 20])
@pytest.mark.parametrize("scale", [0.25, 1.0, 4.0, 16.0])
def test_standardized_chain_keeps_every_layer_within_a_factor_of_two_of_the_last(lesson, seed, depth, scale):
    norms = lesson.run_chain(depth, scale, standardize=True, seed=seed)["grad_norm"]
    assert all(0.5 <= norm / norms[-1] <= 2 for norm in norms), norms
    assert lesson.chain_fraction_saturated(lesson.run_chain(depth, scale, True, seed=seed)) == 0


def test_standardized_chain_does_not_care_about_the_weight_scale(lesson):
    reference = lesson.run_chain(10, 1.0, standardize=True, dtype=torch.float64)["grad_norm"]
    for scale in (0.25, 4.0, 16.0):
        norms = lesson.run_chain(10, scale, standardize=True, dtype=torch.float64)["grad_norm"]
        assert norms == pytest.approx(reference, rel=0.01)  # only epsilon breaks the invariance
    tiny_eps = lesson.run_chain(10, 0.25, standardize=True, dtype=torch.float64, eps=1e-12)["grad_norm"]
    assert tiny_eps == pytest.approx(reference, rel=1e-3)


def test_numbers_stated_for_the_default_chains(lesson):
    plain, standardized = lesson.run_chain(10, 1.0), lesson.run_chain(10, 1.0, standardize=True)
    ratio = lesson.first_to_last_ratio(plain)
    assert f"{ratio:.1e}" == "2.3e-06"
    assert f"{ratio ** (1 / 9):.2f}" == "0.24"
    assert f"{lesson.first_to_last_ratio(standardized):.1f}" == "1.2"
    assert lesson.chain_fraction_saturated(plain) == 0  # "nothing is saturated here"
    # float32 (what the panels use) and float64 tell the same story
    plain64 = lesson.run_chain(10, 1.0, dtype=torch.float64)
    assert lesson.first_to_last_ratio(plain64) == pytest.approx(ratio, rel=1e-3)


def test_weight_scale_exercise_answer(lesson):
    answer = lesson.scale_for_constant_gradient(depth=10)
    chain = lesson.run_chain(10, answer)
    assert lesson.first_to_last_ratio(chain) == pytest.approx(1, abs=1e-3)
    assert 9 <= answer <= 11  # "about ten times larger"
    assert 0.35 <= lesson.chain_fraction_saturated(chain) <= 0.45  # "about 40%"
    acts = torch.cat([h.flatten() for h in chain["act"]])
    near = ((acts < 0.05) | (acts > 0.95)).float().mean().item()
    assert 0.6 <= near <= 0.72  # "two thirds"
    # the ratio rises with the scale through the answer, so bisection finds it
    below, above = lesson.run_chain(10, answer / 1.5), lesson.run_chain(10, answer * 1.5)
    assert lesson.first_to_last_ratio(below) < 0.5 and lesson.first_to_last_ratio(above) > 2


def test_bad_chain_arguments_say_what_is_expected(lesson):
    with pytest.raises(ValueError, match="depth >= 1"):
        lesson.run_chain(depth=0)
    with pytest.raises(ValueError, match="scale > 0"):
        lesson.run_chain(scale=0.0)


# --- the slider panels -----------------------------------------------------------------------------

PANELS = {
    "distribution": ("make_distribution_panel", {"mean": 0.0, "std": 1.0}, {"mean": 2.5, "std": 4.0}),
    "chain": ("make_chain_panel", {"depth": 10, "scale": 1.0, "standardize": False},
              {"depth": 10, "scale": 1.0, "standardize": True}),
    "chain-depth": ("make_chain_panel", {"depth": 10, "scale": 1.0, "standardize": False},
                    {"depth": 20, "scale": 0.25, "standardize": False}),
}


@pytest.mark.parametrize("name", PANELS)
def test_slider_updates_are_deterministic_and_visible(lesson, name):
    maker, first, second = PANELS[name]
    fig, update = getattr(lesson, maker)()
    update(**first)
    a = lesson.figure_png(fig)
    update(**second)
    b = lesson.figure_png(fig)
    update(**first)
    c = lesson.figure_png(fig)
    fresh_fig, fresh_update = getattr(lesson, maker)()
    fresh_update(**first)
    assert a == c == lesson.figure_png(fresh_fig)
    assert a != b


def test_distribution_panel_shows_the_computed_numbers(lesson):
    fig, update = lesson.make_distribution_panel()
    update(mean=0.0, std=5.0)
    text = " ".join(t.get_text() for t in fig.texts)
    x = 5.0 * lesson.STANDARD_NORMAL_SAMPLE
    assert f"saturated {lesson.fraction_saturated(x):.1%}" in text
    assert f"= {lesson.mean_gradient_factor(x):.4f}" in text
    with pytest.raises(ValueError, match="std must be positive"):
        update(mean=0.0, std=0.0)


def test_chain_panel_headline_states_both_ratios(lesson):
    fig, update = lesson.make_chain_panel()
    update(depth=10, scale=1.0, standardize=False)
    text = " ".join(t.get_text() for t in fig.texts)
    assert "plain 2.3e-06" in text and "standardized 1.2" in text


# --- the executed notebook -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def printed():
    nb, _, _ = run_lesson("01", True)  # the same call (and cache key) as test_notebooks_run.py
    return outputs_text(nb)


def test_notebook_prints_the_stated_numbers(printed):
    for expected in ("sigma'(x) = 0.2500", "sigma(x) = 0.9820   sigma'(x) = 0.0177", "sigma'(x) = 0.0025",
                     "|x| > 5.9864", "|x| > 3.6369", "first-to-last ratio: plain 2.29e-06, standardized 1.25",
                     "scales the gradient by 0.236"):
        assert expected in printed, expected


def test_notebook_exercises_check_without_raising(printed):
    assert "weight scale 1: first-to-last ratio 2.29e-06. Not yet" in printed
    assert re.search(r"first-to-last ratio 1 at weight scale (9\.9|10\.0)\d", printed)
    assert "At s = 5, 23.1% of the units are saturated, not 50%." in printed


def test_notebook_states_its_redraw_medians(printed):
    found = re.findall(r"median redraw (\d+) ms", printed)
    assert len(found) == 2
