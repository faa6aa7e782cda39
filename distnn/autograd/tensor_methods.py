"""PyTorch's Tensor methods that are compositions of distnn's ops (a mixin of :class:`Tensor`).

Kept apart from ``tensor.py`` (the core) and ``tensor_operators.py``/``tensor_operators_more.py`` (operators,
one-op methods) so that each file stays readable; every method here follows PyTorch's name, arguments and meaning.
"""
from __future__ import annotations

import math

import numpy as np

from distnn.backend import get_array_module, to_numpy, unwrap

from .float_errors import silent as _silent
from .functional_modules import functional_module
from .half_rounding import cast, into_half
from .number_range import REAL_NUMBERS as _REAL_NUMBERS, scalar_for_dtype
from .unset_defaults import EVERY_DIM, NO_OUT, NOT_KEPT

#: ``sort``'s ``stable`` when a call gives none (falsy): PyTorch tells its two overloads, and their nodes
#: (SortBackward0, SortBackward1), apart by the keyword's presence, whatever its value
STABLE_NOT_GIVEN = type("StableNotGiven", (), {"__repr__": lambda self: "False", "__bool__": lambda self: False})()


class TensorMethods:
    __slots__ = ()

    # ------------------------------------------------------------ copies and casts
    def clone(self):
        """A copy that stays in the graph (the gradient passes through)."""
        return _ops.elementwise.Clone.apply(self)

    def contiguous(self, memory_format=None):
        """This tensor if it is contiguous (PyTorch's rule), else a row-major copy in the graph (what ``view``
        of a transpose or a diagonal needs first, as in PyTorch); ``memory_format=distnn.channels_last``: a copy
        in NHWC memory, the shape kept (a 4-D tensor)."""
        return _ops.view_strides.contiguous(self, memory_format)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def half(self):
        return self.to(np.float16)

    def long(self):
        return self.astype(np.int64)  # (integer tensors carry no gradient)

    def int(self):
        return self.astype(np.int32)

    def bool(self):
        return _const(self.data.astype(bool))

    # ------------------------------------------------------------ arithmetic by name
    def add(self, other, *, alpha=1):
        """``self + alpha * other`` (``distnn.add``)."""
        return self + other if type(alpha) is int and alpha == 1 else _ops.method_forms.add(self, other, alpha=alpha)

    def sub(self, other, *, alpha=1):
        """``self - alpha * other`` (``distnn.sub``: bools refused, as PyTorch's)."""
        return _ops.method_forms.sub(self, other, alpha=alpha)

    def mul(self, other):
        return self * other

    def div(self, other, *, rounding_mode=None):
        """``self / other``, or rounded with ``rounding_mode='trunc'|'floor'`` (as ``distnn.div``)."""
        if rounding_mode is None:
            return self / other
        return _ops.pointwise_division.divide(self, other, rounding_mode=rounding_mode)

    def pow(self, exponent):
        return self ** exponent

    def matmul(self, other):
        return self @ other

    # ------------------------------------------------------------ in place
    def zero_(self):
        self[...] = 0
        return self

    def fill_(self, value):
        """Every element ``value`` (a number or a 0-d tensor, whose gradient is the sum of this one's)."""
        if getattr(value, "ndim", 0) != 0:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with {value.ndim} "
                               "dimensions.")
        if not (type(value) is float and -65504.0 <= value <= 65504.0 and self.data.dtype.kind == "f") \
                and isinstance(value, _REAL_NUMBERS):  # (PyTorch's Scalar checks, but for the common case;
            value = scalar_for_dtype(self.data.dtype, value, rounds_half=self.data.size == 1)  # one element: its
            # shortcut's float16 rounding)
        self[...] = value
        return self

    # ------------------------------------------------------------ reductions and masks
    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        return _ops.reduce.norm(self, p, dim, keepdim, dtype=dtype)

    def all(self, dim=None, keepdim=NOT_KEPT, *, out=NO_OUT):
        if out is not NO_OUT:  # (PyTorch's method takes none: its parser's refusal)
            from distnn.functional.method_out_refusal import refuse_method_out

            refuse_method_out("all", out, dim, keepdim)
        from distnn.functional.torch_layout import row_major  # (row-major as PyTorch's, whatever self's layout)

        return _const(row_major(self.data.all(axis=dim, keepdims=keepdim is not NOT_KEPT and keepdim)))

    def any(self, dim=None, keepdim=NOT_KEPT, *, out=NO_OUT):
        if out is not NO_OUT:  # (PyTorch's method takes none: its parser's refusal)
            from distnn.functional.method_out_refusal import refuse_method_out

            refuse_method_out("any", out, dim, keepdim)
        from distnn.functional.torch_layout import row_major

        return _const(row_major(self.data.any(axis=dim, keepdims=keepdim is not NOT_KEPT and keepdim)))

    def masked_fill(self, mask, value):
        """``value`` where ``mask`` is true, else this tensor (the gradient flows where it is kept; a 0-d
        tensor ``value`` gets the gradient of the filled places)."""
        from distnn.functional.elementwise_choice import MaskedFill, MaskedFillTensor

        from .tensor import Tensor

        if isinstance(value, complex) or isinstance(value, Tensor) and value.dtype.kind == "c":
            from .complex_to_real import real_fill_value

            value = real_fill_value(value, self.data.dtype)  # (for a real tensor: PyTorch's rules)
        if not isinstance(value, Tensor):
            if isinstance(value, _REAL_NUMBERS):  # (range-checked as PyTorch's Scalar argument)
                value = scalar_for_dtype(self.data.dtype, value)
            value = np.asarray(into_half(value, self.data.dtype), dtype=self.data.dtype)  # (the tensor's, as PyTorch)
            return MaskedFill.apply(unwrap(mask).astype(bool), value, self)
        if value.dtype != self.data.dtype:  # (PyTorch fills in the tensor's dtype: the value is cast, in the graph)
            value = value.astype(self.data.dtype)
        return MaskedFillTensor.apply(unwrap(mask).astype(bool), value, self)

    # ------------------------------------------------------------ pieces and copies
    def split(self, split_size_or_sections, dim=0):
        return _ops.shape.split(self, split_size_or_sections, dim)

    def chunk(self, chunks, dim=0):
        """At most ``chunks`` pieces of ``ceil(size / chunks)`` along ``dim`` (the last one smaller), as PyTorch
        (with its refusals)."""
        from distnn.functional.shape_checks import chunk_bounds
        from distnn.functional.split_args import chunk_count

        dim, bounds = chunk_bounds(self.shape, chunk_count(chunks), dim)  # (a 0-d integer tensor: its value)
        return _ops.join._split_at(self, bounds, dim, "Split")

    def repeat(self, *sizes):
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = tuple(sizes[0])
        return _ops.shape.Repeat.apply(self, sizes=sizes)

    def gather(self, dim, index):
        # (a Tensor index stays one: its version is checked, as PyTorch's gather saves it)
        return _ops.shape.Gather.apply(self, index, dim=dim)

    def index_select(self, dim, index):
        return _ops.select.index_select(self, dim, index)

    def narrow(self, dim, start, length):
        return _ops.select.narrow(self, dim, start, length)

    def flip(self, *dims):
        return _ops.select.flip(self, dims[0] if len(dims) == 1 else dims)

    def roll(self, shifts, dims=None):
        return _ops.select.roll(self, shifts, dims)

    @property
    def mT(self):  # noqa: N802 - PyTorch's name
        """The last two dims swapped (a batch of matrices transposed)."""
        if self.ndim < 2:
            raise ValueError(f"mT needs a matrix or a batch of matrices, got a tensor of {self.ndim} dim(s)")
        return self.transpose(-2, -1)

    # ------------------------------------------------------------ more reductions, sorting
    def cumsum(self, dim, *, dtype=None):
        return _ops.reduce_more.cumsum(self, dim, dtype=dtype)

    def prod(self, dim=EVERY_DIM, keepdim=NOT_KEPT, *, dtype=None, out=NO_OUT):
        """``Tensor.prod(dim, keepdim, dtype=)``: :func:`distnn.prod` of this tensor (no ``out``, and ``dim`` an
        int or left out, as PyTorch's method: :mod:`distnn.functional.reduce_arguments`)."""
        if out is not NO_OUT or dim is None or keepdim is not NOT_KEPT and (keepdim is None or dim is EVERY_DIM):
            _ops.reduce_arguments.refuse_method_call("prod", dim, keepdim, dtype, out)
        return _ops.reduce_more.prod(self, dim, keepdim, dtype=dtype)

    def logsumexp(self, dim=EVERY_DIM, keepdim=False):
        """``Tensor.logsumexp(dim, keepdim)``: :func:`distnn.logsumexp` of this tensor (``dim`` required)."""
        if dim is None or dim is EVERY_DIM:
            _ops.reduce_arguments.refuse_logsumexp_dim(dim, method=True)
        return _ops.reduce_more.logsumexp(self, dim, keepdim)

    def amax(self, dim=(), keepdim=False):
        return _ops.reduce_more.amax(self, dim, keepdim)

    def amin(self, dim=(), keepdim=False):
        return _ops.reduce_more.amin(self, dim, keepdim)

    def sort(self, dim=-1, descending=False, stable=STABLE_NOT_GIVEN):
        return _ops.sort.sort(self, dim, descending, stable)

    def argsort(self, dim=-1, descending=False, stable=False):
        return _ops.sort.argsort(self, dim, descending, stable)

    def topk(self, k, dim=-1, largest=True, sorted=True):  # noqa: A002
        return _ops.sort.topk(self, k, dim, largest, sorted)

    # ------------------------------------------------------------ products
    def bmm(self, mat2):
        return _ops.einsum.bmm(self, mat2)

    # ------------------------------------------------------------ rounding (zero gradient, as PyTorch)
    def round(self, decimals=None):
        return _ops.rounding.round(self, decimals=decimals)

    def floor(self):
        return _ops.rounding.floor(self)

    def ceil(self):
        return _ops.rounding.ceil(self)

    def trunc(self):
        return _ops.rounding.trunc(self)

    def sign(self):
        return _ops.rounding.sign(self)

    # ------------------------------------------------------------ linear algebra (distnn.linalg, PyTorch's names)
    def det(self):
        return _linalg().det(self)

    def logdet(self):
        return _linalg().logdet(self)

    def slogdet(self):
        return _linalg().slogdet(self)

    def inverse(self):
        return _linalg().inverse(self)

    def pinverse(self, rcond=1e-15):
        return _linalg().pinverse(self, rcond)

    def matrix_power(self, n):
        return _linalg().matrix_power(self, n)

    def matrix_exp(self):
        return _linalg().matrix_exp(self)

    def cholesky(self, upper=False):
        """Deprecated in PyTorch (and here, with its warning) for :func:`distnn.linalg.cholesky`."""
        return _linalg().cholesky(self, upper, _stacklevel=3)

    def lu(self, pivot=True, get_infos=False):
        """Deprecated in PyTorch (and here, with its warning) for :func:`distnn.linalg.lu_factor`."""
        return _linalg().lu(self, pivot, get_infos, _stacklevel=3)

    def lu_solve(self, LU_data, LU_pivots):  # noqa: N803 - PyTorch's names
        """Deprecated in PyTorch (and here, with its warning) for :func:`distnn.linalg.lu_solve`."""
        return _linalg().lu_solve(self, LU_data, LU_pivots, _stacklevel=3)

    def geqrf(self):
        return _linalg().geqrf(self)

    def orgqr(self, input2):
        return _linalg().orgqr(self, input2)

    def ormqr(self, input2, input3, left=True, transpose=False):
        return _linalg().ormqr(self, input2, input3, left, transpose)

    # ------------------------------------------------------------ comparisons as one bool
    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
        return allclose(self, other, rtol, atol, equal_nan)

    def equal(self, other) -> bool:
        return equal(self, other)

    # ------------------------------------------------------------ new tensors like this one
    def type_as(self, other):
        """This tensor in ``other``'s dtype (in the graph for a float dtype; ``self`` when it has it already)."""
        return self.to(other.dtype)

    def new_tensor(self, data, dtype=None, requires_grad=False):
        """A copy of ``data`` with this tensor's dtype (unless ``dtype``) and device, as PyTorch's."""
        from .tensor import Tensor

        xp = get_array_module(self.data)
        raw = unwrap(data)
        dtype = np.dtype(dtype or self.data.dtype)
        array = xp.array(to_numpy(raw) if xp is np else raw, dtype=None if dtype == np.float16 else dtype)
        array = cast(array, dtype)  # (float64 to float16 through float32, as PyTorch's)
        return Tensor(array, requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, requires_grad=False):
        return self._new(size, "zeros", None, dtype, requires_grad)

    def new_ones(self, *size, dtype=None, requires_grad=False):
        return self._new(size, "ones", None, dtype, requires_grad)

    def new_empty(self, *size, dtype=None, requires_grad=False):
        return self._new(size, "empty", None, dtype, requires_grad)

    def new_full(self, size, fill_value, dtype=None, requires_grad=False):
        return self._new((size,), "full", fill_value, dtype, requires_grad)

    def _new(self, size, kind, fill_value, dtype, requires_grad):
        from .tensor import Tensor

        if len(size) == 1 and isinstance(size[0], (tuple, list)):
            size = tuple(size[0])
        size = tuple(int(s) for s in size)
        xp = get_array_module(self.data)
        dtype = self.data.dtype if dtype is None else np.dtype(dtype)
        if kind == "full" and isinstance(fill_value, _REAL_NUMBERS):
            fill_value = scalar_for_dtype(dtype, fill_value, rounds_half=math.prod(size) == 1)  # (PyTorch's fill_)
            fill_value = into_half(fill_value, dtype)  # (a float into float16 through float32, as PyTorch's)
        array = xp.full(size, fill_value, dtype=dtype) if kind == "full" else getattr(xp, kind)(size, dtype=dtype)
        return Tensor(array, requires_grad=requires_grad)


