"""PyTorch's scans and NaN-aware/paired reductions: cumprod, cummax, cummin, logcumsumexp, diff, count_nonzero,
nansum, nanmean, var_mean, std_mean, aminmax.

Gradients are PyTorch's: cumprod's is exact with zeros in the input, cummax/cummin send each value's gradient
to the running arg-max/min, logcumsumexp's is computed in log space (positive and negative parts apart).
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.half_accumulate import accumulating_sum
from distnn.autograd.tensor import Tensor
from distnn.autograd.tensor_inplace_methods import torch_dtype_name
from distnn.backend import get_array_module

from ._dims import wrap_dim
from ._elementwise_common import _ALL_IGNORED, _FP_STATE, _OVERFLOW_RAISES
from ._torch_sum_order import torch_sum
from .elementwise import _quiet
from .elementwise_choice import Where
from .indexing import Gather
from .reduce import _axes, _every_dim_if_empty, _expand_back, sum as _sum
from .reduce_more import _with_dtype, amax, amin, running_sum
from .shape_more import as_tensor
from .torch_layout import row_major
from .variance import std_mean, var_mean  # noqa: F401 - (moved there; still exported here)

CumResult = namedtuple("cummax", ["values", "indices"])
AminmaxResult = namedtuple("aminmax", ["min", "max"])


def _scan(xp, ufunc, a, axis):
    """``ufunc.accumulate`` along ``axis`` (numpy), or a log-step scan of whole-array ops (cupy has no
    accumulate for most ufuncs): after step k each place combines the 2**k places up to it."""
    if xp is np:
        return getattr(np, ufunc).accumulate(a, axis=axis)
    out, n, step = a.copy(), a.shape[axis], 1
    fn = getattr(xp, ufunc)
    while step < n:
        head = [slice(None)] * a.ndim
        tail = [slice(None)] * a.ndim
        head[axis], tail[axis] = slice(step, None), slice(None, n - step)
        out[tuple(head)] = fn(out[tuple(head)], out[tuple(tail)])  # (the right side is computed before it is written)
        step *= 2
    return out


_TORCH_SUM_ORDER = (np.dtype(np.float32), np.dtype(np.float64))  # (the dtypes torch_sum replays; float16: in float32)


def _positions(xp, shape, axis):
    return xp.arange(shape[axis]).reshape((-1,) + (1,) * (len(shape) - axis - 1))


def _reversed_cumsum(xp, a, axis):
    """PyTorch's reversed_cumsum: its cumsum of the flipped array (float16 carried in float32 and float32 in
    float64 on the CPU, each partial sum rounded once: numpy's float16 cumsum rounds its running sum each step)."""
    return xp.flip(running_sum(xp, xp.flip(a, axis), axis), axis)


