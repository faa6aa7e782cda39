"""PyTorch's slicing family beyond plain indexing: ``select``, the ``*_scatter`` ops that write a slice into a
copy (``select_scatter``, ``slice_scatter``, ``diagonal_scatter``), ``Tensor.unfold``'s sliding windows,
``index_reduce``, ``index_put``/``put`` out of place, ``sum_to_size`` and ``split_with_sizes``.

All are composed of differentiable distnn ops (indexing, ``index_select``, ``scatter_reduce``, the in-place
writes on a fresh copy), so the gradients are those PyTorch's formulas give. ``unfold`` is a view (indexing by
:class:`~distnn.functional.indexing.UnfoldView`), as PyTorch's.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from .shape_more import as_tensor


def _dim(dim: int, ndim: int) -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim % n


def select(input, dim, index):  # noqa: A002
    """``torch.select``: the slice at ``index`` along ``dim`` (that dim removed); a view's gradient."""
    x = as_tensor(input)
    if x.ndim == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = _dim(dim, x.ndim)
    size = x.shape[d]
    if not -size <= index < size:
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(x.shape)} at dimension "
                         f"{dim}")
    return x[(slice(None),) * d + (int(index),)]


def _scatter_into(x: Tensor, key, src, name: str) -> Tensor:
    src = as_tensor(src)
    target_shape = tuple(x[key].shape)
    if tuple(src.shape) != target_shape:
        raise RuntimeError(f"{name}: expected src to have a size equal to the slice of self. src size = "
                           f"{list(src.shape)}, slice size = {list(target_shape)}")
    out = x.clone()
    out[key] = src
    return out


def select_scatter(input, src, dim, index):  # noqa: A002
    """``torch.select_scatter``: a copy of ``input`` with ``src`` written at ``select(dim, index)``."""
    x = as_tensor(input)
    select(x, dim, index)  # (its checks)
    return _scatter_into(x, (slice(None),) * _dim(dim, x.ndim) + (int(index),), src, "select_scatter")


def slice_scatter(input, src, dim=0, start=None, end=None, step=1):  # noqa: A002
    """``torch.slice_scatter``: a copy of ``input`` with ``src`` written at ``[start:end:step]`` along ``dim``."""
    x = as_tensor(input)
    if step <= 0:
        raise RuntimeError("slice step must be positive")
    key = (slice(None),) * _dim(dim, x.ndim) + (slice(start, end, step),)
    return _scatter_into(x, key, src, "slice_scatter")


def diagonal_scatter(input, src, offset=0, dim1=0, dim2=1):  # noqa: A002
    """``torch.diagonal_scatter``: a copy of ``input`` with ``src`` written on ``diagonal(offset, dim1, dim2)``
    (``src`` shaped as that diagonal: the other dims, then the diagonal's)."""
    x = as_tensor(input)
    expected = tuple(x.diagonal(offset, dim1, dim2).shape)
    src = as_tensor(src)
    if tuple(src.shape) != expected:
        raise RuntimeError(f"diagonal_scatter: expected src to have a size equal to the slice of self. src size = "
                           f"{list(src.shape)}, slice size = {list(expected)}")
    d1, d2 = _dim(dim1, x.ndim), _dim(dim2, x.ndim)
    y = x.movedim((d1, d2), (-2, -1)).clone()
    xp = get_array_module(x.data)
    k = expected[-1]
    rows = xp.arange(k) + max(-offset, 0)
    cols = xp.arange(k) + max(offset, 0)
    y[(Ellipsis, Tensor(rows), Tensor(cols))] = src
    return y.movedim((-2, -1), (d1, d2))


def unfold(input, dimension, size, step):  # noqa: A002
    """``Tensor.unfold``: every window of ``size`` elements along ``dimension``, ``step`` apart, as a new last
    dim (``dimension`` becomes the number of windows): a view of ``input``'s memory, as PyTorch's (an in-place
    change of either is seen by the other; overlapping windows are read-only)."""
    from distnn.autograd.versions import _share

    from .indexing import GetItem, UnfoldView

    x = as_tensor(input)
    d = _dim(dimension, x.ndim)
    length = x.shape[d] if x.ndim else 1
    if size > length:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {length} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    if size < 0:
        raise RuntimeError(f"size is {size} but must be >= 0")
    if x.ndim == 0:
        return x.reshape(1)
    index = UnfoldView(d, int(size), int(step))
    t = GetItem.apply(x, index=index)
    if t._vc is None or t._vc is not x._vc:  # (empty windows share no bytes with x: a view all the same)
        _share(x, t)
    t.__dict__["_view_of"] = (x, index)  # a view, as PyTorch's: an in-place change of it writes x
    return t


