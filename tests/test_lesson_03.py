"""Lesson 03: the numbers the image-normalization lesson states, checked with its own functions."""

import logging
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from lessons import DATA_DIR, load_lesson, outputs_text, run_lesson
from torch.utils.data import DataLoader, TensorDataset
from torchvision import datasets, transforms
from torchvision.transforms import v2

lesson = load_lesson("03")


@pytest.fixture(scope="module")
def photo():
    return lesson.load_photo()


@pytest.fixture(scope="module")
def image(photo):
    return transforms.ToTensor()(photo)


@pytest.fixture(scope="module")
def mnist_digits():
    root = lesson.local_mnist_root(DATA_DIR)
    train = datasets.MNIST(root, train=True, download=False)
    return train, train.data.unsqueeze(1).float() / 255


# --- the constants and the note's typo ----------------------------------------------------------

def test_the_notes_list_is_a_syntax_error_and_the_lesson_uses_the_right_constants():
    assert "0.456.0.406" in lesson.NOTE_LINE
    assert lesson.note_line_error().startswith("SyntaxError")
    assert lesson.IMAGENET_MEAN == [0.485, 0.456, 0.406]
    assert lesson.IMAGENET_STD == [0.229, 0.224, 0.225]
    assert str(transforms.Normalize(lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)) == (
        "Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])")


def test_the_caffe_mean_pixel_matches_red_exactly_and_the_others_only_roughly():
    ratios = [value / 255 for value in lesson.CAFFE_MEAN_PIXEL]
    assert round(ratios[0], 3) == lesson.IMAGENET_MEAN[0]  # 123.68 / 255 = 0.4850
    for ratio, mean in zip(ratios[1:], lesson.IMAGENET_MEAN[1:]):
        assert round(ratio, 3) != mean and abs(ratio - mean) < 0.003


# --- ToTensor -------------------------------------------------------------------------------------

def test_the_photo_ships_with_matplotlib_as_8_bit_rgb(photo):
    assert photo.dtype == np.uint8 and photo.shape == (600, 512, 3)
    assert photo.min() == 0 and photo.max() == 255 and photo.flags.writeable


def test_to_tensor_moves_channels_first_and_divides_by_255(photo, image):
    assert image.dtype == torch.float32 and image.shape == (3, 600, 512)
    assert torch.equal(image, lesson.to_tensor_by_hand(photo))
    assert torch.equal(image[1, 10, 20], torch.tensor(photo[10, 20, 1] / 255, dtype=torch.float32))
    rng = np.random.default_rng(0)
    random_photo = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert torch.equal(transforms.ToTensor()(random_photo), lesson.to_tensor_by_hand(random_photo))


def test_v2_multiplies_by_the_reciprocal_and_differs_only_in_the_last_bit(photo, image):
    image_v2 = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])(photo)
    reciprocal = torch.from_numpy(photo).permute(2, 0, 1).float() * (1 / 255)
    assert torch.equal(image_v2.as_subclass(torch.Tensor), reciprocal)
    assert 0 < (image_v2 - image).abs().max() < 1e-7


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
        lesson.streaming_channel_stats([image])
    with pytest.raises(ValueError, match="empty"):
        lesson.streaming_channel_stats([])


# --- Normalize ------------------------------------------------------------------------------------

def test_normalize_gives_each_channel_the_mean_and_std_the_formula_states(photo, image):
    pixels = photo.reshape(-1, 3).astype(np.float64) / 255
    mean, std, low, high = lesson.channel_stats(image)
    np.testing.assert_allclose(mean, pixels.mean(0), atol=1e-9)
    np.testing.assert_allclose(std, pixels.std(0), atol=1e-9)
    normalized = transforms.Normalize(lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)(image)
    out_mean, out_std, out_low, out_high = lesson.channel_stats(normalized)
    predicted_mean, predicted_std = lesson.predicted_after_normalize(
        mean, std, lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)
    np.testing.assert_allclose(out_mean, predicted_mean, atol=1e-6)
    np.testing.assert_allclose(out_std, predicted_std, atol=1e-6)
    # the ImageNet constants do not standardize this photograph: it is darker and wider than ImageNet
    assert (out_mean < -0.2).all() and (out_std > 1.15).all()
    # its own statistics do, exactly
    own = transforms.Normalize(mean.tolist(), std.tolist())(image)
    own_mean, own_std, _, _ = lesson.channel_stats(own)
    np.testing.assert_allclose(own_mean, 0, atol=1e-6)
    np.testing.assert_allclose(own_std, 1, atol=1e-6)


