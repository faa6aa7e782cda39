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
``TypeError: not a sequence``, a list where a number was is refused as the dtype's conversion refuses it. The
passes are :mod:`.nested_data`'s (numpy's uint16/32/64 among other ints are refused there, as PyTorch's promotion).

:func:`torch_array` is those passes for any data numpy reads otherwise than PyTorch, a dtype given or not: ragged
lists (PyTorch's refusal, numpy's being another, or PyTorch's empty tensor where the shape holds a 0: ``[[], [1]]``
is (2, 0), the rows after an empty first one never looked at), ints beyond uint64 with a dtype, each number
converted as PyTorch's ``store_scalar`` converts it into that dtype (``[[300, 2], [3]]`` into uint8: refused for
300, before the nesting).
"""
from __future__ import annotations

import math
import operator

import numpy as np

from .half_rounding import cast
from .nested_data import INT64_MAX, INT64_MIN, MAX_DIMS, infer, refusal, sizes, store, type_name

__all__ = ["long_int_array", "may_hold_long_int", "torch_array"]


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


def long_int_array(data):
    """``data`` (a Python number or nested lists/tuples of them) as PyTorch's ``torch.tensor(data)`` makes it,
    or its refusal (see the module docstring); None where ``data`` holds no int beyond int64 (numpy's array is
    PyTorch's then) or something that is not a Python or numpy number (left to the general path)."""
    inferred = infer(data, lenient=True)
    if inferred is None or not inferred[1]:
        return None
    return _make(data, sizes(data, max_dims=None), inferred[0])  # (numpy's limit of 64 dims: met when made)


def torch_array(data, dtype=None):
    """``data`` (nested sequences) as ``torch.tensor(data, dtype=dtype)`` makes it, pass by pass (see the module
    docstring), or PyTorch's refusal: the first problem met, in PyTorch's order (a str as data, the shape, the
    dtype when none is given, then each number in row-major order with the nesting)."""
    if isinstance(data, (str, bytes)):
        raise TypeError(f"new(): invalid data type '{type_name(data)}'")
    shape = sizes(data, MAX_DIMS)
    dtype = infer(data)[0] if dtype is None else np.dtype(dtype)
    if not math.prod(shape):  # (PyTorch stores nothing into an empty tensor: the rows are never looked at)
        return np.empty(shape, dtype)
    return _make(data, shape, dtype)


def _make(data, shape, dtype):
    flat = store(data, shape, converter(dtype))
    kind = dtype.kind
    values = np.array(flat, dtype=np.int64 if kind in "iu" else bool if kind == "b" else
                      np.result_type(dtype, np.float64))
    with np.errstate(over="ignore"):  # (a double past float32's range is inf, silently, as PyTorch's)
        return (values if values.dtype == dtype else cast(values, dtype)).reshape(shape)


def converter(dtype):
    """One item as PyTorch's ``store_scalar`` converts it into ``dtype``: its Python value, or PyTorch's refusal
    (:func:`.nested_data.store` has checked the nesting; an item may still be a list, a str, None)."""
    from .tensor import Tensor  # (here: tensor.py imports this module)

    kind = dtype.kind
    if kind in "iub":
        if kind != "b":
            from .number_range import number_for_dtype  # (here: number_range imports nested_data's users)

        def to_int(value):
            if isinstance(value, (np.ndarray, Tensor)) and value.ndim == 0:
                value = value.item()
            if isinstance(value, float) or (kind == "b" and isinstance(value, (complex, np.bool_))):
                if kind == "b":  # (a float, a complex, numpy's bool: their truth)
                    return bool(value)
                value = float(value)  # (numpy's float64 too, a float subclass; its other floats are no index)
            else:
                value = operator.index(value)  # (CPython's refusal: "'numpy.float32' object cannot be ...")
                if kind == "b":  # (an int past int64 too: PyTorch's overflow flag counts as true)
                    return bool(value)
                if not INT64_MIN <= value <= INT64_MAX:
                    raise ValueError("Overflow when unpacking long long")
            try:
                return number_for_dtype(dtype, value)  # (range checked; a negative int wraps into uint8)
            except RuntimeError:  # (named as torch.tensor names it: uint8, not uint8_t)
                raise RuntimeError(f"value cannot be converted to type {dtype.name} without overflow") from None
        return to_int

    def to_float(value):
        if isinstance(value, (np.ndarray, Tensor)) and value.ndim == 0:
            value = value.item()
        # (PyFloat_AsDouble's refusal of a Python complex, a str, a list; numpy's complex has __float__: its real
        # part, with numpy's ComplexWarning, as PyTorch's)
        if not (isinstance(value, (float, int, np.number, np.bool_)) or (kind == "c" and isinstance(value, complex))):
            raise refusal(value, dtype)
        return complex(value) if kind == "c" else float(value)  # (beyond a double: Python's OverflowError)
    return to_float
