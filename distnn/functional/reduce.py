"""Reductions over an axis (or all axes): sum, mean, max, min, norm (var and std: :mod:`.variance`).

The functions (and the Tensor methods) take PyTorch's arguments, ``dim`` and ``keepdim`` (also positionally), with
PyTorch's meaning: ``max(x, 1)`` is the pair (values, indices), ``var``/``std`` are unbiased unless ``unbiased=False``
or ``correction=0``. numpy's keywords ``axis``, ``keepdims`` and ``ddof`` are accepted too and keep numpy's meaning
(``max(x, axis=1)`` is the values, ``var`` with ``axis=`` defaults to ``ddof=0``).
"""
from __future__ import annotations

import builtins
import numbers
from collections import namedtuple

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.half_rounding import cast
from distnn.autograd.half_accumulate import accumulating_mean, accumulating_sum, widened
from distnn.autograd.unset_defaults import EVERY_DIM, NO_OUT, NOT_KEPT
from distnn.backend import get_array_module

from ._dims import DimensionError, dim_or_axis
from .method_out_refusal import refuse_extremum_arguments
from .torch_layout import row_major


def _axes(axis, ndim):
    """The axes to reduce, sorted and non-negative. A 0-d tensor takes dim 0 or -1 (as PyTorch), and has
    none to reduce."""
    if axis is None:
        return tuple(range(ndim))
    out = []
    for a in (axis,) if isinstance(axis, int) else axis:
        if not -builtins.max(ndim, 1) <= a < builtins.max(ndim, 1):
            raise DimensionError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        if ndim:
            out.append(a % ndim)
    return tuple(sorted(out))


def _expand_back(g, axes, keepdims, shape):
    """Broadcast a reduced gradient back to ``shape``."""
    xp = get_array_module(g)
    if not keepdims and shape:
        g = xp.expand_dims(g, axes)
    return xp.broadcast_to(g, shape)


class Sum(Function):
    """A sum over every element (``sum()``) or over ``axis``: :class:`SumDim`, PyTorch's other node."""

    torch_name = "SumBackward0"
    saves_tensors = False
    supports_complex = True

    def forward(self, a, axis=None, keepdims=False, dtype=None):
        self.shape = a.shape
        self.axes = _axes(axis, a.ndim)
        self.keepdims = keepdims
        # (a sum past the float's range: inf, as PyTorch's, with no warning: Function.apply's silence)
        # (float16 added up in float32 and rounded once, as PyTorch's: half_accumulate)
        out = accumulating_sum(a, axis=self.axes, keepdims=keepdims, dtype=_accumulator(a, dtype))
        return out if out.ndim < 2 else row_major(out)  # (a full sum, the loss's, with no call)

    def backward(self, g):
        return (_expand_back(g, self.axes, self.keepdims, self.shape),)


class SumDim(Sum):
    torch_name = "SumBackward1"


class Mean(Function):
    """As :class:`Sum`: ``mean()``, or :class:`MeanDim` over ``axis``."""

    torch_name = "MeanBackward0"
    saves_tensors = False
    supports_complex = True

    def forward(self, a, axis=None, keepdims=False):
        self.shape = a.shape
        self.axes = _axes(axis, a.ndim)
        self.keepdims = keepdims
        self.count = 1
        for ax in self.axes:
            self.count *= a.shape[ax]
        if self.count == 0 and a.dtype.kind in "fc":  # (the mean of no elements: NaN, as PyTorch's, with no warning)
            total = a.sum(axis=self.axes, keepdims=keepdims)
            return get_array_module(a).full(total.shape, float("nan"), dtype=total.dtype)
        # (past the float's range: inf, silently, as Sum's; float16 added up in float32, as numpy's mean does)
        out = accumulating_mean(a, axis=self.axes, keepdims=keepdims)
        return out if out.ndim < 2 else row_major(out)

    def backward(self, g):
        if self.count == 0:  # (no elements to get a gradient)
            return (get_array_module(g).zeros(self.shape, dtype=g.dtype),)
        return (_expand_back(g / self.count, self.axes, self.keepdims, self.shape),)


class MeanDim(Mean):
    torch_name = "MeanBackward1"


