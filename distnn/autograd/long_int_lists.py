"""``torch.tensor(numbers)`` without a dtype where the numbers hold a Python int beyond int64, which numpy types
otherwise than PyTorch (uint64 for ``[2**63]``, float64 for ``[1, 2**63]``, object for ``[2**64]``).

PyTorch first infers the dtype of all the numbers (``infer_scalar_type``): a bool is bool, an int int64, a float
the default dtype, a complex the default complex dtype, a numpy scalar its own dtype, promoted together (a float
over any int, a complex over any float: ``[True, 1.5]`` is float32, ``[np.float64(1), 2]`` float64). Only then
does it convert each number to that dtype, in row-major order, the first that does not convert raising:

* into int64 an int beyond it is ``ValueError: Overflow when unpacking long long`` (``[1, 2**64]``,
  ``[True, 2**63]``, ``[-2**63 - 1]``);
* into a float or complex dtype any int converts as a double (``[1.5, 2**64]`` is float32, its last value
  1.8446744e19; ``[1j, 2**64]`` complex64), except one beyond a double's range:
  ``OverflowError: int too large to convert to float``; past float32's range the value is inf, silently.

The nesting is checked in the same pass, as PyTorch's: the shape is the first elements' (``[[1, 2], [3]]``:
``ValueError: expected sequence of length 2 at dim 1 (got 1)``), a number where a list was expected is
``TypeError: not a sequence``, a list where a number was is refused as the dtype's conversion refuses it. Ragged
lists of numbers take this path too, whatever their ints, for PyTorch's refusal (numpy's is another).
"""
from __future__ import annotations

import numpy as np

from distnn.backend import default_complex_dtype, default_dtype

from .half_rounding import cast

__all__ = ["long_int_array", "may_hold_long_int"]

_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_SEQUENCES = (list, tuple)


def may_hold_long_int(array) -> bool:
    """Whether numpy's array of Python numbers may stand for an int beyond int64 (an object or uint64 array, or a
    float one with a value as large): :func:`long_int_array` then decides. ``array`` None: numpy overflowed."""
    if array is None:
        return True
    kind = array.dtype.kind
    if kind in "Ou":
        return True
    # (fmax skips NaN, so [nan, 2**64] is still found; no error-state change: a few us on every tensor(list))
    return kind == "f" and array.size > 0 and float(np.fmax.reduce(np.abs(array), axis=None)) >= 2.0 ** 63


def long_int_array(data, ragged: bool = False):
    """``data`` (a Python number or nested lists/tuples of them) as PyTorch's ``torch.tensor(data)`` makes it,
    or its refusal (see the module docstring); None where ``data`` holds no int beyond int64 (numpy's array is
    PyTorch's then) or something that is not a Python or numpy number (left to the general path). ``ragged``:
    numpy found the lists ragged: PyTorch's refusal of their nesting (or of a number before it) in any case."""
    inferred = _infer(data)
    if inferred is None or not (inferred[1] or ragged):
        return None
    dtype = inferred[0]
    shape = _shape(data)
    flat = []
    _store(data, shape, 0, flat, _converter(dtype))
    values = np.array(flat, dtype=np.int64 if dtype.kind in "biu" else np.result_type(dtype, np.float64))
    with np.errstate(over="ignore"):  # (a double past float32's range is inf, silently, as PyTorch's)
        return cast(values, dtype).reshape(shape)


def _infer(data):
    """``(dtype, holds a long int)``: PyTorch's inferred dtype of the numbers, and whether one of them is an int
    beyond int64; None for anything that is not a number."""
    if isinstance(data, _SEQUENCES):
        dtype, long_int = None, False
        for item in data:
            inferred = _infer(item)
            if inferred is None:
                return None
            dtype = inferred[0] if dtype is None else _promote(dtype, inferred[0])
            long_int = long_int or inferred[1]
        return (np.dtype(default_dtype()) if dtype is None else dtype), long_int  # (empty: the default dtype)
    if isinstance(data, (np.bool_, np.number)):  # (first: numpy's float64 and complex128 are Python's too)
        return data.dtype, False
    if isinstance(data, bool):
        return np.dtype(bool), False
    if isinstance(data, int):
        return np.dtype(np.int64), not _INT64_MIN <= data <= _INT64_MAX
    if isinstance(data, float):
        return np.dtype(default_dtype()), False
    if isinstance(data, complex):
        return np.dtype(default_complex_dtype()), False
    return None


_RANKS = {"b": 0, "i": 1, "u": 1, "f": 2, "c": 3}


def _promote(a, b):
    """PyTorch's ``promote_types`` of two dtypes: the higher category's (bool, integer, float, complex) where they
    differ, as numpy's otherwise (float and complex promote as numpy's too: complex64 with float64 is
    complex128)."""
    rank_a, rank_b = _RANKS[a.kind], _RANKS[b.kind]
    if rank_a == rank_b or min(rank_a, rank_b) >= 2:
        return np.promote_types(a, b)
    return a if rank_a > rank_b else b


def _shape(data) -> list:
    """The shape PyTorch takes: each dim's size is its first element's length."""
    shape = []
    while isinstance(data, _SEQUENCES):
        shape.append(len(data))
        if not data:
            break
        data = data[0]
    return shape


def _converter(dtype):
    """One number as the dtype's Python value, or PyTorch's refusal."""
    if dtype.kind in "biu":  # (int64: a bool or an int within its range)
        def to_int(value):
            if isinstance(value, _SEQUENCES):
                raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer")
            value = int(value)
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise ValueError("Overflow when unpacking long long")
            return value
        return to_int

    def to_float(value):
        if isinstance(value, _SEQUENCES):
            raise TypeError(f"must be real number, not {type(value).__name__}")
        return complex(value) if dtype.kind == "c" else float(value)  # (beyond a double: Python's OverflowError)
    return to_float


def _store(data, shape, depth, flat, convert) -> None:
    """``data``'s numbers converted into ``flat`` in row-major order, its nesting checked against ``shape``."""
    if depth == len(shape):
        flat.append(convert(data))
        return
    if not isinstance(data, _SEQUENCES):
        raise TypeError("not a sequence")
    if len(data) != shape[depth]:
        raise ValueError(f"expected sequence of length {shape[depth]} at dim {depth} (got {len(data)})")
    for item in data:
        _store(item, shape, depth + 1, flat, convert)
