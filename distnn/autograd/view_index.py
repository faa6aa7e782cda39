"""How a view made by any view op (reshape, transpose, permute, squeeze, expand, narrow, as_strided...) is
re-made from its base, for an in-place change of their memory while recording (``inplace``), as PyTorch's
``as_strided`` view replay.

An op whose output views an input's memory (``versions._link_views``) notes that input as the view's base, its
index left as :data:`REMAP` (nothing computed: the hot path of a view op pays one dict store). Only when an
in-place change of that memory records does :func:`memory_index` work the index out from the two arrays' memory
addresses: for each element of the view, the base's element at the same address, as an advanced index of
integer arrays (one per dim of the base). Indexing ops (GetItem, SetItem, CopySlices) take it as any
advanced index: the view's values are ``base[index]``, its gradient is scatter-added into the base's (an
element a view sees twice, an ``expand``'s, gets both), and a write of the view is ``base[index] = v``. It
works for every layout of the base (the index is logical, not strides), which strides alone would not (a
``reshape`` of a transposed tensor).

A real view of a complex base (``real``, ``imag``, ``view_as_real``) is indexed among the base's parts, an ``expand``
of a 0-d base by broadcasting (``functional/view_index_kinds.py``). A view whose elements are not elements of its
base (``as_strided`` beyond its input's, within the storage) or of a base that sees an element twice (a view of an
``expand``) is indexed in its base's base, up to the root (``versions._view_chain``), as PyTorch re-makes every view
from its root's storage. Not re-made (``None``): a ``view(dtype)`` (an alias cut from the graph, as PyTorch's is
not differentiable).
"""
from __future__ import annotations

import numpy as np

from distnn.backend import get_array_module

#: the index of a view noted by ``versions._link_views``: worked out by :func:`memory_index` when first needed
REMAP = type("Remap", (), {"__repr__": lambda self: "REMAP", "__slots__": ()})()


def _address(a) -> int:
    xp = get_array_module(a)
    return a.__array_interface__["data"][0] if xp is np else a.data.ptr


def _addresses(a) -> np.ndarray:
    """The byte address of every element of ``a``, in ``a``'s logical (row-major) order, shaped as ``a``."""
    addresses = np.full(a.shape, _address(a), dtype=np.int64)
    for dim, (size, stride) in enumerate(zip(a.shape, a.strides)):
        steps = np.arange(size, dtype=np.int64) * stride
        addresses += steps.reshape((size,) + (1,) * (a.ndim - dim - 1))
    return addresses


def memory_index(view, base):
    """The advanced index of ``base`` (a tuple of integer arrays, each of ``view``'s shape, on ``base``'s device)
    that picks the elements ``view`` shares with it, or None where there is none (see the module docstring)."""
    if get_array_module(view) is not get_array_module(base):
        return None
    if view.dtype != base.dtype:
        if base.dtype.kind == "c" and view.dtype == base.real.dtype:  # (real, imag, view_as_real: among the pairs)
            from distnn.functional.view_index_kinds import ComplexParts, complex_pairs

            inner = memory_index(view, complex_pairs(base))
            return None if inner is None else ComplexParts(inner)
        if view.dtype.kind == "c" and base.dtype == view.real.dtype:  # (view_as_complex: pairs of the base's)
            from distnn.functional.view_index_kinds import PairsAsComplex, complex_pairs

            pairs = memory_index(complex_pairs(view), base)
            return None if pairs is None else PairsAsComplex(pairs)
        return None  # (view(dtype): cut from the graph, an alias of its own, see functional/view_dtype.py)
    if not base.ndim:  # (a 0-d base: its one element, seen through dims of size 1, or by an expand of it)
        if view.size != 1:
            from distnn.functional.view_index_kinds import ScalarBroadcast

            return ScalarBroadcast(view.shape)
        return (None,) * view.ndim if view.ndim else Ellipsis
    xp = get_array_module(base)
    view_at = _addresses(view)
    index = _by_strides(view_at - _address(base), base)
    if index is None:
        index = _by_search(view_at, base)
    return None if index is None else tuple(xp.asarray(i) for i in index)


def _by_strides(offsets, base):
    """The index of the elements at byte ``offsets`` from ``base``'s first, read off its strides (O(n) per dim): for a
    base whose dims, largest stride first, each step over all the elements of the ones after (a row-major array,
    a transpose or a slice of one), or None."""
    dims = sorted((d for d in range(base.ndim) if base.shape[d] > 1), key=lambda d: -base.strides[d])
    for outer, inner in zip(dims, dims[1:]):
        if base.strides[inner] <= 0 or base.strides[outer] < base.strides[inner] * base.shape[inner]:
            return None
    if dims and base.strides[dims[-1]] <= 0:
        return None
    index = [np.zeros(offsets.shape, dtype=np.int64) for _ in range(base.ndim)]
    rest = offsets
    for d in dims:
        index[d], rest = np.divmod(rest, base.strides[d])
    if rest.any() or any(((i < 0) | (i >= n)).any() for i, n in zip(index, base.shape)):
        return None  # (an element between the base's, or outside it: not a view of its elements)
    return index


def _by_search(view_at, base):
    """The index of the elements at addresses ``view_at`` found among ``base``'s by sorting (any layout), or None."""
    base_at = _addresses(base).reshape(-1)
    order = np.argsort(base_at, kind="stable")
    sorted_at = base_at[order]
    if sorted_at.size > 1 and (sorted_at[1:] == sorted_at[:-1]).any():
        return None  # (the base sees some element twice: which of its positions the view's is, is no one's call)
    if view_at.size and not sorted_at.size:
        return None
    found = np.searchsorted(sorted_at, view_at).clip(0, max(sorted_at.size - 1, 0))
    if view_at.size and not (sorted_at[found] == view_at).all():
        return None
    positions = order[found] if view_at.size else np.zeros(view_at.shape, dtype=np.int64)
    return np.unravel_index(positions, base.shape)


def mark_pieces(pieces, op: str):
    """``pieces`` are the views one call of ``op`` returns (``unbind``: "Unbind", ``split``/``chunk``: "Split",
    ``split_with_sizes``: "SplitWithSizes", PyTorch's names): an in-place change of one (or of a view of one) while
    recording is refused, as PyTorch's (``inplace.check_writable``). Returns ``pieces``."""
    from .view_staleness import note_pieces

    for i, piece in enumerate(pieces):
        piece.__dict__["_multi_output"] = (i, op)
    note_pieces(pieces)  # (and a piece used after its memory changed in place is refused, as PyTorch's)
    return pieces


def overlaps_itself(a) -> bool:
    """Whether some element of ``a`` is seen at two positions (a dim of stride 0 and size > 1: an ``expand``), as
    PyTorch's ``has_internal_overlap`` tells by its strides (overlapping unfold windows are allowed, as there)."""
    return a.size > 1 and any(stride == 0 and size > 1 for size, stride in zip(a.shape, a.strides))
