"""PyTorch's refusals of ``torch.tensor(data)`` where ``data`` holds something it cannot type: numpy would make a
string or object array of it, or promote numpy's wide unsigned scalars with Python ints.

PyTorch builds a tensor from nested sequences in three passes, each with its own refusal:

* the shape, from the first elements (``compute_sizes``): a string is a sequence of strings, so a string met
  there is ``ValueError: too many dimensions 'str'`` (``['a', 1]``);
* without a dtype, the dtype of all the items (``infer_scalar_type``), each sequence's items promoted together:
  a str or bytes is ``TypeError: new(): invalid data type 'str'``, a numpy string array or scalar
  ``TypeError: can't convert np.ndarray of type numpy.str_...``, anything else that is not a number or a sequence
  ``RuntimeError: Could not infer dtype of NoneType``; uint16, uint32 and uint64 (numpy scalars) promote only with
  themselves and floats: ``RuntimeError: Promotion for uint16, uint32, uint64 types is not supported, attempted to
  promote UInt64 and Long``. A complex128 stops the pass (nothing promotes past it);
* each item converted to that dtype (``recursive_store``): ``TypeError: must be real number, not str`` (a float or
  complex dtype), ``TypeError: 'str' object cannot be interpreted as an integer`` (an integer or bool one).
"""
from __future__ import annotations

import numpy as np

from distnn.backend import default_complex_dtype, default_dtype

from .long_int_lists import _promote

__all__ = ["refuse_data", "refuse_wide_unsigned_promotion", "holds_wide_unsigned"]

_MAX_DIMS = 64
_NUMBERS = (int, float, complex, np.number, np.bool_)
_SEQUENCES = (list, tuple, range, bytearray)  # (Python's sequences PyTorch reads as such, besides str and bytes)
_WIDE_UNSIGNED = frozenset({np.uint16, np.uint32, np.uint64})
_WIDE_UNSIGNED_DTYPES = frozenset(np.dtype(t) for t in _WIDE_UNSIGNED)
_SUPPORTED = ("float64, float32, float16, complex64, complex128, int64, int32, int16, int8, uint64, uint32, uint16, "
              "uint8, and bool")
_TORCH_NAMES = {"b": "Bool", "u1": "Byte", "u2": "UInt16", "u4": "UInt32", "u8": "UInt64", "i1": "Char",
                "i2": "Short", "i4": "Int", "i8": "Long", "f2": "Half", "f4": "Float", "f8": "Double",
                "c8": "ComplexFloat", "c16": "ComplexDouble"}


def _type_name(value) -> str:
    """The name CPython's messages give a value's type (``tp_name``: numpy's types as ``numpy.str_``)."""
    kind = type(value)
    return f"numpy.{kind.__name__}" if kind.__module__ == "numpy" else kind.__name__


def _torch_name(dtype) -> str:
    return _TORCH_NAMES["b" if dtype.kind == "b" else f"{dtype.kind}{dtype.itemsize}"]


def refuse_wide_unsigned_promotion(data, kind: str) -> None:
    """PyTorch's refusal of numpy uint16/32/64 scalars in ``data`` (nested lists/tuples of numbers that numpy typed
    as ``kind``) promoted with another dtype than their own or a float one; none where they are not.

    Where a float leads an innermost list, its dtype stays a float one whatever follows, and an int64 where an int
    leads and numpy found ints only: such data is let through after a look at its first number (the hot path of
    ``tensor(list of floats)``). Only the first innermost list is looked at, so ``[[1.5], [np.uint64(1), 2]]`` is
    let through (made float32), where PyTorch refuses its second row; so is ``[1, np.uint32(2)]`` (int64)."""
    lead = data[0]
    while type(lead) in (list, tuple):
        if not lead:
            return
        lead = lead[0]
    if kind in ("f", "i") and type(lead) is (float if kind == "f" else int):
        return
    if holds_wide_unsigned(data):
        refuse_data(data)


def holds_wide_unsigned(data) -> bool:
    """Whether nested lists/tuples ``data`` hold a numpy uint16, uint32 or uint64 scalar (the cheap test before
    :func:`refuse_data`: a set of the types per innermost list, at C speed)."""
    if not isinstance(data, (list, tuple)):
        return type(data) in _WIDE_UNSIGNED
    kinds = set(map(type, data))
    if not _WIDE_UNSIGNED.isdisjoint(kinds):
        return True
    return (list in kinds or tuple in kinds) and any(holds_wide_unsigned(item) for item in data)


