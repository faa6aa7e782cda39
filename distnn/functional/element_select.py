"""PyTorch's selections that read a tensor's elements, or find them: masked_select, take, take_along_dim,
nonzero, nonzero_static, argwhere.

The reading side of :mod:`.scatter` (which writes into the places an index or mask names): each is
built from nodes that exist already (indexing, ``Gather``, ``BroadcastTo``), so none has a Function
of its own; :mod:`.scatter` re-exports them.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._dims import wrap_dim
from .indexing import Gather
from .shape import BroadcastTo
from .shape_more import as_tensor


def on_data_device(x, a):
    """An index or mask ``a`` (a Tensor, an array, a list) as an array on the device of ``x`` (a Tensor): a host
    one beside cupy data is copied over, as a numpy index here always was (kept on the host, cupy refuses it in
    the op or its backward). PyTorch refuses a CPU index beside CUDA tensors ("Expected all tensors to be on the
    same device"); distnn is the more lenient, as with cross_entropy's host labels."""
    return get_array_module(x.data).asarray(a.data if isinstance(a, Tensor) else a)


def masked_select(input, mask):  # noqa: A002
    """``torch.masked_select``: the elements where ``mask`` (broadcast with input) is true, as a vector."""
    x = as_tensor(input)
    m = on_data_device(x, mask)
    if m.dtype != bool:
        raise RuntimeError(f"masked_select: expected BoolTensor for mask, got {m.dtype}")
    shape = tuple(np.broadcast_shapes(x.shape, m.shape))
    x = x if x.shape == shape else BroadcastTo.apply(x, shape=shape)
    return x[get_array_module(m).broadcast_to(m, shape)]


def take(input, index):  # noqa: A002
    """``torch.take``: the elements of the flattened input at ``index`` (negative from the end), shaped as it."""
    x = as_tensor(input)
    idx = on_data_device(x, index)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"take(): Expected a long tensor for index, but got {idx.dtype}")
    n = x.data.size
    if idx.size and (int(idx.min()) < -n or int(idx.max()) >= n):
        raise IndexError(f"take(): index out of range: tried to access index {int(idx.max())} on a tensor of {n} "
                         f"elements.")
    return x.reshape(-1)[idx % max(n, 1)]


def take_along_dim(input, indices, dim=None):  # noqa: A002
    """``torch.take_along_dim``: ``gather`` with ``indices`` broadcast against ``input`` outside ``dim``; without
    ``dim``, :func:`take` on the flattened tensors."""
    x = as_tensor(input)
    idx = on_data_device(x, indices)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"torch.take_along_dim(): dtype of indices should be Long but got {idx.dtype}")
    if dim is None:
        return take(x.reshape(-1), idx.reshape(-1))
    if x.ndim != idx.ndim:
        raise RuntimeError(f"torch.take_along_dim(): input and indices should have the same number of dimensions, "
                           f"but got {x.ndim} dimensions for input, and {idx.ndim} dimensions for indices")
    d = wrap_dim(dim, x.ndim, "take_along_dim")
    xp = get_array_module(x.data)
    shape_x, shape_i = list(x.shape), list(idx.shape)
    shape_x[d] = shape_i[d] = 1
    common = list(broadcast(shape_x, shape_i))
    x_shape, i_shape = list(common), list(common)
    x_shape[d], i_shape[d] = x.shape[d], idx.shape[d]
    x = x if tuple(x.shape) == tuple(x_shape) else BroadcastTo.apply(x, shape=tuple(x_shape))
    size = x.shape[d]
    idx = xp.broadcast_to(idx, tuple(i_shape))
    return Gather.apply(x, idx % size if idx.size else idx, dim=d)


def broadcast(a, b):
    try:
        return np.broadcast_shapes(tuple(a), tuple(b))
    except ValueError:
        raise RuntimeError(f"shape mismatch: {list(a)} and {list(b)} cannot be broadcast together") from None


def nonzero(input, *, as_tuple=False):  # noqa: A002
    """``torch.nonzero``: the (int64) indices of the non-zero elements, one row each (shape (n, ndim)); with
    ``as_tuple``, one vector per dim (a 0-d input counts as a vector)."""
    data = as_tensor(input).data
    xp = get_array_module(data)
    if as_tuple:
        return tuple(Tensor(i.astype(np.int64)) for i in xp.nonzero(data.reshape(-1) if data.ndim == 0 else data))
    if data.ndim == 0:
        return Tensor(xp.zeros((int(data != 0), 0), np.int64))
    return Tensor(xp.stack(xp.nonzero(data), axis=1).astype(np.int64))


def nonzero_static(input, *, size, fill_value=-1):  # noqa: A002
    """``torch.nonzero_static``: :func:`nonzero`'s (n, ndim) indices with exactly ``size`` rows: the first ``size``
    of them, or all padded with rows of ``fill_value``."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise RuntimeError("nonzero_static: 'size' must be an non-negative integer")
    found = nonzero(input).data[:size]
    xp = get_array_module(found)
    pad = xp.full((size - found.shape[0], found.shape[1]), fill_value, dtype=np.int64)
    return Tensor(xp.concatenate([found, pad]))


def argwhere(input):  # noqa: A002
    """``torch.argwhere``: :func:`nonzero`'s (n, ndim) indices."""
    return nonzero(input)
