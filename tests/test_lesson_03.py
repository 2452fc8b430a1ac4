"""Lesson 03: image normalization. The lesson's own functions against torchvision and torch, its
exercise checks shown every mistake they name, its panel, the cells it carries from lessons 01
and 02, and the numbers the executed lesson prints and its prose states."""

import io
import logging
import math
import re

import matplotlib.image
import nbformat
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from lessons import (
    DATA_DIR,
    exercise_count,
    load_lesson,
    notebook_path,
    outputs_text,
    printed_number,
    run_lesson,
)
from torch.utils.data import DataLoader, TensorDataset
from torchvision import datasets, transforms
from torchvision.models import ResNet18_Weights
from torchvision.transforms import v2

lesson = load_lesson("03")
F64 = torch.float64


def prose():
    """The lesson's markdown, joined: the sentences whose numbers the tests hold."""
    nb = nbformat.read(notebook_path("03"), as_version=4)
    return "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")


@pytest.fixture(scope="module")
def photo():
    return lesson.load_photo()


@pytest.fixture(scope="module")
def image(photo):
    return transforms.ToTensor()(photo)


@pytest.fixture(scope="module")
def normalized(image):
    return transforms.Normalize(lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)(image)


@pytest.fixture(scope="module")
def mnist_digits():
    root = lesson.local_mnist_root(DATA_DIR)
    train = datasets.MNIST(root, train=True, download=False)
    return train, train.data.unsqueeze(1).float() / 255


@pytest.fixture(scope="module")
def executed():
    nb, _, _ = run_lesson("03", True)  # the same call (and cache entry) as test_notebooks_run
    return outputs_text(nb)


# --- the constants and the note's typo ----------------------------------------------------------

def test_the_notes_list_is_a_syntax_error_and_the_lesson_uses_torchvisions_constants():
    assert "0.456.0.406" in lesson.NOTE_LINE
    assert lesson.note_line_error().startswith("SyntaxError")
    pretrained = ResNet18_Weights.IMAGENET1K_V1.transforms()  # what torchvision's models expect
    assert lesson.IMAGENET_MEAN == list(pretrained.mean)
    assert lesson.IMAGENET_STD == list(pretrained.std)


def test_the_caffe_mean_pixel_matches_red_exactly_and_the_others_only_roughly():
    ratios = [value / 255 for value in lesson.CAFFE_MEAN_PIXEL]
    assert round(ratios[0], 3) == lesson.IMAGENET_MEAN[0]  # 123.68 / 255 = 0.4850
    for ratio, mean in zip(ratios[1:], lesson.IMAGENET_MEAN[1:]):
        assert round(ratio, 3) != mean and abs(ratio - mean) < 0.003


# --- ToTensor -------------------------------------------------------------------------------------

def test_the_photo_ships_with_matplotlib_as_8_bit_rgb(photo):
    assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3
    assert photo.min() == 0 and photo.max() == 255 and photo.flags.writeable


def test_to_tensor_moves_channels_first_and_divides_by_255(photo, image):
    assert image.dtype == torch.float32 and image.shape == (3, *photo.shape[:2])
    assert torch.equal(image, lesson.to_tensor_by_hand(photo))
    assert torch.equal(image[1, 10, 20], torch.tensor(photo[10, 20, 1] / 255, dtype=torch.float32))
    random_photo = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert torch.equal(transforms.ToTensor()(random_photo), lesson.to_tensor_by_hand(random_photo))


def test_v2_multiplies_by_the_reciprocal_and_differs_by_one_unit_in_the_last_place(photo, image, executed):
    image_v2 = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])(photo)
    reciprocal = torch.from_numpy(photo).permute(2, 0, 1).float() * (1 / 255)
    assert torch.equal(image_v2.as_subclass(torch.Tensor), reciprocal)
    largest = (image_v2 - image).abs().max().item()
    assert largest == np.spacing(np.float32(1)) / 2  # the spacing of float32 just below 1
    assert printed_number(executed, "largest difference from ToTensor") == float(f"{largest:.2e}")
    assert f"most {largest:.2e}, the spacing of float32 numbers just below 1" in prose()


