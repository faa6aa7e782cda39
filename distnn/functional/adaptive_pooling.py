"""Adaptive pooling as fused Functions, one per kind over any number of spatial axes:
``adaptive_avg_pool1d/2d/3d`` and ``adaptive_max_pool1d/2d/3d`` (with ``return_indices``).

Window i of ``out`` over an axis of ``size`` cells runs from floor(i * size / out) to
ceil((i + 1) * size / out) - 1 (PyTorch's rule), so windows overlap when the size is
not a multiple of the output size.

Average pooling is separable: one small averaging matrix per spatial axis (or a reshape and a mean when
every axis splits evenly); its backward applies the transposed matrices. Max pooling gathers every
window (padded to the largest by repeating its last cell, which never changes a maximum nor which cell
wins) and takes the argmax; its backward scatter-adds to the winners.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._pool_common import _as_2d, _named_1d, _squeezed, _unbatched, max_pool_grad
from .conv import _single

_LAYOUT = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def _adaptive_matrix(size, out):
    """(out, size) averaging matrix: row i averages inputs floor(i*size/out) .. ceil((i+1)*size/out) - 1."""
    m = np.zeros((out, size))
    for i in range(out):
        a, b = (i * size) // out, -(-((i + 1) * size) // out)
        m[i, a:b] = 1.0 / (b - a)
    return m


def _along(xp, x, m, axis):
    """``m`` (out, size) applied along ``axis`` of x: that axis becomes ``out`` long."""
    moved = xp.moveaxis(x, axis, -1)
    return xp.moveaxis(xp.matmul(moved, m.T), -1, axis)


class AdaptiveAvgPool(Function):
    """x (N, C, *spatial) -> (N, C, *output_size), each output the mean of its window."""

    # linear: backward reads neither the input nor the output, but PyTorch's adaptive average pooling backward
    # takes the input: declared so that both refuse a change of it after the forward alike
    reads = ((0,),)

    def forward(self, x, output_size):
        xp = get_array_module(x)
        spatial = x.shape[2:]
        self.xshape = x.shape
        if all(o and s % o == 0 for s, o in zip(spatial, output_size)):  # equal windows: a reshape and a mean
            self.mats = None
            split = sum(((o, s // o) for s, o in zip(spatial, output_size)), ())
            return x.reshape(x.shape[:2] + split).mean(axis=tuple(range(3, 3 + 2 * len(spatial), 2)))
        self.mats = [xp.asarray(_adaptive_matrix(s, o).astype(x.dtype)) for s, o in zip(spatial, output_size)]
        out = x
        for axis, m in enumerate(self.mats, start=2):
            out = _along(xp, out, m, axis)
        return out

    def backward(self, g):
        xp = get_array_module(g)
        if self.mats is None:  # each input cell gets its window's gradient over the window's size
            outs = g.shape[2:]
            k = [s // o for s, o in zip(self.xshape[2:], outs)]
            gk = (g / float(np.prod(k))).reshape(g.shape[:2] + sum(((o, 1) for o in outs), ()))
            return xp.broadcast_to(gk, g.shape[:2] + sum(((o, kk) for o, kk in zip(outs, k)), ())).reshape(self.xshape),
        gx = g
        for axis, m in enumerate(self.mats, start=2):
            gx = _along(xp, gx, m.T, axis)
        return gx,


def _adaptive_windows(xp, size, out):
    """(out, k) input positions of each of the ``out`` windows over ``size`` cells, each padded to the largest
    window's k cells by repeating its last one."""
    i = np.arange(out)
    start, end = (i * size) // out, -(-((i + 1) * size) // out)
    k = int((end - start).max())
    return xp.asarray(np.minimum(start[:, None] + np.arange(k)[None, :], end[:, None] - 1))