def _refuse_empty_reduction(name, shape, axis):
    """A max or min over no elements has no value: refused as PyTorch refuses it, an IndexError naming the first
    reduced ``axis`` (an int or a tuple, as given) of size 0, or with no axis (every one) a RuntimeError for an
    empty tensor. An empty tensor reduced along dims that are not (a (0, 4) batch's rows) gives an empty result."""
    if axis is None:
        if 0 in shape:
            raise RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0. Specify "
                               "the reduction dim with the 'dim' argument.")
        return
    for d in (axis,) if isinstance(axis, int) else axis:  # (an int, as _axes takes it)
        if shape and shape[d] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")


def _refuse_complex(name, a):
    """PyTorch's refusal of a complex max/min: ``amax``/``amin``'s kernel by name (``max_values_cpu``), ``max()``'s
    over every element (``max_all``)."""
    kernel = {"amax": "max_values", "amin": "min_values"}.get(name)
    kernel = f"{kernel}_{'cpu' if type(a).__module__.startswith('numpy') else 'cuda'}" if kernel else f"{name}_all"
    raise NotImplementedError(f"\"{kernel}\" not implemented for '{_torch_name(a.dtype)}'")


class _Extremum(Function):
    """max/min over axes; the gradient is shared evenly among tied extrema."""

    reads = ((0, OUTPUT),)  # (its own mask; the input and the result are what PyTorch's amax/max() save)
    nan_is_extremum = True  # (PyTorch's max()/min() gradient: a NaN result's gradient goes to the NaNs)

    def forward(self, a, axis=None, keepdims=False, name=None):
        if a.dtype.kind == "c":  # (PyTorch's kernels have no complex case: numpy's would order by real part)
            _refuse_complex(name or type(self).__name__.lower(), a)
        axes = _axes(axis, a.ndim)
        _refuse_empty_reduction(name or type(self).__name__.lower(), a.shape, axis)  # (name: amax's, amin's)
        out = self.reduce(a, axes)
        self.mask = a == out  # out kept its dims, so it broadcasts against a
        xp = get_array_module(a)
        # NaN equals nothing: for max()/min() the NaNs are the extrema (amax/amin leave the mask empty)
        if self.nan_is_extremum and a.dtype.kind in "fc" and bool(xp.isnan(out).any()):
            self.mask |= xp.isnan(a) & xp.isnan(out)
        self.axes, self.keepdims = axes, keepdims
        return row_major(out if keepdims else out.reshape([s for i, s in enumerate(a.shape) if i not in axes]))

    def backward(self, g):
        xp = get_array_module(g)
        mask = self.mask.astype(g.dtype)
        count = mask.sum(axis=self.axes, keepdims=True)
        if not self.keepdims and mask.ndim:
            g = xp.expand_dims(g, self.axes)
        return (g * mask / count,)


class Max(_Extremum):
    torch_name = "MaxBackward1"  # (max(); amax is Amax: another PyTorch node, the same op)

    @staticmethod
    def reduce(a, axes):
        return a.max(axis=axes, keepdims=True)


class Min(_Extremum):
    torch_name = "MinBackward1"

    @staticmethod
    def reduce(a, axes):
        return a.min(axis=axes, keepdims=True)


#: what ``max(x, dim)``/``min(x, dim)`` return, as PyTorch's ``torch.return_types.max``
MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])


def _resolve(dim, keepdim, axis, keepdims):
    """(axis, keepdims, numpy_style) from PyTorch's and numpy's spellings (not both)."""
    numpy_style = axis is not None or keepdims is not None
    if not numpy_style:
        dim = _every_dim_if_empty(dim)
    return dim_or_axis(dim, axis), bool(keepdims if keepdims is not None else keepdim), numpy_style


def _every_dim_if_empty(dim):
    """PyTorch: an empty dim list reduces over every dim (numpy's ``axis=()`` reduces none)."""
    return None if isinstance(dim, (tuple, list)) and not dim else dim


