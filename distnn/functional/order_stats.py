"""Order statistics, as PyTorch's: median, nanmedian, kthvalue, mode, quantile, nanquantile.

All sort along the dim first (stable; NaN last, as PyTorch's sort). ``median`` is the lower median (element
``(n - 1) // 2``), NaN when the slice holds one; ``nanmedian`` and ``nanquantile`` leave NaN out. The
``(values, indices)`` forms send the gradient to the chosen index; the full ``median()`` shares it evenly
among the elements equal to the result (PyTorch's evenly_distribute_backward). quantile's gradient flows
through its interpolation, as PyTorch's.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.autograd.unset_defaults import EVERY_DIM, NOT_KEPT
from distnn.backend import get_array_module

from ._dims import wrap_dim
from .elementwise_choice import Where
from .indexing import Gather, TakeAlongReduced
from .shape import BroadcastTo
from .shape_more import as_tensor, movedim
from .sort import sort, stable_argsort

MedianResult = namedtuple("median", ["values", "indices"])
KthvalueResult = namedtuple("kthvalue", ["values", "indices"])
ModeResult = namedtuple("mode", ["values", "indices"])
INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


class MedianAll(Function):
    """The lower median of every element (NaN if there is one); the gradient is shared by the elements equal
    to it (the NaNs, for a NaN result)."""

    reads = ((0,),)

    def forward(self, a, ignore_nan):
        self.ignore_nan = ignore_nan
        xp = get_array_module(a)
        flat = xp.sort(a.reshape(-1))
        nans = int(xp.isnan(flat).sum()) if a.dtype.kind == "f" else 0
        valid = flat.size - nans
        if flat.size == 0 or (ignore_nan and valid == 0):
            out = xp.asarray(xp.nan, dtype=a.dtype)
        elif nans and not ignore_nan:
            out = flat[valid]
        else:
            out = flat[(valid - 1) // 2]
        self.a, self.out = a, out
        return xp.asarray(out, dtype=a.dtype).reshape(())

    def torch_name_of_call(self) -> str:
        return "NanmedianBackward0" if self.ignore_nan else "MedianBackward0"

    def backward(self, g):
        xp = get_array_module(g)
        same = (self.a == self.out) | (xp.isnan(self.a) & bool(xp.isnan(self.out)))
        return (same * (g / max(int(same.sum()), 1)),)


def _select(x, dim, keepdim, position, op, result):
    """The element at sorted ``position`` (an array broadcast over the slices) along ``dim``: values in the
    graph (the gradient to that one element) and its int64 index."""
    data = x.data
    xp = get_array_module(data)
    order = stable_argsort(data, dim)
    index = xp.take_along_axis(order, position, axis=dim)
    if x.requires_grad:
        values = TakeAlongReduced.apply(x, index, dim=dim, keepdim=keepdim, op=op)
    else:
        values = Tensor(xp.take_along_axis(data, index, dim))
        values = values if keepdim else values.squeeze(dim)
    return result(values, Tensor((index if keepdim else index.squeeze(dim)).astype(np.int64)))


def _median_dim(input, dim, keepdim, ignore_nan, op):  # noqa: A002
    if dim is None or dim is EVERY_DIM or keepdim is None:
        _refuse_flags(op, dim, keepdim)
    keepdim = keepdim is not NOT_KEPT and keepdim
    x = as_tensor(input)
    d = wrap_dim(dim, x.ndim, op)
    if x.ndim == 0:
        return MedianResult(x * 1, Tensor(get_array_module(x.data).zeros((), np.int64)))
    if x.shape[d] == 0:
        raise IndexError(f"{op}(): Expected reduction dim {d} to have non-zero size.")
    xp = get_array_module(x.data)
    nans = xp.isnan(x.data).sum(axis=d, keepdims=True) if x.dtype.kind == "f" else xp.zeros((1,) * x.ndim, int)
    valid = x.shape[d] - nans
    if ignore_nan:
        position = xp.maximum(valid - 1, 0) // 2
    else:  # a slice with a NaN gives its first NaN (sorted last, in order)
        position = xp.where(nans > 0, valid, (x.shape[d] - 1) // 2)
    position = xp.broadcast_to(position, x.shape[:d] + (1,) + x.shape[d + 1:])
    return _select(x, d, keepdim, position, op, MedianResult)


def median(input, dim=EVERY_DIM, keepdim=NOT_KEPT):  # noqa: A002
    """``torch.median``: the lower median of every element, or ``(values, indices)`` along ``dim`` (an int: None,
    or ``keepdim`` alone, refused as PyTorch's parser refuses them)."""
    if dim is EVERY_DIM and keepdim is NOT_KEPT:
        return MedianAll.apply(as_tensor(input), ignore_nan=False)
    return _median_dim(input, dim, keepdim, False, "median")


def nanmedian(input, dim=EVERY_DIM, keepdim=NOT_KEPT):  # noqa: A002
    """``torch.nanmedian``: :func:`median` of the non-NaN elements."""
    if dim is EVERY_DIM and keepdim is NOT_KEPT:
        return MedianAll.apply(as_tensor(input), ignore_nan=True)
    return _median_dim(input, dim, keepdim, True, "nanmedian")


def _refuse_flags(op, dim, keepdim) -> None:
    """PyTorch's parser's refusals of ``median``/``nanmedian``/``mode`` arguments: ``dim`` an int, required beside
    ``keepdim``; ``keepdim`` a bool (the keyword forms' words: a Python signature cannot tell the positional)."""
    if dim is EVERY_DIM:
        raise TypeError(f'{op}() missing 1 required positional arguments: "dim"')
    if dim is None:
        raise TypeError(f"{op}(): argument 'dim' must be int, not NoneType")
    if keepdim is None:
        raise TypeError(f"{op}(): argument 'keepdim' must be bool, not NoneType")


def kthvalue(input, k, dim=-1, keepdim=False):  # noqa: A002
    """``torch.kthvalue``: ``(values, indices)`` of the ``k``-th smallest element (1-based) along ``dim``."""
    x = as_tensor(input)
    d = wrap_dim(dim, x.ndim, "kthvalue")
    n = x.shape[d] if x.ndim else 1
    if not 1 <= k <= n:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d}")
    if x.ndim == 0:
        return KthvalueResult(x * 1, Tensor(get_array_module(x.data).zeros((), np.int64)))
    xp = get_array_module(x.data)
    position = xp.full(x.shape[:d] + (1,) + x.shape[d + 1:], int(k) - 1)
    return _select(x, d, keepdim, position, "kthvalue", KthvalueResult)


