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
lists of numbers take this path too, whatever their ints, for PyTorch's refusal (numpy's is another). The passes
are :mod:`.nested_data`'s (numpy's uint16/32/64 among other ints are refused there, as PyTorch's promotion).
"""
from __future__ import annotations

import numpy as np

from .half_rounding import cast
from .nested_data import INT64_MAX, INT64_MIN, LISTS, infer, refusal, sizes, store

__all__ = ["long_int_array", "may_hold_long_int"]


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


def long_int_array(data, ragged: bool = False, typed: bool = False):
    """``data`` (a Python number or nested lists/tuples of them) as PyTorch's ``torch.tensor(data)`` makes it,
    or its refusal (see the module docstring); None where ``data`` holds no int beyond int64 (numpy's array is
    PyTorch's then) or something that is not a Python or numpy number (left to the general path). ``ragged``:
    numpy found the lists ragged: PyTorch's refusal of their nesting (or of a number before it) in any case.
    ``typed``: the caller has a dtype (of ragged lists): no refusal of numpy's uint16/32/64 promoted with others,
    PyTorch infers no dtype then."""
    inferred = infer(data, lenient=True, wide_unsigned=not typed)
    if inferred is None or not (inferred[1] or ragged):
        return None
    dtype = inferred[0]
    shape = sizes(data, max_dims=None)  # (numpy's limit of 64 dims is met when the array is made)
    flat = store(data, shape, _converter(dtype))
    values = np.array(flat, dtype=np.int64 if dtype.kind in "biu" else np.result_type(dtype, np.float64))
    with np.errstate(over="ignore"):  # (a double past float32's range is inf, silently, as PyTorch's)
        return cast(values, dtype).reshape(shape)


def _converter(dtype):
    """One number as the dtype's Python value, or PyTorch's refusal (:func:`.nested_data.infer` let only numbers
    and sequences through)."""
    if dtype.kind in "biu":  # (int64: a bool or an int within its range)
        def to_int(value):
            if isinstance(value, LISTS):
                raise refusal(value, dtype)
            value = int(value)
            if not INT64_MIN <= value <= INT64_MAX:
                raise ValueError("Overflow when unpacking long long")
            return value
        return to_int

    def to_float(value):
        if isinstance(value, LISTS):
            raise refusal(value, dtype)
        return complex(value) if dtype.kind == "c" else float(value)  # (beyond a double: Python's OverflowError)
    return to_float
