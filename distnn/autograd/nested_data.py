"""PyTorch's passes over nested Python data in ``torch.tensor(data)`` (``internal_new_from_data``), written once for
the modules that follow them: :mod:`.long_int_lists` (ints beyond int64: PyTorch's dtype and values, where numpy's
differ), :mod:`.data_refusals` (PyTorch's refusals of what is not a number) and :mod:`.number_range` (the first
number that does not fit a dtype given).

* the shape, from the first elements (``compute_sizes``): :func:`sizes`;
* without a dtype, the dtype of all the numbers (``infer_scalar_type``), each sequence's items promoted together
  (``promoteTypes``), the pass stopping at a complex128 (nothing promotes past it): :func:`infer`, :func:`promote`;
* each item converted to that dtype in row-major order (``recursive_store``), the nesting checked in the same
  pass (``ValueError: expected sequence of length 2 at dim 1 (got 1)``, a number where a sequence was expected
  ``TypeError: not a sequence``), what is not a number refused as the dtype's conversion refuses it:
  :func:`store`, :func:`refusal`.
"""
from __future__ import annotations

import numpy as np

from distnn.backend import default_complex_dtype, default_dtype

__all__ = ["INT64_MAX", "INT64_MIN", "LISTS", "MAX_DIMS", "SEQUENCES", "infer", "is_sequence", "leaf_types",
           "promote", "refusal", "row_major", "sizes", "store", "type_name", "types_dtype"]

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
MAX_DIMS = 64
SEQUENCES = (list, tuple, range, bytearray)  # (Python's sequences PyTorch reads as such, besides str and bytes)
LISTS = (list, tuple)  # (the lenient pass's: see infer)
_NUMBERS = (int, float, complex, np.number, np.bool_)
_COMPLEX128 = np.dtype(np.complex128)
_WIDE_UNSIGNED_DTYPES = frozenset(np.dtype(t) for t in (np.uint16, np.uint32, np.uint64))
_TORCH_NAMES = {"b": "Bool", "u1": "Byte", "u2": "UInt16", "u4": "UInt32", "u8": "UInt64", "i1": "Char",
                "i2": "Short", "i4": "Int", "i8": "Long", "f2": "Half", "f4": "Float", "f8": "Double",
                "c8": "ComplexFloat", "c16": "ComplexDouble"}
_SUPPORTED = ("float64, float32, float16, complex64, complex128, int64, int32, int16, int8, uint64, uint32, uint16, "
              "uint8, and bool")
_RANKS = {"b": 0, "i": 1, "u": 1, "f": 2, "c": 3}


def type_name(value) -> str:
    """The name CPython's messages give a value's type (``tp_name``: numpy's types as ``numpy.str_``)."""
    kind = type(value)
    return f"numpy.{kind.__name__}" if kind.__module__ == "numpy" else kind.__name__


def _tensor_type():
    from .tensor import Tensor  # (here: tensor.py imports this module's users)

    return Tensor


def is_sequence(value) -> bool:
    """Whether PyTorch reads ``value`` as a sequence (``PySequence_Check``): a str is a sequence of strs."""
    return isinstance(value, (*SEQUENCES, str, bytes)) or (isinstance(value, (np.ndarray, _tensor_type()))
                                                          and value.ndim > 0)


def sizes(data, max_dims: int | None = MAX_DIMS) -> list:
    """The shape PyTorch takes: each dim's size is its first element's length (``compute_sizes``); past
    ``max_dims`` dims (a str met there recurses without end) ``ValueError: too many dimensions 'str'``."""
    shape = []
    while is_sequence(data):
        shape.append(len(data))
        if max_dims is not None and len(shape) > max_dims:
            raise ValueError(f"too many dimensions '{type_name(data)}'")
        if not len(data):
            break
        data = data[0]
    return shape


def infer(data, lenient: bool = False, wide_unsigned: bool = True):
    """PyTorch's ``infer_scalar_type``: ``(dtype, holds an int beyond int64)``, or PyTorch's refusal of an item: a
    str or bytes ``TypeError: new(): invalid data type 'str'``, a numpy string ``TypeError: can't convert
    np.ndarray of type numpy.str_...``, anything else that is neither a number nor a sequence ``RuntimeError:
    Could not infer dtype of NoneType``; numpy's uint16/32/64 promoted otherwise than with themselves or a float:
    see :func:`promote`. (An empty sequence is the default dtype.)

    ``lenient`` (the path of ints beyond int64): None where ``data`` holds anything but Python or numpy numbers
    in lists and tuples, left to the caller's general path (which refuses it; a range, read as a sequence, is
    left there too); past a
    complex128 the items are still looked at, for an int beyond int64 or a non-number among them, but not
    promoted. ``wide_unsigned`` False: uint16/32/64 promote as numpy's, unrefused."""
    if isinstance(data, LISTS if lenient else SEQUENCES):
        if not len(data):
            return np.dtype(default_dtype()), False
        dtype, last, long_int, stopped = None, None, False, False
        for item in data:
            if stopped:  # (past a complex128: nothing promotes past it, PyTorch stops looking)
                if not lenient:
                    break
                scanned = _scan(item)
                if scanned is None:
                    return None
                long_int = long_int or scanned
                continue
            inferred = infer(item, lenient, wide_unsigned)
            if inferred is None:
                return None
            if inferred[0] is not last:  # (the same dtype as the last item's promotes to the same: skipped)
                last = inferred[0]
                promoted = last if dtype is None else promote(dtype, last, wide_unsigned)
                if promoted is not dtype:
                    dtype, stopped = promoted, promoted == _COMPLEX128
            long_int = long_int or inferred[1]
        return dtype, long_int
    if isinstance(data, (np.bool_, np.number)):  # (first: numpy's float64 and complex128 are Python's too)
        return data.dtype, False
    if isinstance(data, bool):
        return np.dtype(bool), False
    if isinstance(data, int):
        return np.dtype(np.int64), not INT64_MIN <= data <= INT64_MAX
    if isinstance(data, float):
        return np.dtype(default_dtype()), False
    if isinstance(data, complex):
        return np.dtype(default_complex_dtype()), False
    return None if lenient else (_infer_other(data), False)


