"""More reductions, as PyTorch's: cumsum, prod, logsumexp, amax, amin.

``dim`` is PyTorch's (an int, negative from the end; a tuple where PyTorch takes one), and an
integer or bool tensor gives what PyTorch gives (``cumsum``/``prod``: int64; ``logsumexp``: float32).
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.autocast_state import autocast_policy
from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.autograd.unset_defaults import EVERY_DIM, NO_OUT, NOT_KEPT
from distnn.backend import get_array_module, unwrap

from ._dims import wrap_dim
from ._elementwise_common import _ALL_IGNORED, _FP_STATE
from ._half_product import half_product
from .elementwise import _quiet, float_input
from .reduce import Max, Min, _axes, _accumulator, _every_dim_if_empty, _with_dtype
from .torch_layout import row_major


# PyTorch's CPU cumsum carries a float32 (float16, complex64) running sum in float64 (float32, complex128), its
# acc_type, and rounds each partial sum once: +-3e38 can pass through a finite total, and long sums are its
# bits. Its CUDA kernel adds in the dtype itself, as cupy does.
_CPU_ACCUMULATOR = {np.dtype(np.float32): np.float64, np.dtype(np.float16): np.float32,
                    np.dtype(np.complex64): np.complex128}


def running_sum(xp, a, axis, dtype=None):
    """``xp.cumsum(a, axis, dtype)`` as PyTorch's cumsum computes it on this device."""
    out_dtype = np.dtype(dtype) if dtype is not None else a.dtype
    wide = _CPU_ACCUMULATOR.get(out_dtype) if xp is np else None
    if wide is None:
        return xp.cumsum(a, axis=axis, dtype=dtype)
    # (cast first and summed in place: numpy's cumsum with dtype= casts through a slow buffer, twice the time)
    acc = a.astype(wide)
    return xp.cumsum(acc, axis=axis, out=acc).astype(out_dtype, copy=False)


class CumSum(Function):
    """The running sum along ``dim``; the gradient is the running sum of the gradient from the other end."""

    torch_name = "CumsumBackward0"
    saves_tensors = False

    def forward(self, a, dim, dtype=None):
        xp = get_array_module(a)
        self.dim = dim
        if a.ndim == 0:
            return a.astype(_accumulator(a, dtype) or a.dtype)
        # (sums past the float's range: inf, as PyTorch's, with no warning: Function.apply's silence)
        return row_major(running_sum(xp, a, dim, _accumulator(a, dtype)))

    def backward(self, g):
        if g.ndim == 0:
            return (g,)
        xp = get_array_module(g)
        d = self.dim  # (PyTorch's cumsum_backward: the reversed cumsum of grad, itself a cumsum)
        return (xp.flip(running_sum(xp, xp.flip(g, d), d), d),)


def cumsum(input, dim, *, dtype=None):  # noqa: A002 - PyTorch's name
    """``torch.cumsum``: running sums along ``dim`` (integers and bools sum in int64)."""
    dim = wrap_dim(dim, unwrap(input).ndim, "cumsum")
    return CumSum.apply(_with_dtype(input, dtype), dim=dim, dtype=dtype)


