"""What PyTorch's ``x[index] = v`` does with a tensor ``v`` before writing, where numpy's assignment differs:

* an advanced index with a ``v`` of another dtype goes through ``index_put_``, which refuses it
  (:mod:`distnn.functional.index_put_dtype`);
* an index of ints only is a ``copy_`` into a 0-d view, which takes a ``v`` of one element with dims (``[1.5]``),
  where numpy's element assignment refuses any array: the index gets a trailing ``...`` (a 0-d view);
* a complex ``v`` written into a real tensor warns PyTorch's once-a-process warning
  (:mod:`distnn.autograd.complex_discard`), not numpy's each time; none where PyTorch's ``masked_fill_`` writes it;
* a ``v`` whose shape cannot be broadcast to the indexed part is PyTorch's RuntimeError (``copy_``'s expand for a
  view, ``index_put_``'s shape mismatch for an advanced index), not numpy's ValueError
  (:func:`refuse_unbroadcastable`; a ValueError too, as distnn's always was).
"""
from __future__ import annotations

import numpy as np

from distnn.backend import get_array_module
from distnn.functional._elementwise_common import _on_device
from distnn.functional.index_put_dtype import check_index_put_dtype

from .complex_discard import discards_imaginary
from .number_range import _FITS_EVERY_FLOAT, C_NAMES, number_for_dtype

__all__ = ["beside", "refuse_unbroadcastable", "number_value", "setitem_index"]

# (the values PyTorch's ``x[index] = v`` takes besides a Tensor: Python's numbers, and numpy's integers by their
# ``__index__``; numpy's float64 and complex128 are float and complex. A list is refused, and so are arrays and
# numpy's other scalars, which distnn takes: see number_value)
_NUMBER_TYPES = (int, float, complex, np.integer)

# (PyTorch's legacy tensor type names, which ``expand``'s refusal prints)
_TYPE_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16", "int64": "Long",
               "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool",
               "complex64": "ComplexFloat", "complex128": "ComplexDouble"}


def beside(t, value):
    """A host array ``value`` written into a GPU tensor ``t``, copied to the GPU first: cupy's ``a[i] = v`` takes a
    numpy ``v`` for a scalar to fill with, and refuses one that is not 0-d. Anything else passes as it is."""
    if not isinstance(value, np.ndarray):
        return value
    return _on_device(get_array_module(t.data), value)[0]


def _all_ints(index) -> bool:
    """Whether ``index`` (raw) is one int or a tuple of ints only: numpy's element, not a view."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)) for i in items)


def number_value(t, value):
    """``value`` (not a Tensor) as PyTorch writes it into ``t``: a number as it is where it fits ``t``'s dtype
    (:mod:`.number_range`: else PyTorch's error; a negative int into uint8 wraps), a complex number into a
    real tensor its real part, refused where the imaginary part is not 0 (``value cannot be converted to type
    float without overflow``); a list, a tuple, a string, None... refused (``can't assign a list to a
    torch.FloatTensor``). An array (numpy's or cupy's, numpy's scalars included) is taken, as distnn always has:
    they are distnn's own arrays (PyTorch refuses them; a host array into a GPU tensor is copied over,
    :func:`beside`)."""
    if type(value) is float and -_FITS_EVERY_FLOAT <= value <= _FITS_EVERY_FLOAT and t.data.dtype.kind == "f":
        return value  # (the common case, first: written as it is, nothing to check)
    if isinstance(value, _NUMBER_TYPES):
        if isinstance(value, complex):
            if t.dtype.kind in "bc":
                return value
            if value.imag:
                raise RuntimeError(f"value cannot be converted to type {C_NAMES.get(t.dtype.name, t.dtype.name)} "
                                   "without overflow")
            value = value.real
        return number_for_dtype(t.data.dtype, value)  # (PyTorch's range check: 300 into uint8 refused, -1 is 255)
    if hasattr(value, "dtype") and hasattr(value, "shape"):
        return value
    kind = type(value)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    device = "" if get_array_module(t.data) is np else "cuda."
    raise TypeError(f"can't assign a {name} to a torch.{device}{_TYPE_NAMES.get(t.dtype.name, '')}Tensor")



def setitem_index(t, index, value) -> tuple:
    """``(index, discards)`` for writing tensor ``value`` into ``t`` at raw ``index``: the index numpy is to take,
    and whether the write drops an imaginary part (None: no; "warn": by ``copy_``, PyTorch's warning; "silent": as
    ``masked_fill_``'s number, no warning); raises PyTorch's refusal first."""
    filled = check_index_put_dtype(t.data, index, value) if value.dtype != t.dtype else None
    if value.ndim and _all_ints(index):
        index = (index if isinstance(index, tuple) else (index,)) + (Ellipsis,)
    return index, ("silent" if filled else "warn") if discards_imaginary(value.dtype, t.dtype) else None


def refuse_unbroadcastable(t, index, value) -> None:
    """PyTorch's refusal of ``t[index] = value`` (``index`` raw) where ``value``'s shape cannot be broadcast to
    the part indexed; nothing where it can (the caller's own error then stands). A view (basic index) is written
    by ``copy_``, which expands ``value`` less its leading 1s; an advanced index by ``index_put_``."""
    from distnn.functional.shape_checks import ShapeError

    try:
        target = tuple(t.data[index].shape)
    except Exception:  # noqa: BLE001 - an index numpy refuses: its own error stands
        return
    shape = tuple(np.shape(getattr(value, "data", value)))
    items = index if isinstance(index, tuple) else (index,)
    if any(hasattr(i, "shape") and getattr(i, "ndim", 0) or isinstance(i, list) for i in items):
        try:
            if np.broadcast_shapes(shape, target) == target:
                return
        except ValueError:
            pass
        raise ShapeError(f"shape mismatch: value tensor of shape {list(shape)} cannot be broadcast to indexing "
                         f"result of shape {list(target)}")
    while shape and shape[0] == 1:
        shape = shape[1:]
    if len(shape) > len(target):
        kind = _TYPE_NAMES.get(np.dtype(getattr(value, "dtype", t.dtype)).name, "")
        raise ShapeError(f"expand(torch.{kind}Tensor{{{list(shape)}}}, size={list(target)}): the number of sizes "
                         f"provided ({len(target)}) must be greater or equal to the number of dimensions in the "
                         f"tensor ({len(shape)})")
    for back in range(1, len(shape) + 1):
        if shape[-back] not in (1, target[-back]):
            raise ShapeError(f"The expanded size of the tensor ({target[-back]}) must match the existing size "
                             f"({shape[-back]}) at non-singleton dimension {len(target) - back}.  Target sizes: "
                             f"{list(target)}.  Tensor sizes: {list(shape)}")
