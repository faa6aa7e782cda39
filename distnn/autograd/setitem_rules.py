"""What PyTorch's ``x[index] = v`` does with a tensor ``v`` before writing, where numpy's assignment differs:

* an advanced index with a ``v`` of another dtype goes through ``index_put_``, which refuses it
  (:mod:`distnn.functional.index_put_dtype`);
* an index of ints only is a ``copy_`` into a 0-d view, which takes a ``v`` of one element with dims (``[1.5]``),
  where numpy's element assignment refuses any array: the index gets a trailing ``...`` (a 0-d view);
* a complex ``v`` written into a real tensor warns PyTorch's once-a-process warning
  (:mod:`distnn.autograd.complex_discard`), not numpy's each time; none where PyTorch's ``masked_fill_`` writes it.
"""
from __future__ import annotations

import numpy as np

from distnn.functional.index_put_dtype import check_index_put_dtype

from .complex_discard import discards_imaginary

__all__ = ["setitem_index"]


def _all_ints(index) -> bool:
    """Whether ``index`` (raw) is one int or a tuple of ints only: numpy's element, not a view."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)) for i in items)


def setitem_index(t, index, value) -> tuple:
    """``(index, discards)`` for writing tensor ``value`` into ``t`` at raw ``index``: the index numpy is to take,
    and whether the write drops an imaginary part (None: no; "warn": by ``copy_``, PyTorch's warning; "silent": as
    ``masked_fill_``'s number, no warning); raises PyTorch's refusal first."""
    filled = check_index_put_dtype(t.data, index, value) if value.dtype != t.dtype else None
    if value.ndim and _all_ints(index):
        index = (index if isinstance(index, tuple) else (index,)) + (Ellipsis,)
    return index, ("silent" if filled else "warn") if discards_imaginary(value.dtype, t.dtype) else None
