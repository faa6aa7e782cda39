"""Power-average (LP) pooling: ``lp_pool1d``, ``lp_pool2d``, ``lp_pool3d``, as PyTorch computes it.

``(sum over the window of x ** p) ** (1 / p)``, written as PyTorch writes it, from the average pool::

    s   = avg_pool(x ** p, kernel_size, stride, padding=0, ceil_mode) * (kernel cells)
    out = (sign(s) * relu(|s|)) ** (1 / p)

so that values, gradients and edge cases are PyTorch's: a window whose sum is 0 gets a zero gradient
(relu's backward masks the infinite one of ``0 ** (1/p)``); with ``ceil_mode`` a window cut short by the
input's end is its mean over the cells it has, times the whole kernel's size; a negative sum with a
non-integer ``1 / p`` is NaN. ``p = inf`` is the max pool of ``|x|``, ``p = -inf`` minus that of ``-|x|``.
The power and the average pool are the differentiable ops; the last line is one Function, :class:`_Root`,
whose backward is that chain's (PyTorch's) arithmetic in one place, computed without numpy's warnings for
the ``inf * 0`` that relu then masks (PyTorch is silent there).
"""
from __future__ import annotations

import math

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from .conv import _pair, _single
from .conv3d import _triple
from .elementwise import _quiet
from .pooling import avg_pool1d, avg_pool2d, max_pool1d, max_pool2d
from .pooling3d import avg_pool3d, max_pool3d


class _Root(Function):
    """``(sign(s) * relu(|s|) * cells) ** q`` of the window averages ``s`` (``q = 1 / p``), with the
    gradient the chain of ops (PyTorch's: sign, abs, relu, mul, pow) gives it, in their order of arithmetic, so
    its values are bitwise those of the composite it replaces:

    ``dt = g * q * t ** (q - 1)`` (pow), ``* cells`` (the constant), ``* sign(s)`` (the product's factor),
    masked to 0 where ``relu(|s|)`` is 0 (relu's backward, before ``inf * 0`` would reach the input),
    ``* sign(s)`` (abs), ``+ 0`` (sign's zero gradient, summed in: it turns a -0 into +0 as there).

    At a window of zeros ``t ** (q - 1)`` is inf and ``inf * 0`` NaN before the mask drops it; a negative
    ``t`` with a fractional ``q`` is NaN in forward. PyTorch says nothing of either: neither does numpy here.
    """

    reads = ((0,),)  # (backward reads s, as PyTorch's abs does; only this module holds s)

    def forward(self, s, cells, q):
        xp = get_array_module(s)
        self.s, self.cells, self.q = s, cells, q
        self.t = (xp.sign(s) * xp.maximum(xp.abs(s), 0)) * cells
        with _quiet(xp):
            return self.t ** q

    def backward(self, g):
        xp = get_array_module(g)
        s, q = self.s, self.q
        sign = xp.sign(s)
        with _quiet(xp):
            gt = g * q * self.t ** (q - 1)
            gr = (gt * self.cells) * sign
        ga = xp.where(xp.maximum(xp.abs(s), 0) != 0, gr, 0) * sign  # (relu's mask: != 0 passes a NaN sum's)
        return (ga + 0,)


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
    return _Root.apply(out, cells=cells, q=1.0 / norm_type)


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
