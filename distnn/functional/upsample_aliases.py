"""``upsample``, ``upsample_nearest`` and ``upsample_bilinear``: PyTorch's deprecated aliases of
:func:`~distnn.functional.interpolate`, each with PyTorch's deprecation warning (a UserWarning, as PyTorch
issues it, so that it shows by default) pointing at the caller's line."""
from __future__ import annotations

import warnings

from .interpolate import interpolate


def _deprecated(name):
    warnings.warn(f"`nn.functional.{name}` is deprecated. Use `nn.functional.interpolate` instead.", stacklevel=3)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated: ``interpolate(input, size, scale_factor, mode, align_corners)``, as PyTorch's."""
    _deprecated("upsample")
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    """Deprecated: ``interpolate(input, size, scale_factor, mode="nearest")``, as PyTorch's."""
    _deprecated("upsample_nearest")
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """Deprecated: ``interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)``, as
    PyTorch's (corners aligned, unlike ``interpolate``'s default)."""
    _deprecated("upsample_bilinear")
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


__all__ = ["upsample", "upsample_bilinear", "upsample_nearest"]
