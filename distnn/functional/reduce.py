"""Reductions over an axis (or all axes): sum, mean, max, min, var."""
from __future__ import annotations

import builtins
import math

from distnn.autograd.function import Function
from distnn.backend import get_array_module


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    out = []
    for a in axis:
        if not -ndim <= a < builtins.max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(a % ndim if ndim else 0)
    return tuple(sorted(out))


def _expand_back(g, axes, keepdims, shape):
    """Broadcast a reduced gradient back to ``shape``."""
    xp = get_array_module(g)
    if not keepdims and shape:
        g = xp.expand_dims(g, axes)
    return xp.broadcast_to(g, shape)


class Sum(Function):
    saves_tensors = False

    def forward(self, a, axis=None, keepdims=False):
        self.shape = a.shape
        self.axes = _axes(axis, a.ndim)
        self.keepdims = keepdims
        return a.sum(axis=self.axes, keepdims=keepdims)

    def backward(self, g):
        return (_expand_back(g, self.axes, self.keepdims, self.shape),)


class Mean(Function):
    saves_tensors = False

    def forward(self, a, axis=None, keepdims=False):
        self.shape = a.shape
        self.axes = _axes(axis, a.ndim)
        self.keepdims = keepdims
        self.count = 1
        for ax in self.axes:
            self.count *= a.shape[ax]
        return a.mean(axis=self.axes, keepdims=keepdims)

    def backward(self, g):
        return (_expand_back(g / self.count, self.axes, self.keepdims, self.shape),)


class _Extremum(Function):
    """max/min over axes; the gradient is shared evenly among tied extrema."""

    def forward(self, a, axis=None, keepdims=False):
        if a.size == 0:
            raise ValueError(f"{type(self).__name__.lower()} of an empty tensor of shape {a.shape}")
        axes = _axes(axis, a.ndim)
        out = self.reduce(a, axes)
        self.mask = a == out  # out kept its dims, so it broadcasts against a
        xp = get_array_module(a)
        if a.dtype.kind in "fc" and bool(xp.isnan(out).any()):  # NaN equals nothing: the NaNs are the extrema
            self.mask |= xp.isnan(a) & xp.isnan(out)
        self.axes, self.keepdims = axes, keepdims
        return out if keepdims else out.reshape([s for i, s in enumerate(a.shape) if i not in axes])

    def backward(self, g):
        xp = get_array_module(g)
        mask = self.mask.astype(g.dtype)
        count = mask.sum(axis=self.axes, keepdims=True)
        if not self.keepdims and mask.ndim:
            g = xp.expand_dims(g, self.axes)
        return (g * mask / count,)


class Max(_Extremum):
    @staticmethod
    def reduce(a, axes):
        return a.max(axis=axes, keepdims=True)


class Min(_Extremum):
    @staticmethod
    def reduce(a, axes):
        return a.min(axis=axes, keepdims=True)


class Var(Function):
    """Variance with ``ddof`` (numpy's convention: 0 is the population variance)."""

    def forward(self, a, axis=None, ddof=0, keepdims=False):
        axes = _axes(axis, a.ndim)
        n = 1
        for ax in axes:
            n *= a.shape[ax]
        mean = a.mean(axis=axes, keepdims=True)
        self.centered = a - mean  # two-pass: no E[x^2] - mean^2 cancellation
        self.axes, self.keepdims, self.denom = axes, keepdims, builtins.max(n - ddof, 0)
        return (self.centered * self.centered).sum(axis=axes, keepdims=keepdims) / self.denom

    def backward(self, g):
        xp = get_array_module(g)
        if not self.keepdims and self.centered.ndim:
            g = xp.expand_dims(g, self.axes)
        # (no degrees of freedom left after ddof: the value is inf or NaN, and so is its gradient, as in PyTorch)
        return (g * (2.0 / self.denom if self.denom else math.inf) * self.centered,)


def sum(a, axis=None, keepdims=False):  # noqa: A001
    return Sum.apply(a, axis=axis, keepdims=keepdims)


def mean(a, axis=None, keepdims=False):
    return Mean.apply(a, axis=axis, keepdims=keepdims)


def max(a, axis=None, keepdims=False):  # noqa: A001
    return Max.apply(a, axis=axis, keepdims=keepdims)


def min(a, axis=None, keepdims=False):  # noqa: A001
    return Min.apply(a, axis=axis, keepdims=keepdims)


def var(a, axis=None, ddof=0, keepdims=False):
    return Var.apply(a, axis=axis, ddof=ddof, keepdims=keepdims)