class CumProd(Function):
    """The running product; the gradient of ``x[k]`` is ``sum_{j>=k} g[j] * prod_{i<=j, i!=k} x[i]``, exact when
    ``x`` holds zeros (before the first zero: the reversed cumsum of ``g * out`` over ``x``; at it: the same
    with that zero taken as 1; after it: 0), as PyTorch's cumprod_backward."""

    torch_name = "CumprodBackward0"
    reads = ((0, OUTPUT),)

    def forward(self, a, dim):
        xp = get_array_module(a)
        self.a, self.dim = a, dim
        self.out = out = _running_product(xp, a, dim)
        return out

    def backward(self, g):
        xp = get_array_module(g)
        a, d, out = self.a, self.dim, self.out
        if a.size == 0:
            return (xp.zeros_like(g),)
        if a.shape[d] == 1:  # (PyTorch's cumprod_backward returns grad itself: not g * x / x, NaN at an inf)
            return (g,)
        zero = a == 0
        if not bool(zero.any()):
            return (_reversed_cumsum(xp, g * out, d) / a,)
        # PyTorch's cumprod_backward, its masks and its association: before the first zero z1, the reversed
        # cumsum of g * out masked to before z1, over x; at z1, out[z1 - 1] times the sum of g masked to
        # [z1, z2) times the running product of x masked to (z1, z2) (so 0 * inf = NaN past an inf there)
        zeros_so_far = xp.cumsum(zero, axis=d)
        before = zeros_so_far == 0
        up_to_second = zeros_so_far == 1
        at = zero & up_to_second
        grad_before = _reversed_cumsum(xp, xp.where(before, g * out, 0), d) / xp.where(before, a, 1)
        between = _running_product(xp, xp.where(up_to_second & ~at, a, a.dtype.type(1)), d)
        first = xp.expand_dims(xp.argmax(at, axis=d), d)
        prefix = xp.where(first == 0, 1, xp.take_along_axis(out, xp.maximum(first - 1, 0), axis=d))
        terms = between * xp.where(up_to_second, g, 0)
        if xp is np and terms.dtype in _TORCH_SUM_ORDER and a.flags.c_contiguous:
            total = torch_sum(terms, d)  # (PyTorch's sum kernel's order: its bits, where numpy's pairwise differ)
        else:  # (float16 added up in float32, as PyTorch's sum: numpy's along an outer dim rounds each addition)
            total = accumulating_sum(terms, axis=d, keepdims=True)
        grad_at = total * prefix
        return (xp.where(before, grad_before, xp.where(at, grad_at, 0)),)


# the float PyTorch's CPU cumprod carries a running product in (its acc_type); its CUDA kernel multiplies in the
# dtype itself, as cupy does
_PRODUCT_ACCUMULATOR = {np.dtype(np.float16): np.float32, np.dtype(np.float32): np.float64}


def _running_product(xp, a, dim):
    """cumprod as PyTorch's (CPU) accumulates it: float16 in float32, float32 in float64, each value rounded to
    ``a``'s dtype as it is stored, so a running product that passes the range and comes back (1e20, 1e20, 1e-20)
    or meets a zero is finite (1e20 and 0, not NaN), and a float32 one is PyTorch's to the bit (a float32 running
    product is an ulp or so off after a few steps)."""
    if a.dtype.kind in "biu":
        return xp.cumprod(a, axis=dim, dtype=xp.int64)
    wide = _PRODUCT_ACCUMULATOR.get(a.dtype) if xp is np or a.dtype == np.float16 else None
    token = _FP_STATE.set(_ALL_IGNORED)
    try:
        if wide is None:
            return xp.cumprod(a, axis=dim)
        # (cast first and multiplied in place: cumprod with dtype= casts through a slow buffer)
        acc = a.astype(wide)
        return xp.cumprod(acc, axis=dim, out=acc).astype(a.dtype, copy=False)
    finally:
        _FP_STATE.reset(token)


def cumprod(input, dim, *, dtype=None):  # noqa: A002
    """``torch.cumprod``: running products along ``dim`` (integers and bools in int64)."""
    x = _with_dtype(as_tensor(input), dtype)
    if x.ndim == 0:
        wrap_dim(dim, 0, "cumprod")
        return CumProd.apply(x.reshape(1), dim=0).reshape(())
    return CumProd.apply(x, dim=wrap_dim(dim, x.ndim, "cumprod"))


def _cum_extreme(input, dim, ufunc, op):  # noqa: A002
    x = as_tensor(input)
    d = wrap_dim(dim, x.ndim, op)
    if x.ndim == 0:
        values, indices = _cum_extreme(x.reshape(1), 0, ufunc, op)
        return CumResult(values.reshape(()), indices.reshape(()))
    data = x.data
    xp = get_array_module(data)
    if data.shape[d] == 0:
        return CumResult(x * 1, Tensor(xp.zeros(data.shape, np.int64)))
    running = _scan(xp, ufunc, data, d)
    # the index moves to each element that is (or ties) the running extreme, or is NaN, as PyTorch's kernel
    reaches = (data == running) | (xp.isnan(data) if data.dtype.kind == "f" else False)
    index = _scan(xp, "maximum", xp.where(reaches, _positions(xp, data.shape, d), 0), d).astype(np.int64)
    values = Gather.apply(x, index, dim=d) if x.requires_grad else Tensor(running)
    return CumResult(values, Tensor(index))