def test_bad_input_says_what_was_expected(photo, image):
    with pytest.raises(ValueError, match="uint8"):
        lesson.to_tensor_by_hand(photo.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(C, H, W\).*permute"):
        lesson.channel_stats(torch.from_numpy(photo))
    with pytest.raises(TypeError, match="torch.Tensor"):
        lesson.channels_last(photo)
    with pytest.raises(ValueError, match="3 channels but 2 means"):
        lesson.denormalize(image, [0.5, 0.5], [0.2, 0.2])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        lesson.channel_mean_std([image])
    with pytest.raises(ValueError, match="no images"):
        lesson.channel_mean_std([])


# --- Normalize ------------------------------------------------------------------------------------

def test_normalize_gives_each_channel_the_mean_and_std_the_formula_states(photo, image, normalized):
    pixels = photo.reshape(-1, 3).astype(np.float64) / 255
    mean, std, _, _ = lesson.channel_stats(image)
    np.testing.assert_allclose(mean, pixels.mean(0), atol=1e-9)
    np.testing.assert_allclose(std, pixels.std(0), atol=1e-9)
    out_mean, out_std, _, _ = lesson.channel_stats(normalized)
    predicted_mean, predicted_std = lesson.predicted_after_normalize(
        mean, std, lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)
    np.testing.assert_allclose(out_mean, predicted_mean, atol=1e-6)
    np.testing.assert_allclose(out_std, predicted_std, atol=1e-6)
    # "the ImageNet constants do not give this photograph mean 0 and std 1"
    assert (out_mean.abs() > 0.2).all() and ((out_std - 1).abs() > 0.15).all()
    # its own statistics do, exactly
    own = transforms.Normalize(mean.tolist(), std.tolist())(image)
    own_mean, own_std, _, _ = lesson.channel_stats(own)
    np.testing.assert_allclose(own_mean, 0, atol=1e-6)
    np.testing.assert_allclose(own_std, 1, atol=1e-6)


def test_normalize_range_guard(image, normalized):
    low, high = lesson.normalized_range(lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)
    mean, std = np.array(lesson.IMAGENET_MEAN), np.array(lesson.IMAGENET_STD)
    np.testing.assert_allclose(low, -mean / std)
    np.testing.assert_allclose(high, (1 - mean) / std)
    normalize = transforms.Normalize(lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)
    assert lesson.looks_imagenet_normalized(normalized)
    assert lesson.looks_imagenet_normalized(normalized.unsqueeze(0).repeat(2, 1, 1, 1))
    assert not lesson.looks_imagenet_normalized(normalize(image * 255))
    assert not lesson.looks_imagenet_normalized(normalize(normalized))
    # the photo has pure black and pure white in every channel: it reaches both ends of the range
    _, _, out_low, out_high = lesson.channel_stats(normalized)
    np.testing.assert_allclose(out_low, low, atol=1e-6)
    np.testing.assert_allclose(out_high, high, atol=1e-6)


def test_0_255_data_with_0_1_constants_saturates_a_sigmoid_by_lesson_01s_rule(photo, image, normalized,
                                                                              executed):
    lesson_01 = load_lesson("01")
    assert lesson.SATURATION_CUTOFF == lesson_01.SATURATION_CUTOFF  # one definition for the series
    normalize = transforms.Normalize(lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)
    too_big = normalize(torch.from_numpy(photo).permute(2, 0, 1).float())
    saturated = lesson.fraction_saturated(too_big)
    assert saturated > 0.99 and lesson.fraction_saturated(normalized) == 0
    assert printed_number(executed, "saturated (|x| >") == round(lesson.SATURATION_CUTOFF, 2)
    percent = printed_number(executed, "saturated (|x| >", "lesson 01):")
    assert percent == round(100 * saturated, 1)  # "99.6 % of the values"
    # ToTensor divides uint8 only: a float array keeps its 0..255 values
    assert transforms.ToTensor()(photo.astype(np.float32)).max() == 255
    scaled_up = transforms.Normalize([m * 255 for m in lesson.IMAGENET_MEAN],
                                     [s * 255 for s in lesson.IMAGENET_STD])(image)
    mean, std, _, _ = lesson.channel_stats(scaled_up)
    assert ((mean + 2).abs() < 0.25).all() and (std < 0.01).all()  # "every pixel ends up near -2"


def test_normalizing_twice_follows_the_affine_rule_and_is_one_over_sigma_too_wide(normalized):
    normalize = transforms.Normalize(lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)
    twice = normalize(normalized)
    once_mean, once_std, _, _ = lesson.channel_stats(normalized)
    twice_mean, twice_std, _, _ = lesson.channel_stats(twice)
    predicted_mean, predicted_std = lesson.predicted_after_normalize(
        once_mean, once_std, lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)
    np.testing.assert_allclose(twice_mean, predicted_mean, atol=1e-5)
    np.testing.assert_allclose(twice_std, predicted_std, atol=1e-5)
    ratio = twice_std / once_std
    np.testing.assert_allclose(ratio, 1 / torch.tensor(lesson.IMAGENET_STD, dtype=F64), rtol=1e-5)
    assert f"about {ratio.mean():.1f} times" in prose()


# --- the inverse transform and imshow -------------------------------------------------------------

def test_the_inverse_transform_restores_the_image(photo, image, normalized):
    restored = lesson.denormalize(normalized, lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)
    assert (restored - image).abs().max() < 1e-6
    as_uint8 = (restored * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(as_uint8, photo)
    tensors = lesson.denormalize(normalized, torch.tensor(lesson.IMAGENET_MEAN),
                                 torch.tensor(lesson.IMAGENET_STD))
    assert torch.equal(tensors, restored)


def test_imshow_clips_a_normalized_tensor_exactly_as_the_lesson_says(normalized, caplog, executed):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    small = normalized[:, ::4, ::4]

    def rendered(array):
        fig = Figure(figsize=(2, 2), dpi=50)
        fig.add_axes([0, 0, 1, 1]).imshow(array, interpolation="nearest")
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        return np.asarray(canvas.buffer_rgba()).copy()

    with caplog.at_level(logging.WARNING, logger="matplotlib.image"):
        raw = rendered(lesson.channels_last(small))
    assert "Clipping input data" in caplog.text
    assert np.array_equal(raw, rendered(lesson.what_imshow_shows(small)))
    clipped = ((normalized < 0) | (normalized > 1)).double().mean().item()
    assert printed_number(executed, "imshow would clip:") == round(100 * clipped, 1)  # "87.3 %"


# --- exercise 1: the per-channel mean and std over a DataLoader --------------------------------

def summed(loader, count_of=lambda images: images[:, 0].numel(), correction=0):
    """Per-channel running sums over a loader: the reference, with a knob for each mistake."""
    count, total, squares = 0, 0, 0
    for batch in loader:
        images = lesson.batch_images(batch).double()
        count += count_of(images)
        total = total + images.sum(dim=(0, 2, 3))
        squares = squares + (images**2).sum(dim=(0, 2, 3))
    mean = total / count
    variance = (squares / count - mean**2) * count / (count - correction)
    return mean, variance.sqrt()


def per_batch(loader):
    return [lesson.batch_images(batch).double() for batch in loader]


def all_at_once(loader):
    return torch.cat(per_batch(loader))


def over_every_dimension(loader):
    x = all_at_once(loader)
    return x.mean().expand(x.shape[1]), x.std(correction=0).expand(x.shape[1])


def reshaped(loader):
    x = all_at_once(loader)
    flat = x.reshape(-1, x.shape[1])
    return flat.mean(0), flat.std(0, correction=0)


def unweighted_batches(loader):
    batches = per_batch(loader)
    means = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(0)
    return means, torch.stack([b.std(dim=(0, 2, 3), correction=0) for b in batches]).mean(0)


def last_batch_only(loader):
    for batch in loader:
        images = lesson.batch_images(batch).double()
        mean, std = images.mean(dim=(0, 2, 3)), images.std(dim=(0, 2, 3), correction=0)
    return mean, std


def first_batch_only(loader):
    for batch in loader:
        images = lesson.batch_images(batch).double()
        return images.mean(dim=(0, 2, 3)), images.std(dim=(0, 2, 3), correction=0)


def per_image_stds(loader):
    x = all_at_once(loader)
    return x.mean(dim=(0, 2, 3)), x.flatten(2).std(2, correction=0).mean(0)


def averaged_batch_stds(loader):
    batches = per_batch(loader)
    weights = torch.tensor([len(b) for b in batches], dtype=F64)[:, None]
    stds = torch.stack([b.std(dim=(0, 2, 3), correction=0) for b in batches])
    return all_at_once(loader).mean(dim=(0, 2, 3)), (stds * weights).sum(0) / weights.sum()


def pooled_variances_of_batches(loader):
    batches = per_batch(loader)
    variances = torch.stack([b.var(dim=(0, 2, 3), correction=0) for b in batches])
    return all_at_once(loader).mean(dim=(0, 2, 3)), variances.mean(0).sqrt()


def keepdim(loader):
    x = all_at_once(loader)
    return x.mean(dim=(0, 2, 3), keepdim=True), x.std(dim=(0, 2, 3), correction=0, keepdim=True)


def three_channels_assumed(loader):
    x = all_at_once(loader)
    flat = x.transpose(0, 1).reshape(3, -1)
    return flat.mean(1), flat.std(1, correction=0)


CHANNEL_MEAN_STD_MISTAKES = {
    "return the pair": lambda loader: torch.stack(summed(loader)),
    "shape (C,)": keepdim,
    "you reduced over every dimension": over_every_dimension,
    "your channels mix": reshaped,
    "the last batch is smaller": unweighted_batches,
    "only the last batch counts": last_batch_only,
    "only the first batch counts": first_batch_only,
    "number of images, not of pixels": lambda loader: summed(loader, count_of=len),
    "mean of per-image stds": per_image_stds,
    "averaging per-batch statistics": averaged_batch_stds,
    "the law of total variance": pooled_variances_of_batches,
    "n − 1": lambda loader: summed(loader, correction=1),
    "that is the variance": lambda loader: (summed(loader)[0], summed(loader)[1] ** 2),
    "the pooled mean is": lambda loader: (summed(loader)[0] + 0.01, summed(loader)[1]),
    "Take the number of channels from the images": three_channels_assumed,
}


def test_the_channel_mean_std_check_accepts_the_lesson_and_names_each_mistake():
    assert lesson.check_channel_mean_std(lesson.channel_mean_std) is None
    assert lesson.check_channel_mean_std(summed) is None
    for message, wrong in CHANNEL_MEAN_STD_MISTAKES.items():
        with pytest.raises(AssertionError, match=re.escape(message)):
            lesson.check_channel_mean_std(wrong)


def test_streaming_over_a_dataloader_equals_the_pooled_statistic(mnist_digits, executed):
    train, digits = mnist_digits
    train.transform = transforms.ToTensor()
    mean, std = lesson.channel_mean_std(DataLoader(train, batch_size=1000))
    pooled_mean, pooled_std = lesson.pooled_channel_stats(digits)
    assert abs(mean - pooled_mean).item() < 1e-10 and abs(std - pooled_std).item() < 1e-10
    for batch_size in (1_000_000, 7, 999):
        streamed_mean, streamed_std = lesson.channel_mean_std(
            DataLoader(TensorDataset(digits), batch_size=batch_size))
        assert abs(streamed_mean - pooled_mean).item() < 1e-10
        assert abs(streamed_std - pooled_std).item() < 1e-10
    for label in ("batches of 1000", "batches of 7", "all at once"):
        assert printed_number(executed, f"{label} mean") == round(pooled_mean.item(), 6)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=8), st.integers(1, 3), st.integers(0, 2**16),
       st.floats(-5, 5), st.floats(0.05, 5))
