"""The layout PyTorch gives advanced indexing's result (``x[[0, 2]]``, ``x[:, mask]``), so that ``view`` after it
is allowed or refused as there and ``stride()`` is torch's.

PyTorch applies the basic part of the index first (ints, slices, None: a view), then its ``index`` kernel runs a
TensorIterator over that view restrided (stride 0 along the indexed dims, which the index tensors' dims replace)
and the index tensors (a boolean mask as its nonzero positions): the result is laid out in the order
:func:`.torch_layout._torch_order` gives those operands. ``x.transpose(0, 2)[[0, 0]]`` is so not contiguous.
Where the input and the index arrays are row-major (the common case) that order is row-major, numpy's copy is
made row-major as before, and nothing is computed. Not modelled (row-major, as before): a result with a dim of
size 1, where torch's order was seen to depart from that rule.
"""
from __future__ import annotations

import numpy as np

from distnn.backend import get_array_module

from .strides import torch_strides
from .torch_layout import _torch_order, in_order


def torch_index_layout(a, index, out):
    """``out = a[index]`` (an advanced index) laid out as PyTorch's."""
    xp = get_array_module(out)
    if a.flags.c_contiguous and (index.flags.c_contiguous if type(index) is np.ndarray else _row_major(index)):
        return xp.ascontiguousarray(out)  # (the common case, in a few attribute reads)
    items = index if isinstance(index, tuple) else (index,)
    # (a result with a dim of size 1 is not modelled: torch's order there differs from its documented rule in
    # ways not worked out, e.g. x.t()[None, idx2d, ::2] is row-major in torch; it stays row-major)
    order = None if out.ndim < 2 or out.size == 0 or 1 in out.shape else _order(a, items, out.shape)
    if order is None or order == list(range(out.ndim - 1, -1, -1)):
        return xp.ascontiguousarray(out)
    return in_order(out, order)


def _row_major(index):
    """Whether every array in ``index`` (a tuple, or one index that is not a numpy array) is row-major."""
    items = index if isinstance(index, tuple) else (index,)
    return all(not hasattr(i, "flags") or i.flags.c_contiguous for i in items)


def _order(a, items, out_shape):
    """The result's dims from fastest to slowest in PyTorch's layout, or None where the index is one this does
    not model (it is then row-major, as before)."""
    arrays = [np.asarray(i) if isinstance(i, list) else i for i in items]
    used = sum(i.ndim if getattr(i, "dtype", None) is not None and i.dtype == bool else
               0 if i is None or i is Ellipsis else 1 for i in arrays)
    basic, adv, view_dim = [], [], 0  # adv: (dim of the basic view, index strides) per index tensor
    for i in arrays:
        if i is Ellipsis:
            basic += [slice(None)] * (a.ndim - used)
            view_dim += a.ndim - used
        elif hasattr(i, "ndim") and i.ndim > 0 and i.dtype == bool:
            positions = np.empty(int(i.sum()), dtype=np.int64)  # (torch: the mask's nonzero positions, one
            for _ in range(i.ndim):  # 1-D index tensor per dim of the mask)
                basic.append(slice(None))
                adv.append((view_dim, positions))
                view_dim += 1
        elif hasattr(i, "ndim") and i.ndim > 0:
            basic.append(slice(None))
            adv.append((view_dim, i))
            view_dim += 1
        elif isinstance(i, (slice, type(None))):
            basic.append(i)
            view_dim += 1
        elif isinstance(i, (int, np.integer)) or getattr(i, "ndim", None) == 0:
            basic.append(int(i))
        else:
            return None
    view = a[tuple(basic)]
    if not adv:
        return None
    try:
        shape_b = adv[0][1].shape if len(adv) == 1 else np.broadcast_shapes(*[arr.shape for _, arr in adv])
    except ValueError:
        return None
    expanded = [_broadcast(arr, shape_b) for _, arr in adv]
    dims = [d for d, _ in adv]
    kept = [d for d in range(view.ndim) if d not in dims]
    before = dims[0] if dims == list(range(dims[0], dims[0] + len(dims))) else 0
    kept_before, kept_after = kept[:before], kept[before:]
    shape = tuple(view.shape[d] for d in kept_before) + tuple(shape_b) + tuple(view.shape[d] for d in kept_after)
    if shape != tuple(out_shape):
        return None
    vs = torch_strides(view)  # (a None's dim: torch's unsqueeze stride, not numpy's 0)
    nb = len(shape_b)
    src = [vs[d] for d in kept_before] + [0] * nb + [vs[d] for d in kept_after]
    operands = [src] + [[0] * before + list(st) + [0] * len(kept_after) for st in expanded]
    return _torch_order(shape, operands)


def _broadcast(arr, shape):
    """``arr``'s strides (in elements) broadcast to ``shape`` (0 along a broadcast dim)."""
    strides = [s // arr.itemsize for s in arr.strides]
    lead = len(shape) - arr.ndim
    return [0] * lead + [0 if arr.shape[k] == 1 and shape[lead + k] != 1 else strides[k] for k in range(arr.ndim)]
