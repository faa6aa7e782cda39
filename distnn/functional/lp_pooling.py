"""Power-average (LP) pooling: ``lp_pool1d``, ``lp_pool2d``, ``lp_pool3d``, as PyTorch computes it.

``(sum over the window of x ** p) ** (1 / p)``, written as PyTorch writes it, from the average pool::

    s   = avg_pool(x ** p, kernel_size, stride, padding=0, ceil_mode) * (kernel cells)
    out = (sign(s) * relu(|s|)) ** (1 / p)

so that values, gradients and edge cases are PyTorch's: a window whose sum is 0 gets a zero gradient
(relu's backward masks the infinite one of ``0 ** (1/p)``); with ``ceil_mode`` a window cut short by the
input's end is its mean over the cells it has, times the whole kernel's size; a negative sum with a
non-integer ``1 / p`` is NaN. ``p = inf`` is the max pool of ``|x|``, ``p = -inf`` minus that of ``-|x|``.
Built from differentiable ops, so the backward is theirs.
"""
from __future__ import annotations

import math

from .activation import relu
from .conv import _pair, _single
from .conv3d import _triple
from .pooling import avg_pool1d, avg_pool2d, max_pool1d, max_pool2d
from .pooling3d import avg_pool3d, max_pool3d


def _lp_pool(who, input, norm_type, kernel_size, stride, ceil_mode, avg_pool, max_pool, cells):
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)):
        raise TypeError(f"{who}: norm_type must be a number, got {norm_type!r}")
    if norm_type == math.inf:
        return max_pool(input.abs(), kernel_size, stride, 0, 1, ceil_mode)
    if norm_type == -math.inf:
        return -max_pool(-input.abs(), kernel_size, stride, 0, 1, ceil_mode)
    if norm_type == 0:  # (PyTorch's 1.0 / norm_type: "float division by zero")
        raise ZeroDivisionError(f"{who}: norm_type must not be 0 (the result is a power 1 / norm_type)")
    out = avg_pool(input ** norm_type, kernel_size, stride, 0, ceil_mode)
    return ((out.sign() * relu(out.abs())) * cells) ** (1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """LP pooling of (N, C, L) or (C, L): per window ``(sum x ** p) ** (1 / p)``, ``p = norm_type``;
    ``stride`` defaults to ``kernel_size``; no padding."""
    k = _single(kernel_size, "kernel_size", "lp_pool1d")
    return _lp_pool("lp_pool1d", input, norm_type, kernel_size, stride, ceil_mode, avg_pool1d, max_pool1d, k)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """LP pooling of (N, C, H, W) or (C, H, W) over kh x kw windows: ``(sum x ** p) ** (1 / p)``,
    ``p = norm_type``; ``stride`` defaults to ``kernel_size``; no padding."""
    kh, kw = _pair(kernel_size, "kernel_size")
    return _lp_pool("lp_pool2d", input, norm_type, kernel_size, stride, ceil_mode, avg_pool2d, max_pool2d, kh * kw)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """LP pooling of (N, C, D, H, W) or (C, D, H, W) over kd x kh x kw windows: ``(sum x ** p) ** (1 / p)``,
    ``p = norm_type``; ``stride`` defaults to ``kernel_size``; no padding."""
    kd, kh, kw = _triple(kernel_size, "kernel_size", "lp_pool3d")
    return _lp_pool("lp_pool3d", input, norm_type, kernel_size, stride, ceil_mode, avg_pool3d, max_pool3d,
                    kd * kh * kw)


__all__ = ["lp_pool1d", "lp_pool2d", "lp_pool3d"]
