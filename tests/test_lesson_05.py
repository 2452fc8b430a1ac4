"""Lesson 05: the MNIST replication of Ioffe & Szegedy's Figure 1, and what goes further.

Unit tests call the lesson's own #@save code; the claims about training are checked on the
lesson's fast-mode run (a few hundred steps on the offline 10,000-digit subset) and on the curves
it saves to figures/05-curves.json."""

import json
import math
import types

import numpy as np
import pytest
import torch
from lessons import DATA_DIR, load_lesson, outputs_text, run_lesson
from torch import nn


@pytest.fixture(scope="module")
def lesson():
    return load_lesson("05")


@pytest.fixture(scope="module")
def data(lesson):
    train_set, test_set = lesson.load_mnist()
    return lesson.mnist_tensors(train_set, test_set)


@pytest.fixture(scope="module")
def fast_run():
    nb, seconds, folder = run_lesson("05", True)  # positional, as test_notebooks_run calls it: one cached run
    return nb, outputs_text(nb), json.loads((folder / "figures" / "05-curves.json").read_text())


def small_data(data, n_train=600, n_test=300):
    return {"x_train": data["x_train"][:n_train], "y_train": data["y_train"][:n_train],
            "x_test": data["x_test"][:n_test], "y_test": data["y_test"][:n_test]}


# ---- the data -------------------------------------------------------------------------------

def test_data_are_standardized_tensors_on_the_device(lesson, data):
    assert data["x_train"].shape == (8000, 784) and data["x_test"].shape == (2000, 784)
    assert data["x_train"].dtype == torch.float32 and data["y_train"].dtype == torch.int64
    assert data["x_train"].device.type == lesson.DEVICE.type
    assert abs(data["x_train"].mean().item()) < 1e-4 and abs(data["x_train"].std().item() - 1) < 1e-4
    assert set(data["y_test"].tolist()) == set(range(10))


def test_the_full_mnist_is_55_mb_as_bytes_and_220_mb_as_float32():
    # the text: "The whole of MNIST is 55 MB as bytes and 220 MB as 32-bit floats"
    assert round(70_000 * 784 / 1e6) == 55 and round(70_000 * 784 * 4 / 1e6) == 220


def test_digits_of_the_wrong_shape_are_refused_with_the_expected_shape(lesson):
    wrong = types.SimpleNamespace(data=torch.zeros(10, 784, dtype=torch.uint8), targets=torch.zeros(10))
    right = types.SimpleNamespace(data=torch.zeros(10, 28, 28, dtype=torch.uint8), targets=torch.zeros(10))
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        lesson.mnist_tensors(wrong, right)


# ---- the networks ---------------------------------------------------------------------------

def test_the_networks_are_the_papers(lesson):
    plain, bn = lesson.make_mlp(False), lesson.make_mlp(True)
    assert [type(m) for m in plain] == [nn.Linear, nn.Sigmoid] * 3 + [nn.Linear]
    assert [type(m) for m in bn] == [nn.Linear, nn.BatchNorm1d, nn.Sigmoid] * 3 + [nn.Linear]
    for net in (plain, bn):
        linears = [m for m in net if isinstance(m, nn.Linear)]
        shapes = [(m.in_features, m.out_features) for m in linears]
        assert shapes == [(784, 100), (100, 100), (100, 100), (100, 10)]
    # the bias before a batch norm is redundant, so the BN network has none there
    assert all(m.bias is None for m in bn[:-1] if isinstance(m, nn.Linear))
    assert all(m.bias is not None for m in plain if isinstance(m, nn.Linear))


def test_weights_are_small_gaussians_of_the_stated_scale_and_seeded(lesson):
    net = lesson.make_mlp(False, init_std=0.1, seed=3)
    weights = net[0].weight.detach().flatten()
    assert abs(weights.std().item() - 0.1) < 0.002 and abs(weights.mean().item()) < 0.002
    same, other = lesson.make_mlp(False, init_std=0.1, seed=3), lesson.make_mlp(False, init_std=0.1, seed=4)
    assert torch.equal(same[0].weight, net[0].weight) and not torch.equal(other[0].weight, net[0].weight)
    assert lesson.INIT_STD == 0.1 and lesson.LR == 0.1 and lesson.BATCH_SIZE == 60


def test_forward_recording_returns_the_inputs_of_the_sigmoids(lesson, data):
    net = lesson.make_mlp(True).eval()
    x = data["x_test"][:50]
    with torch.no_grad():
        logits, inputs = lesson.forward_recording(net, x)
        assert torch.equal(logits, net(x))
        assert len(inputs) == 3 and all(v.shape == (50, 100) for v in inputs)
        assert torch.equal(inputs[0], net[1](net[0](x)))  # after the batch norm, before the sigmoid
        assert torch.equal(inputs[1], net[4](net[3](torch.sigmoid(inputs[0]))))
    with pytest.raises(ValueError, match=r"\(N, 784\)"):
        lesson.forward_recording(net, torch.zeros(5, 28, 28))