def _adaptive_max(x, output_size):
    """(output, indices): each window's maximum and its flat index (e.g. h * W + w) in its (N, C) plane."""
    xp = get_array_module(x)
    N, C = x.shape[:2]
    spatial, nd = x.shape[2:], len(output_size)
    if not all(output_size):  # (an empty output: no windows to search)
        return xp.empty((N, C) + tuple(output_size), dtype=x.dtype), xp.empty((N, C) + tuple(output_size), np.int64)
    # per axis a: its (o_a, k_a) window positions, broadcast to axes 2a, 2a + 1 of (o_1, k_1, o_2, k_2, ...)
    wins = [_adaptive_windows(xp, s, o) for s, o in zip(spatial, output_size)]
    idx = [w.reshape((1,) * (2 * a) + w.shape + (1,) * (2 * (nd - a - 1))) for a, w in enumerate(wins)]
    order = tuple(range(0, 2 * nd, 2)) + tuple(range(1, 2 * nd, 2))  # (o_1, o_2, ..., k_1, k_2, ...)
    K = int(np.prod([w.shape[1] for w in wins]))
    win = x[(slice(None), slice(None)) + tuple(idx)]
    win = win.transpose((0, 1) + tuple(2 + a for a in order)).reshape((N, C) + tuple(output_size) + (K,))
    # PyTorch's CPU kernel scans a window in row-major order keeping ``val > max or isnan(val)``: the first
    # maximum wins ties (argmax's rule), and the last NaN wins a window holding NaN
    arg = xp.argmax(win, axis=-1)
    nan = xp.isnan(win)
    if bool(nan.any()):
        last_nan = K - 1 - xp.argmax(nan[..., ::-1], axis=-1)
        arg = xp.where(nan.any(axis=-1), last_nan, arg)
    out = xp.take_along_axis(win, arg[..., None], axis=-1)[..., 0]
    strides = np.cumprod((1,) + tuple(spatial[:0:-1]))[::-1]  # of the flat index: (H * W, W, 1) for 3-D
    flat = sum(i.astype(np.int64) * int(s) for i, s in zip(idx, strides))
    flat = xp.broadcast_to(flat, sum((w.shape for w in wins), ())).transpose(order).reshape(tuple(output_size) + (K,))
    indices = xp.take_along_axis(xp.broadcast_to(flat, arg.shape + (K,)), arg[..., None], axis=-1)[..., 0]
    return out, indices


class AdaptiveMaxPool(Function):
    """x (N, C, *spatial) -> (N, C, *output_size), each output the maximum of its window."""

    # PyTorch's adaptive max pooling backward takes the input and the indices (its own): so distnn declares the
    # input and keeps the indices; an in-place change of the output is fine in both
    reads = ((0,),)

    def forward(self, x, output_size, indices_to=None):
        out, self.indices = _adaptive_max(x, output_size)
        self.xshape = x.shape
        if indices_to is not None:  # (return_indices: the indices found here, not a second search)
            indices_to.append(self.indices)
        return out

    def backward(self, g):
        return max_pool_grad(g, self.indices, self.xshape),


# Kept for callers of the 2-D names (the Functions are dimension-generic).
AdaptiveAvgPool2d, AdaptiveMaxPool2d = AdaptiveAvgPool, AdaptiveMaxPool


def _adaptive_output_size(op, input, output_size, nd=2, nonempty=False):
    """An adaptive pool's output size from ``output_size`` (an int or an ``nd``-tuple; None keeps that input
    size), after checking the (N, C, *spatial) input: spatial sizes at least 1, as PyTorch's (a window of no
    cells has no mean), and C too with ``nonempty`` (max's, as PyTorch's). A size of 0 is an empty output."""
    if input.ndim != nd + 2:
        unbatched = "(" + _LAYOUT[nd][len("(N, "):]
        raise ValueError(f"{op}: expected a {nd + 2}-D input {_LAYOUT[nd]} or a {nd + 1}-D one {unbatched}, got "
                         f"shape {tuple(input.shape)}")
    if isinstance(output_size, int):
        output_size = (output_size,) * nd
    if len(output_size) != nd:
        what = {2: "a pair", 3: "a triple"}.get(nd, "an int")
        raise ValueError(f"{op}: output_size must be an int or {what}, got {tuple(output_size)}")
    spatial = input.shape[2:]
    if min(spatial) < 1 or (nonempty and input.shape[1] < 1):
        which = "sizes but the batch's" if nonempty else "spatial sizes"
        raise ValueError(f"{op}: expected an input with non-zero {which}, got shape {tuple(input.shape)}")
    size = tuple(s if o is None else int(o) for s, o in zip(spatial, output_size))
    if min(size) < 0:
        raise ValueError(f"{op}: output_size must be >= 0, got {output_size}")
    return size