def cummax(input, dim):  # noqa: A002
    """``torch.cummax``: ``(values, indices)`` of the running maximum along ``dim``; a tie moves the index to
    the later element, a NaN stays (as PyTorch). The gradient goes to the running arg-max."""
    return _cum_extreme(input, dim, "maximum", "cummax")


def cummin(input, dim):  # noqa: A002
    """``torch.cummin``: the running minimum and its indices, as :func:`cummax`."""
    return _cum_extreme(input, dim, "minimum", "cummin")


def _logcumsumexp(xp, a, axis):
    with _quiet(xp, over=True):
        return _scan(xp, "logaddexp", a, axis)


class LogCumSumExp(Function):
    """``log(cumsum(exp(x)))`` computed as a running logaddexp (stable). The gradient
    ``sum_{j>=k} g[j] exp(x[k] - out[j])`` is computed in log space for the positive and the negative parts
    of ``g`` apart, as PyTorch's."""

    torch_name = "LogcumsumexpBackward0"
    reads = ((0, OUTPUT),)

    def forward(self, a, dim):
        xp = get_array_module(a)
        self.a, self.dim = a, dim
        self.out = _logcumsumexp(xp, a, dim)
        return self.out

    def backward(self, g):
        xp = get_array_module(g)
        d = self.dim
        with _quiet(xp, over=True):
            log_g = xp.log(xp.abs(g))
            parts = []
            for keep in (g > 0, g < 0):
                part = xp.where(keep, log_g, -xp.inf) - self.out
                parts.append(xp.exp(xp.flip(_logcumsumexp(xp, xp.flip(part, d), d), d) + self.a))
        return (parts[0] - parts[1],)


def logcumsumexp(input, dim):  # noqa: A002
    """``torch.logcumsumexp``: ``log(cumsum(exp(input), dim))``, computed stably."""
    x = as_tensor(input)
    if x.dtype.kind != "f":
        raise NotImplementedError(f'"logcumsumexp" not implemented for {x.dtype} (a floating point tensor only)')
    if x.ndim == 0:
        wrap_dim(dim, 0, "logcumsumexp")
        return x * 1
    return LogCumSumExp.apply(x, dim=wrap_dim(dim, x.ndim, "logcumsumexp"))


def diff(input, n=1, dim=-1, prepend=None, append=None):  # noqa: A002
    """``torch.diff``: the ``n``-th forward difference along ``dim`` (after ``prepend``/``append`` are joined);
    bools give ``!=`` (PyTorch's logical xor)."""
    from .join import concat

    x = as_tensor(input)
    if x.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    if n < 0:
        raise RuntimeError(f"order must be non-negative but got {n}")
    d = wrap_dim(dim, x.ndim, "diff")
    pieces = [as_tensor(p) for p in (prepend,) if p is not None] + [x] + [as_tensor(p) for p in (append,) if p is not None]
    if len(pieces) > 1:
        x = concat(pieces, dim=d)
    for _ in range(int(n)):
        length = x.shape[d]
        if length == 0:
            break
        later = x[(slice(None),) * d + (slice(1, None),)]
        earlier = x[(slice(None),) * d + (slice(0, length - 1),)]
        x = later != earlier if x.dtype == bool else later - earlier
    return x


def count_nonzero(input, dim=None):  # noqa: A002
    """``torch.count_nonzero``: the (int64) number of non-zero elements, over ``dim`` (an int or a tuple)."""
    data = as_tensor(input).data
    axes = None if dim is None else tuple(wrap_dim(d, data.ndim, "count_nonzero")
                                          for d in ((dim,) if isinstance(dim, int) else dim))
    return Tensor(row_major((data != 0).sum(axis=axes).astype(np.int64)))