def test_shift_noise_moves_units_in_training_and_vanishes_in_eval(lesson):
    noise = lesson.ShiftNoise(4, 1.0, seed=0)
    x = torch.randn(8, 4)
    assert torch.equal(noise.eval()(x), x)
    moved = noise.train()(x)
    assert not torch.allclose(moved, x)
    assert (moved - noise(x)).abs().max() > 0  # a fresh shift at every step
    with pytest.raises(ValueError, match="batch_norm=True"):
        lesson.make_mlp(False, noise=1.0)


def test_the_typical_jump_of_the_noise_is_the_median_of_a_half_normal():
    # section 11 prints NOISE * 0.6745: the median of |z| for z ~ N(0, 1)
    assert abs(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(0.75)).item() - 0.6745) < 1e-4


def test_saturated_means_a_slope_below_one_percent_of_its_peak_beyond_six():
    slope = lambda x: math.exp(-x) / (1 + math.exp(-x)) ** 2  # noqa: E731
    assert slope(0) == 0.25 and slope(6) < 0.01 * 0.25 < slope(5.9)


# ---- the training loop ----------------------------------------------------------------------

def test_train_records_what_the_paper_plots_and_is_reproducible(lesson, data):
    small = small_data(data)
    net = lesson.make_mlp(True, seed=1)
    record = lesson.train(net, small, 40, seed=5, eval_every=15, progress=False)
    assert record["steps"] == [15, 30, 40]
    assert len(record["test_accuracy"]) == len(record["train_loss"]) == 3
    assert np.array(record["percentiles"]).shape == (3, 3, 3)
    assert np.array(record["histograms"]).shape == (3, 3, lesson.HISTOGRAM_BINS)
    assert np.allclose(np.array(record["histograms"]).sum(-1), 1.0)  # every test digit counted once
    assert record["steps_per_second"] > 0 and record["cpu_seconds"] > 0 and record["batch_norm"] is True
    early = lesson.train(lesson.make_mlp(False), small, 40, eval_every=15, early_evals=(5,), progress=False)
    assert early["steps"] == [5, 15, 30, 40]
    # the last record is the final model, evaluated again from scratch
    accuracy, percentiles, _ = lesson.evaluate(net, small)
    assert record["test_accuracy"][-1] == pytest.approx(accuracy.item())
    with torch.no_grad():
        _, inputs = lesson.forward_recording(net.eval(), small["x_test"])
    expected = torch.quantile(inputs[-1][:, 0], torch.tensor([0.15, 0.5, 0.85]))
    assert np.allclose(record["percentiles"][-1][-1], expected.numpy(), atol=1e-6)
    assert np.allclose(percentiles.numpy(), record["percentiles"][-1], atol=1e-6)
    # same seeds, same run; another batch order, another run
    again = lesson.train(lesson.make_mlp(True, seed=1), small, 40, seed=5, eval_every=15, progress=False)
    other = lesson.train(lesson.make_mlp(True, seed=1), small, 40, seed=6, eval_every=15, progress=False)
    assert again["test_accuracy"] == record["test_accuracy"] and again["percentiles"] == record["percentiles"]
    assert other["train_loss"] != record["train_loss"]