def test_streaming_equals_pooled_for_any_split(batch_sizes, channels, seed, shift, scale):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(sum(batch_sizes), channels, 3, 4, generator=generator, dtype=F64)
    images = images * scale + shift
    mean, std = lesson.channel_mean_std(images.split(batch_sizes))
    pooled_mean, pooled_std = lesson.pooled_channel_stats(images)
    torch.testing.assert_close(mean, pooled_mean, rtol=1e-12, atol=1e-12 * (abs(shift) + scale))
    torch.testing.assert_close(std, pooled_std, rtol=1e-8, atol=1e-12 * scale)
    # never larger than the pooled std (the law of total variance, then Jensen)
    assert (lesson.mean_of_per_image_stds(images) <= pooled_std + 1e-12).all()


def test_the_mnist_subset_is_close_to_the_full_mnist_reference(mnist_digits, executed):
    _, digits = mnist_digits
    reference = lesson.MNIST_REFERENCE
    assert len(digits) < reference["digits"]  # the offline subset, not the full training set
    mean, std = lesson.pooled_channel_stats(digits)
    assert printed_number(executed, "ours rounds to") == round(mean.item(), 4)
    assert printed_number(executed, "ours rounds to", "and") == round(std.item(), 4)
    assert abs(mean.item() - reference["mean"]) < 1e-3 and abs(std.item() - reference["std"]) < 1e-3
    assert f"{reference['mean']} and {reference['std']}" in prose()