def sum(a, dim=EVERY_DIM, keepdim=NOT_KEPT, *, dtype=None, axis=EVERY_DIM, keepdims=None,  # noqa: A001
        out=NO_OUT):
    """``torch.sum``: integers and bools sum in int64; ``dtype`` casts the input first, as PyTorch's. ``out``: the
    sum in ``out``'s dtype written into it, PyTorch's rules (:mod:`.reduce_out`); only beside a ``dim`` (or
    ``axis``, even None: PyTorch's overload without one takes no ``out``, and is refused as its parser refuses it).
    ``keepdim`` too needs a ``dim`` (:mod:`.reduce_arguments`)."""
    if out is not NO_OUT:
        from .reduce_out import refuse_out_without_dim, sum_like_into_out

        refuse_out_without_dim("sum", a, out, dim is EVERY_DIM and axis is EVERY_DIM,
                               keepdim is not NOT_KEPT or dtype is not None or keepdims is not None)
    elif keepdim is not NOT_KEPT and keepdims is None and (keepdim is None or dim is EVERY_DIM and axis is EVERY_DIM):
        from .reduce_arguments import refuse_function_keepdim

        refuse_function_keepdim("sum", keepdim, dim, dtype, a)  # (PyTorch's parser: keepdim a bool, beside a dim)
    if axis is EVERY_DIM:
        axis = None
    axis, keepdims, _ = _resolve(None if dim is EVERY_DIM else dim, keepdim, axis, keepdims)
    if out is not NO_OUT and out is not None:
        return sum_like_into_out("sum", lambda x, in_dtype: sum(x, axis=axis, keepdims=keepdims, dtype=in_dtype),
                                 a, out, dtype)
    return (Sum if axis is None else SumDim).apply(_with_dtype(a, dtype), axis=axis, keepdims=keepdims, dtype=dtype)


def _accumulator(a, dtype):
    """The dtype a sum or product of ``a`` is in: ``dtype`` when given (``a`` was cast to it), else int64 for
    integers and bools, as PyTorch's (numpy's sum of uint8 is uint64), else ``a``'s own."""
    if dtype is not None:
        return dtype
    return "int64" if a.dtype.kind in "biu" else None


def _with_dtype(a, dtype):
    """``a`` cast to ``dtype`` first (PyTorch's ``dtype=`` argument), in the graph for a float tensor."""
    if dtype is None:
        return a
    from distnn.autograd.tensor import Tensor

    if isinstance(a, Tensor):
        return a.astype(dtype)
    return cast(get_array_module(a).asarray(a), dtype)  # (float64 to float16 through float32, as PyTorch's)


def _dtype_of(a):
    dtype = getattr(a, "dtype", None)
    return dtype if dtype is not None else get_array_module(a).asarray(a).dtype


def _torch_name(dtype) -> str:
    from distnn.autograd.tensor_inplace_methods import torch_dtype_name

    return torch_dtype_name(dtype)


def mean(a, dim=EVERY_DIM, keepdim=NOT_KEPT, *, dtype=None, axis=None, keepdims=None, out=NO_OUT):
    """``torch.mean``: of a floating (or complex) tensor, or of any tensor with a floating ``dtype=`` (the input
    is cast to it first, as PyTorch's); an integer or bool tensor without one is refused, as PyTorch refuses
    it (numpy would answer in float64). ``out``: PyTorch's rules (:mod:`.reduce_out`). ``keepdim`` needs a
    ``dim`` (:mod:`.reduce_arguments`)."""
    if dim is EVERY_DIM or keepdim is None:
        if keepdim is not NOT_KEPT and axis is None and keepdims is None:
            from .reduce_arguments import refuse_function_keepdim

            refuse_function_keepdim("mean", keepdim, dim, dtype, a, out)  # (PyTorch's parser: keepdim a bool)
        dim = None if dim is EVERY_DIM else dim
    if out is NO_OUT:
        out = None
    axis, keepdims, _ = _resolve(dim, keepdim, axis, keepdims)
    if out is not None:
        from .reduce_out import mean_into_out

        return mean_into_out(lambda x, in_dtype: sum(x, axis=axis, keepdims=keepdims, dtype=in_dtype), a, out,
                             dim, keepdim, dtype, _refuse_integral_mean)
    _refuse_integral_mean(a, dtype)
    return (Mean if axis is None else MeanDim).apply(_with_dtype(a, dtype), axis=axis, keepdims=keepdims)


