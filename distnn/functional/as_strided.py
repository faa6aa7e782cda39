"""``torch.as_strided`` and its family (``as_strided_``, ``as_strided_copy``, ``as_strided_scatter``,
``slice_inverse``): a tensor's memory read with any sizes and strides, as PyTorch's.

The geometry is relative to the *storage*: the memory of the array that owns the tensor's (the end of numpy's
chain of ``base``; cupy's allocation), so ``storage_offset`` counts from that memory's start, not from the view's
first element, and ``None`` keeps the tensor's own offset. A geometry that reaches past the storage is refused
with PyTorch's message. Strides may overlap (an element read several times); such a view is read-only on numpy,
as ``unfold``'s overlapping windows (PyTorch refuses the write too, at the op). Negative strides are refused.

Gradients are PyTorch's (``as_strided_backward``): the output's gradient is scatter-added into a buffer laid out
as the storage, and the input reads its elements from it (divided by how often the input itself sees each
location, where its own strides overlap); locations the input does not see get nothing. ``as_strided_scatter``
works in the storage the same way: its result is a copy of the input with ``src`` written where
``input.as_strided(size, stride, storage_offset)`` would read, laid out as the input (strides and offset).

An in-place change of an ``as_strided`` view (or of its base) while recording re-makes the other's node, as for any
view (:mod:`distnn.autograd.inplace`); one that reaches beyond its input's elements is re-made from the base up the
chain that holds them (``versions._remap``), as PyTorch's from its storage. A tensor made by ``Tensor(array)`` of a strided numpy array has that array's
owner as its storage (PyTorch's ``from_numpy`` starts the storage at the view).
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from .indexing import scatter_add
from .strides import element_strides
from .view_dtype import storage_offset, storage_root


class _Interface:
    """An object numpy reads an array from (``__array_interface__``), holding the storage's owner alive."""

    def __init__(self, interface, base):
        self.__array_interface__ = interface
        self.base = base


def _storage_bytes(a) -> int:
    """How many bytes the storage of ``a`` holds (from its start)."""
    xp = get_array_module(a)
    if xp is np:
        root = storage_root(a)
        extent = sum((n - 1) * s for n, s in zip(root.shape, root.strides) if n) + root.itemsize if root.size else 0
        return int(extent)
    return int(a.data.mem.size) if a.data.mem is not None else int(a.nbytes)


def _overlaps(size, stride) -> bool:
    """Whether two positions of the geometry reach the same location (stride order: each stride past the span of
    the dims inside it). An empty geometry reaches no location: it overlaps nothing, whatever its strides, as
    PyTorch's empty views, which are writable (an in-place op on one is a no-op)."""
    if 0 in size:
        return False
    dims = sorted((s, n) for n, s in zip(size, stride) if n > 1)
    span = 0
    for s, n in dims:
        if s <= span:
            return True
        span += (n - 1) * s
    return False


def _check(a, size, stride, offset, name="as_strided"):
    if len(size) != len(stride):
        raise RuntimeError("mismatch in length of strides and shape")
    if any(s < 0 for s in stride):
        raise RuntimeError(f"{name}: Negative strides are not supported at the moment, got strides: {list(stride)}")
    if any(n < 0 for n in size):
        raise RuntimeError(f"{name}: negative size in {list(size)}")
    if offset < 0:
        raise RuntimeError(f"Tensor: invalid storage offset {offset}")
    item = a.dtype.itemsize
    if all(n > 0 for n in size):
        need = (offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1) * item
        have = _storage_bytes(a)
        if need > have:
            raise RuntimeError(f"setStorage: sizes {list(size)}, strides {list(stride)}, storage offset {offset}, and "
                               f"itemsize {item} requiring a storage size of {need} are out of bounds for storage of "
                               f"size {have}")


def strided_view(a, size, stride, offset):
    """``a``'s storage read with ``size``/``stride`` (in elements) from ``offset``: an array sharing its memory."""
    xp = get_array_module(a)
    item = a.dtype.itemsize
    shift = (offset - storage_offset(a)) * item  # (bytes from a's first element, either way)
    strides = tuple(s * item for s in stride)
    if xp is not np:  # (cupy: a pointer into the same allocation; no read-only arrays)
        return xp.ndarray(tuple(size), dtype=a.dtype, memptr=a.data + shift, strides=strides)
    writeable = bool(a.flags.writeable) and not _overlaps(size, stride)
    interface = {"shape": tuple(size), "typestr": a.dtype.str, "descr": a.dtype.descr, "strides": strides,
                 "data": (a.__array_interface__["data"][0] + shift, not writeable), "version": 3}
    return np.asarray(_Interface(interface, a))