def mode(input, dim=-1, keepdim=False):  # noqa: A002
    """``torch.mode``: ``(values, indices)`` of the most frequent value along ``dim`` (the smallest among
    equally frequent ones) and the last index where it occurs, as PyTorch's."""
    if dim is None or keepdim is None:
        _refuse_flags("mode", dim, keepdim)
    x = as_tensor(input)
    d = wrap_dim(dim, x.ndim, "mode")
    xp = get_array_module(x.data)
    if x.ndim == 0:
        return ModeResult(x * 1, Tensor(xp.zeros((), np.int64)))
    data = xp.moveaxis(x.data, d, -1)
    n = data.shape[-1]
    if n == 0:
        raise IndexError(f"mode(): Expected reduction dim {d} to have non-zero size.")
    order = stable_argsort(data, -1)
    ordered = xp.take_along_axis(data, order, -1)
    steps = xp.arange(n)
    starts = xp.ones(data.shape, bool)
    starts[..., 1:] = ordered[..., 1:] != ordered[..., :-1]
    run_start = _running_max(xp, xp.where(starts, steps, 0))
    run_length = steps - run_start + 1
    best = xp.argmax(run_length, axis=-1)[..., None]  # (the first to reach the longest run: the smallest value)
    index = xp.moveaxis(xp.take_along_axis(order, best, -1), -1, d)
    if x.requires_grad:
        values = TakeAlongReduced.apply(x, index, dim=d, keepdim=keepdim, op="mode")
    else:
        values = Tensor(xp.take_along_axis(x.data, index, d))
        values = values if keepdim else values.squeeze(d)
    if not keepdim:
        index = index.squeeze(d)
    return ModeResult(values, Tensor(index.astype(np.int64)))


