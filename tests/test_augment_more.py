"""Horizontal flip and brightness/contrast jitter (data.augment.flip, brightness, contrast).

Outputs against hand computations for fixed draws; probability 0 and 1; the draws come from the
generator the loader hands over (reproducible under the seed, the same per sample on 1 and 2 ranks);
exact resume of a config-built job; clear errors for bad values and for data that is not images.
"""
import numpy as np
import pytest

import distnn.data as D
from distnn.data import DataError
from distnn.distributed import DistributedSampler
from distnn.train.config import ConfigError, load_config

from test_resume_sweep import sweep

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


class FixedDraws:
    """A generator stand-in that returns given values and records what was asked for."""

    def __init__(self, *values):
        self.values, self.calls = list(values), []

    def random(self, size=None):
        self.calls.append(("random", size))
        return np.asarray(self.values.pop(0), dtype=np.float64)

    def uniform(self, low=0.0, high=1.0, size=None):
        self.calls.append(("uniform", low, high, size))
        return np.asarray(self.values.pop(0), dtype=np.float64)


def _images(n=3, c=1, h=4, w=5, seed=0):
    return np.random.default_rng(seed).random((n, c, h, w)).astype(np.float32)


# ---------------------------------------------------------------- flip

def test_flip_mirrors_exactly_the_images_whose_draw_is_below_p():
    x = np.arange(2 * 1 * 2 * 3, dtype=np.float32).reshape(2, 1, 2, 3)
    draws = FixedDraws([0.2, 0.7])  # p = 0.5: the first image flips, the second does not
    out = D.RandomHorizontalFlip(0.5)(x, draws)
    assert draws.calls == [("random", 2)]
    expected = np.array([[[[2, 1, 0], [5, 4, 3]]], [[[6, 7, 8], [9, 10, 11]]]], dtype=np.float32)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.float32


def test_flip_probability_0_is_identity_and_1_an_exact_mirror_in_every_layout():
    x = _images(4, 3)
    assert D.RandomHorizontalFlip(0.0)(x, np.random.default_rng(0)) is x
    np.testing.assert_array_equal(D.RandomHorizontalFlip(1.0)(x, np.random.default_rng(0)), x[..., ::-1])
    grey = x[:, 0]  # (N, H, W)
    np.testing.assert_array_equal(D.RandomHorizontalFlip(1.0)(grey, np.random.default_rng(0)), grey[..., ::-1])
    flat = x[:, :1].reshape(4, 20)  # flat features viewed as (1, 4, 5) images
    out = D.RandomHorizontalFlip(1.0, image_shape=(1, 4, 5))(flat, np.random.default_rng(0))
    assert out.shape == flat.shape
    np.testing.assert_array_equal(out, x[:, :1, :, ::-1].reshape(4, 20))


def test_flip_draws_follow_the_generator():
    x = _images(50)
    out = D.RandomHorizontalFlip(0.3)(x, np.random.default_rng(7))
    flips = np.random.default_rng(7).random(50) < 0.3  # the same draws, by hand
    assert 0 < flips.sum() < 50
    for i in range(50):
        np.testing.assert_array_equal(out[i], x[i, :, :, ::-1] if flips[i] else x[i])


# ---------------------------------------------------------------- colour jitter

