"""Where an empty view made by basic indexing starts, as PyTorch's.

numpy gives an empty slice (``b[2:2]``, ``b[1:1, 2:]``) the memory's offset 0: with no element to reach, it drops
the start. PyTorch's ``slice`` and ``select`` move the storage offset by ``start * stride`` whatever the result's
size, so ``b[2:2].storage_offset()`` is 2, and what a later ``resize_`` or ``out=`` (distnn.functional.out_write,
which resizes from the storage offset) writes lands from there in the base. Here an empty result is rebuilt over
the same memory at PyTorch's offset (numpy arrays; a cupy array is left as numpy makes it).
"""
from __future__ import annotations

import numpy as np

from .strides import torch_strides

__all__ = ["at_torch_offset"]


def _shift(a, index):
    """The elements PyTorch's indexing of ``a`` by basic ``index`` moves the offset by, or None where ``index``
    holds what PyTorch would not take as a slice/select (a negative step, a bool, an array)."""
    items = index if isinstance(index, tuple) else (index,)
    explicit = sum(1 for i in items if i is not None and i is not Ellipsis)
    strides, dim, shift = torch_strides(a), 0, 0
    for item in items:
        if item is None:
            continue
        if item is Ellipsis:
            dim += a.ndim - explicit
            continue
        if isinstance(item, slice):
            start, _, step = item.indices(a.shape[dim])
            if step < 0:
                return None
        elif isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)) and not (
                getattr(item, "ndim", None) == 0 and getattr(item, "dtype", np.dtype(bool)).kind in "iu"):
            return None
        else:
            start = int(item) % a.shape[dim]  # (in range: numpy checked it)
        shift += start * strides[dim]
        dim += 1
    return shift


def at_torch_offset(a, index, out):
    """``out`` (``a[index]``, basic, with no element) over ``a``'s memory at PyTorch's storage offset."""
    from .as_strided import strided_view
    from .view_dtype import storage_offset

    if not isinstance(a, np.ndarray):
        return out
    shift = _shift(a, index)
    if not shift:
        return out
    strides = tuple(s // out.itemsize for s in out.strides)
    return strided_view(a, out.shape, strides, storage_offset(a) + shift)
