"""PyTorch's dtype names and dtype utilities on distnn, whose dtypes are numpy's: ``distnn.int64``,
``distnn.half``, ... are numpy dtype types; ``finfo``/``iinfo`` are numpy's with PyTorch's field names;
``promote_types``, ``result_type`` and ``can_cast`` follow PyTorch's rules (which differ from numpy's: an
integer with float16 is float16, a Python float with an integer tensor float32, and a 0-d tensor or a number
does not decide against a tensor of its category with dimensions).

The default dtype is float32, as PyTorch's; ``set_default_dtype(float64)`` (or float16) changes what new
tensors from Python floats, the factory functions (``zeros``, ``randn``, ``arange`` with a float, ``linspace``
...), new modules' parameters and a Python float with an integer tensor get, as in PyTorch. It is read when
those are made: tensors and modules made before keep their dtype. Casts named after a dtype (``.float()``)
keep theirs.
"""
from __future__ import annotations

import builtins as _b

import numpy as np

from distnn.backend import _set_default_dtype, default_complex_dtype, default_dtype

# (the names below shadow Python's bool, int and float in this module: _b.bool, _b.int, _b.float are those)
int64 = long = np.int64
int32 = int = np.int32  # noqa: A001 - PyTorch's names
int16 = short = np.int16
int8 = np.int8
uint8 = np.uint8
bool = np.bool_  # noqa: A001
float16 = half = np.float16
float32 = float = np.float32  # noqa: A001
float64 = double = np.float64
complex64 = cfloat = np.complex64
complex128 = cdouble = np.complex128

_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def _dtype(d, what: str) -> np.dtype:
    try:
        return np.dtype(d)
    except TypeError:
        raise TypeError(f"{what}: expected a dtype, got {d!r}") from None


class finfo:  # noqa: N801 - PyTorch's name
    """A floating-point dtype's limits, as ``torch.finfo``: ``bits``, ``eps``, ``max``, ``min``, ``tiny`` (=
    ``smallest_normal``), ``resolution`` and ``dtype`` (its name). Default: the default dtype (float32)."""

    def __init__(self, type=None):  # noqa: A002
        dt = np.dtype(default_dtype() if type is None else _dtype(type, "finfo"))
        if dt.kind not in "fc":
            raise TypeError("torch.finfo() requires a floating point input type. Use torch.iinfo to handle "
                            "'torch.finfo'")
        info = np.finfo(dt)
        self.bits = _b.int(info.bits)
        self.eps, self.max, self.min = _b.float(info.eps), _b.float(info.max), _b.float(info.min)
        self.tiny = self.smallest_normal = _b.float(info.smallest_normal)
        self.resolution = 10.0 ** -_b.int(info.precision)  # (PyTorch's: numpy's is that in the dtype itself)
        self.dtype = info.dtype.name

    def __repr__(self):
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:  # noqa: N801 - PyTorch's name
    """An integer dtype's limits, as ``torch.iinfo``: ``bits``, ``max``, ``min`` and ``dtype`` (its name)."""

    def __init__(self, type):  # noqa: A002
        dt = _dtype(type, "iinfo")
        if dt.kind not in "biu":
            raise TypeError("torch.iinfo() requires an integer input type. Use torch.finfo to handle "
                            "'torch.iinfo'")
        if dt.kind == "b":
            self.bits, self.min, self.max = 8, 0, 1
        else:
            info = np.iinfo(dt)
            self.bits, self.min, self.max = _b.int(info.bits), _b.int(info.min), _b.int(info.max)
        self.dtype = dt.name

    def __repr__(self):
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"


def promote_types(type1, type2):
    """``torch.promote_types``: the smallest dtype both cast to by PyTorch's rules (the higher category, bool <
    integer < float < complex, keeps its dtype against bools and integers: int64 with float16 is float16; float64
    with complex64 is complex128, as in numpy)."""
    a, b = _dtype(type1, "promote_types"), _dtype(type2, "promote_types")
    ca, cb = _CATEGORY[a.kind], _CATEGORY[b.kind]
    if ca != cb and min(ca, cb) < _CATEGORY["f"]:  # (bool or integer against float/complex: the latter, as is)
        return (a if ca > cb else b).type
    return np.promote_types(a, b).type


def result_type(tensor1, tensor2):
    """``torch.result_type``: the dtype of an arithmetic op on the two (tensors or numbers), by PyTorch's
    promotion (:func:`distnn.autograd.dtype_rules.torch_operands`)."""
    from distnn.autograd.dtype_rules import torch_operands
    from distnn.autograd.tensor import Tensor

    ops = [Tensor(o.data) if isinstance(o, Tensor) else o for o in (tensor1, tensor2)]
    for o in ops:
        if not isinstance(o, (Tensor, _b.int, _b.float, complex)):
            raise TypeError(f"result_type(): expected a Tensor or a number, got {type(o).__name__}")
    cast = torch_operands(*ops)
    floats = [o.data.dtype for o in ops if isinstance(o, Tensor) and o.data.dtype.kind == "f"]
    if floats and _b.any(isinstance(o, complex) for o in ops) and not _b.any(
            isinstance(o, Tensor) and o.data.dtype.kind == "c" for o in ops):
        # a complex number with real tensors: the complex of the float tensors' precision (PyTorch's rule)
        return np.complex128 if _b.any(d == np.float64 for d in floats) else np.complex64
    for o in cast:
        if hasattr(o, "dtype"):
            return np.dtype(o.dtype).type
    top = max(_CATEGORY["b" if isinstance(o, _b.bool) else "i" if isinstance(o, _b.int)
                        else "f" if isinstance(o, _b.float) else "c"] for o in cast)
    return {0: np.bool_, 1: np.int64, 2: default_dtype(), 3: _default_complex()}[top]


def _default_complex():
    """PyTorch's default complex dtype: complex128 with a float64 default, else complex64."""
    return default_complex_dtype()


def can_cast(from_, to):
    """``torch.can_cast``: whether PyTorch casts ``from_`` to ``to`` implicitly (not a float into an integer or
    bool, an integer into a bool, or a complex into a real)."""
    from distnn.autograd.tensor_inplace_methods import _can_cast

    return _can_cast(_dtype(from_, "can_cast"), _dtype(to, "can_cast"))


def get_default_dtype():
    """The dtype floats are created in (float32 unless :func:`set_default_dtype` changed it)."""
    return default_dtype()


def set_default_dtype(d) -> None:
    """Make ``d`` (float32, float64 or float16) the default floating dtype, as ``torch.set_default_dtype``:
    what new tensors, parameters and Python floats get from now on (module doc). A non-float, or another
    float (bfloat16 has no numpy dtype), is refused as PyTorch refuses it."""
    dt = _dtype(d, "set_default_dtype")
    if dt.kind != "f":
        raise TypeError("only floating-point types are supported as the default type")
    _set_default_dtype(dt)


__all__ = ["int64", "long", "int32", "int", "int16", "short", "int8", "uint8", "bool", "float16", "half", "float32",
           "float", "float64", "double", "complex64", "cfloat", "complex128", "cdouble", "finfo", "iinfo",
           "promote_types", "result_type", "can_cast", "get_default_dtype", "set_default_dtype"]
