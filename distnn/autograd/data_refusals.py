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

The passes are :mod:`.nested_data`'s (:mod:`.long_int_lists` follows them too).
"""
from __future__ import annotations

import numpy as np

from .nested_data import MAX_DIMS, infer, refusal, sizes, store, type_name

__all__ = ["refuse_data", "refuse_wide_unsigned_promotion", "holds_wide_unsigned"]

_NUMBERS = (int, float, complex, np.number, np.bool_)
_WIDE_UNSIGNED = frozenset({np.uint16, np.uint32, np.uint64})


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
