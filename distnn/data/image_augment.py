"""Image augmentations that keep every pixel where it is: horizontal flips and colour jitter.

Both follow the transform protocol of ``transforms.py`` (``t(x, rng) -> x`` on
a batch) and draw only per-sample values (a flip flag, a brightness and a
contrast factor per image) with a ``size`` of the batch length. Handed the
loader's generator, those draws belong to a sample's place in the global batch
(see ``batch_random.py``): the same on any number of ranks, and a run resumed
mid-epoch draws exactly what the uninterrupted run drew. Nothing here keeps
state of its own, so a checkpoint needs nothing from these transforms.

Batches may be channel-first images (N, C, H, W), single-channel (N, H, W),
or flat features (N, D) with the dataset's ``image_shape`` saying how to view
them (digits: (1, 8, 8)); the output has the input's shape and dtype.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import DataError

#: ITU-R 601-2 luma weights of (R, G, B): the grey value torchvision's contrast blends towards.
_LUMA = np.array([0.2989, 0.587, 0.114])


def as_images(x, image_shape, what: str = "image augmentation"):
    """View a batch as (N, C, H, W); returns (images, restore function back to ``x``'s shape).

    ``what`` names the augmentation in the error raised for data that is not images.
    """
    if x.ndim == 4:
        return x, lambda imgs: imgs
    if x.ndim == 3:
        return x[:, None], lambda imgs: imgs[:, 0]
    if image_shape is not None and int(np.prod(image_shape)) == int(np.prod(x.shape[1:])):
        shape = tuple(image_shape) if len(image_shape) == 3 else (1,) + tuple(image_shape)
        return x.reshape((len(x),) + shape), lambda imgs: imgs.reshape(x.shape)
    raise DataError(f"{what} needs image inputs (N, C, H, W); got batch shape {x.shape}")


def flip_images(images, flags):
    """Mirror the images whose ``flags`` entry is True left-right (the last axis); (N, C, H, W) in and out."""
    flags = np.asarray(flags, dtype=bool)[:, None, None, None]
    return np.where(flags, images[..., ::-1], images)


def grey_means(images):
    """The mean grey value of each image, shape (N, 1, 1, 1): the plain mean of a single channel, the
    luma-weighted mean of RGB (as torchvision's ``adjust_contrast``)."""
    c = images.shape[1]
    if c == 1:
        grey = images[:, 0]
    elif c == 3:
        grey = np.tensordot(images, _LUMA, axes=([1], [0]))
    else:
        raise DataError(f"contrast jitter needs images with 1 (grey) or 3 (RGB) channels, got {c}")
    return grey.mean(axis=(1, 2)).reshape(-1, 1, 1, 1)


def jitter_images(images, brightness=None, contrast=None, low: float = 0.0, high: float = 1.0):
    """Brightness then contrast jitter with given per-image factors (None: that step is skipped).

    As torchvision's ``adjust_brightness`` / ``adjust_contrast``: brightness
    scales every pixel by its image's factor ``f``; contrast blends the image
    with its mean grey ``m`` (computed after the brightness step),
    ``f * x + (1 - f) * m``. After each step pixels are clipped to
    ``[low, high]`` (torchvision clips float images to [0, 1]). Computed in
    float64, returned in ``images``' dtype.
    """
    out = images.astype(np.float64)
    if brightness is not None:
        out = np.clip(out * np.asarray(brightness, dtype=np.float64).reshape(-1, 1, 1, 1), low, high)
    if contrast is not None:
        f = np.asarray(contrast, dtype=np.float64).reshape(-1, 1, 1, 1)
        out = np.clip(f * out + (1 - f) * grey_means(out), low, high)
    return out.astype(images.dtype, copy=False)


class RandomHorizontalFlip:
    """Mirror each image left-right with probability ``p`` (drawn per sample).

    Flipping is label-preserving only for classes that look alike mirrored:
    not for digits or letters (a mirrored 2 or 7 is no digit).
    """

    def __init__(self, p: float = 0.5, image_shape=None):
        if not (0 <= p <= 1):
            raise DataError(f"augment.flip must be a probability in [0, 1], got {p}")
        self.p, self.image_shape = float(p), image_shape

    def __call__(self, x, rng=None):
        if self.p == 0:
            return x
        rng = rng if rng is not None else np.random.default_rng()
        images, restore = as_images(x, self.image_shape, "flip augmentation")
        return restore(flip_images(images, rng.random(size=len(images)) < self.p))

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


def _factor_range(strength: float, key: str) -> tuple:
    """torchvision ColorJitter's factor range for a strength ``s``: [max(0, 1 - s), 1 + s]."""
    if not (strength >= 0 and math.isfinite(strength)):
        raise DataError(f"augment.{key} must be a finite number >= 0, got {strength}")
    return max(0.0, 1.0 - strength), 1.0 + strength


class ColorJitter:
    """Random brightness and contrast per image, with torchvision ``ColorJitter``'s factors.

    ``brightness = b``: every pixel times a factor drawn uniformly from
    ``[max(0, 1 - b), 1 + b]``; ``contrast = c``: the image blended with its mean
    grey by a factor from ``[max(0, 1 - c), 1 + c]`` (see :func:`jitter_images`).
    0 turns a step off. Unlike torchvision, which applies its steps in a random
    order, brightness always comes first. Pixels are clipped to ``[low, high]``
    (the raw pixel range: [0, 1] for the built-in image datasets).
    """

    def __init__(self, brightness: float = 0.0, contrast: float = 0.0, image_shape=None,
                 low: float = 0.0, high: float = 1.0):
        self.brightness_range = _factor_range(brightness, "brightness")
        self.contrast_range = _factor_range(contrast, "contrast")
        if not low < high:
            raise DataError(f"ColorJitter: the pixel range [{low}, {high}] is empty")
        self.brightness, self.contrast = float(brightness), float(contrast)
        self.image_shape, self.low, self.high = image_shape, float(low), float(high)

    def __call__(self, x, rng=None):
        if self.brightness == 0 and self.contrast == 0:
            return x
        rng = rng if rng is not None else np.random.default_rng()
        images, restore = as_images(x, self.image_shape, "colour jitter")
        n = len(images)
        # (drawn in this order, brightness first, only for the steps that are on)
        b = rng.uniform(*self.brightness_range, size=n) if self.brightness else None
        c = rng.uniform(*self.contrast_range, size=n) if self.contrast else None
        return restore(jitter_images(images, b, c, self.low, self.high))

    def __repr__(self) -> str:
        return f"ColorJitter(brightness={self.brightness}, contrast={self.contrast})"