def test_train_explains_bad_arguments(lesson, data):
    net = lesson.make_mlp(False)
    with pytest.raises(KeyError, match="mnist_tensors"):
        lesson.train(net, {"x_train": data["x_train"]}, 10, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        lesson.train(net, small_data(data), 10, batch_size=10_000, progress=False)
    with pytest.raises(ValueError, match="positive"):
        lesson.train(net, small_data(data), 0, progress=False)


def test_the_bare_loop_and_the_helpers(lesson, data):
    speed = lesson.bare_loop(lesson.make_mlp(False), small_data(data), 20)
    assert speed["steps_per_second"] > 0 and speed["cpu_steps_per_second"] > 0
    record = {"steps": [10, 20, 30], "test_accuracy": [0.5, 0.9, 0.95],
              "percentiles": [[[-1, 0, 1]], [[-2, 0, 2]], [[-1.5, 0.5, 1.5]]]}
    assert lesson.steps_to_reach(record, 0.9) == 20 and lesson.steps_to_reach(record, 0.99) is None
    assert lesson.percentile_movement(record) == (2.0, 0.5)
    assert lesson.tolerant_range([0.1, 1, 10], [0.95, 0.91, 0.2], 0.9) == [0.1, 1]


def test_forgetting_eval_changes_the_accuracy_and_train_mode_leaves_the_model_alone(lesson, data):
    small = small_data(data, n_train=2000, n_test=1000)
    net = lesson.make_mlp(True)
    lesson.train(net, small, 150, progress=False)
    running_mean, mode = net[1].running_mean.clone(), net.training
    right = lesson.test_accuracy(net, small)
    by_label = torch.argsort(small["y_test"], stable=True)
    wrong = lesson.test_accuracy(net, small, train_mode=True, batch_size=100, order=by_label)
    assert right > 0.7 and wrong < right - 0.3
    assert torch.equal(net[1].running_mean, running_mean) and net.training == mode
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        lesson.test_accuracy(net, small, train_mode=True, batch_size=1)


# ---- the fast-mode run and its saved curves -------------------------------------------------

def test_the_curves_file_has_the_documented_shape(fast_run):
    _, _, curves = fast_run
    assert {"data", "hardware", "settings", "wall_seconds", "steps_per_second", "bare_steps_per_second",
            "runs", "seeds", "lr_sweep", "init_sweep", "batch_sweep", "eval_trap", "ics_probe"} <= set(curves)
    assert "subset" in curves["data"] and "8,000" in curves["data"]
    settings = curves["settings"]
    assert settings["lr"] == 0.1 and settings["batch_size"] == 60 and settings["hidden"] == [100, 100, 100]
    for name in ("without_bn", "with_bn"):
        run = curves["runs"][name]
        steps = run["steps"]
        assert steps == sorted(steps) and steps[-1] == settings["steps"]
        assert len(run["test_accuracy"]) == len(run["train_loss"]) == len(steps)
        assert set(run["percentiles"]) == {"layer1", "layer2", "layer3"}
        for layer in run["percentiles"].values():
            assert set(layer) == {"p15", "p50", "p85"} and all(len(v) == len(steps) for v in layer.values())
            assert np.all(np.array(layer["p15"]) <= np.array(layer["p50"]))
            assert np.all(np.array(layer["p50"]) <= np.array(layer["p85"]))
    for kind in ("lr_sweep", "init_sweep", "batch_sweep"):
        sweep = curves[kind]
        assert len(sweep["without_bn"]) == len(sweep["with_bn"]) == len(sweep["values"])


def test_with_batch_norm_the_test_accuracy_is_higher_after_the_fast_steps(fast_run):
    _, _, curves = fast_run
    plain, bn = (curves["runs"][name]["test_accuracy"][-1] for name in ("without_bn", "with_bn"))
    assert bn > plain + 0.2, (plain, bn)
    assert bn > 0.8


def test_with_batch_norm_the_sigmoid_inputs_spread_moves_less(fast_run):
    _, _, curves = fast_run
    change = {}
    for name in ("without_bn", "with_bn"):
        layer = curves["runs"][name]["percentiles"]["layer3"]
        spread = np.array(layer["p85"]) - np.array(layer["p15"])
        change[name] = spread.max() / spread.min()
    assert change["with_bn"] < 1.5 and change["without_bn"] > 2 * change["with_bn"], change


def test_forgetting_eval_changes_the_accuracy_in_the_lesson(fast_run):
    _, text, curves = fast_run
    trap = curves["eval_trap"]
    right = trap["eval mode, batches of 1000"]
    assert all(accuracy != right for how, accuracy in trap.items() if how.startswith("train mode"))
    assert trap["train mode, batches sorted by label (of 100)"] < right - 0.3
    assert "Expected more than 1 value per channel when training" in text


def test_putting_shift_back_in_does_not_undo_batch_norm(fast_run):
    _, _, curves = fast_run
    probe = curves["ics_probe"]
    early = {name: accuracy["early"] for name, accuracy in probe["accuracy"].items()}
    assert early["with BN + shift noise"] > early["without BN"] + 0.2, early
    assert early["with BN + shift noise"] > early["with BN"] - 0.15, early
    shift = list(probe["shift"].values())
    assert shift[0] > shift[1]  # the noise's jump per step beats the plain network's drift per evaluation


def test_the_sweeps_show_batch_norm_tolerates_larger_steps(fast_run):
    _, _, curves = fast_run
    lr = curves["lr_sweep"]
    assert max(lr["values"]) == 10.0
    assert lr["with_bn"][lr["values"].index(10.0)] > lr["without_bn"][lr["values"].index(10.0)] + 0.3


def test_the_lesson_prints_its_data_hardware_timing_and_redraw_time(fast_run):
    _, text, _ = fast_run
    assert "Training on the offline MNIST subset (8,000 train / 2,000 test)" in text
    assert "Hardware: " in text and "Replication wall time (both runs, evaluations included):" in text
    assert "x the bare loop's time per step" in text
    assert "slider redraw (update + PNG): median" in text
    assert "SelectionSlider(description='step'" in text


def test_the_data_folder_used_by_the_tests_is_the_offline_subset():
    assert (DATA_DIR / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file()