def _raw_array(x):
    """``x``'s array (a Tensor's data, or ``x`` as an array)."""
    a = unwrap(x)
    return a if hasattr(a, "dtype") and hasattr(a, "shape") else np.asarray(a)


def _beside(xp, b):
    """Array ``b`` on the device of module ``xp`` (copied across when it is on the other)."""
    return b if get_array_module(b) is xp else xp.asarray(to_numpy(b) if xp is np else b)


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:  # noqa: A002
    """``torch.allclose``: ``|input - other| <= atol + rtol * |other|`` everywhere (broadcasting), as one bool."""
    a = _raw_array(input)
    xp = get_array_module(a)
    with _silent():  # (3e38 - -3e38 overflows: not close, as PyTorch's, without numpy's warning)
        return bool(xp.allclose(a, _beside(xp, _raw_array(other)), rtol=rtol, atol=atol, equal_nan=equal_nan))


def equal(input, other) -> bool:  # noqa: A002
    """``torch.equal``: the same shape and the same elements (NaN equals nothing), as one bool."""
    a, b = _raw_array(input), _raw_array(other)
    if tuple(a.shape) != tuple(b.shape):
        return False
    return bool((a == _beside(get_array_module(a), b)).all())


def _const(array):
    from .tensor import Tensor

    return Tensor(array)


class _Ops:
    """The op modules, imported on first use (they import Tensor, which imports this mixin)."""

    def __getattr__(self, name):
        return functional_module(name)


_ops = _Ops()


def _linalg():
    """``distnn.linalg.aliases`` (imported on first use, as the op modules above)."""
    import importlib

    return importlib.import_module("distnn.linalg.aliases")
