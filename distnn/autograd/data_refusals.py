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

The passes are :mod:`.nested_data`'s (:mod:`.long_int_lists` follows them too). Lists holding numpy scalars get
PyTorch's dtype for them (:func:`numpy_scalars_dtype`).
"""
from __future__ import annotations

import numpy as np

from .long_int_lists import torch_array
from .nested_data import MAX_DIMS, infer, leaf_types, refusal, sizes, store, type_name, types_dtype

__all__ = ["numpy_scalars_dtype", "refuse_data"]

_NUMBERS = (int, float, complex, np.number, np.bool_)
_PYTHON_NUMBERS = frozenset({int, float, bool, complex})
_WIDE_UNSIGNED = frozenset({np.uint16, np.uint32, np.uint64})


def numpy_scalars_dtype(data, kind: str):
    """PyTorch's dtype of nested lists/tuples ``data`` of numbers that numpy typed as ``kind``, where they hold
    numpy scalars (numpy promotes them otherwise: ``[np.float64(1.5), 2]`` is float64 in PyTorch, which numpy's
    float64 for Python floats does not tell; ``[np.float16(1), 2]`` float16), or PyTorch's refusal: numpy's
    uint16/32/64 promoted with another dtype than their own or a float one, numpy's bool among ints (PyTorch's
    int64 conversion takes no ``numpy.bool``). None where they hold none (or other things than numbers: the
    caller's general path).

    Where a float leads an innermost list, numpy found floats and an int where it found ints, the data is let
    through after a look at its first number (the hot path of ``tensor(list of floats)``: a search of every
    number costs as much as numpy's conversion). Only the first innermost list's first number is looked at, so
    ``[1.5, np.float64(2)]`` is let through (made float32, PyTorch's float64), ``[[1.5], [np.uint64(1), 2]]``
    too (PyTorch refuses its second row), and ``[1, np.uint32(2)]`` (int64)."""
    lead = data[0]
    while type(lead) in (list, tuple):
        if not lead:
            return None
        lead = lead[0]
    if kind in ("f", "i") and type(lead) is (float if kind == "f" else int):
        return None
    kinds = leaf_types(data)
    if kinds <= _PYTHON_NUMBERS:
        return None
    if not _WIDE_UNSIGNED.isdisjoint(kinds):
        refuse_data(data)  # (PyTorch's refusal, raised where it has one: the pair it met first)
    dtype = types_dtype(kinds)
    if dtype == np.uint64:  # (numpy's uint64 only, as wide unsigned ints promote with no other int: PyTorch's
        raise TypeError("an integer is required")  # uint64 conversion takes Python ints only)
    if dtype is not None and dtype.kind in "iu" and np.bool_ in kinds:
        torch_array(data)  # (its refusal of the first numpy bool, or of a number before it)
    return dtype


def refuse_data(data, dtype=None) -> None:
    """Raise PyTorch's refusal of ``torch.tensor(data, dtype=dtype)`` (see the module docstring); return where it
    has none (the caller then makes the tensor as before)."""
    if isinstance(data, (str, bytes)):  # (PyTorch's first check, before the shape's)
        raise TypeError(f"new(): invalid data type '{type_name(data)}'")
    shape = sizes(data, MAX_DIMS)
    if dtype is None:
        dtype = infer(data)[0]
    store(data, shape, _checker(np.dtype(dtype)))


def _checker(dtype):
    """PyTorch's refusal of an item that is not a number (numbers pass unchecked: the caller converts them)."""
    from .tensor import Tensor

    def check(value):
        if isinstance(value, (*_NUMBERS, Tensor)) or isinstance(value, np.ndarray) and value.dtype.kind in "biufc":
            return
        raise refusal(value, dtype)
    return check
