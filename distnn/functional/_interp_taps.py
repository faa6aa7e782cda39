"""Per-axis taps of ``interpolate``'s 'bicubic' mode and of its ``antialias=True`` filters, with PyTorch's
index arithmetic (aten's UpSample.h and UpSampleKernel.cpp).

A plan for one axis is a tuple of taps ``(index, weight)``, numpy vectors over the output positions:
output ``o`` is ``sum_k weight_k[o] * x[index_k[o]]``, the taps added in order (as PyTorch's kernels add
them). An index of -1 is no tap at all: PyTorch's antialiasing window is shorter there, and it reads nothing
(an inf or NaN outside the window stays out). Along every tap, ``index`` never decreases (the positions
move right with the output), which ``Resample``'s backward relies on.

``scale`` below is PyTorch's ``area_pixel_compute_scale``: input positions per output position,
``(in - 1) / (out - 1)`` with align_corners, else ``1 / scale_factor`` when one is given (and not
recomputed), else ``in / out``.
"""
from __future__ import annotations

import math

import numpy as np

CUBIC_A = -0.75  # PyTorch's bicubic coefficient (Keys' a; OpenCV's too)
AA_CUBIC_A = -0.5  # PyTorch's antialiasing cubic filter (Keys' a = -0.5, as PIL's)


def area_scale(in_size, out_size, scale, align_corners):
    """PyTorch's area_pixel_compute_scale."""
    if align_corners:
        return (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    return 1.0 / scale if scale is not None and scale > 0 else in_size / out_size


def _cubic1(x, a):  # |x| <= 1
    return ((a + 2) * x - (a + 3)) * x * x + 1


def _cubic2(x, a):  # 1 < |x| < 2
    return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a


def cubic_taps(in_size, out_size, scale, align_corners):
    """The 4 taps of PyTorch's bicubic interpolation (upsample_bicubic2d) along one axis.

    The source position ``s * i`` (align_corners) or ``s * (i + 0.5) - 0.5`` (not clamped at 0, unlike
    linear's) splits into ``i0 = min(floor(src), in - 1)`` (floor taken in float32: PyTorch's ``floorf``)
    and ``t = clamp(src - i0, 0, 1)``; the taps read ``i0 - 1 .. i0 + 2``, each clamped into the input (the
    border value repeated), with the cubic convolution weights of A = -0.75 at distances ``1 + t``, ``t``,
    ``1 - t`` and ``2 - t``. No shortcut for an output as long as the input: PyTorch's forward takes none.
    """
    s = area_scale(in_size, out_size, scale, align_corners)
    i = np.arange(out_size)
    src = s * i if align_corners else s * (i + 0.5) - 0.5
    i0 = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), in_size - 1)
    t = np.clip(src - i0, 0.0, 1.0)
    weights = (_cubic2(t + 1.0, CUBIC_A), _cubic1(t, CUBIC_A), _cubic1(1.0 - t, CUBIC_A),
               _cubic2(2.0 - t, CUBIC_A))
    return tuple((np.clip(i0 - 1 + k, 0, in_size - 1), w) for k, w in enumerate(weights))


def _triangle(x):
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _aa_cubic(x):
    x = np.abs(x)
    return np.where(x < 1.0, _cubic1(x, AA_CUBIC_A), np.where(x < 2.0, _cubic2(x, AA_CUBIC_A), 0.0))


def antialias_taps(in_size, out_size, scale, align_corners, cubic):
    """The taps of PyTorch's antialiased bilinear or bicubic resampling (_upsample_bilinear2d_aa /
    _upsample_bicubic2d_aa, _compute_indices_min_size_weights_aa) along one axis.

    A filter (the triangle, or the cubic of a = -0.5) of support ``1`` or ``2`` input positions, widened by
    ``s`` when downsampling (``s >= 1``, its argument then divided by ``s``), is centred at
    ``c = s * (i + 0.5)`` (with align_corners too: only ``s`` changes); the window is the input positions
    ``[trunc(c - support + 0.5), trunc(c + support + 0.5))`` cut to the input and to at most
    ``2 ceil(support) + 1`` positions, and its weights ``filter(j - c + 0.5)`` are divided by their sum (so a
    window cut at the border keeps a sum of 1). An output as long as the input is a copy, whatever the
    scale: PyTorch's forward skips the axis.
    """
    if out_size == in_size:
        return ((np.arange(out_size), None),)
    s = area_scale(in_size, out_size, scale, align_corners)
    half = 2.0 if cubic else 1.0
    support = half * s if s >= 1.0 else half
    invscale = 1.0 / s if s >= 1.0 else 1.0
    width = int(math.ceil(support)) * 2 + 1
    center = s * (np.arange(out_size) + 0.5)
    xmin = np.maximum(np.trunc(center - support + 0.5).astype(np.int64), 0)  # (C's cast: toward zero)
    xsize = np.clip(np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size) - xmin, 0, width)
    j = np.arange(width)[:, None]
    inside = j < xsize
    w = np.where(inside, (_aa_cubic if cubic else _triangle)((j + xmin - center + 0.5) * invscale), 0.0)
    total = w.sum(axis=0)
    w = w / np.where(total != 0.0, total, 1.0)  # (PyTorch leaves an all-zero window as it is)
    idx = np.where(inside, j + xmin, -1)
    keep = inside.any(axis=1)  # (taps no output uses: left out)
    return tuple((idx[k], w[k]) for k in np.flatnonzero(keep))