def refuse_data(data, dtype=None) -> None:
    """Raise PyTorch's refusal of ``torch.tensor(data, dtype=dtype)`` (see the module docstring); return where it
    has none (the caller then makes the tensor as before)."""
    if isinstance(data, (str, bytes)):  # (PyTorch's first check, before the shape's)
        raise TypeError(f"new(): invalid data type '{_type_name(data)}'")
    shape = _sizes(data)
    if dtype is None:
        dtype = _infer(data)
    _store(data, shape, 0, _converter(np.dtype(dtype)))


def _is_sequence(value) -> bool:
    from .tensor import Tensor

    return isinstance(value, (*_SEQUENCES, str, bytes)) or (isinstance(value, (np.ndarray, Tensor)) and value.ndim > 0)


def _sizes(data) -> list:
    shape = []
    while _is_sequence(data):
        shape.append(len(data))
        if len(shape) > _MAX_DIMS:
            raise ValueError(f"too many dimensions '{_type_name(data)}'")
        if not len(data):
            break
        data = data[0]
    return shape


def _infer(data):
    """PyTorch's ``infer_scalar_type``: the dtype of ``data``, or its refusal."""
    from .tensor import Tensor

    if isinstance(data, (np.bool_, np.number)):
        return data.dtype
    if isinstance(data, (np.generic, np.ndarray)):  # (a numpy string, bytes or object: no dtype PyTorch has)
        if isinstance(data, np.ndarray) and data.dtype.kind in "biufc":
            return data.dtype
        raise TypeError(f"can't convert np.ndarray of type numpy.{np.dtype(data.dtype).type.__name__}. The only "
                        f"supported types are: {_SUPPORTED}.")
    if isinstance(data, float):
        return np.dtype(default_dtype())
    if isinstance(data, bool):
        return np.dtype(bool)
    if isinstance(data, int):
        return np.dtype(np.int64)
    if isinstance(data, complex):
        return np.dtype(default_complex_dtype())
    if isinstance(data, Tensor):
        return data.dtype
    if isinstance(data, (str, bytes)):
        raise TypeError(f"new(): invalid data type '{_type_name(data)}'")
    if isinstance(data, _SEQUENCES):
        if not len(data):
            return np.dtype(default_dtype())
        dtype = None
        for item in data:
            item_dtype = _infer(item)
            dtype = item_dtype if dtype is None else _torch_promote(dtype, item_dtype)
            if dtype == np.complex128:  # (nothing promotes past it: PyTorch stops looking)
                return dtype
        return dtype
    raise RuntimeError(f"Could not infer dtype of {_type_name(data)}")


def _torch_promote(a, b):
    """PyTorch's ``promoteTypes``: uint16/32/64 promote only with themselves or a float dtype."""
    if a == b:
        return a
    if a in _WIDE_UNSIGNED_DTYPES or b in _WIDE_UNSIGNED_DTYPES:
        if a.kind == "f" or b.kind == "f":
            return a if a.kind == "f" else b
        raise RuntimeError(f"Promotion for uint16, uint32, uint64 types is not supported, attempted to promote "
                           f"{_torch_name(a)} and {_torch_name(b)}")
    return _promote(a, b)


def _converter(dtype):
    """One item as the dtype's Python value, or PyTorch's refusal of it (numbers pass unchecked: the caller
    converts them)."""
    from .tensor import Tensor

    def convert(value):
        if isinstance(value, (*_NUMBERS, Tensor)) or isinstance(value, np.ndarray) and value.dtype.kind in "biufc":
            return
        if dtype.kind in "fc":
            raise TypeError(f"must be real number, not {_type_name(value)}")
        raise TypeError(f"'{_type_name(value)}' object cannot be interpreted as an integer")
    return convert


def _store(data, shape, depth, convert) -> None:
    if depth == len(shape):
        convert(data)
        return
    if not _is_sequence(data):
        raise TypeError("not a sequence")
    if len(data) != shape[depth]:
        raise ValueError(f"expected sequence of length {shape[depth]} at dim {depth} (got {len(data)})")
    for item in data:
        _store(item, shape, depth + 1, convert)