def _running_max(xp, a):
    from .reduce_scan import _scan

    return _scan(xp, "maximum", a, a.ndim - 1)


def _quantile(input, q, dim, keepdim, interpolation, ignore_nan, op):  # noqa: A002
    x = as_tensor(input)
    if x.dtype.kind != "f":
        raise RuntimeError(f"{op}() input tensor must be either float or double dtype")
    if interpolation not in INTERPOLATIONS:
        raise RuntimeError(f"{op}() interpolation must be one of linear, lower, higher, midpoint or nearest. "
                           f"Got {interpolation}")
    xp = get_array_module(x.data)
    if isinstance(q, Tensor):
        if q.dtype != x.dtype:
            raise RuntimeError(f"{op}() q tensor must be same dtype as the input tensor")
        if q.ndim > 1:
            raise RuntimeError(f"{op}() q must be a scalar or 1D tensor")
        scalar_q, qs = q.ndim == 0, q.data.reshape(-1).astype(x.dtype)
    else:
        scalar_q, qs = np.ndim(q) == 0, xp.asarray(q, dtype=x.dtype).reshape(-1)
    if x.data.size == 0:
        raise RuntimeError(f"{op}() input tensor must be non-empty")
    if qs.size and (bool((qs < 0).any()) or bool((qs > 1).any())):
        raise RuntimeError(f"{op}() q values must be in the range [0, 1]")
    if dim is None:
        flat, d = x.reshape(-1), 0
        kept_shape = (1,) * x.ndim
    else:
        d = wrap_dim(dim, x.ndim, op)
        flat = x.reshape(1) if x.ndim == 0 else x
        kept_shape = x.shape[:d] + (1,) + x.shape[d + 1:] if x.ndim else ()
    ordered = movedim(sort(flat, d).values, d, -1)  # (..., n), NaN last
    n = ordered.shape[-1]
    nans = xp.isnan(ordered.data).sum(-1, keepdims=True)
    qs = qs.reshape((-1,) + (1,) * ordered.ndim)  # (Q, ..., 1)
    if ignore_nan:
        rank = qs * xp.maximum(n - nans - 1, 0).astype(x.dtype)
    else:
        rank = xp.where(nans > 0, xp.asarray(n - 1, x.dtype), qs * (n - 1))
    if interpolation == "nearest":
        rank = xp.round(rank)  # (half to even, as torch.round)
    lo = xp.floor(rank).astype(np.int64)
    hi = xp.minimum(xp.ceil(rank).astype(np.int64), n - 1)
    weight = (rank - lo).astype(x.dtype)  # (numpy would promote to float64 with the int64 ranks)
    expanded = BroadcastTo.apply(ordered, shape=lo.shape[:-1] + (n,))
    below, above = Gather.apply(expanded, lo, dim=-1), Gather.apply(expanded, hi, dim=-1)
    if interpolation in ("lower", "nearest"):
        out = below
    elif interpolation == "higher":
        out = above
    else:
        if interpolation == "midpoint":
            weight = xp.full_like(weight, 0.5)
        step = above - below  # (PyTorch's lerp: from the nearer end)
        out = Where.apply(weight < 0.5, below + step * Tensor(weight), above - step * Tensor(1 - weight))
    out = out.squeeze(-1)  # (Q, ...)
    if keepdim:
        out = out.reshape((out.shape[0],) + tuple(kept_shape))
    return out.reshape(out.shape[1:]) if scalar_q else out


def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):  # noqa: A002
    """``torch.quantile``: the ``q``-quantiles (a number, or a 1-D tensor: a leading dim) of every element or
    along ``dim``, interpolating between the two nearest ranks ('linear', 'lower', 'higher', 'midpoint',
    'nearest'); NaN where the slice holds one."""
    return _quantile(input, q, dim, keepdim, interpolation, False, "quantile")


def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):  # noqa: A002
    """``torch.nanquantile``: :func:`quantile` of the non-NaN elements."""
    return _quantile(input, q, dim, keepdim, interpolation, True, "nanquantile")