def _without_nan(x):
    if x.dtype.kind != "f":
        return x
    xp = get_array_module(x.data)
    return Where.apply(xp.isnan(x.data), xp.zeros((), x.dtype), x)


def nansum(input, dim=None, keepdim=False, *, dtype=None, out=None):  # noqa: A002
    """``torch.nansum``: the sum with NaN counted as zero (their gradient is 0); integers sum in int64. ``out``:
    PyTorch's rules (:mod:`.reduce_out_more`)."""
    if out is not None:
        from .reduce_out_more import nansum_into_out

        return nansum_into_out(nansum, input, out, dim, keepdim, dtype)
    x = _with_dtype(as_tensor(input), dtype)
    if x.dtype.kind in "biu":
        x = Tensor(x.data.astype(np.int64))
    return _sum(_without_nan(x), dim=dim, keepdim=keepdim)


class NanMean(Function):
    """The mean of the non-NaN elements over ``axes``; backward is PyTorch's (nansum's gradient, the mask of
    non-NaN elements, times ``g / count``): NaN throughout a slice that holds no number (``inf * 0``), 0 at
    the NaN elements of the others."""

    saves_tensors = False

    def forward(self, a, axes, keepdim):
        xp = get_array_module(a)
        keep = ~xp.isnan(a)
        self.keep, self.axes, self.keepdim = keep, axes, keepdim
        self.count = keep.sum(axis=axes, keepdims=keepdim).astype(a.dtype)
        with _quiet(xp, over=True):  # (0 / 0 where a slice holds no number: NaN, past the range: inf, silently)
            # (PyTorch's nansum over the count: a float16 total added up in float32, rounded, then divided)
            out = (accumulating_sum(xp.where(keep, a, 0), axis=axes, keepdims=keepdim) / self.count).astype(
                a.dtype, copy=False)
            return row_major(out)

    def backward(self, g):
        with _quiet(get_array_module(g)):
            share = _expand_back(g / self.count, self.axes, self.keepdim, self.keep.shape)
            return (share * self.keep,)


def nanmean(input, dim=None, keepdim=False, *, dtype=None, out=None):  # noqa: A002
    """``torch.nanmean``: the mean of the non-NaN elements (NaN where there are none, and a NaN gradient there,
    as PyTorch's). ``out``: PyTorch's ``nansum`` into it, divided in place (:mod:`.reduce_out_more`)."""
    x = as_tensor(input)
    if out is not None:
        from .reduce_out_more import nanmean_into_out

        return nanmean_into_out(nansum, x, out, _axes(_every_dim_if_empty(dim), x.ndim), bool(keepdim), dtype)
    if x.dtype.kind != "f":  # (the input's own dtype: an integer one is refused even with a float dtype=)
        raise RuntimeError("nanmean(): expected input to have floating point or complex dtype but got "
                           f"{torch_dtype_name(x.dtype)}")
    x = _with_dtype(x, dtype)
    return NanMean.apply(x, axes=_axes(_every_dim_if_empty(dim), x.ndim), keepdim=bool(keepdim))


def aminmax(input, *, dim=None, keepdim=False):  # noqa: A002
    """``torch.aminmax``: ``(min, max)`` over ``dim`` (every element without it); tied extremes share the
    gradient evenly, as amin/amax."""
    x = as_tensor(input)
    if dim is None:
        if x.data.size == 0:
            raise RuntimeError("aminmax(): cannot compute aminmax over an empty dimension as the operation has no "
                               "identity.")
        return AminmaxResult(amin(x, (), keepdim), amax(x, (), keepdim))
    d = wrap_dim(dim, x.ndim, "aminmax")
    if x.ndim and x.shape[d] == 0:  # (an empty tensor along another dim: an empty result, as PyTorch's)
        raise IndexError(f"aminmax: Expected reduction dim {d} to have non-zero size.")
    if x.ndim == 0:
        return AminmaxResult(x * 1, x * 1)
    return AminmaxResult(amin(x, d, keepdim), amax(x, d, keepdim))