def _refuse_integral_mean(a, dtype) -> None:
    """PyTorch's refusal of a mean of an integer or bool tensor without a floating ``dtype=``, or with another
    ``dtype=``."""
    if dtype is not None:
        import numpy as np

        if np.dtype(dtype).kind not in "fc":
            raise RuntimeError("mean(): could not infer output dtype. Optional dtype must be either a floating "
                               f"point or complex dtype. Got: {_torch_name(dtype)}")
    elif _dtype_of(a).kind in "biu":
        raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either a floating point or "
                           f"complex dtype. Got: {_torch_name(_dtype_of(a))}")


def _extremum(cls, result, arg, a, dim, keepdim, axis, keepdims):
    if dim is None or dim is EVERY_DIM and keepdim is not NOT_KEPT:  # (PyTorch's parser's refusal, maybe)
        refuse_extremum_arguments(cls.__name__.lower(), False, a, dim, keepdim, axis, keepdims)
    dim = None if dim is EVERY_DIM else int(dim) if isinstance(dim, numbers.Integral) else dim
    keepdim, name = keepdim is not NOT_KEPT and keepdim, cls.__name__.lower()
    if dim is not None and not isinstance(dim, (int, tuple, list)) and hasattr(dim, "shape"):  # (maximum, minimum)
        raise TypeError(f"{name}(a, b) of two tensors is distnn.functional.{name}imum(a, b); the second argument of "
                        f"{name} is a dim")
    axis, keepdims, numpy_style = _resolve(dim, keepdim, axis, keepdims)
    if numpy_style or axis is None or not isinstance(axis, int):
        return cls.apply(a, axis=axis, keepdims=keepdims)  # (ties share the gradient, as PyTorch's amax)
    if _dtype_of(a).kind == "c":
        raise RuntimeError(f"{cls.__name__.lower()}(): does not support complex input")
    from distnn.autograd.tensor import Tensor

    from .indexing import TakeAlongReduced

    data = a.data if isinstance(a, Tensor) else a
    _refuse_empty_reduction(cls.__name__.lower(), data.shape, _axes(axis, data.ndim))  # (the dim wrapped, as PyTorch's)
    if data.ndim == 0:  # dim 0 or -1 of a 0-d tensor (PyTorch): the value itself, index 0
        _axes(axis, 0)
        return result(cls.apply(a, axis=None, keepdims=False), Tensor(get_array_module(data).zeros((), dtype="int64")))
    # the first extremum (a NaN counts as one), and the gradient goes to it alone, as PyTorch's max(dim)
    indices = _arg(data, arg, axis, True)
    values = TakeAlongReduced.apply(a, indices, dim=axis % data.ndim, keepdim=keepdims,  # (its own indices: x is
                                    op="max" if cls is Max else "min")  # not read)
    if not keepdims:
        indices = indices.squeeze(axis)
    return result(values, Tensor(indices.copy()))  # (a copy: the node's own indices must not change under it)


def max(a, dim=EVERY_DIM, keepdim=NOT_KEPT, *, axis=None, keepdims=None):  # noqa: A001
    """The maximum; ``max(a, dim)`` (an int dim): the pair (values, indices), as PyTorch."""
    return _extremum(Max, MaxResult, "argmax", a, dim, keepdim, axis, keepdims)


def min(a, dim=EVERY_DIM, keepdim=NOT_KEPT, *, axis=None, keepdims=None):  # noqa: A001
    """The minimum; ``min(a, dim)`` (an int dim): the pair (values, indices), as PyTorch."""
    return _extremum(Min, MinResult, "argmin", a, dim, keepdim, axis, keepdims)


def _arg(data, name, axis, keepdim):
    try:
        out = getattr(data, name)(axis=axis)
    except ValueError:  # (numpy's 'attempt to get argmax of an empty sequence': PyTorch's errors instead)
        if data.size == 0 and axis is None:
            raise IndexError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0.") from None
        if data.size == 0 and isinstance(axis, numbers.Integral) and -data.ndim <= axis < data.ndim:
            _refuse_empty_reduction(name, data.shape, axis % data.ndim)
        raise
    if keepdim:
        out = get_array_module(data).expand_dims(out, axis) if axis is not None else out.reshape((1,) * data.ndim)
    return out