def test_the_mean_of_per_image_stds_is_smaller_by_the_law_of_total_variance(mnist_digits, image, executed):
    _, digits = mnist_digits
    pooled_std = lesson.pooled_channel_stats(digits)[1]
    wrong = lesson.mean_of_per_image_stds(digits)
    assert printed_number(executed, "mean of per-image stds:") == round(wrong.item(), 4)
    assert -0.05 < (wrong / pooled_std - 1).item() < 0
    pooled_var, within, between = lesson.variance_decomposition(digits)
    assert abs(pooled_var - within - between).item() < 1e-10  # an identity, up to float64 rounding
    assert between.item() > 0 and wrong.item() <= within.sqrt().item()
    # the tiles of a photograph differ far more from each other than MNIST's digits do
    photo_tiles = lesson.tiles(image)
    relative = lesson.mean_of_per_image_stds(photo_tiles) / lesson.pooled_channel_stats(photo_tiles)[1] - 1
    assert (relative < 5 * (wrong / pooled_std - 1)).all()
    assert printed_number(executed, "per-tile stds", "(") == round(100 * relative.min().item())
    assert printed_number(executed, "per-tile stds", "(", "to") == round(100 * relative.max().item())


def test_tiles_cut_the_image_in_reading_order_and_the_last_batch_is_short(image):
    photo_tiles = lesson.tiles(image)
    rows, columns = image.shape[1] // 64, image.shape[2] // 64
    assert photo_tiles.shape == (rows * columns, 3, 64, 64)
    assert torch.equal(photo_tiles[0], image[:, :64, :64])
    assert torch.equal(photo_tiles[1], image[:, :64, 64:128])
    assert torch.equal(photo_tiles[columns], image[:, 64:128, :64])
    sizes = [len(batch[0]) for batch in DataLoader(TensorDataset(photo_tiles), batch_size=10)]
    assert sizes[:-1] == [10] * (len(sizes) - 1) and 0 < sizes[-1] < 10
    with pytest.raises(ValueError, match="larger than the image"):
        lesson.tiles(image, size=1000)