def _avg(op, nd):
    def pool(input, output_size):
        return AdaptiveAvgPool.apply(input, output_size=_adaptive_output_size(op, input, output_size, nd))
    return pool


def _max(op, nd):
    def pool(input, output_size, return_indices=False):
        size = _adaptive_output_size(op, input, output_size, nd, nonempty=True)
        indices = [] if return_indices else None
        out = AdaptiveMaxPool.apply(input, output_size=size, indices_to=indices)
        if not return_indices:
            return out
        return out, Tensor(indices[0].copy())  # (a copy: changing it cannot move the node's gradient)
    return pool


@_unbatched(4)
def adaptive_avg_pool2d(input, output_size):
    """Average pooling of (N, C, H, W) or (C, H, W) to a fixed ``output_size`` (int or pair; None keeps that
    input size). A size of 0 gives an empty output, as PyTorch's, whose gradient is a zero one (PyTorch's
    backward refuses it)."""
    return _avg("adaptive_avg_pool2d", 2)(input, output_size)


@_unbatched(4)
def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max pooling of (N, C, H, W) or (C, H, W) to a fixed ``output_size`` (int or pair; None keeps that input
    size) whatever the input size. With ``return_indices``, also the flat index ``h * W + w`` of each maximum
    in its (N, C) plane (int64, no gradient), as PyTorch. A size of 0: as :func:`adaptive_avg_pool2d`."""
    return _max("adaptive_max_pool2d", 2)(input, output_size, return_indices)


@_unbatched(5)
def adaptive_avg_pool3d(input, output_size):
    """Average pooling of (N, C, D, H, W) or (C, D, H, W) to a fixed ``output_size`` (int or triple; None keeps
    that input size). A size of 0: as :func:`adaptive_avg_pool2d`."""
    return _avg("adaptive_avg_pool3d", 3)(input, output_size)


@_unbatched(5)
def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Max pooling of (N, C, D, H, W) or (C, D, H, W) to a fixed ``output_size`` (int or triple; None keeps
    that input size). With ``return_indices``, also the flat index ``d * H * W + h * W + w`` of each maximum
    in its (N, C) volume (int64, no gradient), as PyTorch."""
    return _max("adaptive_max_pool3d", 3)(input, output_size, return_indices)


# ---------------------------------------------------------------------------- 1-D: 2-D with height 1
@_named_1d("adaptive_avg_pool1d")
def adaptive_avg_pool1d(input, output_size):
    """Average pooling of input (N, C, L) or (C, L) to ``output_size`` (an int) whatever L."""
    size = _single(output_size, "output_size", "adaptive_avg_pool1d")
    return _squeezed(adaptive_avg_pool2d(_as_2d(input), (1, size)))


@_named_1d("adaptive_max_pool1d")
def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Max pooling of input (N, C, L) or (C, L) to ``output_size`` (an int) whatever L. With
    ``return_indices``, also each maximum's index along L (int64, no gradient), as PyTorch."""
    size = _single(output_size, "output_size", "adaptive_max_pool1d")
    return _squeezed(adaptive_max_pool2d(_as_2d(input), (1, size), return_indices))


__all__ = ["adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d",
           "adaptive_max_pool2d", "adaptive_max_pool3d"]