def leaf_types(data) -> set:
    """The types of what nested lists/tuples ``data`` hold besides lists and tuples (a set of each innermost
    list's types, at C speed)."""
    kinds = set(map(type, data))
    if list not in kinds and tuple not in kinds:
        return kinds
    kinds -= {list, tuple}
    for item in data:
        if type(item) in LISTS:
            kinds |= leaf_types(item)
    return kinds


def types_dtype(kinds):
    """PyTorch's inferred dtype of numbers of the types ``kinds`` (Python and numpy numbers, numpy's uint16/32/64
    promoted as numpy's: the caller refuses them first): the promotion of each type's dtype, in any order (PyTorch's
    promotion of these dtypes is a join: the higher category's, numpy's within one). None where ``kinds`` holds
    another type."""
    dtype = None
    for kind in kinds:
        if issubclass(kind, (np.number, np.bool_)):
            one = np.dtype(kind)
        elif kind in _PYTHON_DTYPES:
            one = np.dtype(_PYTHON_DTYPES[kind]())
        else:
            return None
        dtype = one if dtype is None else promote(dtype, one, wide_unsigned=False)
    return dtype


_PYTHON_DTYPES = {bool: lambda: bool, int: lambda: np.int64, float: default_dtype, complex: default_complex_dtype}


def _scan(data):
    """Whether ``data`` (numbers in lists and tuples) holds an int beyond int64; None where it holds another thing
    than a Python or numpy number."""
    if isinstance(data, LISTS):
        long_int = False
        for item in data:
            scanned = _scan(item)
            if scanned is None:
                return None
            long_int = long_int or scanned
        return long_int
    if not isinstance(data, _NUMBERS):
        return None
    return isinstance(data, int) and not INT64_MIN <= data <= INT64_MAX


def _infer_other(data):
    """The dtype of what is neither a Python or numpy number nor a Python sequence, or PyTorch's refusal."""
    if isinstance(data, (np.generic, np.ndarray)):  # (a numpy string, bytes or object: no dtype PyTorch has)
        if isinstance(data, np.ndarray) and data.dtype.kind in "biufc":
            return data.dtype
        raise TypeError(f"can't convert np.ndarray of type numpy.{np.dtype(data.dtype).type.__name__}. The only "
                        f"supported types are: {_SUPPORTED}.")
    if isinstance(data, _tensor_type()):
        return data.dtype
    if isinstance(data, (str, bytes)):
        raise TypeError(f"new(): invalid data type '{type_name(data)}'")
    raise RuntimeError(f"Could not infer dtype of {type_name(data)}")


def _torch_name(dtype) -> str:
    return _TORCH_NAMES["b" if dtype.kind == "b" else f"{dtype.kind}{dtype.itemsize}"]


def promote(a, b, wide_unsigned: bool = True):
    """PyTorch's ``promoteTypes`` of two dtypes: the higher category's (bool, integer, float, complex) where they
    differ, as numpy's otherwise (float and complex promote as numpy's too: complex64 with float64 is
    complex128); uint16/32/64 promote only with themselves or a float dtype, else ``RuntimeError: Promotion for
    uint16, uint32, uint64 types is not supported, attempted to promote UInt64 and Long`` (``wide_unsigned``
    False: as numpy's)."""
    if a is b:  # (the common case of a list of one type, at no cost)
        return a
    kind_a, kind_b = a.kind, b.kind
    if wide_unsigned and "u" in (kind_a, kind_b) and a != b and (a in _WIDE_UNSIGNED_DTYPES
                                                                 or b in _WIDE_UNSIGNED_DTYPES):
        if kind_a == "f" or kind_b == "f":
            return a if kind_a == "f" else b
        raise RuntimeError(f"Promotion for uint16, uint32, uint64 types is not supported, attempted to promote "
                           f"{_torch_name(a)} and {_torch_name(b)}")
    rank_a, rank_b = _RANKS[kind_a], _RANKS[kind_b]
    if rank_a == rank_b or min(rank_a, rank_b) >= 2:
        return np.promote_types(a, b)
    return a if rank_a > rank_b else b


def refusal(value, dtype) -> TypeError:
    """PyTorch's refusal of ``value`` (not a number) stored into ``dtype``."""
    if dtype.kind in "fc":
        return TypeError(f"must be real number, not {type_name(value)}")
    return TypeError(f"'{type_name(value)}' object cannot be interpreted as an integer")


def store(data, shape, convert) -> list:
    """``convert`` of each item of ``data`` (what it returns), in row-major order, the nesting checked against
    ``shape`` on the way (``recursive_store``): the first problem met is the one raised."""
    flat = []
    _store(data, shape, 0, flat, convert)
    return flat


def _store(data, shape, depth, flat, convert) -> None:
    if depth == len(shape):
        flat.append(convert(data))
        return
    if not is_sequence(data):
        raise TypeError("not a sequence")
    if len(data) != shape[depth]:
        raise ValueError(f"expected sequence of length {shape[depth]} at dim {depth} (got {len(data)})")
    for item in data:
        _store(item, shape, depth + 1, flat, convert)


def row_major(numbers):
    """The numbers of nested lists and tuples, in row-major order (their nesting unchecked)."""
    if isinstance(numbers, LISTS):
        for item in numbers:
            yield from row_major(item)
    else:
        yield numbers