# --- exercise 2: the inverse transform ----------------------------------------------------------

def shaped(values):
    return torch.tensor(values)[:, None, None]


DENORMALIZE_MISTAKES = {
    "wrong order": lambda x, m, s: (x + shaped(m)) * shaped(s),
    "that normalizes again": lambda x, m, s: (x - shaped(m)) / shaped(s),
    "its inverse multiplies": lambda x, m, s: x / shaped(s) + shaped(m),
    "swapped": lambda x, m, s: x * shaped(m) + shaped(s),
    "ImageNet constants": lambda x, m, s: x * shaped(lesson.IMAGENET_STD) + shaped(lesson.IMAGENET_MEAN),
    "line up with the last dimension": lambda x, m, s: x * torch.tensor(s) + torch.tensor(m),
    "in place": lambda x, m, s: x.mul_(shaped(s)).add_(shaped(m)),
    "channels last": lambda x, m, s: (x * shaped(s) + shaped(m)).permute(1, 2, 0),
    "largest difference": lambda x, m, s: x * shaped(s) + shaped(m) + 0.01,
}


def test_the_denormalize_check_accepts_the_lesson_and_names_each_mistake():
    assert lesson.check_denormalize(lesson.denormalize) is None
    for message, wrong in DENORMALIZE_MISTAKES.items():
        with pytest.raises(AssertionError, match=re.escape(message)):
            lesson.check_denormalize(wrong)
    # with a width of 3, shape-(3,) constants broadcast without an error: the check still names it
    def across_the_width_when_it_fits(x, m, s):
        if x.shape[2] == 3:
            return x * torch.tensor(s) + torch.tensor(m)
        return x * shaped(s) + shaped(m)

    with pytest.raises(AssertionError, match="line up with the last dimension"):
        lesson.check_denormalize(across_the_width_when_it_fits)