def argmax(a, dim=None, keepdim=False, *, axis=None):
    """Index of the (first) maximum, over all elements or along ``dim``; no gradient."""
    from distnn.autograd.tensor import Tensor

    return Tensor(_arg(a.data if isinstance(a, Tensor) else a, "argmax", dim if axis is None else axis, keepdim))


def argmin(a, dim=None, keepdim=False, *, axis=None):
    """Index of the (first) minimum, over all elements or along ``dim``; no gradient."""
    from distnn.autograd.tensor import Tensor

    return Tensor(_arg(a.data if isinstance(a, Tensor) else a, "argmin", dim if axis is None else axis, keepdim))


class Norm2(Function):
    """The 2-norm over ``axis``; its gradient at a zero vector is 0 (a subgradient, as PyTorch)."""

    torch_name = "LinalgVectorNormBackward0"
    reads = ((0, OUTPUT),)

    def forward(self, a, axis=None, keepdims=False):
        xp = get_array_module(a)
        self.axes, self.keepdims, self.a = _axes(axis, a.ndim), keepdims, a
        # (squares past the float's range: an inf norm, as PyTorch's, silently: Function.apply's silence)
        wide = widened(a)  # (float16 squared and added up in float32, rounded once, as PyTorch's)
        self.n = xp.sqrt((wide * wide).sum(axis=self.axes, keepdims=True)).astype(a.dtype, copy=False)
        return self.n if keepdims else self.n.reshape([s for i, s in enumerate(a.shape) if i not in self.axes])

    def backward(self, g):
        xp = get_array_module(g)
        if not self.keepdims and self.a.ndim:
            g = xp.expand_dims(g, self.axes)
        safe = xp.where(self.n == 0, 1, self.n)
        return (g * xp.where(self.n == 0, 0, self.a / safe),)


def norm(a, p="fro", dim=None, keepdim=False, *, dtype=None, out=None):
    """PyTorch's ``norm``: any order ``p`` over ``dim`` (all of them by default, or when empty), 'fro' (the 2-norm
    over at most 2 dims) or 'nuc' (the nuclear norm of the last two dims, or of ``dim``); as ``torch.norm``, a
    string ``p`` with more than 2 dims goes to ``linalg.matrix_norm`` (and its refusal), and ``dtype`` may widen
    the input, never narrow it (``linalg.vector_norm``'s and ``linalg.matrix_norm``'s checks; ``out``: theirs)."""
    if out is not None:
        from .reduce_out_more import norm_into_out  # (:mod:`.reduce_out_more`: PyTorch's out= rules)
        return norm_into_out(norm, a, out, p, dim, keepdim, dtype)
    from distnn.linalg import norms  # (linalg builds on this module)

    t = norms.as_tensor(a)
    if isinstance(p, str):  # (an empty dim here is no 2-tuple: matrix_norm refuses it, as PyTorch's)
        if p != "fro" or not (dim is None or isinstance(dim, numbers.Integral) or len(dim) <= 2):
            return norms._matrix_norm(t, p, list(range(t.ndim)) if dim is None else dim, keepdim, dtype)
        p = 2
    dim = _every_dim_if_empty(dim)
    p = 2.0 if p is None else p
    if p == 2 and t.dtype.kind == "f" and dtype is None:  # (Norm2 squares x as real: complex takes vector_norm's)
        if dim is not None:  # (vector_norm's checks: PyTorch's IndexError and repeated-dim RuntimeError)
            norms._axes(dim, t.ndim)
        return Norm2.apply(t, axis=dim, keepdims=keepdim)
    return norms.vector_norm(t, p, dim=dim, keepdim=keepdim, dtype=dtype)  # any other order: -inf, 0, 0.5, 3, ...


def __getattr__(name):
    """var and std moved to :mod:`.variance` (which builds on this module): still importable from here."""
    if name in ("Var", "Std", "var", "std", "_refuse_non_float", "_ddof"):
        from . import variance

        return getattr(variance, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
