"""The rest of PyTorch's everyday Tensor methods (a mixin of :class:`~distnn.autograd.tensor.Tensor`):
metadata (``element_size``, ``nbytes``, ``stride``, ``is_signed``, ``is_cuda``, ...), the legacy ``new`` and
``type``, the narrow integer casts (``byte``, ``char``, ``short``), ``adjoint``/``mH``, the complex parts ``real``
and ``imag`` (properties) with the method forms of :mod:`distnn.functional.complex_numbers`, and the method forms of
:mod:`distnn.functional.slice_scatter`, :mod:`~distnn.functional.pointwise_bits` and
:mod:`~distnn.functional.statistics_more` (with their in-place ``name_`` forms where PyTorch has them) and
``stft``/``istft`` (:mod:`distnn.functional.stft`).

Where distnn differs by design: ``stride()`` and ``is_contiguous()`` read numpy's strides in elements (the layout
of an op's result may differ from PyTorch's where numpy's does; the strides numpy leaves meaningless, of the size-1
dims it adds and of new empty arrays, are reported as PyTorch's); ``type()`` names the tensor type as PyTorch's legacy
names do, with distnn's prefix (``'distnn.FloatTensor'``, ``'distnn.cuda.LongTensor'``); ``bfloat16()`` is
refused (numpy has no bfloat16).
"""
from __future__ import annotations

import numpy as np

from distnn.backend import device_of, get_array_module

from .functional_modules import functional_module
from .tensor_inplace_methods import _method as _inplace_method

# distnn.functional module -> the functions that become Tensor methods here
_METHODS = {
    "slice_scatter": ("select", "select_scatter", "slice_scatter", "diagonal_scatter", "index_reduce", "index_put",
                      "put", "sum_to_size", "split_with_sizes", "unfold"),
    "pointwise_bits": ("bitwise_left_shift", "bitwise_right_shift", "gcd", "lcm", "ldexp", "frexp", "nextafter",
                       "heaviside"),
    "statistics_more": ("cov", "corrcoef", "dist", "renorm", "addr", "histogram"),
    "method_forms": ("absolute", "fix", "msort"),
    "as_strided": ("as_strided", "as_strided_", "as_strided_scatter"),
    "view_copies": ("narrow_copy", "unsafe_split_with_sizes"),
    "complex_numbers": ("angle", "conj", "conj_physical", "resolve_conj", "resolve_neg", "is_conj", "is_neg"),
    "stft": ("stft", "istft"),
}
# ``name_``: the function's result written into the tensor (see tensor_inplace_methods)
_INPLACE = ("bitwise_left_shift", "bitwise_right_shift", "gcd", "lcm", "ldexp", "nextafter", "heaviside", "addr",
            "index_reduce")


def _renorm_of_a_copy(self, p, dim, maxnorm):
    # renorm's norm saves its input and refuses a backward once it is overwritten: computed on a copy (PyTorch's
    # in-place ops save the original self the same way)
    return _function("statistics_more", "renorm")(self.clone(), p, dim, maxnorm)

# PyTorch's legacy tensor-type names
_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor", "int64": "LongTensor",
               "int32": "IntTensor", "int16": "ShortTensor", "int8": "CharTensor", "uint8": "ByteTensor",
               "bool": "BoolTensor", "complex64": "ComplexFloatTensor", "complex128": "ComplexDoubleTensor"}
_TYPES_BY_NAME = {v: k for k, v in _TYPE_NAMES.items()}


def _function(module: str, name: str):
    return getattr(functional_module(module), name)