def test_normalize_range_guard(image):
    low, high = lesson.normalized_range(lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)
    mean, std = np.array(lesson.IMAGENET_MEAN), np.array(lesson.IMAGENET_STD)
    np.testing.assert_allclose(low, -mean / std)
    np.testing.assert_allclose(high, (1 - mean) / std)
    normalize = transforms.Normalize(lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)
    normalized = normalize(image)
    assert lesson.looks_imagenet_normalized(normalized)
    assert lesson.looks_imagenet_normalized(normalized.unsqueeze(0).repeat(2, 1, 1, 1))
    assert not lesson.looks_imagenet_normalized(normalize(image * 255))
    assert not lesson.looks_imagenet_normalized(normalize(normalized))
    # the photo has pure black and pure white in every channel: it reaches both ends of the range
    _, _, out_low, out_high = lesson.channel_stats(normalized)
    np.testing.assert_allclose(out_low, low, atol=1e-6)
    np.testing.assert_allclose(out_high, high, atol=1e-6)


def test_0_255_data_with_0_1_constants_is_255_times_too_large_and_saturates_a_sigmoid(photo, image):
    normalize = transforms.Normalize(lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)
    too_big = normalize(torch.from_numpy(photo).permute(2, 0, 1).float())
    assert too_big.max() > 1000 and (too_big.abs() > 4).double().mean() > 0.99
    assert (normalize(image).abs() > 4).sum() == 0
    # ToTensor divides uint8 only: a float array keeps its 0..255 values
    assert transforms.ToTensor()(photo.astype(np.float32)).max() == 255
    scaled_up = transforms.Normalize([m * 255 for m in lesson.IMAGENET_MEAN],
                                     [s * 255 for s in lesson.IMAGENET_STD])(image)
    mean, std, _, _ = lesson.channel_stats(scaled_up)
    assert ((mean + 2).abs() < 0.25).all() and (std < 0.01).all()  # every pixel near -2: image erased


def test_normalizing_twice_follows_the_affine_rule_and_is_about_4_4_times_too_wide(image):
    normalize = transforms.Normalize(lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)
    once, twice = normalize(image), normalize(normalize(image))
    once_mean, once_std, _, _ = lesson.channel_stats(once)
    twice_mean, twice_std, _, _ = lesson.channel_stats(twice)
    predicted_mean, predicted_std = lesson.predicted_after_normalize(
        once_mean, once_std, lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)
    np.testing.assert_allclose(twice_mean, predicted_mean, atol=1e-5)
    np.testing.assert_allclose(twice_std, predicted_std, atol=1e-5)
    ratio = twice_std / once_std
    assert ((ratio > 4.3) & (ratio < 4.5)).all()


# --- the inverse transform and imshow -------------------------------------------------------------

def test_the_inverse_transform_restores_the_image(photo, image):
    normalized = transforms.Normalize(lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)(image)
    restored = lesson.denormalize(normalized, lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)
    assert (restored - image).abs().max() < 1e-6
    as_uint8 = (restored * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(as_uint8, photo)


def test_the_exercise_solution_passes_and_a_wrong_answer_is_told_so(image):
    right_mean = [-m / s for m, s in zip(lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)]
    right_std = [1 / s for s in lesson.IMAGENET_STD]
    ok, message = lesson.check_inverse(right_mean, right_std, image)
    assert ok and message.startswith("Right")
    ok, message = lesson.check_inverse([-m for m in lesson.IMAGENET_MEAN], lesson.IMAGENET_STD, image)
    assert not ok and message.startswith("Not yet")
    ok, message = lesson.check_inverse([0.0], [1.0, 1.0], image)
    assert not ok and "Not yet" in message


def test_imshow_clips_a_normalized_tensor_exactly_as_the_lesson_says(image, caplog):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    normalized = transforms.Normalize(lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)(image)[:, ::4, ::4]

    def rendered(array):
        fig = Figure(figsize=(2, 2), dpi=50)
        fig.add_axes([0, 0, 1, 1]).imshow(array, interpolation="nearest")
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        return np.asarray(canvas.buffer_rgba()).copy()

    with caplog.at_level(logging.WARNING, logger="matplotlib.image"):
        raw = rendered(lesson.channels_last(normalized))
    assert "Clipping input data" in caplog.text
    assert np.array_equal(raw, rendered(lesson.what_imshow_shows(normalized)))
    assert ((normalized < 0) | (normalized > 1)).double().mean() > 0.8  # the lesson says 87 %


# --- your own statistics: pooled, streamed, and the mean of per-image stds ------------------------

def test_streaming_over_a_dataloader_equals_the_pooled_statistic(mnist_digits):
    train, digits = mnist_digits
    train.transform = transforms.ToTensor()
    mean, std, count = lesson.streaming_channel_stats(DataLoader(train, batch_size=1000))
    pooled_mean, pooled_std = lesson.pooled_channel_stats(digits)
    assert count == 8000 * 784
    # float64 sums over 6 million pixels in a different order: equal to rounding, not bit for bit
    assert abs(mean - pooled_mean).item() < 1e-10 and abs(std - pooled_std).item() < 1e-10
    for batch_size in (1_000_000, 7, 999):
        batches = DataLoader(TensorDataset(digits), batch_size=batch_size)
        streamed_mean, streamed_std, _ = lesson.streaming_channel_stats(batches)
        assert abs(streamed_mean - pooled_mean).item() < 1e-10
        assert abs(streamed_std - pooled_std).item() < 1e-10


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=8), st.integers(1, 3), st.integers(0, 2**16),
       st.floats(-50, 50), st.floats(0.01, 100))
