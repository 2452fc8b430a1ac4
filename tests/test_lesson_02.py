"""Lesson 02: feature scale and the shape of the loss. The lesson's own functions, checked against
torch (eigvalsh, autograd, torch.optim.SGD) and against the theory the lesson states; then the
numbers the executed notebook prints, and the explorer panel's redraw."""

import io
import math
import re
import warnings

import matplotlib
import matplotlib.image
import nbformat
import pytest
import torch
from lessons import load_lesson, notebook_path, outputs_text, run_lesson

matplotlib.use("Agg")
L = load_lesson("02")
RATIOS = [0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 31.6, 100.0]
START = torch.tensor([-2.5, 2.0], dtype=torch.float64)


# --- the data and the loss -------------------------------------------------------------------------

@pytest.mark.parametrize("ratio", RATIOS)
def test_features_have_exactly_the_scales_and_correlation_asked_for(ratio):
    x = L.make_features(ratio)
    assert x.shape == (L.N_SAMPLES, 2)
    assert torch.allclose(x.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(x.std(0, correction=0), torch.tensor([1.0, ratio], dtype=torch.float64), rtol=1e-12)
    assert torch.corrcoef(x.T)[0, 1].item() == pytest.approx(L.CORRELATION, abs=1e-12)


def test_standardized_features_do_not_depend_on_the_ratio():
    reference = L.standardize(L.make_features(1.0))
    for ratio in RATIOS:
        assert torch.allclose(L.standardize(L.make_features(ratio)), reference, atol=1e-12)


def test_the_same_fit_in_both_units():
    y = L.make_targets()
    raw = L.optimum(L.make_features(10.0), y)
    standardized = L.optimum(L.standardize(L.make_features(10.0)), y)
    # "the raw second weight is ten times smaller because its feature is ten times larger"
    assert torch.allclose(raw * torch.tensor([1.0, 10.0], dtype=torch.float64), standardized, rtol=1e-10)
    true_weights = torch.tensor(L.TRUE_WEIGHTS, dtype=torch.float64)
    assert torch.allclose(standardized, true_weights, atol=0.05)  # the fit recovers the weights behind y


def test_bad_input_gets_a_clear_message():
    with pytest.raises(ValueError, match="positive"):
        L.make_features(0.0)
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        L.standardize(torch.zeros(10, 3))
    with pytest.raises(ValueError, match="2x2"):
        L.eigenvalues_2x2(torch.eye(3))
    with pytest.raises(ValueError, match="symmetric"):
        L.eigenvalues_2x2(torch.tensor([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"\(2, 2\) first-layer weight"):
        L.hidden_features(L.make_features(1.0), torch.zeros(3, 2))


@pytest.mark.parametrize("ratio", [1.0, 10.0])
def test_gradient_and_hessian_are_the_derivatives_of_the_loss(ratio):
    x, y = L.make_features(ratio), L.make_targets()
    w = torch.tensor([0.3, -1.7], dtype=torch.float64, requires_grad=True)
    L.mse_loss(x, y, w).backward()
    assert torch.allclose(w.grad, L.mse_gradient(x, y, w.detach()), rtol=1e-12, atol=1e-12)
    autograd_hessian = torch.autograd.functional.hessian(lambda v: L.mse_loss(x, y, v), w.detach())
    assert torch.allclose(autograd_hessian, L.hessian(x), rtol=1e-12)
    # the gradient is H w - b, and it vanishes at w*
    h, b = L.hessian(x), L.linear_term(x, y)
    assert torch.allclose(L.mse_gradient(x, y, w.detach()), h @ w.detach() - b, atol=1e-12)
    assert L.mse_gradient(x, y, L.optimum(x, y)).abs().max() < 1e-12


# --- eigenvalues, κ, the step sizes ---------------------------------------------------------------

@pytest.mark.parametrize("standardized", [False, True])
@pytest.mark.parametrize("ratio", RATIOS)
def test_eigenvalues_kappa_and_stable_step_match_a_direct_eigendecomposition(ratio, standardized):
    h, _, _ = L.problem(ratio, standardized)
    reference = torch.linalg.eigvalsh(h)
    smallest, largest = L.eigenvalues_2x2(h)
    assert smallest == pytest.approx(reference[0].item(), rel=1e-10)
    assert largest == pytest.approx(reference[1].item(), rel=1e-10)
    assert L.condition_number(h) == pytest.approx((reference[1] / reference[0]).item(), rel=1e-10)
    assert L.largest_stable_step(h) == pytest.approx(2 / reference[1].item(), rel=1e-10)
    assert L.best_step(h) == pytest.approx(2 / reference.sum().item(), rel=1e-10)


def test_eigenvalues_of_random_symmetric_matrices():
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        a = torch.randn(2, 2, generator=generator, dtype=torch.float64)
        h = a @ a.T * torch.rand(1, generator=generator, dtype=torch.float64) * 100
        assert torch.allclose(torch.tensor(L.eigenvalues_2x2(h), dtype=torch.float64),
                              torch.linalg.eigvalsh(h), rtol=1e-9, atol=1e-12)


def test_the_numbers_the_text_states_about_the_hessian():
    raw, _, _ = L.problem(10.0)
    # H = [[1, 0.2·10], [0.2·10, 100]] exactly; κ ≈ 104, "about 100 along w2 and about 1 along w1"
    assert torch.allclose(raw, torch.tensor([[1.0, 2.0], [2.0, 100.0]], dtype=torch.float64), atol=1e-10)
    assert L.condition_number(raw) == pytest.approx(104.25, abs=0.05)
    standardized, _, _ = L.problem(10.0, standardized=True)
    assert L.eigenvalues_2x2(standardized) == pytest.approx((0.8, 1.2), abs=1e-12)
    assert L.condition_number(standardized) == pytest.approx(1.5, abs=1e-10)
    # exercise 1's solution: H = [[1, 1], [1, 25]], λ_max = 13 + √145
    assert L.exercise_limit_answer() == pytest.approx(2 / (13 + math.sqrt(145)), rel=1e-12)


# --- gradient descent -------------------------------------------------------------------------------

@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_gradient_descent_is_torch_optim_sgd(momentum):
    x, y = L.make_features(10.0), L.make_targets()
    h, b = L.hessian(x), L.linear_term(x, y)
    lr = 0.5 * L.largest_stable_step(h)
    w0 = torch.tensor([0.7, -0.4], dtype=torch.float64)
    path = L.gradient_descent(h, b, w0, lr, 50, momentum)
    w = w0.clone().requires_grad_(True)
    optimizer = torch.optim.SGD([w], lr=lr, momentum=momentum)
    for step in range(1, 51):
        optimizer.zero_grad()
        L.mse_loss(x, y, w).backward()
        optimizer.step()
        assert torch.allclose(path[step], w.detach(), rtol=1e-10, atol=1e-12), step


@pytest.mark.parametrize("ratio", [1.0, 3.0, 10.0, 31.6])
def test_best_step_converges_at_exactly_the_theoretical_rate(ratio):
    h, b, w_star = L.problem(ratio)
    kappa = L.condition_number(h)
    rate = L.best_rate(kappa)
    assert L.rate_theory(h, L.best_step(h)) == pytest.approx(rate, rel=1e-9)
    path = L.gradient_descent(h, b, w_star + START, L.best_step(h), 30)
    assert L.measured_rate(path, w_star) == pytest.approx(rate, rel=1e-6)
    measured = L.steps_to_tolerance(h, b, w_star + START, L.best_step(h))
    assert abs(measured - L.theory_steps(rate)) <= 1
    assert measured == pytest.approx(kappa / 2 * math.log(1 / L.TOLERANCE), rel=0.35)  # ~ (κ/2) ln(1/ε)


def test_the_safe_step_one_over_lambda_max_is_about_twice_as_slow_and_theory_bounds_it():
    h, b, w_star = L.problem(10.0)
    lr = 1 / L.eigenvalues_2x2(h)[1]
    safe = L.steps_to_tolerance(h, b, w_star + START, lr)
    best = L.steps_to_tolerance(h, b, w_star + START, L.best_step(h))
    assert 1.7 * best < safe <= L.theory_steps(L.rate_theory(h, lr))


def test_just_below_the_limit_is_barely_slower_than_the_best_step():
    h, b, w_star = L.problem(10.0)
    best = L.steps_to_tolerance(h, b, w_star + START, L.best_step(h))
    edge = L.steps_to_tolerance(h, b, w_star + START, 0.99 * L.largest_stable_step(h))
    assert best == 361 and 0.95 * best <= edge <= 1.05 * best
    kappa = L.condition_number(h)
    assert 1 - 1.98 / kappa == pytest.approx(0.981, abs=5e-4)
    assert L.best_rate(kappa) == pytest.approx(0.981, abs=5e-4)
    # "the cost grows with the square of the ratio"
    assert L.condition_number(L.problem(100.0)[0]) / kappa == pytest.approx(100, rel=0.05)


def test_standardized_features_need_far_fewer_steps_at_their_own_best_step():
    raw, b_raw, w_raw = L.problem(10.0)
    std, b_std, w_std = L.problem(10.0, standardized=True)
    raw_steps = L.steps_to_tolerance(raw, b_raw, w_raw + START, L.best_step(raw))
    std_steps = L.steps_to_tolerance(std, b_std, w_std + START, L.best_step(std))
    assert std_steps == 5 and raw_steps == 361  # the numbers the lesson prints
    assert raw_steps >= 50 * std_steps
    # and whatever the ratio, standardized features need the same handful
    for ratio in RATIOS:
        h, b, w_star = L.problem(ratio, standardized=True)
        assert L.steps_to_tolerance(h, b, w_star + START, L.best_step(h)) == std_steps


@pytest.mark.parametrize("standardized", [False, True])
@pytest.mark.parametrize("ratio", [0.3, 10.0, 31.6])
def test_a_step_just_above_the_limit_diverges_and_just_below_converges(ratio, standardized):
    h, b, w_star = L.problem(ratio, standardized)
    limit = L.largest_stable_step(h)
    for fraction in (0.99, 0.999):
        assert L.steps_to_tolerance(h, b, w_star + START, fraction * limit) is not None
        assert L.rate_theory(h, fraction * limit) < 1
    for fraction in (1.001, 1.01):
        assert L.steps_to_tolerance(h, b, w_star + START, fraction * limit) is None
        assert L.rate_theory(h, fraction * limit) == pytest.approx(2 * fraction - 1, rel=1e-9)  # |1 - ηλmax|
        path = L.gradient_descent(h, b, w_star + START, fraction * limit, 4000)
        assert (path[-1] - w_star).norm() > 10 * START.norm()
    # exactly at the limit the steep component bounces at constant height: no convergence, no blow-up
    path = L.gradient_descent(h, b, w_star + START, limit, 3000)
    distance = (path - w_star).norm(dim=1) / START.norm()
    assert L.rate_theory(h, limit) == pytest.approx(1.0, abs=1e-9)
    assert 1e-2 < distance[-1] <= 1 + 1e-9


def test_momentum_theory_stability_and_polyak():
    h, b, w_star = L.problem(10.0)
    lam_max = L.eigenvalues_2x2(h)[1]
    for momentum in (0.0, 0.5, 0.9):
        limit = 2 * (1 + momentum) / lam_max
        assert L.rate_theory(h, 0.99 * limit, momentum) < 1 < L.rate_theory(h, 1.01 * limit, momentum)
        # the theory matches a direct eigen-decomposition of the 4x4 iteration matrix of (w_k, w_{k-1})
        lr = 0.7 * limit
        eye = torch.eye(2, dtype=torch.float64)
        iteration = torch.cat([torch.cat([(1 + momentum) * eye - lr * h, -momentum * eye], 1),
                               torch.cat([eye, 0 * eye], 1)])
        spectral_radius = torch.linalg.eigvals(iteration).abs().max().item()
        assert L.rate_theory(h, lr, momentum) == pytest.approx(spectral_radius, rel=1e-6)
    lr, momentum = L.heavy_ball_settings(h)
    assert (lr / L.largest_stable_step(h), momentum) == pytest.approx((1.66, 0.675), abs=0.005)  # exercise 3
    kappa = L.condition_number(h)
    assert L.rate_theory(h, lr, momentum) == pytest.approx((kappa**0.5 - 1) / (kappa**0.5 + 1), rel=1e-6)
    # measured: above the r^k count (the k·r^k of coinciding roots) but within a factor 2 of it
    for ratio in (3.0, 10.0, 31.6):
        h, b, w_star = L.problem(ratio)
        lr, momentum = L.heavy_ball_settings(h)
        theory = L.theory_steps(L.rate_theory(h, lr, momentum))
        measured = L.steps_to_tolerance(h, b, w_star + START, lr, momentum)
        assert theory <= measured <= 2 * theory
        plain = L.steps_to_tolerance(h, b, w_star + START, L.best_step(h))
        assert measured < plain / (2 if ratio < 10 else 4)


def test_centring_and_the_bridge_to_batch_norm():
    x = L.make_features(1.0)
    # H = Σ + μμᵀ = [[10, 9.2], [9.2, 10]] for a shift of 3: λ = 19.2 and 0.8, κ = 24
    assert L.condition_number(L.hessian(x + 3.0)) == pytest.approx(24.0, rel=1e-9)
    assert L.condition_number(L.hessian(L.standardize(x + 3.0))) == pytest.approx(1.5, rel=1e-9)
    x_std = L.standardize(L.make_features(10.0))
    w1 = torch.tensor([[2.0, 1.0], [-0.3, 0.4]], dtype=torch.float64)
    h = L.hidden_features(x_std, w1)[:32]
    grown = L.hidden_features(x_std, w1 * torch.tensor([[3.0], [1.0]], dtype=torch.float64))[:32]
    assert L.condition_number(L.hessian(h)) > 10 * L.condition_number(L.hessian(L.standardize(h)))
    assert L.condition_number(L.hessian(grown)) > 5 * L.condition_number(L.hessian(h))
    # standardizing undoes any positive rescaling of a hidden unit: the κ does not move
    assert torch.allclose(L.standardize(grown), L.standardize(h), atol=1e-12)


# --- the explorer and the exercises ----------------------------------------------------------------

def test_explore_flags_divergence_just_past_the_limit_only():
    common = dict(ratio=10.0, momentum=0.0, steps=300, start_w1=-2.5, start_w2=2.0, standardized=False)
    below, above = L.explore(step_fraction=0.99, **common), L.explore(step_fraction=1.01, **common)
    assert not below["diverging"] and above["diverging"]
    assert below["relative"][-1] < below["relative"][0] < above["relative"][-1]
    with_momentum = L.explore(step_fraction=1.4, **{**common, "momentum": 0.5})  # limit 2(1+β)/λmax
    assert not with_momentum["diverging"] and with_momentum["limit"] > with_momentum["lr"]
    kappa = L.condition_number(L.problem(10.0)[0])
    assert L.explore(step_fraction=0.99, **common)["kappa"] == pytest.approx(kappa)


def test_exercise_checks_accept_the_answer_and_refuse_others_without_raising():
    for check, args in [(L.check_limit, (None,)), (L.check_steps_estimate, (None,)),
                        (L.check_momentum, (None, None))]:
        ok, message = check(*args)
        assert not ok and message.startswith("Not answered yet")
    limit = L.exercise_limit_answer()
    assert L.check_limit(limit)[0] and L.check_limit(limit * 1.005)[0]
    assert not L.check_limit(limit / 2)[0] and not L.check_limit(limit * 1.1)[0]
    expected = L.theory_steps(L.best_rate(50.0))
    assert expected == 173 and L.exercise_steps_measured() == expected
    assert L.check_steps_estimate(173)[0] and not L.check_steps_estimate(100)[0]
    h = L.problem(10.0)[0]
    lr, momentum = L.heavy_ball_settings(h)
    # the numbers the solution states
    assert L.check_momentum(lr / L.largest_stable_step(h), momentum)[1].startswith("Right: 57 steps")
    assert L.check_momentum(1.5, 0.7)[1].startswith("Right: 44 steps")
    assert L.check_momentum(1.5, 0.6)[1].startswith("Not yet: 79 steps")
    assert not L.check_momentum(0.9, 0.0)[0]  # plain gradient descent is too slow
    assert not L.check_momentum(1.8, 0.5)[0]  # above 2(1+β)/λmax: diverges
    assert "[0, 1)" in L.check_momentum(1.0, 1.2)[1]


def explorer_cell():
    """The notebook's explorer cell, executed beside the #@save cells (its slider_panel call included)."""
    nb = nbformat.read(notebook_path("02"), as_version=4)
    [source] = [c.source for c in nb.cells if c.cell_type == "code" and "def update_explorer" in c.source]
    namespace = dict(vars(L))
    namespace["display"] = lambda *args: None
    import matplotlib.pyplot as plt
    namespace["plt"] = plt
    exec(compile(source, "explorer cell", "exec"), namespace)
    return namespace


def pixels(png):
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def test_explorer_redraws_in_place_and_deterministically():
    ns = explorer_cell()
    panel = ns["PANELS"][-1]
    controls, update, fig = panel["controls"], panel["update"], panel["fig"]
    expected_kinds = {"ratio": "FloatLogSlider", "step_fraction": "FloatSlider", "momentum": "FloatSlider",
                      "steps": "IntSlider", "start_w1": "FloatSlider", "start_w2": "FloatSlider",
                      "standardized": "Checkbox"}
    assert {name: type(c).__name__ for name, c in controls.items()} == expected_kinds
    descriptions = [c.description for c in controls.values()]
    assert len(set(descriptions)) == len(descriptions) and all(descriptions)
    assert controls["ratio"].base == 10 and controls["step_fraction"].max > 1  # log scale; past the limit
    defaults = {name: c.value for name, c in controls.items()}
    artists = [len(ax.get_children()) for ax in fig.axes]
    update(**defaults)
    first = ns["figure_png"](fig)
    update(**{**defaults, "step_fraction": 1.2, "ratio": 31.6227766, "standardized": True})
    assert [len(ax.get_children()) for ax in fig.axes] == artists  # updated in place, nothing added
    update(**defaults)
    assert ns["figure_png"](fig) == first
    update(**{**defaults, "momentum": 0.5})
    assert ns["figure_png"](fig) != first
    # with "standardize features" on, the scale ratio changes nothing (up to rounding in the last bit,
    # which may move an anti-aliased pixel)
    update(**{**defaults, "standardized": True, "ratio": 0.3})
    low = pixels(ns["figure_png"](fig))
    update(**{**defaults, "standardized": True, "ratio": 20.0})
    high = pixels(ns["figure_png"](fig))
    assert (low != high).any(axis=-1).mean() < 1e-3
    update(**{**defaults, "standardized": False, "ratio": 20.0})
    assert (pixels(ns["figure_png"](fig)) != high).any(axis=-1).mean() > 1e-2
    # the corners of the controls: no error, no warning (a diverging run overflows to inf)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for corner in [dict(ratio=31.6227766, step_fraction=2.0, momentum=0.95, steps=400),
                       dict(ratio=0.1, step_fraction=0.05, momentum=0.0, steps=1, start_w1=0.0, start_w2=0.0),
                       dict(ratio=31.6227766, step_fraction=2.0, momentum=0.0, steps=400, standardized=True)]:
            update(**{**defaults, **corner})
            ns["figure_png"](fig)
    assert "DIVERGES" in ns["readout"].get_text() and "never theory" in ns["readout"].get_text()


# --- the executed notebook ----------------------------------------------------------------------------

def test_the_notebook_prints_the_numbers_its_text_states():
    nb, _, folder = run_lesson("02", True)  # the same call (and cache entry) as test_notebooks_run
    text = outputs_text(nb)
    raw, b_raw, w_raw = L.problem(10.0)
    assert f"κ = {L.condition_number(raw):.1f}" in text and "κ = 104.3" in text
    assert "κ = 1.5," in text
    assert re.search(r"raw features .*: 361 steps", text)
    assert re.search(r"standardized features: 5 steps", text)
    assert "converges in" in text and "diverges" in text
    assert re.search(r"shifted by  3\.0: κ =\s+24\.0", text)
    assert text.count("Not answered yet") == 3
    assert re.search(r"explorer redraw \(update \+ PNG\): median [\d.]+ ms", text)
    assert {p.name for p in (folder / "figures").glob("02-*.png")} == {
        "02-contours-raw-vs-standardized.png", "02-steps-vs-condition-number.png",
        "02-step-size-edge.png", "02-explorer.png"}
    # the sliders exist in the saved widget state, with the ranges the text describes
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    widgets = {m["state"].get("description"): m for m in state.values() if m["state"].get("description")}
    assert widgets["scale ratio"]["model_name"] == "FloatLogSliderModel"
    assert widgets["standardize features"]["model_name"] == "CheckboxModel"