def test_jitter_of_a_grey_image_by_hand():
    x = np.array([[[[0.2, 0.4], [0.6, 0.8]]]])
    # brightness 1.5: 0.3 0.6 0.9 1.2 -> clipped to 1.0; its mean grey is (0.3 + 0.6 + 0.9 + 1.0) / 4 = 0.7;
    # contrast 0.5: 0.5 * x + 0.5 * 0.7
    out = D.jitter_images(x, [1.5], [0.5])
    np.testing.assert_allclose(out, [[[[0.5, 0.65], [0.8, 0.85]]]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(D.jitter_images(x, [1.5], None), [[[[0.3, 0.6], [0.9, 1.0]]]], atol=1e-15)
    np.testing.assert_allclose(D.jitter_images(x, None, [2.0]), [[[[0.0, 0.3], [0.7, 1.0]]]], atol=1e-15)


def test_contrast_of_an_rgb_image_blends_with_its_luma_mean():
    x = _images(2, 3, 3, 3, seed=1).astype(np.float64)
    out = D.jitter_images(x, None, [0.6, 1.3])
    for i, f in enumerate([0.6, 1.3]):
        grey = 0.2989 * x[i, 0] + 0.587 * x[i, 1] + 0.114 * x[i, 2]
        expected = np.clip(f * x[i] + (1 - f) * grey.mean(), 0, 1)
        np.testing.assert_allclose(out[i], expected, rtol=1e-14)


def test_color_jitter_draws_torchvision_factor_ranges_brightness_first():
    x = _images(2)
    draws = FixedDraws([1.2, 0.9], [0.8, 1.1])
    out = D.ColorJitter(brightness=1.5, contrast=0.25)(x, draws)
    # brightness 1.5: [max(0, 1 - 1.5), 2.5]; contrast 0.25: [0.75, 1.25]; one factor per image
    assert draws.calls == [("uniform", 0.0, 2.5, 2), ("uniform", 0.75, 1.25, 2)]
    np.testing.assert_array_equal(out, D.jitter_images(x, [1.2, 0.9], [0.8, 1.1]))
    assert out.dtype == x.dtype and out.shape == x.shape
    only_contrast = FixedDraws([0.8, 1.1])
    D.ColorJitter(contrast=0.25)(x, only_contrast)
    assert only_contrast.calls == [("uniform", 0.75, 1.25, 2)]  # (no brightness draw when it is off)


def test_color_jitter_off_is_identity_and_keeps_the_pixel_range():
    x = _images(8)
    assert D.ColorJitter()(x, np.random.default_rng(0)) is x
    out = D.ColorJitter(brightness=0.9, contrast=0.9)(x, np.random.default_rng(0))
    assert out.min() >= 0 and out.max() <= 1 and not np.array_equal(out, x)
    wide = D.ColorJitter(brightness=0.9, low=0, high=255)(x * 255, np.random.default_rng(0))
    assert wide.max() > 1  # (raw 0..255 pixels are not clipped to [0, 1])


# ---------------------------------------------------------------- config-built transforms, loader, ranks

AUG = {"flip": 0.5, "brightness": 0.4, "contrast": 0.4}


def test_build_transforms_applies_flip_then_jitter_on_raw_pixels_then_standardizes():
    s = D.load_dataset("digits", standardize="global")
    train_tf, eval_tf = D.build_transforms(s, AUG)
    x = s.train.x[:6]  # flat (N, 64), viewed as (1, 8, 8) images
    out = train_tf(x, np.random.default_rng(3))
    rng = np.random.default_rng(3)  # the same draws in the same order, by hand
    flips = rng.random(6) < 0.5
    b, c = rng.uniform(0.6, 1.4, 6), rng.uniform(0.6, 1.4, 6)
    imgs = x.reshape(6, 1, 8, 8).astype(np.float64)
    imgs = np.where(flips[:, None, None, None], imgs[..., ::-1], imgs)
    imgs = D.jitter_images(imgs, b, c, 0.0, 1.0)
    np.testing.assert_allclose(out, eval_tf(imgs.reshape(6, 64).astype(np.float32)), rtol=1e-6)


def test_augmentation_is_reproducible_under_the_seed():
    s = D.load_dataset("digits")
    train_tf, _ = D.build_transforms(s, AUG)

    def epoch(seed):
        loader = D.DataLoader(s.train, 32, shuffle=True, seed=seed, transform=train_tf)
        return np.concatenate([xb for xb, _ in loader])

    np.testing.assert_array_equal(epoch(1), epoch(1))
    assert not np.array_equal(epoch(1), epoch(2))


def test_a_sample_is_augmented_alike_on_1_and_2_ranks():
    s = D.load_dataset("digits")
    train_tf, _ = D.build_transforms(s, AUG)
    batch = 20

    def batches(world, rank):
        sampler = DistributedSampler(len(s.train), num_replicas=world, rank=rank, seed=4)
        loader = D.DataLoader(s.train, batch // world, sampler=sampler, transform=train_tf, seed=9)
        loader.set_epoch(1)
        return list(loader)

    one = batches(1, 0)
    two = [batches(2, r) for r in range(2)]
    for b in range(3):
        # rank r of 2 holds positions r, r + 2, ... of the global batch
        for r in range(2):
            np.testing.assert_array_equal(two[r][b][0], one[b][0][r::2])
            np.testing.assert_array_equal(two[r][b][1], one[b][1][r::2])


def test_resume_with_flip_and_jitter_equals_the_uninterrupted_run(tmp_path):
    sweep(tmp_path, ["data.augment.flip=0.5", "data.augment.brightness=0.4", "data.augment.contrast=0.4"], [7])


def test_resume_on_another_world_size_with_flip_and_jitter(tmp_path):
    sweep(tmp_path, ["data.batch_size=120", "run.dtype='float64'", "data.augment.flip=0.5",
                     "data.augment.brightness=0.4", "data.augment.contrast=0.4"], [6], saved=1, resumed=2)


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("override,message", [
    ("data.augment.flip=1.5", "data.augment.flip must be in [0, 1], got 1.5"),
    ("data.augment.flip=-0.1", "data.augment.flip must be in [0, 1], got -0.1"),
    ("data.augment.brightness=-1", "data.augment.brightness must be >= 0, got -1"),
    ("data.augment.contrast=nan", "data.augment.contrast must be a finite number >= 0"),
])
def test_bad_config_values_name_the_key_and_the_allowed_values(override, message):
    with pytest.raises(ConfigError) as info:
        load_config("digits_mlp", [override])
    assert message in str(info.value)


def test_augmenting_data_that_is_not_images_is_a_clear_error():
    iris = D.load_dataset("iris")
    with pytest.raises(DataError, match=r"data.augment.flip = 0.5 needs image data; dataset 'iris' \(data.name\) "
                                        r"has input shape \(4,\)"):
        D.build_transforms(iris, {"flip": 0.5})
    with pytest.raises(DataError, match=r"data.augment.brightness = 0.2 and data.augment.contrast = 0.1 need image"):
        D.build_transforms(iris, {"brightness": 0.2, "contrast": 0.1})
    with pytest.raises(DataError, match="flip augmentation needs image inputs"):
        D.RandomHorizontalFlip(1.0)(iris.train.x, np.random.default_rng(0))
    with pytest.raises(DataError, match=r"contrast jitter needs images with 1 \(grey\) or 3 \(RGB\) channels, got 2"):
        D.ColorJitter(contrast=0.5)(_images(2, 2), np.random.default_rng(0))
    with pytest.raises(DataError, match=r"augment.flip must be a probability in \[0, 1\], got 2"):
        D.RandomHorizontalFlip(2)
    with pytest.raises(DataError, match="augment.brightness must be a finite number >= 0, got -0.5"):
        D.ColorJitter(brightness=-0.5)
