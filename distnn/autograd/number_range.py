"""Whether a Python number fits a tensor's dtype, as PyTorch's ``x[index] = number`` checks it (c10's
``checked_convert``), and the value it writes.

* An int beyond int64 is refused by PyTorch's argument parser before any dtype is looked at
  (``ValueError: Overflow when unpacking long long``), whatever the tensor's dtype.
* Into a signed integer tensor an int must lie in the dtype's range; into an unsigned one (uint8) it may also be
  negative down to ``-max``, which wraps as two's complement (``-1`` is 255, ``-255`` is 1).
* A float into an integer tensor must lie in the range compared as a double (NaN and infinities never fit, -0.5
  does not fit uint8), then is truncated toward zero; ``2.0 ** 63`` passes that comparison for int64 (int64's
  max is 2**63 as a double) and is written as int64's minimum, what the x86 conversion gives.
* A finite float beyond float32's range is refused for a float32 tensor (float16 and bfloat16 go through double:
  they get inf, unchecked and without numpy's overflow warning); float64 and bool take anything.

The refusal is PyTorch's RuntimeError ``value cannot be converted to type uint8_t without overflow``.

An op taking a number as a ``Scalar`` argument (``fill_``, ``masked_fill``, ``index_fill``, ``full``,
``full_like``, ``new_full``: :func:`scalar_for_dtype`) checks it otherwise in two ways: its parser takes an int up
to uint64's max (beyond: ``OverflowError: int too big to convert``; below int64's lowest: ``can't convert negative
int to unsigned``), which then overflows every integer dtype past int64's max; and a float16 tensor is checked too,
a finite value beyond 65504 refused (``c10::Half``), except where PyTorch's ``fill_`` of a one-element tensor takes
its shortcut, which rounds to inf unchecked.

``torch.tensor(numbers, dtype=an integer dtype)`` checks each Python number as ``x[index] = number`` does, naming
the dtype by PyTorch's name (``uint8``, not ``uint8_t``): :func:`numbers_array`. (A bool dtype takes
anything, and an array's values are cast, wrapping, unchecked.)
"""
from __future__ import annotations

import math

import numpy as np

from .half_rounding import cast
from .long_int_lists import torch_array
from .nested_data import INT64_MAX as _INT64_MAX, INT64_MIN as _INT64_MIN, leaf_types, row_major

__all__ = ["REAL_NUMBERS", "number_for_dtype", "numbers_array", "scalar_for_dtype"]

#: the Python and numpy numbers :func:`scalar_for_dtype` takes (complex ones have their own rules)
REAL_NUMBERS = (int, float, np.integer, np.floating)

_FLOAT32_MAX = float(np.finfo(np.float32).max)
_FITS_EVERY_FLOAT = 65504.0  # (float16's largest: a float within it is written as it is into every float dtype)
_FLOAT16_TO_INF = 65520.0
_UINT64_MAX = 2 ** 64 - 1  # (halfway from float16's largest, 65504, to 2**16: rounds to inf, ties to even)

# (the C++ type names PyTorch's conversion names; float16's and bfloat16's go through double)
C_NAMES = {"float32": "float", "float64": "double", "float16": "double", "bfloat16": "double", "int64": "int64_t",
           "int32": "int", "int16": "int16_t", "int8": "int8_t", "uint8": "uint8_t"}

