"""PyTorch's index helpers: ``tril_indices``, ``triu_indices``, ``unravel_index`` and the membership test
``isin``. None is differentiable (their outputs are integers or bools); the index ones give int64 (or int32 on
request), as PyTorch's."""
from __future__ import annotations

import numbers

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import as_array, get_array_module

from .parser_refusal import invalid_combination, parser_type_name


def _triangle_indices(op, np_indices, row, col, offset, dtype):
    for name, v in (("row", row), ("col", col)):
        if v < 0:
            raise RuntimeError(f"{name} must be non-negative, got {v}")
    dtype = np.dtype(np.int64 if dtype is None else dtype)
    if dtype not in (np.int64, np.int32):
        raise NotImplementedError(f'"{op}" not implemented for \'{dtype}\'')
    # (numpy's order is PyTorch's: row by row, columns ascending)
    return Tensor(np.stack(np_indices(int(row), int(offset), int(col))).astype(dtype))


def tril_indices(row, col, offset=0, *, dtype=None):
    """``torch.tril_indices``: the (2, N) coordinates of the lower triangle of a ``row`` x ``col`` matrix
    (``offset`` > 0 takes diagonals above the main one too), row by row; int64 unless ``dtype`` (int32)."""
    return _triangle_indices("tril_indices", np.tril_indices, row, col, offset, dtype)


def triu_indices(row, col, offset=0, *, dtype=None):
    """``torch.triu_indices``: the (2, N) coordinates of the upper triangle (``offset`` > 0 leaves diagonals
    out), row by row; int64 unless ``dtype`` (int32)."""
    return _triangle_indices("triu_indices", np.triu_indices, row, col, offset, dtype)


def _member_operand(v):
    if isinstance(v, Tensor):
        data = v.data
    elif isinstance(v, numbers.Number):
        data = np.asarray(v)
    else:
        raise TypeError(f"isin(): argument must be Tensor or Number, not {type(v).__name__}")
    if data.dtype.kind in "bcO":
        names = {"b": "Bool", "c": "Complex", "O": "object"}
        raise RuntimeError(f"Unsupported input type encountered for isin(): {names[data.dtype.kind]} ({data.dtype})")
    return data


_ISIN_SIGNATURES = tuple(
    f"({first}, {second}, *, bool assume_unique = False, bool invert = False, Tensor out = None)"
    for first, second in (("Tensor elements", "Tensor test_elements"), ("Number element", "Tensor test_elements"),
                          ("Tensor elements", "Number test_element")))


def isin(elements, test_elements, *, assume_unique=False, invert=False):
    """``torch.isin``: a bool tensor of ``elements``' shape, True where the element is among ``test_elements``
    (``invert``: where it is not). Either may be a number, not both; bool and complex tensors are refused, as
    PyTorch's. A NaN is in nothing."""
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise invalid_combination("isin", [parser_type_name(elements), parser_type_name(test_elements)],
                                  _ISIN_SIGNATURES)
    a, b = _member_operand(elements), _member_operand(test_elements)
    xp = get_array_module(a if isinstance(elements, Tensor) else b)
    a, b = xp.asarray(a), xp.asarray(b)
    return Tensor(xp.isin(a, b, assume_unique=bool(assume_unique), invert=bool(invert)))


def _shape(shape) -> tuple:
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    elif not isinstance(shape, (tuple, list)):
        raise TypeError(f"expected 'shape' to be int or sequence of ints, but got {type(shape)}")
    for s in shape:
        if not isinstance(s, numbers.Integral) or isinstance(s, bool):
            raise TypeError(f"expected 'shape' sequence to only contain ints, but got {type(s)}")
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"'shape' cannot have negative values, but got {shape}")
    return shape


def unravel_index(indices, shape):
    """``torch.unravel_index``: the coordinates of flat (row-major) ``indices`` in a tensor of ``shape``, a tuple
    of int64 tensors of ``indices``' shape, one per dim. As PyTorch's, an index is not bounds-checked: coordinate
    ``i`` is ``(index // stride_i) % shape[i]``, so an index past the end or a negative one wraps around. An int
    is taken as a 0-d tensor."""
    if isinstance(indices, numbers.Integral) and not isinstance(indices, bool):
        indices = Tensor(np.asarray(indices, dtype=np.int64))
    data = indices.data if isinstance(indices, Tensor) else as_array(indices)  # (a raw device array as it is)
    if data.dtype.kind not in "iu":
        raise TypeError(f"expected 'indices' to be integer dtype, but got {data.dtype}")
    shape = _shape(shape)
    if 0 in shape:
        raise RuntimeError("ZeroDivisionError: unravel_index into a shape with a zero size")
    strides = np.cumprod((shape[1:] + (1,))[::-1])[::-1]
    flat = data.astype(np.int64)
    return tuple(Tensor((flat // int(s)) % n) for s, n in zip(strides, shape))


__all__ = ["tril_indices", "triu_indices", "isin", "unravel_index"]