def test_streaming_equals_pooled_for_any_split(batch_sizes, channels, seed, shift, scale):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(sum(batch_sizes), channels, 3, 4, generator=generator, dtype=torch.float64)
    images = images * scale + shift
    mean, std, count = lesson.streaming_channel_stats(images.split(batch_sizes))
    pooled_mean, pooled_std = lesson.pooled_channel_stats(images)
    assert count == images.numel() // channels
    torch.testing.assert_close(mean, pooled_mean, rtol=1e-12, atol=1e-12 * (abs(shift) + scale))
    torch.testing.assert_close(std, pooled_std, rtol=1e-10, atol=1e-12 * scale)
    # never larger than the pooled std (the law of total variance, then Jensen)
    assert (lesson.mean_of_per_image_stds(images) <= pooled_std + 1e-12).all()


def test_mnist_subset_is_close_to_the_full_mnist_reference(mnist_digits):
    _, digits = mnist_digits
    assert lesson.MNIST_REFERENCE == {"mean": 0.1307, "std": 0.3081, "digits": 60_000}
    mean, std = lesson.pooled_channel_stats(digits)
    assert round(mean.item(), 4) == 0.1311 and round(std.item(), 4) == 0.3086
    assert abs(mean.item() - 0.1307) < 1e-3 and abs(std.item() - 0.3081) < 1e-3
    # population and sample std agree to far below the quoted 4 digits at 6 million pixels
    assert abs(digits.double().std().item() - std.item()) < 1e-7


def test_the_mean_of_per_image_stds_is_smaller_by_the_law_of_total_variance(mnist_digits, image):
    _, digits = mnist_digits
    pooled_std = lesson.pooled_channel_stats(digits)[1]
    wrong = lesson.mean_of_per_image_stds(digits)
    assert -0.04 < (wrong / pooled_std - 1).item() < -0.01  # about -2 % for MNIST
    pooled_var, within, between = lesson.variance_decomposition(digits)
    assert abs(pooled_var - within - between).item() < 1e-10  # an identity, up to float64 rounding
    assert between.item() > 0 and wrong.item() <= within.sqrt().item()
    photo_tiles = lesson.tiles(image)
    tile_pooled = lesson.pooled_channel_stats(photo_tiles)[1]
    tile_wrong = lesson.mean_of_per_image_stds(photo_tiles)
    relative = tile_wrong / tile_pooled - 1
    assert ((relative > -0.5) & (relative < -0.3)).all()  # the lesson prints -44 to -35 %


def test_tiles_cut_the_image_in_reading_order_and_the_last_batch_is_short(image):
    photo_tiles = lesson.tiles(image)
    assert photo_tiles.shape == (72, 3, 64, 64)  # 600 x 512 -> 9 rows x 8 columns
    assert torch.equal(photo_tiles[0], image[:, :64, :64])
    assert torch.equal(photo_tiles[1], image[:, :64, 64:128])
    assert torch.equal(photo_tiles[8], image[:, 64:128, :64])
    sizes = [len(batch[0]) for batch in DataLoader(TensorDataset(photo_tiles), batch_size=10)]
    assert sizes == [10] * 7 + [2]
    with pytest.raises(ValueError, match="larger than the image"):
        lesson.tiles(image, size=1000)


# --- U(0, 1) ------------------------------------------------------------------------------------

def test_uniform_variance_is_one_twelfth_within_sampling_error():
    for seed in range(5):
        mean, variance, standard_error = lesson.uniform_sample_stats(seed=seed)
        assert abs(variance - 1 / 12) < 4 * standard_error
        assert abs(mean - 0.5) < 4 * math.sqrt(1 / 12 / (100 * 16 * 784))
        assert abs(variance - 1) > 0.9
    assert abs(math.sqrt(1 / 12) - 0.2887) < 5e-5