# (scalar type -> (lowest, max) of the integer dtypes, as ints; keyed by ``dtype.type``, not ``dtype.name``,
# which numpy builds anew on each read, ~4 us)
_INT_LIMITS = {getattr(np, name): (int(np.iinfo(name).min), int(np.iinfo(name).max))
               for name in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")}


def number_for_dtype(dtype, value):
    """``value`` (a Python bool, int or float, or a numpy integer) as PyTorch writes it into a tensor of numpy
    ``dtype``, or PyTorch's error where it does not fit (see the module docstring)."""
    kind = dtype.kind
    if type(value) is float and kind == "f" and -_FITS_EVERY_FLOAT <= value <= _FITS_EVERY_FLOAT:
        return value  # (the common case, first: NaN fails the comparison and takes the checks below)
    if type(value) is bool:
        return value
    if isinstance(value, float):
        if kind in "iu":
            from distnn.functional.checked_scalar import integer_scalar  # (here: autograd's Tensor imports this)

            return integer_scalar(value, dtype)  # (NaN, inf and out of range refused; truncated toward zero)
        scalar = dtype.type
        if scalar is np.float32 and abs(value) > _FLOAT32_MAX and math.isfinite(value):
            raise _overflow(dtype)
        return _float16_value(value) if scalar is np.float16 else value
    value = int(value)  # (a numpy integer: by its __index__, as PyTorch's parser takes it)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError("Overflow when unpacking long long")
    if kind not in "iu":
        return _float16_value(value) if dtype.type is np.float16 else value
    lowest, highest = _INT_LIMITS[dtype.type]
    if kind == "u":  # (a negative int wraps, down to -max: PyTorch's uint8 arithmetic, a - b as a + 255 * b)
        if value > highest or -value > highest:
            raise _overflow(dtype)
        return value & highest
    if not lowest <= value <= highest:
        raise _overflow(dtype)
    return value


def scalar_for_dtype(dtype, value, rounds_half: bool = False):
    """``value`` (a Python bool, int or float, or a numpy number) as PyTorch writes a ``Scalar`` argument into a
    tensor of numpy ``dtype``, or PyTorch's error where it does not fit (see the module docstring).
    ``rounds_half``: float16 rounds past its range to inf unchecked (``fill_`` of one element)."""
    kind = dtype.kind
    if type(value) is float and kind == "f" and -_FITS_EVERY_FLOAT <= value <= _FITS_EVERY_FLOAT:
        return value  # (the common case, first: NaN fails the comparison and takes the checks below)
    if isinstance(value, (bool, np.bool_)):
        return value
    if isinstance(value, np.floating):
        value = float(value)
    elif not isinstance(value, float):
        value = int(value)  # (a numpy integer: by its __index__, as PyTorch's parser takes it)
        if value > _UINT64_MAX:
            raise OverflowError("int too big to convert")
        if value < _INT64_MIN:
            raise OverflowError("can't convert negative int to unsigned")
        if value > _INT64_MAX:
            if kind in "iu":
                raise _overflow(dtype)
            value = float(value)
    if kind in "bc":
        return bool(value) if kind == "b" else value
    if kind in "iu" or dtype.type is not np.float16:
        return number_for_dtype(dtype, value)
    if rounds_half or not math.isfinite(value) or abs(value) <= _FITS_EVERY_FLOAT:
        return _float16_value(value)
    raise RuntimeError("value cannot be converted to type c10::Half without overflow")


def numbers_array(numbers, dtype):
    """``numbers`` (a Python number or nested lists of them, or a numpy scalar) as a new array of numpy ``dtype``,
    checked as ``torch.tensor(numbers, dtype=dtype)`` checks them (see the module docstring), or None where they
    are not real numbers or ``dtype`` is bool, which takes anything (the caller's general path then takes them).
    (A float dtype takes an int of any size, as a double.)"""
    integral = dtype.kind in "iu"
    try:
        values = np.asarray(numbers)
    except (OverflowError, ValueError):  # (an int past uint64 among others, ragged lists: PyTorch's passes, its
        return torch_array(numbers, dtype)  # first refusal in row-major order, or its empty tensor)
    kind = values.dtype.kind
    lead = numbers  # (the first number: the Python number of numpy's kind lets the list through at once)
    while type(lead) in _LISTS and lead:
        lead = lead[0]
    if type(lead) is not _PYTHON_LEADS.get(kind) and _holds_numpy_scalars(numbers):  # (PyTorch converts each:
        return torch_array(numbers, dtype)  # numpy's float32 is no int, its complex a float's real part)
    if dtype.kind == "b":
        return None
    if kind == "O" and _holds_long_int(values):  # (an int past uint64)
        if integral:
            _refuse_first_unfit(numbers, dtype)
        values, kind = values.astype(np.float64), "f"  # (as doubles, for a float dtype)
    if kind not in "biuf":
        return None
    if integral and kind != "b" and values.size and (kind in "uf" or dtype != values.dtype):
        _refuse_unfit(numbers, values, dtype)  # (an int64 array of Python ints fits int64: no pass over it)
    if values.dtype == dtype:
        return values
    with np.errstate(over="ignore", invalid="ignore"):  # (a float past float16's range is inf, 2.0 ** 63 int64's
        return cast(values, dtype)  # lowest: PyTorch's, silently; float16 through float32, as PyTorch's)


def _holds_numpy_scalars(numbers) -> bool:
    """Whether nested lists ``numbers`` hold numpy scalars among Python numbers only. (The caller lets a list
    whose first number is the Python number of numpy's kind through before: a float for float64, an int for int64,
    a bool for bool: the hot path, see data_refusals.numpy_scalars_dtype.)"""
    if type(numbers) not in _LISTS or not numbers:
        return False
    kinds = leaf_types(numbers)
    return not kinds <= _PYTHON_NUMBERS and all(k in _PYTHON_NUMBERS or issubclass(k, (np.number, np.bool_))
                                                 for k in kinds)


_LISTS = (list, tuple)
_PYTHON_LEADS = {"f": float, "i": int, "b": bool}
_PYTHON_NUMBERS = frozenset({int, float, bool, complex})


def _refuse_unfit(numbers, values, dtype) -> None:
    """PyTorch's refusal of a number of ``numbers`` (``values``: numpy's array of them) that does not fit ``dtype``."""
    smallest, largest = values.min(), values.max()
    if values.dtype.kind == "u" and largest > _INT64_MAX:  # (numpy's uint64 for an int past int64)
        _refuse_first_unfit(numbers, dtype)
    if values.dtype.kind == "f" and max(abs(smallest), abs(largest)) >= 2.0 ** 63 \
            and _holds_long_int(np.asarray(numbers, dtype=object)):  # (numpy's float64 for one among other ints)
        _refuse_first_unfit(numbers, dtype)
    lowest, highest = _INT_LIMITS[dtype.type]
    if values.dtype.kind == "f":  # (compared as doubles: NaN and infinities never fit, -0.5 does not fit uint8)
        fits = bool(np.isfinite(smallest) and np.isfinite(largest)) and lowest <= smallest and largest <= highest
    elif dtype.kind == "u":  # (a negative int wraps, down to -max, as into x[index])
        fits = -highest <= int(smallest) and int(largest) <= highest
    else:
        fits = lowest <= int(smallest) and int(largest) <= highest
    if not fits:
        raise RuntimeError(f"value cannot be converted to type {dtype.name} without overflow")


def _refuse_first_unfit(numbers, dtype) -> None:
    """PyTorch's refusal of the first number of ``numbers`` (row-major) that does not fit the integer ``dtype``,
    one of them an int beyond int64: PyTorch converts number by number, so ``[1e19, 2**64]`` is refused for the
    float (``value cannot be converted to type int64 without overflow``), ``[2**64, 1e19]`` for the int
    (``Overflow when unpacking long long``)."""
    for value in row_major(numbers):
        if isinstance(value, (bool, np.bool_)):
            continue
        if isinstance(value, (int, np.integer)) and not _INT64_MIN <= int(value) <= _INT64_MAX:
            raise ValueError("Overflow when unpacking long long")
        try:
            number_for_dtype(dtype, value)
        except RuntimeError:
            raise RuntimeError(f"value cannot be converted to type {dtype.name} without overflow") from None
    raise ValueError("Overflow when unpacking long long")  # (not reached: the caller found a long int)


def _holds_long_int(values) -> bool:
    """Whether an object array holds a Python int beyond int64."""
    return any(isinstance(v, int) and not _INT64_MIN <= v <= _INT64_MAX for v in values.ravel())


def _float16_value(value):
    """``value`` as float16 rounds it: past the largest finite float16 it is inf, as PyTorch writes it silently
    (numpy's cast would warn of the overflow)."""
    if abs(value) >= _FLOAT16_TO_INF and not math.isinf(value):
        return math.copysign(math.inf, value)
    return value


def _overflow(dtype) -> RuntimeError:
    return RuntimeError(f"value cannot be converted to type {C_NAMES.get(dtype.name, dtype.name)} without overflow")