class Prod(Function):
    """The product over ``dim`` (or every element). The gradient is PyTorch's ``prod_backward``: with no zero in
    the input, ``grad * (result / input)`` (inf where the product overflowed, as PyTorch's); else the product of
    the others, from prefix and suffix products accumulated in the wider float PyTorch's cumprod accumulates
    in (one zero: only it gets a gradient; over every element, two or more zeros: none does)."""

    reads = ((0, OUTPUT),)  # (PyTorch's prod_backward reads the input and the result)

    def forward(self, a, dim=None, keepdim=False, dtype=None):
        self.a, self.dim, self.keepdim = a, dim, keepdim
        integer = _accumulator(a, dtype)
        if a.dtype == np.float16 and get_array_module(a) is np:  # (numpy's rounds once a loop, PyTorch's each step)
            self.out = half_product(a, dim, keepdim)
            self.out = self.out if dim is None else row_major(self.out)
        elif dim is None:  # (past the float's range: inf, silently, as CumSum's)
            self.out = a.prod(dtype=integer)
        else:
            self.out = row_major(a.prod(axis=dim, keepdims=keepdim, dtype=integer))
        return self.out  # (kept for the graph backward, derivatives/pointwise_more.py)

    def torch_name_of_call(self) -> str:
        return "ProdBackward0" if self.dim is None else "ProdBackward1"

    def backward(self, g):
        xp = get_array_module(g)
        a, dim, out = self.a, self.dim, self.out
        if a.ndim == 0:
            return (xp.ones_like(a) * g,)
        if dim is not None and not self.keepdim:
            g, out = xp.expand_dims(g, dim), xp.expand_dims(out, dim)
        zeros = int(xp.count_nonzero(a == 0))
        token = _FP_STATE.set(_ALL_IGNORED)  # (inf / inf, inf * 0: NaN, as PyTorch's, silently)
        try:
            if not zeros:
                return (g * (out / a),)
            if dim is None:
                if zeros > 1:
                    return (xp.zeros_like(a),)
                return (_others_product(xp, a.reshape(-1), 0).reshape(a.shape) * g,)
            return (_others_product(xp, a, dim) * g,)
        finally:
            _FP_STATE.reset(token)


# the float PyTorch's cumprod (CPU) accumulates a float16 or float32 product in; a prefix product past the
# float's range that a zero follows is 0 there, where one accumulated in float32 would be inf * 0 = NaN
_CUMPROD_ACCUMULATOR = {"float16": "float32", "float32": "float64"}


def _others_product(xp, a, axis):
    """For each element, the product of the other elements along ``axis`` (exclusive prefix times suffix)."""
    n = a.shape[axis]
    if n == 0:
        return xp.zeros_like(a)
    head = tuple(slice(None) if k != axis else slice(0, n - 1) for k in range(a.ndim))
    ones = xp.ones_like(a[tuple(slice(None) if k != axis else slice(0, 1) for k in range(a.ndim))])
    wide = _CUMPROD_ACCUMULATOR.get(a.dtype.name)
    prefix = xp.concatenate([ones, xp.cumprod(a, axis=axis, dtype=wide)[head].astype(a.dtype)], axis=axis)
    reversed_a = xp.flip(a, axis)
    suffix = xp.cumprod(reversed_a, axis=axis, dtype=wide)[head].astype(a.dtype)
    suffix = xp.flip(xp.concatenate([ones, suffix], axis=axis), axis)
    return prefix * suffix


@autocast_policy("float32")
def prod(input, dim=EVERY_DIM, keepdim=NOT_KEPT, *, dtype=None, out=NO_OUT):  # noqa: A002
    """``torch.prod``: the product of every element, or over ``dim`` (an int), keeping it with ``keepdim``.
    ``out``: the product in ``out``'s dtype written into it, PyTorch's rules (:mod:`.reduce_out`); only beside an
    int ``dim`` (PyTorch's overload without one takes no ``out``: refused as its parser refuses it). A ``dim`` of
    None, or ``keepdim`` without ``dim``, is refused too, as there (:mod:`.reduce_arguments`)."""
    if out is not NO_OUT:
        from .reduce_out import refuse_out_without_dim

        refuse_out_without_dim("prod", input, out, dim is EVERY_DIM, keepdim is not NOT_KEPT or dtype is not None)
        if dim is None:
            raise TypeError("prod(): argument 'dim' (position 2) must be int, not NoneType")
        if keepdim is None:
            from .reduce_arguments import refuse_keepdim_none

            refuse_keepdim_none("prod")
    elif dim is None or keepdim is not NOT_KEPT and (dim is EVERY_DIM or keepdim is None):  # (PyTorch's parser)
        from .reduce_arguments import refuse_function_keepdim, refuse_prod_dim_none

        if dim is None:
            refuse_prod_dim_none(keepdim is not NOT_KEPT, dtype, method=False, a=input)
        refuse_function_keepdim("prod", keepdim, dim, dtype, input)
    if dim is EVERY_DIM:
        dim = None
    elif dim is not None:
        dim = wrap_dim(dim, unwrap(input).ndim, "prod")
    if keepdim is NOT_KEPT:
        keepdim = False
    if out is not NO_OUT and out is not None:
        from .reduce_out import sum_like_into_out

        return sum_like_into_out("prod", lambda x, in_dtype: prod(x, dim, keepdim, dtype=in_dtype), input, out,
                                 dtype)
    return Prod.apply(_with_dtype(input, dtype), dim=dim, keepdim=keepdim, dtype=dtype)