def test_uniform_moments_and_the_standard_error_formula():
    grid = (np.arange(1_000_000) + 0.5) / 1_000_000  # midpoint rule on [0, 1]
    assert abs(((grid - 0.5) ** 2).mean() - 1 / 12) < 1e-12
    assert abs(((grid - 0.5) ** 4).mean() - 1 / 80) < 1e-12
    # the standard error is the spread of the sample variance over many repeats
    samples = torch.rand(4000, 2000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    spread = samples.var(1).std().item()
    predicted = math.sqrt((1 / 80 - 1 / 144) / 2000)
    assert abs(spread / predicted - 1) < 0.06


# --- feature scaling ------------------------------------------------------------------------------

def test_condition_numbers_raw_min_max_standardized():
    features = lesson.two_features()
    assert 50 <= features[:, 0].min() and features[:, 0].max() <= 250
    assert abs(features[:, 1].mean() - 3) < 0.3
    kappas = {}
    for name, scale in [("raw", lambda f: f), ("min-max", lesson.min_max_scale),
                        ("standardized", lesson.standardize)]:
        scaled = scale(features)
        direct = np.linalg.cond(scaled.T @ scaled / len(scaled))
        assert abs(lesson.condition_number(scaled) / direct - 1) < 1e-9
        kappas[name] = direct
    assert kappas["raw"] > 1000 * kappas["min-max"] and kappas["min-max"] > 5 * kappas["standardized"]
    rho = abs(np.corrcoef(features.T)[0, 1])
    assert abs(kappas["standardized"] - (1 + rho) / (1 - rho)) < 1e-9
    scaled = lesson.min_max_scale(features)
    assert scaled.min() == 0 and scaled.max() == 1
    # min-max leaves both columns positive with means near 0.5: nearly parallel
    assert (abs(scaled.mean(0) - 0.5) < 0.1).all()
    cosine = scaled[:, 0] @ scaled[:, 1] / np.linalg.norm(scaled[:, 0]) / np.linalg.norm(scaled[:, 1])
    assert cosine > 0.7


def test_an_outlier_hurts_min_max_more_than_standardization():
    clean, dirty = lesson.two_features(), lesson.two_features(outlier=True)
    assert lesson.condition_number(lesson.min_max_scale(dirty)) > 3 * lesson.condition_number(
        lesson.min_max_scale(clean))
    assert lesson.condition_number(lesson.standardize(dirty)) < 1.5


def test_gradient_descent_steps_follow_the_condition_number():
    features = lesson.two_features()
    for scale in (lambda f: f, lesson.min_max_scale, lesson.standardize):
        scaled = scale(features)
        kappa = lesson.condition_number(scaled)
        # with step 2 / (l_min + l_max) both eigen-directions shrink by (kappa - 1) / (kappa + 1)
        theory = math.ceil(math.log(1e-6) / math.log((kappa - 1) / (kappa + 1)))
        assert abs(lesson.gradient_descent_steps(scaled) - theory) <= 1
    with pytest.raises(ValueError, match="constant"):
        lesson.min_max_scale(np.ones((4, 2)))


# --- the slider panel -----------------------------------------------------------------------------

def test_the_panel_is_deterministic_and_shows_what_it_says(image):
    small = image[:, ::6, ::6].contiguous()
    fig, update = lesson.normalize_panel(small)
    values = dict(mean_r=0.485, mean_g=0.456, mean_b=0.406, std_r=0.229, std_g=0.224, std_b=0.225)
    update(**values)
    first = lesson.figure_png(fig)
    shown = fig.axes[0].images[0].get_array()
    normalized = transforms.Normalize(lesson.IMAGENET_MEAN, lesson.IMAGENET_STD)(small)
    np.testing.assert_allclose(shown, lesson.what_imshow_shows(normalized), atol=1e-6)
    red = fig.axes[1].texts[0].get_text()
    assert red == f"R: mean {normalized[0].mean():+.2f}, std {normalized[0].std(correction=0):.2f}"
    update(**{**values, "mean_r": 1.0, "std_b": 0.05}, twice=True)
    changed = lesson.figure_png(fig)
    assert fig.axes[1].title.get_text() == "Normalize applied twice"
    update(**values)
    assert lesson.figure_png(fig) == first != changed


# --- the executed notebook ----------------------------------------------------------------------

def test_the_executed_lesson_prints_what_its_text_states():
    nb, _, _ = run_lesson("03", True)  # the same call as test_notebooks_run, so it runs once
    text = outputs_text(nb)
    assert "SyntaxError: invalid syntax. Perhaps you forgot a comma?" in text
    assert "equal to photo / 255, channels first: True" in text
    assert "data: the MNIST subset that ships with the series, 8,000 digits" in text
    assert "ours rounds to 0.1311 and 0.3086" in text
    assert "mean of per-image stds:        0.3017" in text
    assert "back to the original 8-bit pixels, every one: True" in text
    assert "Right: the round trip restores the image" in text
    assert "0-255 data: inside the possible range? False" in text
    assert "slider redraw (update + PNG): median" in text
    assert "ToTensor of a float array does not divide: max 255.0" in text