def restrided(a, strides):
    """``a`` with other (byte) ``strides`` that step over the same elements (those of its size-1 dims), sharing its
    memory and, on numpy, its writability."""
    xp = get_array_module(a)
    if xp is not np:  # (cupy: a pointer into the same allocation)
        return xp.ndarray(a.shape, dtype=a.dtype, memptr=a.data, strides=tuple(strides))
    return np.lib.stride_tricks.as_strided(a, a.shape, tuple(strides), writeable=bool(a.flags.writeable))


def writable_storage(a):
    """``a``, or where ``a`` is a numpy view that is read-only only for its geometry (an expanded tensor's: numpy's
    broadcast views are read-only) of memory that is writable, the array whose memory it views: for a new
    geometry of that memory (a resize) that PyTorch writes."""
    if get_array_module(a) is not np or a.flags.writeable:
        return a
    root = storage_root(a)
    return root if root.flags.writeable else a


def _positions(xp, size, stride, offset):
    """The storage location of every element of the geometry, an integer array of shape ``size``."""
    pos = xp.full(tuple(size), offset, dtype=np.int64)
    for d, (n, s) in enumerate(zip(size, stride)):
        shape = [1] * len(size)
        shape[d] = n
        pos = pos + (xp.arange(n, dtype=np.int64) * s).reshape(shape)
    return pos


def _geometry(a):
    return tuple(a.shape), element_strides(a), storage_offset(a)


def _extent(*positions) -> int:
    return max([int(p.max()) + 1 for p in positions if p.size] + [0])


class AsStrided(Function):
    """``as_strided``: a view of the input's storage; backward scatter-adds into the storage (PyTorch's)."""

    torch_name = "AsStridedBackward0"
    saves_tensors = False

    def forward(self, a, size, stride, offset):
        self.input_geometry, self.geometry = _geometry(a), (size, stride, offset)
        return strided_view(a, size, stride, offset)

    def backward(self, g):
        return (_through_storage(g, self.geometry, self.input_geometry),)

    def backward_graph(self, g):
        return (AsStridedGrad.apply(g, geometry=self.geometry, input_geometry=self.input_geometry),)


def _through_storage(g, geometry, input_geometry):
    """``g`` (laid out as ``geometry`` reads the storage) scatter-added into the storage, read back as ``input_geometry``
    reads it (divided by how often that sees each location): ``as_strided``'s gradient, linear in ``g``."""
    xp = get_array_module(g)
    out_pos, in_pos = _positions(xp, *geometry), _positions(xp, *input_geometry)
    n = _extent(out_pos, in_pos)
    storage = xp.zeros(n, dtype=g.dtype)
    scatter_add(storage, out_pos.reshape(-1), g.reshape(-1))  # (an overlapping output: its gradients add up)
    if _overlaps(*input_geometry[:2]):  # (the input sees a location k times: each gets 1/k of it)
        seen = xp.bincount(in_pos.reshape(-1), minlength=n)
        storage = storage / xp.maximum(seen, 1).astype(g.dtype)
    return storage[in_pos]


class AsStridedGrad(Function):
    """``as_strided``'s gradient as an op (its double backward), or (``transposed``) that map's transpose, the same
    walk through the storage the other way: each is the other's gradient."""

    saves_tensors = False
    supports_complex = True

    def forward(self, g, geometry, input_geometry, transposed=False):
        self.geometry, self.input_geometry, self.transposed = geometry, input_geometry, transposed
        return (_storage_to_output if transposed else _through_storage)(g, geometry, input_geometry)

    def backward(self, gg):
        return ((_through_storage if self.transposed else _storage_to_output)(gg, self.geometry, self.input_geometry),)

    def backward_graph(self, gg):
        return (AsStridedGrad.apply(gg, geometry=self.geometry, input_geometry=self.input_geometry,
                                    transposed=not self.transposed),)


def _storage_to_output(gg, geometry, input_geometry):
    """The transpose of :func:`_through_storage`: ``gg`` (laid out as the input) scatter-added into the storage,
    divided by how often the input sees each location, read back as ``geometry`` reads it."""
    xp = get_array_module(gg)
    out_pos, in_pos = _positions(xp, *geometry), _positions(xp, *input_geometry)
    n = _extent(out_pos, in_pos)
    storage = xp.zeros(n, dtype=gg.dtype)
    scatter_add(storage, in_pos.reshape(-1), gg.reshape(-1))
    if _overlaps(*input_geometry[:2]):
        seen = xp.bincount(in_pos.reshape(-1), minlength=n)
        storage = storage / xp.maximum(seen, 1).astype(gg.dtype)
    return storage[out_pos]


