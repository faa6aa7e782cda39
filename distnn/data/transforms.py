"""Per-batch transforms: standardization and image augmentation (numpy only).

A transform is a callable ``t(x, rng) -> x`` on a batch (first axis = samples).
``rng`` is an explicit ``numpy.random.Generator``: the loader derives one per
batch from (seed, rank, epoch, batch index), so augmentation is reproducible and
a run resumed mid-epoch draws exactly what the uninterrupted run drew.
Deterministic transforms (``Standardizer``) ignore ``rng``.

Order used for training (``build_transforms``): geometric augmentation on raw
images (so pixels shifted in are true background) -> horizontal flip -> colour
jitter (on raw pixels, clipped to their range; ``image_augment.py``) ->
standardization with the training statistics -> gaussian noise (its ``std`` is
then in units of the standardized features). Evaluation applies the
standardization only.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import DataError
from .image_augment import ColorJitter, RandomHorizontalFlip, as_images

STANDARDIZE_MODES = ("feature", "channel", "global", "none")


class Standardizer:
    """``(x - mean) / std`` with statistics fitted on the training split only.

    mode ``"feature"``: one mean/std per input element (per pixel for images);
    ``"channel"``: one per channel of (N, C, ...) inputs (one in total for flat
    inputs); ``"global"``: a single mean/std. Features whose training std is
    (numerically) zero, i.e. at most 1e-7 times that feature's own largest
    magnitude (float32's precision), get std 1, so constant pixels map to 0
    instead of inf; any other feature, however small its units, is scaled to
    std 1 (as scikit-learn's StandardScaler).
    Statistics are computed in float64 with a two-pass mean/variance.
    """

    deterministic = True  # ignores rng: the loader need not make a generator per batch

    def __init__(self, mode: str = "feature", mean=None, std=None):
        if mode not in STANDARDIZE_MODES or mode == "none":
            raise DataError(f"standardize mode must be one of 'feature', 'channel', 'global', got {mode!r}")
        self.mode = mode
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.std = None if std is None else np.asarray(std, dtype=np.float64)

    def _axes(self, ndim: int) -> tuple:
        if self.mode == "feature":
            return (0,)
        if self.mode == "channel" and ndim >= 3:
            return (0,) + tuple(range(2, ndim))
        return tuple(range(ndim))

    def fit(self, x) -> "Standardizer":
        """Fit mean and std on ``x`` (the training split; first axis = samples); returns self."""
        x = np.asarray(x, dtype=np.float64)
        if len(x) == 0:
            raise DataError("cannot fit standardization on an empty training split")
        axes = self._axes(x.ndim)
        mean = x.mean(axis=axes, keepdims=True)
        std = np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True))
        # "Numerically zero" is relative to each feature's own magnitude: a threshold from the whole array
        # would treat a small-variance feature as constant when another feature is large, and an absolute
        # floor would do so to a feature measured in small units (values ~1e-8). An all-zero feature: 0 <= 0.
        scale = np.abs(x).max(axis=axes, keepdims=True)
        std = np.where(std <= 1e-7 * scale, 1.0, std)
        self.mean, self.std = mean[0], std[0]  # drop the sample axis: broadcasts over a batch
        return self

    def __call__(self, x, rng=None):
        if self.mean is None:
            raise RuntimeError("Standardizer used before fit()")
        if self.mode == "feature" and tuple(x.shape[1:]) != self.mean.shape:
            raise DataError(f"standardizer fitted on samples of shape {self.mean.shape}, got a batch of {x.shape}")
        dtype = x.dtype if x.dtype.kind == "f" else np.float32
        return ((x - self.mean.astype(dtype)) / self.std.astype(dtype)).astype(dtype, copy=False)

    def inverse(self, x):
        return (x * self.std + self.mean).astype(x.dtype, copy=False)

    def state_dict(self) -> dict:
        """Plain, serializable statistics: mode, shape, and flat float lists."""
        return {"mode": self.mode, "shape": list(self.mean.shape),
                "mean": self.mean.reshape(-1).tolist(), "std": self.std.reshape(-1).tolist()}

    @classmethod
    def from_state_dict(cls, state: dict) -> "Standardizer":
        shape = tuple(state["shape"])
        return cls(state["mode"], np.asarray(state["mean"], dtype=np.float64).reshape(shape),
                   np.asarray(state["std"], dtype=np.float64).reshape(shape))

    def __repr__(self) -> str:
        shape = None if self.mean is None else self.mean.shape
        return f"Standardizer(mode={self.mode!r}, stats shape={shape})"


def affine_images(images, angles_deg, shifts, fill: float = 0.0):
    """Rotate each image about its centre by ``angles_deg`` and shift it by ``shifts``.

    images (N, C, H, W); angles_deg (N,); shifts (N, 2) as (down, right) pixels.
    Bilinear sampling on a coordinate grid; source points outside the image
    read ``fill``. With angle 0 and integer shifts the result is an exact shift.
    """
    n, c, h, w = images.shape
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    theta = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))[:, None, None]
    shifts = np.asarray(shifts, dtype=np.float64)
    # Output pixel p comes from source q = R(-theta) (p - centre - shift) + centre.
    py = yy[None] - cy - shifts[:, 0, None, None]
    px = xx[None] - cx - shifts[:, 1, None, None]
    cos, sin = np.cos(theta), np.sin(theta)
    sy = cos * py - sin * px + cy
    sx = sin * py + cos * px + cx
    y0, x0 = np.floor(sy), np.floor(sx)
    wy, wx = sy - y0, sx - x0
    y0, x0 = y0.astype(np.int64), x0.astype(np.int64)
    batch = np.arange(n)[:, None, None]
    out = np.zeros((n, h, w, c), dtype=np.float64)
    for dy, dx, weight in ((0, 0, (1 - wy) * (1 - wx)), (0, 1, (1 - wy) * wx),
                           (1, 0, wy * (1 - wx)), (1, 1, wy * wx)):
        yi, xi = y0 + dy, x0 + dx
        inside = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        vals = images[batch, :, np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]  # (N, H, W, C)
        vals = np.where(inside[..., None], vals, fill)
        out += weight[..., None] * vals
    return out.transpose(0, 3, 1, 2).astype(images.dtype, copy=False)


class RandomAffine:
    """Random integer shifts in [-shift, shift] pixels (each axis) and rotations
    uniform in [-rotate, rotate] degrees, drawn per sample.

    Works on (N, C, H, W), (N, H, W), or flat (N, D) batches when ``image_shape``
    says how to view them (flat digits: (1, 8, 8)). Output keeps the input shape.
    """

    def __init__(self, shift: int = 0, rotate: float = 0.0, image_shape=None, fill: float = 0.0):
        if shift < 0 or int(shift) != shift:
            raise DataError(f"augment.shift must be a non-negative integer number of pixels, got {shift}")
        if not 0 <= rotate <= 180:
            raise DataError(f"augment.rotate must be in [0, 180] degrees, got {rotate}")
        self.shift, self.rotate, self.image_shape, self.fill = int(shift), float(rotate), image_shape, fill

    def __call__(self, x, rng=None):
        if self.shift == 0 and self.rotate == 0:
            return x
        rng = rng if rng is not None else np.random.default_rng()
        images, restore = as_images(x, self.image_shape, "shift/rotate augmentation")
        n = len(images)
        shifts = rng.integers(-self.shift, self.shift + 1, size=(n, 2)) if self.shift else np.zeros((n, 2))
        angles = rng.uniform(-self.rotate, self.rotate, size=n) if self.rotate else np.zeros(n)
        return restore(affine_images(images, angles, shifts, self.fill))

    def __repr__(self) -> str:
        return f"RandomAffine(shift={self.shift}, rotate={self.rotate})"


class GaussianNoise:
    """Adds ``std * N(0, 1)`` noise to every element (float inputs only)."""

    def __init__(self, std: float):
        if not (std >= 0 and math.isfinite(std)):
            raise DataError(f"augment.noise must be a finite std >= 0, got {std}")
        self.std = float(std)

    def __call__(self, x, rng=None):
        if self.std == 0:
            return x
        rng = rng if rng is not None else np.random.default_rng()
        return (x + self.std * rng.standard_normal(x.shape)).astype(x.dtype, copy=False)

    def __repr__(self) -> str:
        return f"GaussianNoise(std={self.std})"


class Compose:
    """Applies transforms in order, passing the same generator along."""

    def __init__(self, transforms):
        self.transforms = [t for t in transforms if t is not None]

    @property
    def deterministic(self) -> bool:
        return all(getattr(t, "deterministic", False) for t in self.transforms)

    def __call__(self, x, rng=None):
        for t in self.transforms:
            x = t(x, rng)
        return x

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


IMAGE_AUGMENTS = ("shift", "rotate", "flip", "brightness", "contrast")  # (they need image data)
AUGMENTS = IMAGE_AUGMENTS + ("noise",)


def build_transforms(splits, augment: dict | None = None):
    """(train_transform, eval_transform) for a ``DatasetSplits``.

    ``augment`` is the ``data.augment`` config table, every entry 0 = off:
    ``shift`` (pixels), ``rotate`` (degrees), ``flip`` (probability of a
    left-right mirror), ``brightness`` and ``contrast`` (colour jitter
    strengths, as torchvision's ``ColorJitter``) and ``noise`` (std after
    standardization). Either transform may be ``None`` (nothing to do).
    """
    augment = dict(augment or {})
    unknown = set(augment) - set(AUGMENTS)
    if unknown:
        raise DataError(f"unknown augmentation option(s) {sorted(unknown)}; expected {', '.join(AUGMENTS)}")
    shift, rotate, noise = augment.get("shift", 0), augment.get("rotate", 0.0), augment.get("noise", 0.0)
    flip, brightness, contrast = (augment.get(k, 0.0) for k in ("flip", "brightness", "contrast"))
    on = [(k, augment[k]) for k in IMAGE_AUGMENTS if augment.get(k)]
    image_shape = splits.meta.get("image_shape")
    if on and len(splits.input_shape) < 2 and image_shape is None:
        keys = " and ".join(f"data.augment.{k} = {v}" for k, v in on)
        raise DataError(f"{keys} {'need' if len(on) > 1 else 'needs'} image data; dataset '{splits.name}' "
                        f"(data.name) has input shape {splits.input_shape}")
    for key, value in (("noise", noise), ("brightness", brightness), ("contrast", contrast)):
        if value and splits.train.x.dtype.kind != "f":
            raise DataError(f"data.augment.{key} = {value} needs float inputs; dataset '{splits.name}' "
                            f"(data.name) has {splits.train.x.dtype} tokens")
    geometric = RandomAffine(shift, rotate, image_shape=image_shape) if shift or rotate else None
    flipper = RandomHorizontalFlip(flip, image_shape=image_shape) if flip else None
    jitter = _color_jitter(splits, brightness, contrast, image_shape) if brightness or contrast else None
    std = splits.standardizer
    train_parts = [geometric, flipper, jitter, std, GaussianNoise(noise) if noise else None]
    train_parts = [t for t in train_parts if t is not None]
    train_tf = None if not train_parts else (train_parts[0] if len(train_parts) == 1 else Compose(train_parts))
    return train_tf, std


def _color_jitter(splits, brightness, contrast, image_shape):
    """The ColorJitter of a config, its clipping range taken from the training images."""
    x = splits.train.x
    images, _ = as_images(x[:1], image_shape, "colour jitter")
    if contrast and images.shape[1] not in (1, 3):
        raise DataError(f"data.augment.contrast = {contrast} needs grey or RGB images (1 or 3 channels); dataset "
                        f"'{splits.name}' (data.name) has {images.shape[1]} channels")
    # Pixels stay within the raw range: [0, 1] for the built-in images (torchvision's range for float
    # images), widened to the training split's own values for data in other units (0..255, say).
    low = min(0.0, float(x.min())) if len(x) else 0.0
    high = max(1.0, float(x.max())) if len(x) else 1.0
    return ColorJitter(brightness, contrast, image_shape=image_shape, low=low, high=high)