def index_reduce(input, dim, index, source, reduce, *, include_self=True):  # noqa: A002
    """``torch.index_reduce``: ``source``'s slices along ``dim`` reduced ('prod', 'mean', 'amax', 'amin') into
    ``input``'s slices at ``index``, as ``scatter_reduce`` with the index spread over each slice."""
    from .scatter import on_data_device, scatter_reduce

    if reduce not in ("prod", "mean", "amax", "amin"):
        raise RuntimeError(f"index_reduce(): Expected reduce to be one of prod, mean, amax or amin but got "
                           f"{reduce}.")
    x, src = as_tensor(input), as_tensor(source)
    idx = on_data_device(x, index)  # (np.asarray would refuse a cupy array)
    if idx.ndim > 1:
        raise IndexError("index_reduce_(): Index is supposed to be a vector")
    d = _dim(dim, x.ndim)
    if src.ndim != x.ndim or (x.ndim and src.shape[d] != idx.size):
        raise IndexError(f"index_reduce_(): Number of indices ({idx.size}) should be equal to source.size(dim) "
                         f"({src.shape[d] if src.ndim > d else 1})")
    xp = get_array_module(x.data)
    shape = [1] * x.ndim
    if x.ndim:
        shape[d] = idx.size
    spread = xp.broadcast_to(xp.asarray(idx).reshape(shape), src.shape)
    return scatter_reduce(x, d, Tensor(xp.ascontiguousarray(spread)), src, reduce, include_self=include_self)


def index_put(input, indices, values, accumulate=False):  # noqa: A002
    """``torch.index_put``: a copy of ``input`` with ``values`` written (``accumulate``: added) at
    ``indices`` (a tuple of index tensors)."""
    from distnn.autograd.tensor_inplace_more import _index_put

    from .index_put_dtype import refuse_number_source

    refuse_number_source("index_put", "values", 3, values)  # (the method's words name position 2)
    return _index_put(as_tensor(input), indices, values, accumulate)


def put(input, index, source, accumulate=False):  # noqa: A002
    """``torch.put``: a copy of ``input`` with ``source`` (a Tensor) written at flat positions ``index``."""
    from .index_put_dtype import refuse_number_source

    refuse_number_source("put", "source", 3, source)  # (the method's words name position 2)
    return as_tensor(input).clone().put_(index, source, accumulate)


def sum_to_size(input, *size):  # noqa: A002
    """``Tensor.sum_to_size``: summed down to ``size``, which ``input`` must be expandable from."""
    x = as_tensor(input)
    size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else tuple(size)
    lead = x.ndim - len(size)
    if lead < 0 or any(s != 1 and s != n for s, n in zip(size, x.shape[lead:])):
        raise RuntimeError(f"size {{{list(size)}}} is not expandable to size {{{list(x.shape)}}}.")
    dims = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(size) if s == 1 and x.shape[lead + i] != 1)
    out = x.sum(dim=dims, keepdim=True) if dims else x
    return out.reshape(size) if lead else out


def split_with_sizes(input, split_sizes, dim=0):  # noqa: A002
    """``torch.split_with_sizes``: pieces of the given sizes along ``dim``; they must add up to its size."""
    from .join import split

    x = as_tensor(input)
    d = _dim(dim, x.ndim)
    sizes = [int(s) for s in split_sizes]
    if sum(sizes) != x.shape[d] or any(s < 0 for s in sizes):
        raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {x.shape[d]} (input tensor's size "
                           f"at dimension {dim}), but got split_sizes={sizes}")
    return tuple(split(x, sizes, d))


__all__ = ["select", "select_scatter", "slice_scatter", "diagonal_scatter", "index_reduce", "index_put", "put",
           "split_with_sizes"]
