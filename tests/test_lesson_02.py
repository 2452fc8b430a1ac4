"""Lesson 02: feature scale and the shape of the loss. The lesson's own functions, checked against
torch (eigvalsh, autograd, torch.optim.SGD) and against the theory the lesson states; its exercise
checks, each shown the mistakes it names; the explorer panel; then the numbers the executed
notebook prints and the numbers its prose states."""

import io
import math
import re
import warnings

import matplotlib
import matplotlib.image
import nbformat
import pytest
import torch
from lessons import load_lesson, notebook_path, outputs_text, printed_number, run_lesson

matplotlib.use("Agg")
L = load_lesson("02")
RATIOS = [0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 31.6, 100.0]
F64 = torch.float64


def prose():
    """The lesson's markdown, joined: the sentences whose numbers the tests hold."""
    nb = nbformat.read(notebook_path("02"), as_version=4)
    return "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")


def runs(ratio=10.0, standardized=False):
    """(H, b, start) of the lesson's regression, started where the lesson starts its runs."""
    h, b, w_star = L.problem(ratio, standardized)
    return h, b, w_star + L.START_OFFSET


# --- the data and the loss -------------------------------------------------------------------------

@pytest.mark.parametrize("ratio", RATIOS)
def test_features_have_exactly_the_scales_and_correlation_asked_for(ratio):
    x = L.make_features(ratio)
    assert x.shape == (L.N_SAMPLES, 2)
    assert torch.allclose(x.mean(0), torch.zeros(2, dtype=F64), atol=1e-12)
    assert torch.allclose(x.std(0, correction=0), torch.tensor([1.0, ratio], dtype=F64), rtol=1e-12)
    assert torch.corrcoef(x.T)[0, 1].item() == pytest.approx(L.CORRELATION, abs=1e-12)


def test_standardize_is_per_feature_over_the_samples_with_the_biased_std():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(7, 4, generator=generator, dtype=F64) * torch.tensor([1.0, 5.0, 0.1, 30.0]) + 3
    z = L.standardize(x)
    assert torch.allclose(z.mean(0), torch.zeros(4, dtype=F64), atol=1e-12)
    assert torch.allclose(z.std(0, correction=0), torch.ones(4, dtype=F64), atol=1e-12)  # biased: / N
    batch_norm = torch.nn.functional.batch_norm(x, None, None, training=True, eps=1e-300)
    assert torch.allclose(z, batch_norm, rtol=1e-12)  # what batch norm does to a batch


def test_standardized_features_do_not_depend_on_the_ratio():
    reference = L.standardize(L.make_features(1.0))
    for ratio in RATIOS:
        assert torch.allclose(L.standardize(L.make_features(ratio)), reference, atol=1e-12)


def test_the_same_fit_in_both_units():
    y = L.make_targets()
    raw = L.optimum(L.make_features(10.0), y)
    standardized = L.optimum(L.standardize(L.make_features(10.0)), y)
    # "the raw second weight is ten times smaller because its feature is ten times larger"
    assert torch.allclose(raw * torch.tensor([1.0, 10.0], dtype=F64), standardized, rtol=1e-10)
    true_weights = torch.tensor(L.TRUE_WEIGHTS, dtype=F64)
    assert torch.allclose(standardized, true_weights, atol=0.05)  # the fit recovers the weights behind y