def _method(module: str, name: str):
    def method(self, *args, **kwargs):
        return _function(module, name)(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"``Tensor.{name}``: :func:`distnn.{name}` of this tensor (:mod:`distnn.functional.{module}`)."
    return method


def _const_cast(t, dtype):
    return t.astype(dtype)  # (integer tensors carry no gradient)


class TensorMethodsMore:
    __slots__ = ()

    # ------------------------------------------------------------ metadata
    def element_size(self) -> int:
        """Bytes per element."""
        return int(self.data.dtype.itemsize)

    @property
    def itemsize(self) -> int:
        return int(self.data.dtype.itemsize)

    @property
    def nbytes(self) -> int:
        """Bytes of the elements (``numel() * element_size()``)."""
        return int(self.data.size * self.data.dtype.itemsize)

    def nelement(self) -> int:
        return int(self.data.size)

    def ndimension(self) -> int:
        return int(self.data.ndim)

    def is_contiguous(self, memory_format=None) -> bool:
        """PyTorch's rule on the strides: row-major, ignoring dims of size 1 (``view`` needs it to merge dims;
        distnn's other ops take any layout); ``memory_format=distnn.channels_last`` tests NHWC memory instead."""
        from distnn.functional.view_strides import is_contiguous_layout

        return is_contiguous_layout(self.data, memory_format)

    @property
    def is_cpu(self) -> bool:
        return device_of(self.data) == "cpu"

    @property
    def is_cuda(self) -> bool:
        return device_of(self.data) != "cpu"

    def is_signed(self) -> bool:
        """Whether the dtype holds negative numbers (floats and signed integers; not uint8 or bool)."""
        return self.data.dtype.kind in "ifc"

    def is_same_size(self, other) -> bool:
        return tuple(self.shape) == tuple(other.shape)

    def is_nonzero(self) -> bool:
        """The single element's truth, as PyTorch's (a tensor of another size is refused)."""
        if self.data.size == 0:
            raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
        if self.data.size > 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.data.reshape(()) != 0)

    def storage_offset(self) -> int:
        """Where this tensor starts in its storage (the memory of the array that owns it), in elements."""
        from distnn.functional.view_dtype import storage_offset

        return storage_offset(self.data)

    def stride(self, dim=None):
        """The step in elements between neighbours along each dim: numpy's strides over the item size, with
        PyTorch's values for the dims of size 1 numpy adds and for new empty tensors (see
        :func:`distnn.functional.view_strides.torch_strides`)."""
        from distnn.functional.view_strides import torch_strides

        steps = torch_strides(self.data)
        if dim is None:
            return steps
        n = max(self.data.ndim, 1)
        if not -n <= dim < n:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
        return steps[dim % n] if self.data.ndim else 1

    # ------------------------------------------------------------ legacy constructors and casts
    def new(self, *args):
        """PyTorch's legacy ``new``: ``new(*sizes)`` a tensor of that shape (zeros here, uninitialised in
        PyTorch), ``new(data)`` a tensor of a sequence, ``new()`` an empty one; this tensor's dtype and device."""
        from .tensor import Tensor

        xp = get_array_module(self.data)
        if not args:
            return Tensor(xp.zeros((0,), dtype=self.dtype))
        if len(args) == 1 and not isinstance(args[0], (int, np.integer)):
            data = args[0].data if isinstance(args[0], Tensor) else args[0]
            return Tensor(xp.asarray(data, dtype=self.dtype))
        if not all(isinstance(a, (int, np.integer)) for a in args):
            raise TypeError(f"new(): sizes must be integers, got {args!r}")
        return Tensor(xp.zeros(tuple(int(a) for a in args), dtype=self.dtype))

    def type(self, dtype=None, non_blocking=False):
        """No argument: the legacy type name, ``'distnn.FloatTensor'`` (``'distnn.cuda.FloatTensor'`` on a
        GPU), as PyTorch's ``'torch.FloatTensor'``. With a dtype (or such a name, ``torch.`` or ``distnn.``): the
        tensor cast to it (``self`` when it has it already)."""
        if dtype is None:
            prefix = "distnn." if device_of(self.data) == "cpu" else "distnn.cuda."
            return prefix + _TYPE_NAMES.get(self.data.dtype.name, self.data.dtype.name)
        if isinstance(dtype, str):
            name = dtype.rsplit(".", 1)[-1]
            if not dtype.startswith(("torch.", "distnn.")) or name not in _TYPES_BY_NAME:
                raise ValueError(f"invalid type: {dtype!r}")
            dtype = _TYPES_BY_NAME[name]
        dtype = np.dtype(dtype)
        if dtype == self.data.dtype:
            return self
        return self.to(dtype) if dtype.kind in "fc" else _const_cast(self, dtype)

    def byte(self):
        return _const_cast(self, np.uint8)

    def char(self):
        return _const_cast(self, np.int8)

    def short(self):
        return _const_cast(self, np.int16)

    def bfloat16(self):
        raise TypeError("Got unsupported ScalarType BFloat16: distnn computes in numpy/cupy dtypes, and numpy has "
                        "no bfloat16 (use half() for 16-bit floats)")

    # ------------------------------------------------------------ conjugate transposes (real tensors: mT)
    def adjoint(self):
        """The conjugate transpose of the last two dims (a real tensor's ``mT``)."""
        if self.ndim < 2:
            raise RuntimeError(f"tensor.adjoint() is only supported on matrices or batches of matrices. Got "
                               f"{self.ndim}-D tensor.")
        return _conj_if_complex(self.transpose(-2, -1))

    @property
    def mH(self):  # noqa: N802 - PyTorch's name
        if self.ndim < 2:
            raise RuntimeError(f"tensor.mH is only supported on matrices or batches of matrices. Got {self.ndim}-D "
                               "tensor.")
        return _conj_if_complex(self.transpose(-2, -1))

    # ------------------------------------------------------------ complex parts
    @property
    def real(self):
        """PyTorch's ``Tensor.real``: the real part, a view of a complex tensor (writes reach it); a real tensor
        itself. Assigning to it writes the values in (as ``copy_``)."""
        return _function("complex_numbers", "real")(self)

    @real.setter
    def real(self, value):
        self.real.copy_(value)

    @property
    def imag(self):
        """PyTorch's ``Tensor.imag``: the imaginary part, a view of a complex tensor; refused for a real one, with
        PyTorch's RuntimeError. Assigning to it writes the values in (as ``copy_``)."""
        return _function("complex_numbers", "imag")(self)

    @imag.setter
    def imag(self, value):
        self.imag.copy_(value)

    # ------------------------------------------------------------ method forms of two-operand functions
    def where(self, *args, **kwargs):
        """``x.where(condition, other)``: ``distnn.where(condition, x, other)``."""
        if len(args) == 2 and not kwargs:  # (the common call first)
            condition, other = args
        else:
            condition, other = _function("where_out", "where_method_arguments")(args, kwargs)
        return _function("elementwise_choice", "where")(condition, self, other)

    def maximum(self, other):
        return _function("elementwise_choice", "maximum")(self, other)

    def minimum(self, other):
        return _function("elementwise_choice", "minimum")(self, other)

    # ------------------------------------------------------------ unsafe pieces (PyTorch's messages: argument 1)
    def unsafe_split(self, split_size, dim=0):
        """:func:`distnn.unsafe_split` of this tensor."""
        return _function("view_copies", "unsafe_split")(self, split_size, dim, _position=1)

    def unsafe_chunk(self, chunks, dim=0):
        """:func:`distnn.unsafe_chunk` of this tensor."""
        return _function("view_copies", "unsafe_chunk")(self, chunks, dim, _position=1)


for _module, _names in _METHODS.items():
    for _name in _names:
        setattr(TensorMethodsMore, _name, _method(_module, _name))
for _name in _INPLACE:
    setattr(TensorMethodsMore, _name + "_", _inplace_method(_name + "_", _name))
TensorMethodsMore.renorm_ = _inplace_method("renorm_", _renorm_of_a_copy)

__all__ = ["TensorMethodsMore"]


def _conj_if_complex(t):
    # (PyTorch's conjugate transposes conjugate complex tensors; a real one is the transpose itself, a view)
    if t.data.dtype.kind != "c":
        return t
    from distnn.functional.complex_numbers import conj

    return conj(t)
