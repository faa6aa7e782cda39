"""PyTorch's broadcasting helpers: broadcast_shapes, broadcast_tensors, meshgrid, atleast_1d/2d/3d.

They give several tensors (or shapes) a common or minimum shape through recorded broadcasts and reshapes, so
their gradients are those ops'. Separate from ``shape_more.py`` (which re-exports them) as the ops that take
many tensors at once, where the others take one.
"""
from __future__ import annotations

import numbers

import numpy as np

from ._tensor_args import as_tensor
from .shape import BroadcastTo


def broadcast_shapes(*shapes) -> tuple:
    """``torch.broadcast_shapes``: the shape the given shapes broadcast to (a tuple)."""
    try:
        return tuple(np.broadcast_shapes(*[(s,) if isinstance(s, numbers.Integral) else tuple(s) for s in shapes]))
    except ValueError:
        raise RuntimeError(f"Shape mismatch: objects cannot be broadcast to a single shape: {list(shapes)}") from None


def broadcast_tensors(*tensors):
    """``torch.broadcast_tensors``: each tensor expanded to their common shape."""
    tensors = [as_tensor(t) for t in tensors]
    shape = ()
    for t in tensors:  # (one pair at a time, to name the sizes that clash as PyTorch does)
        for i in range(1, min(len(shape), t.ndim) + 1):
            if shape[-i] != t.shape[-i] and 1 not in (shape[-i], t.shape[-i]):
                raise RuntimeError(f"The size of tensor a ({shape[-i]}) must match the size of tensor b "
                                   f"({t.shape[-i]}) at non-singleton dimension {max(len(shape), t.ndim) - i}")
        shape = broadcast_shapes(shape, t.shape)
    return tuple(BroadcastTo.apply(t, shape=shape) for t in tensors)


def meshgrid(*tensors, indexing="ij"):
    """``torch.meshgrid``: coordinate grids from 1-D tensors; ``indexing='xy'`` swaps the first two dims of the
    grid (numpy's default; PyTorch's default is 'ij')."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f"torch.meshgrid: indexing must be one of \"xy\" or \"ij\", but received: {indexing}")
    tensors = [as_tensor(t) for t in tensors]
    if any(t.ndim > 1 for t in tensors):
        raise RuntimeError("torch.meshgrid: Expected 0D or 1D tensor in the tensor list")
    vectors = [t.reshape(-1) for t in tensors]
    order = list(range(len(vectors)))
    if indexing == "xy" and len(vectors) >= 2:
        order[0], order[1] = 1, 0
    shape = tuple(vectors[i].shape[0] for i in order)
    grids = []
    for i, v in enumerate(vectors):
        at = order.index(i)
        view = [1] * len(vectors)
        view[at] = v.shape[0]
        grids.append(BroadcastTo.apply(v.reshape(view), shape=shape))
    return tuple(grids)


def _atleast(tensors, n, views):
    single = len(tensors) == 1 and not isinstance(tensors[0], (list, tuple))
    items = tensors[0] if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)) else tensors
    out = []
    for t in items:
        x = as_tensor(t)
        if x.ndim < n:
            x = x.reshape(views[x.ndim](x.shape))
        out.append(x)
    return out[0] if single else tuple(out)


def atleast_1d(*tensors):
    """``torch.atleast_1d``: a 0-d tensor as shape (1,); others as they are (a tuple for several)."""
    return _atleast(tensors, 1, {0: lambda s: (1,)})


def atleast_2d(*tensors):
    """``torch.atleast_2d``: 0-d as (1, 1), a vector (n,) as (1, n)."""
    return _atleast(tensors, 2, {0: lambda s: (1, 1), 1: lambda s: (1,) + s})


def atleast_3d(*tensors):
    """``torch.atleast_3d``: 0-d as (1, 1, 1), (n,) as (1, n, 1), (m, n) as (m, n, 1)."""
    return _atleast(tensors, 3, {0: lambda s: (1, 1, 1), 1: lambda s: (1,) + s + (1,), 2: lambda s: s + (1,)})


__all__ = ["broadcast_shapes", "broadcast_tensors", "meshgrid", "atleast_1d", "atleast_2d", "atleast_3d"]