# --- U(0, 1) --------------------------------------------------------------------------------------

def test_the_lessons_standard_error_is_the_spread_of_its_sample_variances():
    # the lesson's sample, drawn with 4000 seeds: its variances scatter by the standard error the
    # lesson gives (which holds its fourth moment), around the mean and variance it states
    repeats, n = 4000, 2000
    stats = [lesson.uniform_sample_stats(shape=(n,), seed=seed) for seed in range(repeats)]
    means, variances, standard_errors = np.array(stats).T
    assert (standard_errors == lesson.variance_standard_error(n)).all()
    assert variances.std() / standard_errors[0] == pytest.approx(1, abs=0.06)
    assert abs(variances.mean() - lesson.UNIFORM_VARIANCE) < 4 * standard_errors[0] / math.sqrt(repeats)
    assert abs(means.mean() - lesson.UNIFORM_MEAN) < 4 * math.sqrt(variances.mean() / (n * repeats))


def test_uniform_variance_is_one_twelfth_within_sampling_error(executed):
    shape = (50, 1000)
    for seed in range(5):
        mean, variance, standard_error = lesson.uniform_sample_stats(shape, seed=seed)
        assert abs(variance - lesson.UNIFORM_VARIANCE) < 4 * standard_error
        assert abs(mean - lesson.UNIFORM_MEAN) < 4 * math.sqrt(lesson.UNIFORM_VARIANCE / math.prod(shape))
        assert abs(variance - 1) > 0.9  # the note's "variance 1"
    mean, variance, standard_error = lesson.uniform_sample_stats()
    printed = executed.split("torch.rand(", 1)[1]  # what the U(0, 1) cell printed
    assert printed_number(printed, "variance") == round(variance, 5)
    assert printed_number(printed, "theory 1/12 =") == round(lesson.UNIFORM_VARIANCE, 5)
    assert printed_number(printed, "standard errors (") == float(f"{standard_error:.1e}")


# --- feature scaling, with lesson 02's standardize and condition_number ------------------------

def test_the_carried_cells_are_lesson_02s():
    lesson_02 = load_lesson("02")
    features = lesson.two_features()
    assert torch.equal(lesson.standardize(features), lesson_02.standardize(features))
    hessian = lesson.least_squares_hessian(features)
    assert lesson.condition_number(hessian) == lesson_02.condition_number(hessian)


def test_condition_numbers_raw_min_max_standardized():
    features = lesson.two_features()
    assert 50 <= features[:, 0].min() and features[:, 0].max() <= 250
    assert abs(features[:, 1].mean() - 3) < 0.3
    kappas = {}
    for name, scale in [("raw", lambda f: f), ("min-max", lesson.min_max_scale),
                        ("standardized", lesson.standardize)]:
        scaled = scale(features)
        direct = np.linalg.cond((scaled.T @ scaled / len(scaled)).numpy())
        kappa = lesson.condition_number(lesson.least_squares_hessian(scaled))
        assert kappa == pytest.approx(direct, rel=1e-9)
        kappas[name] = direct
    assert kappas["raw"] > 1000 * kappas["min-max"] and kappas["min-max"] > 5 * kappas["standardized"]
    rho = abs(torch.corrcoef(features.T)[0, 1].item())
    assert kappas["standardized"] == pytest.approx((1 + rho) / (1 - rho), rel=1e-9)
    scaled = lesson.min_max_scale(features)
    assert scaled.min() == 0 and scaled.max() == 1
    # min-max leaves both columns positive with means near 0.5: nearly parallel
    assert (abs(scaled.mean(0) - 0.5) < 0.1).all()
    assert torch.nn.functional.cosine_similarity(scaled[:, 0], scaled[:, 1], dim=0) > 0.7


def test_an_outlier_hurts_min_max_more_than_standardization():
    def kappa(features):
        return lesson.condition_number(lesson.least_squares_hessian(features))

    clean, dirty = lesson.two_features(), lesson.two_features(outlier=True)
    assert kappa(lesson.min_max_scale(dirty)) > 3 * kappa(lesson.min_max_scale(clean))
    assert kappa(lesson.standardize(dirty)) < 1.5