def test_bad_input_gets_a_clear_message():
    with pytest.raises(ValueError, match="positive"):
        L.make_features(0.0)
    with pytest.raises(ValueError, match=r"shape \(N, D\)"):
        L.standardize(torch.zeros(10))
    with pytest.raises(ValueError, match="constant feature"):
        L.standardize(torch.ones(10, 3))
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        L.hessian(torch.zeros(10, 3))
    with pytest.raises(ValueError, match="2x2"):
        L.eigenvalues_2x2(torch.eye(3))
    with pytest.raises(ValueError, match="symmetric"):
        L.eigenvalues_2x2(torch.tensor([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="square matrix"):
        L.condition_number(torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"\(2, 2\) first-layer weight"):
        L.hidden_features(L.make_features(1.0), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="steps must be"):
        L.gradient_descent(torch.eye(2, dtype=F64), torch.zeros(2, dtype=F64), [0.0, 0.0], 0.1, -1)


@pytest.mark.parametrize("ratio", [1.0, 10.0])
def test_gradient_and_hessian_are_the_derivatives_of_the_loss(ratio):
    x, y = L.make_features(ratio), L.make_targets()
    w = torch.tensor([0.3, -1.7], dtype=F64, requires_grad=True)
    L.mse_loss(x, y, w).backward()
    assert torch.allclose(w.grad, L.mse_gradient(x, y, w.detach()), rtol=1e-12, atol=1e-12)
    autograd_hessian = torch.autograd.functional.hessian(lambda v: L.mse_loss(x, y, v), w.detach())
    assert torch.allclose(autograd_hessian, L.hessian(x), rtol=1e-12)
    h, b = L.hessian(x), L.linear_term(x, y)  # the gradient is H w - b, and it vanishes at w*
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
        a = torch.randn(2, 2, generator=generator, dtype=F64)
        h = a @ a.T * torch.rand(1, generator=generator, dtype=F64) * 100
        assert torch.allclose(torch.tensor(L.eigenvalues_2x2(h), dtype=F64),
                              torch.linalg.eigvalsh(h), rtol=1e-9, atol=1e-12)


def test_the_numbers_the_text_states_about_the_hessian():
    ratio, rho = 10.0, L.CORRELATION
    raw, _, _ = L.problem(ratio)
    # H = [[1, ρ·ratio], [ρ·ratio, ratio²]]: "about 100 along w2 and about 1 along w1"
    expected = torch.tensor([[1.0, rho * ratio], [rho * ratio, ratio**2]], dtype=F64)
    assert torch.allclose(raw, expected, atol=1e-10)
    assert f"$\\kappa \\approx {round(L.condition_number(raw))}$" in prose()  # κ ≈ 104
    standardized, _, _ = L.problem(ratio, standardized=True)
    assert L.eigenvalues_2x2(standardized) == pytest.approx((1 - rho, 1 + rho), abs=1e-12)
    kappa = L.condition_number(standardized)
    assert kappa == pytest.approx((1 + rho) / (1 - rho), abs=1e-10)
    assert f"$\\kappa = {1 + rho:g}/{1 - rho:g} = {kappa:g}$" in prose()  # κ = 1.2/0.8 = 1.5


# --- the exercises: each check accepts the reference and names each mistake ----------------------

def eigen(h):
    smallest, largest = torch.linalg.eigvalsh(h).tolist()
    return smallest, largest


CONDITION_NUMBER_MISTAKES = {
    "λ_max − λ_min": lambda h: eigen(h)[1] - eigen(h)[0],
    "upside down": lambda h: eigen(h)[0] / eigen(h)[1],
    "√κ": lambda h: (eigen(h)[1] / eigen(h)[0]) ** 0.5,
    "λ_max alone": lambda h: eigen(h)[1],
    "diagonal entries": lambda h: (h[1, 1] / h[0, 0]).item(),
    "one number": lambda h: torch.linalg.eigvalsh(h),
}


def test_the_condition_number_check_accepts_the_lesson_and_names_each_mistake():
    assert L.check_condition_number(L.condition_number) is None
    assert L.check_condition_number(lambda h: L.eigenvalues_2x2(h)[1] / L.eigenvalues_2x2(h)[0]) is None
    for message, wrong in CONDITION_NUMBER_MISTAKES.items():
        with pytest.raises(AssertionError, match=re.escape(message)):
            L.check_condition_number(wrong)
    with pytest.raises(AssertionError, match=r"κ = 50; yours gives 51"):  # no named mistake: the numbers
        L.check_condition_number(lambda h: eigen(h)[1] / eigen(h)[0] + 1)


def sgd_step(w, velocity, gradient, lr, momentum):
    velocity = momentum * velocity + gradient
    return w - lr * velocity, velocity


def in_place(w, velocity, gradient, lr, momentum):
    velocity = momentum * velocity + gradient
    return w.sub_(lr * velocity), velocity


HEAVY_BALL_MISTAKES = {
    "return (w, velocity), in that order": lambda w, v, g, lr, m: sgd_step(w, v, g, lr, m)[::-1],
    "goes uphill": lambda w, v, g, lr, m: (w + lr * (m * v + g), m * v + g),
    "momentum multiplies the gradient": lambda w, v, g, lr, m: (w - lr * (v + m * g), v + m * g),
    "averages the gradients": lambda w, v, g, lr, m: (w - lr * (m * v + (1 - m) * g), m * v + (1 - m) * g),
    "carries the step size": lambda w, v, g, lr, m: (w - (m * v + lr * g), m * v + lr * g),
    "w moved with the old velocity": lambda w, v, g, lr, m: (w - lr * v, m * v + g),
    "you return the velocity you were given": lambda w, v, g, lr, m: (w - lr * (m * v + g), v),
    "not multiplied by β": lambda w, v, g, lr, m: (w - lr * (v + g), v + g),
    "ignores momentum": lambda w, v, g, lr, m: (w - lr * g, g),
    "in place": in_place,
    "return the pair": lambda w, v, g, lr, m: w - lr * (m * v + g),
    "torch.optim.SGD's": lambda w, v, g, lr, m: (w - lr * (g + m * (m * v + g)), m * v + g),  # Nesterov
}


def test_the_heavy_ball_check_accepts_the_lesson_and_names_each_mistake():
    assert L.check_heavy_ball_step(L.heavy_ball_step) is None
    for message, wrong in HEAVY_BALL_MISTAKES.items():
        with pytest.raises(AssertionError, match=re.escape(message)):
            L.check_heavy_ball_step(wrong)


def test_the_lessons_step_is_torch_optim_sgds():
    x, y = L.make_features(10.0), L.make_targets()
    h, b = L.hessian(x), L.linear_term(x, y)
    for momentum in (0.0, 0.9):
        lr = 0.5 * L.largest_stable_step(h)
        w0 = torch.tensor([0.7, -0.4], dtype=F64)
        path = L.gradient_descent(h, b, w0, lr, 50, momentum)
        w = w0.clone().requires_grad_(True)
        optimizer = torch.optim.SGD([w], lr=lr, momentum=momentum)
        for step in range(1, 51):
            optimizer.zero_grad()
            L.mse_loss(x, y, w).backward()
            optimizer.step()
            assert torch.allclose(path[step], w.detach(), rtol=1e-10, atol=1e-12), step


LARGEST_STEP_MISTAKES = {
    "That is 1/λ_max": lambda h: 1 / eigen(h)[1],
    "comes from λ_min": lambda h: 2 / eigen(h)[0],
    "best step": lambda h: 2 / sum(eigen(h)),
    "diagonal entry": lambda h: 2 / h[1, 1].item(),
    "one number": lambda h: (2 / eigen(h)[1], 2 / eigen(h)[0]),
    "the limit is": lambda h: 4 / eigen(h)[1],  # no named mistake: the numbers
}


def test_the_largest_stable_step_check_accepts_the_lesson_and_names_each_mistake():
    assert L.check_largest_stable_step(L.largest_stable_step) is None
    for message, wrong in LARGEST_STEP_MISTAKES.items():
        with pytest.raises(AssertionError, match=re.escape(message)):
            L.check_largest_stable_step(wrong)


# --- gradient descent against the theory --------------------------------------------------------

@pytest.mark.parametrize("ratio", [1.0, 3.0, 10.0, 31.6])
def test_best_step_converges_at_exactly_the_theoretical_rate(ratio):
    h, b, w0 = runs(ratio)
    kappa = L.condition_number(h)
    rate = L.best_rate(kappa)
    assert L.rate_theory(h, L.best_step(h)) == pytest.approx(rate, rel=1e-9)
    path = L.gradient_descent(h, b, w0, L.best_step(h), 30)
    assert L.measured_rate(path, L.problem(ratio)[2]) == pytest.approx(rate, rel=1e-6)
    measured = L.steps_to_tolerance(h, b, w0, L.best_step(h))
    assert abs(measured - L.theory_steps(rate)) <= 1
    assert measured == pytest.approx(kappa / 2 * math.log(1 / L.TOLERANCE), rel=0.35)  # ~ (κ/2) ln(1/ε)


def test_the_safe_step_is_about_twice_as_slow_and_momentum_costs_a_factor_k():
    h, b, w0 = runs()
    best = L.steps_to_tolerance(h, b, w0, L.best_step(h))
    safe_lr = 1 / L.eigenvalues_2x2(h)[1]
    safe = L.steps_to_tolerance(h, b, w0, safe_lr)
    assert 1.8 * best < safe < 2.1 * best and safe <= L.theory_steps(L.rate_theory(h, safe_lr))
    assert f"({safe} steps against {best})" in prose()
    lr, momentum = L.heavy_ball_settings(h)
    heavy_ball = L.steps_to_tolerance(h, b, w0, lr, momentum)
    theory = L.theory_steps(L.rate_theory(h, lr, momentum))
    assert theory < heavy_ball and f"({heavy_ball} against {theory})" in prose()


def test_just_below_the_limit_takes_a_few_steps_fewer_than_the_best_step():
    h, b, w0 = runs()
    best = L.steps_to_tolerance(h, b, w0, L.best_step(h))
    edge = L.steps_to_tolerance(h, b, w0, 0.99 * L.largest_stable_step(h))
    assert 0.95 * best < edge < best
    text = prose()
    assert f"converges in {edge} steps — a few\n*fewer* than the {best} at the best step" in text
    kappa = L.condition_number(h)
    smallest, largest = L.eigenvalues_2x2(h)
    shallow = 1 - 0.99 * L.largest_stable_step(h) * smallest
    assert shallow == pytest.approx(1 - 1.98 / kappa, rel=1e-12)
    assert f"1 - 1.98/\\kappa = {shallow:.5f}$" in text
    assert f"the best step's ${L.best_rate(kappa):.5f}$" in text
    assert 0 < shallow - L.best_rate(kappa) < 1e-5  # "within 10⁻⁵"
    # "the condition number grows with the square of the ratio"
    assert L.condition_number(L.problem(100.0)[0]) / kappa == pytest.approx(100, rel=0.05)


def test_standardized_features_need_the_same_handful_of_steps_whatever_the_ratio():
    raw_h, raw_b, raw_w0 = runs()
    raw_steps = L.steps_to_tolerance(raw_h, raw_b, raw_w0, L.best_step(raw_h))
    steps = set()
    for ratio in RATIOS:
        h, b, w0 = runs(ratio, standardized=True)
        steps.add(L.steps_to_tolerance(h, b, w0, L.best_step(h)))
    [std_steps] = steps
    assert raw_steps >= 50 * std_steps


@pytest.mark.parametrize("standardized", [False, True])
@pytest.mark.parametrize("ratio", [0.3, 10.0, 31.6])
def test_a_step_just_above_the_limit_diverges_and_just_below_converges(ratio, standardized):
    h, b, w0 = runs(ratio, standardized)
    w_star = L.problem(ratio, standardized)[2]
    limit = L.largest_stable_step(h)
    for fraction in (0.99, 0.999):
        assert L.steps_to_tolerance(h, b, w0, fraction * limit) is not None
        assert L.rate_theory(h, fraction * limit) < 1
    for fraction in (1.001, 1.01):
        assert L.steps_to_tolerance(h, b, w0, fraction * limit) is None
        assert L.rate_theory(h, fraction * limit) == pytest.approx(2 * fraction - 1, rel=1e-9)
        path = L.gradient_descent(h, b, w0, fraction * limit, 4000)
        assert (path[-1] - w_star).norm() > 10 * L.START_OFFSET.norm()
    # exactly at the limit the steep component bounces at constant height: no convergence, no blow-up
    path = L.gradient_descent(h, b, w0, limit, 3000)
    distance = (path - w_star).norm(dim=1) / L.START_OFFSET.norm()
    assert L.rate_theory(h, limit) == pytest.approx(1.0, abs=1e-9)
    assert 1e-2 < distance[-1] <= 1 + 1e-9


def test_momentum_theory_stability_and_polyak():
    h, _, _ = runs()
    lam_max = L.eigenvalues_2x2(h)[1]
    for momentum in (0.0, 0.5, 0.9):
        limit = 2 * (1 + momentum) / lam_max
        assert L.rate_theory(h, 0.99 * limit, momentum) < 1 < L.rate_theory(h, 1.01 * limit, momentum)
        # the theory matches a direct eigen-decomposition of the 4x4 iteration matrix of (w_k, w_{k-1})
        lr = 0.7 * limit
        eye = torch.eye(2, dtype=F64)
        iteration = torch.cat([torch.cat([(1 + momentum) * eye - lr * h, -momentum * eye], 1),
                               torch.cat([eye, 0 * eye], 1)])
        spectral_radius = torch.linalg.eigvals(iteration).abs().max().item()
        assert L.rate_theory(h, lr, momentum) == pytest.approx(spectral_radius, rel=1e-6)
    lr, momentum = L.heavy_ball_settings(h)
    kappa = L.condition_number(h)
    assert L.rate_theory(h, lr, momentum) == pytest.approx((kappa**0.5 - 1) / (kappa**0.5 + 1), rel=1e-6)


def test_the_sweeps_momentum_factor_lies_between_1_and_2_and_tends_to_grow():
    factors = []
    for ratio in torch.logspace(0, 1.5, 9).tolist():  # the fast mode's sweep
        h, b, w0 = runs(ratio)
        lr, momentum = L.heavy_ball_settings(h)
        measured = L.steps_to_tolerance(h, b, w0, lr, momentum)
        factors.append(measured / L.theory_steps(L.rate_theory(h, lr, momentum)))
        plain = L.steps_to_tolerance(h, b, w0, L.best_step(h))
        assert plain == L.theory_steps(L.best_rate(L.condition_number(h)))  # "exactly the theory's count"
    assert all(1 <= f < 2 for f in factors) and factors[-1] > factors[0]
    assert "a factor between 1 and 2 that tends to grow" in prose()


def test_centring_and_the_bridge_to_batch_norm():
    x = L.make_features(1.0)
    kappa_shifted = L.condition_number(L.hessian(x + 3.0))
    assert f"$\\kappa \\approx {kappa_shifted:.0f}$" in prose()  # κ ≈ 24
    assert L.condition_number(L.hessian(L.standardize(x + 3.0))) == pytest.approx(1.5, rel=1e-9)
    x_std = L.standardize(L.make_features(10.0))
    w1 = torch.tensor([[2.0, 1.0], [-0.3, 0.4]], dtype=F64)
    h = L.hidden_features(x_std, w1)[:32]
    grown = L.hidden_features(x_std, w1 * torch.tensor([[3.0], [1.0]], dtype=F64))[:32]
    assert L.condition_number(L.hessian(h)) > 10 * L.condition_number(L.hessian(L.standardize(h)))
    assert L.condition_number(L.hessian(grown)) > 5 * L.condition_number(L.hessian(h))
    # standardizing undoes any positive rescaling of a hidden unit: the κ does not move
    assert torch.allclose(L.standardize(grown), L.standardize(h), atol=1e-12)


# --- the explorer -----------------------------------------------------------------------------------

def test_explore_flags_divergence_just_past_the_limit_only():
    common = dict(ratio=10.0, momentum=0.0, steps=300, start_w1=-2.5, start_w2=2.0, standardized=False)
    below, above = L.explore(step_fraction=0.99, **common), L.explore(step_fraction=1.01, **common)
    assert not below["diverging"] and above["diverging"]
    assert below["relative"][-1] < below["relative"][0] < above["relative"][-1]
    with_momentum = L.explore(step_fraction=1.4, **{**common, "momentum": 0.5})  # limit 2(1+β)/λmax
    assert not with_momentum["diverging"] and with_momentum["limit"] > with_momentum["lr"]
    assert below["kappa"] == pytest.approx(L.condition_number(L.problem(10.0)[0]))


def pixels(png):
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def test_the_explorer_panel_has_tidy_controls_of_the_kinds_the_text_describes():
    controls = L.explorer_panel.controls
    kinds = {name: type(c).__name__ for name, c in controls.items()}
    assert kinds == {"ratio": "FloatLogSlider", "standardized": "Checkbox", "step_fraction": "FloatSlider",
                     "momentum": "FloatSlider", "start_w1": "FloatSlider", "start_w2": "FloatSlider",
                     "steps": "IntSlider"}
    descriptions = [c.description for c in controls.values()]
    assert len(set(descriptions)) == len(descriptions) and all(descriptions)
    assert all(f"**{description}**" in prose() for description in descriptions)
    assert controls["ratio"].base == 10 and controls["step_fraction"].max > 1  # log scale; past the limit
    # one block: every control as wide as the others, descriptions in one column, two to a row
    assert len({c.layout.width for c in controls.values()}) == 1
    assert len({c.style.description_width for c in controls.values()}) == 1
    assert 2 * int(controls["ratio"].layout.width.removesuffix("px")) <= 800


def test_the_explorer_redraws_in_place_deterministically_and_follows_its_controls():
    fig, update = L.make_explorer_panel()
    assert round(fig.get_size_inches()[0] * fig.dpi) <= 830  # the notebook column
    defaults = L.explorer_panel.values()
    update(**defaults)
    first = L.figure_png(fig)
    artists = [len(ax.get_children()) for ax in fig.axes]
    update(**{**defaults, "step_fraction": 1.2, "ratio": 31.6227766, "standardized": True})
    assert [len(ax.get_children()) for ax in fig.axes] == artists  # updated in place, nothing added
    update(**defaults)
    assert L.figure_png(fig) == first
    for name, value in [("ratio", 3.0), ("standardized", True), ("step_fraction", 0.5), ("momentum", 0.5),
                        ("start_w1", 1.0), ("start_w2", -1.0), ("steps", 200)]:
        update(**{**defaults, name: value})
        assert L.figure_png(fig) != first, name
    # with "standardize features" on, the scale ratio changes nothing (up to rounding in the last bit,
    # which may move an anti-aliased pixel)
    update(**{**defaults, "standardized": True, "ratio": 0.3})
    low = pixels(L.figure_png(fig))
    update(**{**defaults, "standardized": True, "ratio": 20.0})
    high = pixels(L.figure_png(fig))
    assert (low != high).any(axis=-1).mean() < 1e-3
    update(**{**defaults, "standardized": False, "ratio": 20.0})
    assert (pixels(L.figure_png(fig)) != high).any(axis=-1).mean() > 1e-2
    # the corners of the controls: no error, no warning (a diverging run overflows to inf)
    readout = fig.texts[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for corner in [dict(ratio=31.6227766, step_fraction=2.0, momentum=0.95, steps=400),
                       dict(ratio=0.1, step_fraction=0.05, momentum=0.0, steps=1, start_w1=0.0, start_w2=0.0),
                       dict(ratio=31.6227766, step_fraction=2.0, momentum=0.0, steps=400, standardized=True)]:
            update(**{**defaults, **corner})
            L.figure_png(fig)
    assert "diverges" in readout.get_text() and "never" in readout.get_text()


def test_the_panel_widget_redraws_when_a_control_moves():
    panel = L.explorer_panel
    widget = panel.widget()
    image = widget.children[1]
    before = image.value
    control = panel.controls["momentum"]
    try:
        control.value = 0.5
        assert image.value != before and panel.errors == []
    finally:
        control.value = 0.0
    assert image.value == before


# --- the executed notebook ----------------------------------------------------------------------------

def test_the_notebook_prints_the_numbers_its_text_states():
    nb, _, folder = run_lesson("02", True)  # the same call (and cache entry) as test_notebooks_run
    text = outputs_text(nb)
    raw_h, raw_b, raw_w0 = runs()
    std_h, std_b, std_w0 = runs(standardized=True)
    assert printed_number(text, "raw features: κ =") == round(L.condition_number(raw_h), 1)
    assert printed_number(text, "standardized features: κ =") == round(L.condition_number(std_h), 1)
    raw_steps = L.steps_to_tolerance(raw_h, raw_b, raw_w0, L.best_step(raw_h))
    std_steps = L.steps_to_tolerance(std_h, std_b, std_w0, L.best_step(std_h))
    assert printed_number(text, f"best step {L.best_step(raw_h):.4g}:") == raw_steps
    assert printed_number(text, f"best step {L.best_step(std_h):.4g}:") == std_steps
    edge = L.steps_to_tolerance(raw_h, raw_b, raw_w0, 0.99 * L.largest_stable_step(raw_h))
    assert printed_number(text, "(shallow);") == edge
    assert printed_number(text, "factors ±") == round(L.best_rate(L.condition_number(raw_h)), 5)
    assert "(shallow); diverges" in text
    assert printed_number(text, "shifted by  3.0: κ =") == round(L.condition_number(L.hessian(
        L.make_features(1.0) + 3.0)), 1)
    assert printed_number(text, "stable for steps below 2/λmax =") == round(L.largest_stable_step(raw_h), 5)
    # the bridge: standardized over the batch, κ is the same before and after W1's row grew
    standardized = re.findall(r"h standardized over a batch of 32:\s+κ =\s+([\d.]+)", text)
    assert len(standardized) == 2 and standardized[0] == standardized[1]
    assert {p.name for p in (folder / "figures").glob("02-*.png")} == {
        "02-contours-raw-vs-standardized.png", "02-steps-vs-condition-number.png",
        "02-step-size-edge.png"}
    # the sliders exist in the saved widget state
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    widgets = {m["state"].get("description"): m for m in state.values() if m["state"].get("description")}
    assert widgets["scale ratio"]["model_name"] == "FloatLogSliderModel"
    assert widgets["standardize features"]["model_name"] == "CheckboxModel"


def test_the_readme_states_the_lessons_own_numbers():
    readme = (notebook_path("02").parent.parent / "README.md").read_text()
    [paragraph] = re.findall(r"\*\*02 · .*?(?=\n\n)", readme, re.S)
    raw_h, raw_b, raw_w0 = runs()
    std_h, std_b, std_w0 = runs(standardized=True)
    raw_steps = L.steps_to_tolerance(raw_h, raw_b, raw_w0, L.best_step(raw_h))
    std_steps = L.steps_to_tolerance(std_h, std_b, std_w0, L.best_step(std_h))
    kappa = round(L.condition_number(raw_h))
    assert f"(κ ≈ {kappa}) gradient descent zigzags for {raw_steps} steps" in paragraph
    assert f"(κ = {L.condition_number(std_h):.1f}) it needs {std_steps}" in paragraph