class LogSumExp(Function):
    """``log(sum(exp(x)))`` over ``dim``, stable (the maximum subtracted first, 0 where it is infinite,
    as PyTorch's); the gradient is ``exp(x - out)``, PyTorch's formula (NaN where every term is -inf)."""

    torch_name = "LogsumexpBackward0"
    reads = ((0, OUTPUT),)

    def forward(self, a, dim, keepdim=False):
        xp = get_array_module(a)
        axes = _axes(dim, a.ndim)
        if a.size:
            m = a.max(axis=axes, keepdims=True)
            m = xp.where(xp.isinf(m), 0, m)
        else:
            m = xp.zeros([1 if i in axes else s for i, s in enumerate(a.shape)], dtype=a.dtype)
        with _quiet(xp, over=True):
            out = xp.log(xp.exp(a - m).sum(axis=axes, keepdims=True)) + m
        self.a, self.out, self.axes, self.keepdim = a, out, axes, keepdim
        return row_major(out if keepdim else out.reshape([s for i, s in enumerate(a.shape) if i not in axes]))

    def backward(self, g):
        xp = get_array_module(g)
        if not self.keepdim and self.a.ndim:
            g = xp.expand_dims(g, self.axes)
        with _quiet(xp, over=True):
            return (g * xp.exp(self.a - self.out),)


def logsumexp(input, dim=EVERY_DIM, keepdim=False, *, out=None):  # noqa: A002
    """``torch.logsumexp``: ``log(sum(exp(input), dim))`` computed stably; ``dim`` an int or a tuple (required,
    as in PyTorch: left out or None, refused in its parser's words). Integer input is computed in float32.
    ``out``: floating or complex, the sum and log in its dtype, PyTorch's rules (:mod:`.reduce_out_more`)."""
    if dim is None or dim is EVERY_DIM:
        from .reduce_arguments import refuse_logsumexp_dim

        refuse_logsumexp_dim(dim, method=False)
    if out is not None:
        from .reduce_out_more import logsumexp_into_out

        data = unwrap(input)
        return logsumexp_into_out(input, out, _axes(_every_dim_if_empty(dim), data.ndim), bool(keepdim))
    return LogSumExp.apply(float_input(input), dim=_every_dim_if_empty(dim), keepdim=keepdim)


class Amax(Max):
    """amax's node: Max, named as PyTorch's (its max() is another node). Its gradient is PyTorch's
    scale_grad_by_count over ``result == input``: a slice whose maximum is NaN has no such element, so its
    gradient is NaN throughout (max() instead shares it among the NaNs)."""

    torch_name = "AmaxBackward0"
    nan_is_extremum = False


class Amin(Min):
    torch_name = "AminBackward0"
    nan_is_extremum = False


def amax(input, dim=(), keepdim=False, *, out=None):  # noqa: A002
    """``torch.amax``: the maximum over ``dim`` (an int or a tuple; all dims by default). Tied maxima share
    the gradient evenly, as PyTorch's (``max(x, dim)`` gives it to one of them). ``out``: of ``input``'s dtype,
    PyTorch's rules (:mod:`.reduce_out`)."""
    if out is not None:
        from .reduce_out import extremum_into_out

        return extremum_into_out("amax", lambda x: amax(x, dim, keepdim), input, out)
    return Amax.apply(input, axis=_every_dim_if_empty(dim), keepdims=keepdim, name="amax")


def amin(input, dim=(), keepdim=False, *, out=None):  # noqa: A002
    """``torch.amin``: the minimum over ``dim``; tied minima share the gradient evenly. ``out``: of ``input``'s
    dtype, PyTorch's rules (:mod:`.reduce_out`)."""
    if out is not None:
        from .reduce_out import extremum_into_out

        return extremum_into_out("amin", lambda x: amin(x, dim, keepdim), input, out)
    return Amin.apply(input, axis=_every_dim_if_empty(dim), keepdims=keepdim, name="amin")