def test_gradient_descent_steps_follow_the_condition_number():
    features = lesson.two_features()
    for scale in (lambda f: f, lesson.min_max_scale, lesson.standardize):
        kappa = lesson.condition_number(lesson.least_squares_hessian(scale(features)))
        # with step 2 / (l_min + l_max) both eigen-directions shrink by (kappa - 1) / (kappa + 1)
        theory = math.ceil(math.log(1e-3) / math.log((kappa - 1) / (kappa + 1)))
        assert abs(lesson.gradient_descent_steps(scale(features), tol=1e-3) - theory) <= 1
    with pytest.raises(ValueError, match="constant"):
        lesson.min_max_scale(torch.ones(4, 2))


# --- the slider panel -----------------------------------------------------------------------------

def pixels(png):
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def test_the_panels_controls_form_one_block_a_row_per_channel():
    controls = lesson.normalize_panel.controls
    assert list(controls) == ["mean_r", "std_r", "mean_g", "std_g", "mean_b", "std_b", "twice"]
    descriptions = [c.description for c in controls.values()]
    assert descriptions[:6] == ["mean R", "std R", "mean G", "std G", "mean B", "std B"]
    assert len({c.layout.width for c in controls.values()}) == 1  # two to a row, aligned
    assert len({c.style.description_width for c in controls.values()}) == 1
    assert 2 * int(controls["mean_r"].layout.width.removesuffix("px")) <= 800
    defaults = lesson.normalize_panel.values()
    assert [defaults[f"mean_{c}"] for c in "rgb"] == lesson.IMAGENET_MEAN
    assert [defaults[f"std_{c}"] for c in "rgb"] == lesson.IMAGENET_STD


def test_the_panel_is_deterministic_and_shows_what_it_says(photo):
    fig, update = lesson.make_normalize_panel()
    assert round(fig.get_size_inches()[0] * fig.dpi) <= 830  # the notebook column
    defaults = lesson.normalize_panel.values()
    update(**defaults)
    first = lesson.figure_png(fig)
    small = transforms.ToTensor()(photo)[:, ::2, ::2]
    normalized = transforms.Normalize(lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)(small)
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), lesson.what_imshow_shows(normalized),
                               atol=1e-6)
    red = fig.axes[1].texts[0].get_text()
    assert red == f"R: mean {normalized[0].mean():+.2f}, std {normalized[0].std(correction=0):.2f}"
    assert fig.axes[1].title.get_text() == "Normalize(mean, std), per channel"
    for name in defaults:
        update(**{**defaults, name: not defaults[name] if name == "twice" else defaults[name] + 0.1})
        assert lesson.figure_png(fig) != first, name
    assert fig.axes[1].title.get_text() == "Normalize applied twice"  # the last change: twice
    update(**defaults)
    assert lesson.figure_png(fig) == first


def test_the_panel_widget_redraws_when_a_control_moves():
    panel = lesson.normalize_panel
    image = panel.widget().children[1]
    before = image.value
    control = panel.controls["std_b"]
    try:
        control.value = 0.5
        assert image.value != before and panel.errors == []
    finally:
        control.value = lesson.IMAGENET_STD[2]
    assert image.value == before


# --- the executed lesson --------------------------------------------------------------------------

def test_the_executed_lesson_prints_what_its_text_states(executed):
    assert "SyntaxError: invalid syntax. Perhaps you forgot a comma?" in executed
    assert "equal to photo / 255, channels first: True" in executed
    assert "back to the original 8-bit pixels, every one: True" in executed
    assert "0-255 data: inside the possible range? False" in executed
    assert "ToTensor of a float array does not divide: max 255.0" in executed
    assert printed_number(executed, "Normalize as the inverse: largest difference from denormalize") < 1e-6
    assert executed.count("⏳ Not written yet") == exercise_count("03") > 0


def test_the_readme_states_the_lessons_own_numbers(mnist_digits):
    readme = (notebook_path("03").parent.parent / "README.md").read_text()
    [paragraph] = re.findall(r"\*\*03 · .*?(?=\n\n)", readme, re.S)
    _, digits = mnist_digits
    smaller = 1 - lesson.mean_of_per_image_stds(digits) / lesson.pooled_channel_stats(digits)[1]
    assert f"({100 * smaller.item():.1f} % smaller on the MNIST digits that ship" in paragraph