def _sizes(values, what):
    try:
        return tuple(int(v) for v in values)
    except TypeError:
        raise TypeError(f"as_strided(): argument '{what}' must be a sequence of ints, got {values!r}") from None


def _arguments(x, size, stride, storage_offset_):
    size, stride = _sizes(size, "size"), _sizes(stride, "stride")
    offset = storage_offset(x.data) if storage_offset_ is None else int(storage_offset_)
    _check(x.data, size, stride, offset)
    return size, stride, offset


def as_strided(input, size, stride, storage_offset=None):  # noqa: A002
    """``torch.as_strided``: a view of ``input``'s storage with these sizes and strides (in elements), starting at
    ``storage_offset`` (from the storage's start; default the input's own). In the graph; see the module's
    docstring for the storage and the gradient."""
    from distnn.autograd.versions import _share

    size, stride, offset = _arguments(input, size, stride, storage_offset)
    t = AsStrided.apply(input, size=size, stride=stride, offset=offset)
    if t._vc is None or t._vc is not input._vc:  # (a view of locations outside the input's own: a view all the same)
        _share(input, t)
        t.__dict__["_is_view"] = True
        t.__dict__["_view_of"] = input  # (its base: re-made from the base's base, see autograd/versions._remap)
        if t._node is not None:
            t._node.viewed_input = 0
    return t


def as_strided_copy(input, size, stride, storage_offset=None, *, out=None):  # noqa: A002
    """``torch.as_strided_copy``: :func:`as_strided` copied into a fresh row-major tensor."""
    from .view_copies import FreshCopy, write_out

    return write_out(FreshCopy.apply(as_strided(input, size, stride, storage_offset)), out, "as_strided_copy")


def as_strided_(self, size, stride, storage_offset=None):
    """``Tensor.as_strided_``: this tensor becomes ``as_strided(self, size, stride, storage_offset)`` (the same
    storage, new sizes, strides and offset), in place; its version is bumped."""
    size, stride, offset = _arguments(self, size, stride, storage_offset)
    return self._restride_("as_strided_", lambda x: as_strided(x, size, stride, offset))


class AsStridedScatter(Function):
    """``as_strided_scatter``: the input's storage copied, ``src`` written at the geometry's locations, read back
    with the input's geometry. Backward: the input gets the gradient except where ``src`` was written; ``src``
    gets the gradient read at its locations."""

    saves_tensors = False

    def forward(self, a, src, size, stride, offset):
        xp = get_array_module(a)
        self.input_geometry, self.geometry = _geometry(a), (size, stride, offset)
        in_pos, out_pos = _positions(xp, *self.input_geometry), _positions(xp, size, stride, offset)
        storage = xp.zeros(_extent(in_pos, out_pos), dtype=a.dtype)
        storage[in_pos] = a
        storage[out_pos] = src
        shape, strides, start = self.input_geometry  # (the input's layout, as PyTorch's clone keeps it)
        return strided_view(storage, shape, strides, start)

    def backward(self, g):
        xp = get_array_module(g)
        in_pos, out_pos = _positions(xp, *self.input_geometry), _positions(xp, *self.geometry)
        storage = xp.zeros(_extent(in_pos, out_pos), dtype=g.dtype)
        storage[in_pos] = g
        g_src = storage[out_pos] if self.needs_input_grad[1] else None
        storage[out_pos] = 0
        return storage[in_pos], g_src


def as_strided_scatter(input, src, size, stride, storage_offset=None):  # noqa: A002
    """``torch.as_strided_scatter``: a copy of ``input`` with ``src`` written where ``input.as_strided(size,
    stride, storage_offset)`` would read (``src`` must have exactly that size), laid out as ``input``."""
    size, stride, offset = _arguments(input, size, stride, storage_offset)
    if tuple(src.shape) != size:
        raise RuntimeError(f"expected src to have a size equal to the slice of self. src size = {list(src.shape)}, "
                           f"slice size = {list(size)}")
    if src.dtype != input.dtype:
        src = src.to(input.dtype)
    return AsStridedScatter.apply(input, src, size=size, stride=stride, offset=offset)


def slice_inverse(input, src, dim=0, start=None, end=None, step=1):  # noqa: A002
    """``torch.slice_inverse``: ``input``'s storage seen with ``src``'s geometry (sizes, strides, storage offset),
    the view a slice of ``src`` came from (PyTorch's functionalization uses it); ``dim``, ``start``, ``end`` and
    ``step`` name the slice and do not change the result, as in PyTorch."""
    return as_strided(input, tuple(src.shape), element_strides(src.data), storage_offset(src.data))


__all__ = ["as_strided", "as_strided_", "as_strided_copy", "as_strided_scatter", "slice_inverse"]
