"""PyTorch's splitting ops: unbind, tensor_split, hsplit, vsplit, dsplit.

Each piece is a slice of the input (a recorded indexing op), so its gradient is the slice's. Separate from
``shape_more.py`` (which re-exports them) as one family: every one of them ends in ``tensor_split``'s slicing
or in ``unbind``'s.
"""
from __future__ import annotations

import numbers

from distnn.autograd.tensor import Tensor

from ._dims import wrap_dim
from ._tensor_args import _ints, as_tensor
from .split_args import directional_split_spec, tensor_split_spec


def unbind(input, dim=0):  # noqa: A002
    """``torch.unbind``: the slices along ``dim``, each without it."""
    x = as_tensor(input)
    if x.ndim == 0:
        raise IndexError("unbind: dimension specified as 0 but tensor has no dimensions")
    d = wrap_dim(dim, x.ndim, "unbind")
    from distnn.autograd.view_index import mark_pieces

    from .piece_nodes import UnbindPiece

    def piece(i):
        index = (slice(None),) * d + (i,)
        t = UnbindPiece.apply(x, index=index)
        if t._vc is not None and t._vc is x._vc:  # (its view's index noted, as ``x[index]`` notes it)
            t.__dict__["_view_of"] = (x, index)
        return t

    return mark_pieces(tuple(piece(i) for i in range(x.shape[d])), "Unbind")


def _pieces(x, bounds, d):
    from .piece_nodes import slice_view

    # (each piece PyTorch's ``slice`` of the input, SliceBackward0 even where it keeps the whole dim)
    return tuple(slice_view(x, (slice(None),) * d + (slice(lo, max(lo, hi)),))
                 for lo, hi in zip(bounds[:-1], bounds[1:]))


def tensor_split(input, indices_or_sections, dim=0):  # noqa: A002
    """``torch.tensor_split``: an int ``n`` gives ``n`` pieces (the first ``size % n`` one longer); a sequence
    gives the pieces between those indices (clipped to the size, as numpy's ``array_split``)."""
    x = as_tensor(input)
    if x.ndim == 0:
        raise RuntimeError("tensor_split expected at least a 1-dimensional tensor, but got a tensor with 0 dims")
    d = wrap_dim(dim, x.ndim, "tensor_split")
    n = x.shape[d]
    spec = tensor_split_spec(indices_or_sections)  # (a tensor: int64, 0 or 1 dims, as PyTorch's)
    if isinstance(spec, numbers.Integral):
        if spec <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {spec}")
        size, extra = divmod(n, int(spec))
        bounds = [0]
        for i in range(int(spec)):
            bounds.append(bounds[-1] + size + (i < extra))
    else:
        bounds = [0] + [min(max(i + n if i < 0 else i, 0), n) for i in _ints(spec)] + [n]
    return _pieces(x, bounds, d)


def _split_along(input, sections, dim, name, least, method):  # noqa: A002
    x = as_tensor(input)
    # (the argument first, as PyTorch's parser reads it before the op runs: an int is the number of sections, a
    # list the indices)
    sections = directional_split_spec(sections, name, method)
    if x.ndim < least:
        raise RuntimeError(f"torch.{name} requires a tensor with at least {least} dimension, but got a tensor with "
                           f"{x.ndim} dimensions!")
    if isinstance(sections, numbers.Integral):
        if sections == 0 or x.shape[dim] % sections:
            raise RuntimeError(f"torch.{name} attempted to split along dimension {dim}, but the size of the dimension "
                               f"{x.shape[dim]} is not divisible by the split_size {sections}!")
    return tensor_split(x, sections, dim)


def hsplit(input, indices_or_sections, *, _method=False):  # noqa: A002
    """``torch.hsplit``: :func:`tensor_split` along dim 1 (dim 0 for a vector), equal sections only. A tensor
    ``indices_or_sections``: a 0-d integer one is the number of sections; ``Tensor.hsplit`` (``_method``) also
    takes any one-element integer or bool tensor, as the single index (PyTorch's parser's rules)."""
    x = as_tensor(input)
    return _split_along(x, indices_or_sections, 1 if x.ndim > 1 else 0, "hsplit", 1, _method)


def vsplit(input, indices_or_sections, *, _method=False):  # noqa: A002
    """``torch.vsplit``: :func:`tensor_split` along dim 0 of a tensor of 2 or more dims (a tensor argument: as
    :func:`hsplit`'s)."""
    return _split_along(input, indices_or_sections, 0, "vsplit", 2, _method)


def dsplit(input, indices_or_sections, *, _method=False):  # noqa: A002
    """``torch.dsplit``: :func:`tensor_split` along dim 2 of a tensor of 3 or more dims (a tensor argument: as
    :func:`hsplit`'s)."""
    return _split_along(input, indices_or_sections, 2, "dsplit", 3, _method)


__all__ = ["unbind", "tensor_split", "hsplit", "vsplit", "dsplit"]
