"""Indexing ops: ``x[index]`` (basic and advanced) and its assignment, gather and take-along, with the
scatter-add their backward uses."""
from __future__ import annotations

import numpy as np

from distnn.autograd.copy_node import cast_gradient
from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, open_grid

from .empty_view_offset import at_torch_offset
from .view_index_kinds import ComplexParts, PairsAsComplex, ScalarBroadcast
from .index_layout import torch_index_layout


def _is_advanced(index):
    items = index if isinstance(index, tuple) else (index,)
    return any(hasattr(i, "shape") and getattr(i, "ndim", 0) > 0 or isinstance(i, list) for i in items)


def scatter_add(out, index, values) -> None:
    """``out[index] += values`` with repeated indices adding up (numpy's ``add.at``, cupyx's ``scatter_add``)."""
    if get_array_module(out) is np:
        np.add.at(out, index, values)
    else:
        import cupyx

        cupyx.scatter_add(out, index, values)


class DiagonalView:
    """An "index" that picks diagonal ``offset`` of dims ``dim1``, ``dim2`` as a new last dim: a strided view of
    the array (PyTorch's ``diagonal``), not numpy's read-only one. It stands where GetItem and SetItem take an
    index, so that a diagonal is a view as indexing ones are (an in-place change of it reaches its base, also
    while recording: distnn.autograd.inplace re-derives views through their index)."""

    __slots__ = ("offset", "dim1", "dim2")

    def __init__(self, offset, dim1, dim2):
        self.offset, self.dim1, self.dim2 = offset, dim1, dim2

    def of(self, a):
        """The diagonal of ``a``, a view of its memory (writable where ``a`` is)."""
        xp = get_array_module(a)
        d1, d2, offset = self.dim1, self.dim2, self.offset
        first = [slice(None)] * a.ndim
        first[d1], first[d2] = slice(max(-offset, 0), None), slice(max(offset, 0), None)
        corner = a[tuple(first)]  # (the diagonal starts at its corner)
        rest = [d for d in range(a.ndim) if d not in (d1, d2)]
        n = max(0, min(corner.shape[d1], corner.shape[d2]))
        shape = tuple(corner.shape[d] for d in rest) + (n,)
        strides = tuple(corner.strides[d] for d in rest) + (corner.strides[d1] + corner.strides[d2],)
        return xp.lib.stride_tricks.as_strided(corner, shape=shape, strides=strides)

    def take(self, a):
        return self.of(a).copy()

    def grad_dtype(self, base_dtype, g_dtype):
        return g_dtype

    def add_into(self, out, g):
        self.of(out)[...] = g  # (``out`` is zeros: no element of a diagonal is seen twice)

    def put(self, out, v):
        self.of(out)[...] = v

    def __repr__(self):
        return f"diagonal(offset={self.offset}, dim1={self.dim1}, dim2={self.dim2})"


class UnfoldView:
    """An "index" that picks ``Tensor.unfold``'s windows: every ``size`` elements along ``dim``, ``step`` apart, as
    a new last dim (``dim`` becomes the number of windows); a strided view of the array, as PyTorch's, standing
    where GetItem and SetItem take an index as :class:`DiagonalView` does. Windows that overlap (``step < size``)
    are read-only on numpy, as an ``expand`` is: an element seen twice cannot take two values. (PyTorch allows
    that write, with a result that depends on its loop order: ``add_(1)`` adds 1 as often as the element is
    seen, in some windows.)"""

    __slots__ = ("dim", "size", "step")

    def __init__(self, dim, size, step):
        self.dim, self.size, self.step = dim, size, step

    def of(self, a):
        """The windows of ``a``, a view of its memory (writable where ``a`` is and the windows do not overlap)."""
        xp = get_array_module(a)
        d, size, step = self.dim, self.size, self.step
        n = (a.shape[d] - size) // step + 1
        shape = a.shape[:d] + (n,) + a.shape[d + 1:] + (size,)
        strides = a.strides[:d] + (a.strides[d] * step,) + a.strides[d + 1:] + (a.strides[d],)
        writeable = (n < 2 or step >= size) and getattr(a.flags, "writeable", True)
        if xp is np:
            return np.lib.stride_tricks.as_strided(a, shape=shape, strides=strides, writeable=writeable)
        return xp.lib.stride_tricks.as_strided(a, shape=shape, strides=strides)  # (cupy: no read-only arrays)

    def add_into(self, out, g):
        """``out`` (zeros of the base's shape) += ``g`` (the windows' gradient): an element in k windows gets
        the sum of its k gradients (one slice per offset in the window: no per-element loop)."""
        d, n = self.dim, g.shape[self.dim]
        for k in range(self.size):
            out[(slice(None),) * d + (slice(k, k + self.step * (n - 1) + 1, self.step),)] += g[..., k]

    def take(self, a):
        return self.of(a).copy()

    def grad_dtype(self, base_dtype, g_dtype):
        return g_dtype

    def put(self, out, v):
        self.of(out)[...] = v

    def __repr__(self):
        return f"unfold(dim={self.dim}, size={self.size}, step={self.step})"


#: the indexes that are views of their own (``of``, ``take``, ``put``, ``add_into``), not numpy indices
VIEW_INDEXES = (DiagonalView, UnfoldView, ComplexParts, PairsAsComplex, ScalarBroadcast)


def _is_integer(item) -> bool:
    return isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)) or (
        getattr(item, "ndim", None) == 0 and getattr(item, "dtype", np.dtype(bool)).kind in "iu")


def _torch_index_node(index, shape) -> str:
    """PyTorch's node for ``x[index]`` on a tensor of ``shape``: it applies the items left to right (select for
    an int, slice, unsqueeze for None) and any advanced index last, and the last op names the node; in a tuple
    a slice that keeps its whole dim records nothing. Nothing recorded: AliasBackward0."""
    kind = type(index)  # (the common indexes first: backward asks as it frees the node, see Function.release)
    if kind is int:
        return "SelectBackward0"
    if kind is slice:
        return "SliceBackward0"
    if kind in VIEW_INDEXES:
        return "DiagonalBackward0" if kind is DiagonalView else "UnfoldBackward0"
    if _is_advanced(index) or any(isinstance(i, (bool, np.bool_)) or getattr(i, "dtype", None) == np.bool_
                                  for i in (index if isinstance(index, tuple) else (index,))):
        return "IndexBackward0"
    if not isinstance(index, tuple):  # (a lone slice is always recorded, even x[:])
        return ("SelectBackward0" if _is_integer(index) else "SliceBackward0" if isinstance(index, slice)
                else "UnsqueezeBackward0" if index is None else "AliasBackward0")
    last, dim = "AliasBackward0", 0  # (dim: the input's dim the item indexes)
    explicit = sum(1 for i in index if i is not None and i is not Ellipsis)
    for item in index:
        if item is None:
            last = "UnsqueezeBackward0"
        elif item is Ellipsis:
            dim += len(shape) - explicit
        else:
            if not isinstance(item, slice):
                last = "SelectBackward0"
            elif dim >= len(shape) or item.indices(shape[dim]) != (0, shape[dim], 1):
                last = "SliceBackward0"
            dim += 1
    return last


class GetItem(Function):
    """Basic and advanced indexing; backward scatter-adds (repeated indices accumulate)."""

    silences_float_warnings = False  # (computes no float: numpy's error state is left alone, ~0.25 us less)
    saves_tensors = False
    supports_complex = True

    def forward(self, a, index):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        if type(index) in VIEW_INDEXES:
            return index.of(a)
        try:
            out = a[index]
        except IndexError as e:
            raise IndexError(f"index {index!r} is invalid for tensor of shape {tuple(a.shape)}: {e}") from None
        if isinstance(out, np.generic):  # numpy's a[i, j] is a scalar copy: PyTorch's is a 0-d view, ``e *= w`` writes a
            out = a[(index if isinstance(index, tuple) else (index,)) + (Ellipsis,)]
        elif _is_advanced(index):  # (a copy, laid out as PyTorch's, where numpy's a[:, [0, 2]] is column-major, so
            out = torch_index_layout(a, index, out)  # that view() allows what PyTorch's allows)
        elif not out.size:  # (numpy starts an empty slice at offset 0, PyTorch's at the slice's start)
            out = at_torch_offset(a, index, out)
        return out

    # (early stop: an advanced index, a list too, is a tensor PyTorch's IndexBackward0 saves; a slice, an int or a
    # DiagonalView is metadata of its SliceBackward0, SelectBackward0, DiagonalBackward0)
    torch_saved = {"index": _is_advanced}

    def torch_name_of_call(self) -> str:
        """The node PyTorch records last for ``x[index]`` (read at ``name()`` time, not on the forward path)."""
        return _torch_index_node(self.index, self.shape)

    def backward(self, g):
        xp = get_array_module(g)
        index = self.index
        if type(index) in VIEW_INDEXES:
            out = xp.zeros(self.shape, dtype=index.grad_dtype(self.dtype, g.dtype))
            index.add_into(out, g)
            return (out,)
        out = xp.zeros(self.shape, dtype=g.dtype)
        if _is_advanced(self.index):
            scatter_add(out, self.index, g)
        else:
            out[self.index] = g
        return (out,)


class AsStridedBackward0(GetItem):
    """The node of a view re-derived from its base after an in-place change of their memory
    (distnn.autograd.inplace): PyTorch regenerates such a view's node from its base with ``as_strided``, whatever
    view op made it, so its name, and its type's, is AsStridedBackward0. The gradient is GetItem's."""

    torch_name = "AsStridedBackward0"
    torch_name_of_call = None


class ViewAsRealBackward0(AsStridedBackward0):
    """The node of a ``view_as_real`` view re-derived from its complex base: PyTorch re-makes that one with its own
    view function (no strides of the base's dtype can name it), so it keeps the op's name."""

    torch_name = "ViewAsRealBackward0"


class ViewAsComplexBackward0(AsStridedBackward0):
    """As :class:`ViewAsRealBackward0`, for a ``view_as_complex`` view of a real base."""

    torch_name = "ViewAsComplexBackward0"


class SetItem(Function):
    """``x[index] = v`` while recording: a copy of ``a`` with ``v`` written at ``index``.

    Backward: ``a`` gets the gradient with the overwritten positions zeroed; ``v``
    gets the gradient at the positions written (summed over broadcast axes by the engine).
    """

    saves_tensors = False
    supports_complex = True  # (routes g, reading no operand: right for complex as written; a real v gets the real
    # part of its gradient, complex_grad's rule, as PyTorch's)

    def forward(self, a, v, index):
        self.index, self.dtype, self.value_dtype = index, a.dtype, getattr(v, "dtype", None)
        out = a.copy()
        if type(index) in VIEW_INDEXES:
            index.put(out, v)
            return out
        try:
            out[index] = v
        except (IndexError, ValueError) as e:
            raise type(e)(f"cannot assign a value of shape {tuple(getattr(v, 'shape', ()))} to index {index!r} of "
                          f"a tensor of shape {tuple(a.shape)}: {e}") from None
        return out

    def backward(self, g):
        ga = gv = None
        diagonal = type(self.index) in VIEW_INDEXES  # (unfold's too: SetItem's only where its windows do not overlap)
        g = get_array_module(g).asarray(g)  # (a 0-d tensor's gradient may come as a numpy scalar: no item assignment)
        if g.dtype != self.dtype:  # (in the written tensor's dtype, as PyTorch's engine hands it: the value's part
            g = g.astype(self.dtype)  # is cast from that, rounded as PyTorch's)
        if self.needs_input_grad[0]:
            ga = g.copy()
            if diagonal:
                self.index.put(ga, 0)
            else:
                ga[self.index] = 0
        if self.needs_input_grad[1]:
            gv = self.index.take(g) if diagonal else g[self.index]
            if self.value_dtype is not None:  # (cast to the value's dtype before the engine sums a broadcast
                gv = cast_gradient(gv, self.value_dtype)  # value, PyTorch's order: copy_'s CopyBackwards)
        return ga, gv


class CopySlices(SetItem):
    """The graph node of a base whose memory an in-place change already wrote at ``index`` (PyTorch's
    CopySlices): SetItem's gradients, and no forward work (its output is the base's memory as is).
    Recorded by distnn.autograd.inplace, never applied to compute a value."""

    torch_name = "torch::autograd::CopySlices"

    def forward(self, a, v, index):
        self.index, self.dtype, self.value_dtype = index, a.dtype, getattr(v, "dtype", None)
        return a


class IndexPut(CopySlices):
    """``t[index] = v`` with an index of tensors, lists or masks only (beside ``...`` and full slices), on a tensor
    that is not a view: PyTorch writes it with ``index_put_`` on ``t`` itself and names the node so (any int or
    partial slice first makes a view, whose base takes CopySlices)."""

    torch_name = "IndexPutBackward0"


def index_put_form(index) -> bool:
    """Whether ``t[index] = v`` is PyTorch's ``index_put_`` on ``t`` itself (:class:`IndexPut`): an advanced
    index, every other part ``...`` or ``:``."""
    items = index if isinstance(index, tuple) else (index,)
    advanced = False
    for item in items:
        if item is Ellipsis or (isinstance(item, slice) and item == slice(None)):
            continue
        if isinstance(item, list) or (hasattr(item, "shape") and not isinstance(item, (int, np.integer))):
            advanced = advanced or getattr(item, "ndim", 1) > 0 or getattr(item, "dtype", None) == np.bool_
            continue
        return False
    return advanced


def getitem(a, index):
    return a[index] if isinstance(a, Tensor) else GetItem.apply(a, index=index)


class Gather(Function):
    """PyTorch's ``x.gather(dim, index)``: ``out[i][j] = x[index[i][j]][j]`` for dim 0 (and so on);
    backward scatter-adds (an index used twice gets both gradients)."""

    torch_name = "GatherBackward0"
    reads = ((0, 1), ())  # (the index, which backward scatters by, and the input, as PyTorch's saves)

    def forward(self, a, index, dim):
        xp = get_array_module(a)
        if index.dtype.kind not in "iu":
            raise TypeError(f"gather: index must hold integers, got {index.dtype}")
        if index.ndim != a.ndim or not -a.ndim <= dim < a.ndim:
            raise IndexError(f"gather: index of {index.ndim} dimensions and dim {dim} for a tensor of shape "
                             f"{tuple(a.shape)} (both must have its {a.ndim} dimensions)")
        d = dim % a.ndim
        if any(index.shape[k] > a.shape[k] for k in range(a.ndim) if k != d):
            raise IndexError(f"gather: index of shape {tuple(index.shape)} is larger than the tensor's "
                             f"{tuple(a.shape)} outside dim {d}")
        if index.size and (int(index.min()) < 0 or int(index.max()) >= a.shape[d]):
            raise IndexError(f"gather: indices must be in [0, {a.shape[d]}) along dim {d}, got "
                             f"[{int(index.min())}, {int(index.max())}]")
        self.dim, self.shape, self.index = d, a.shape, index
        # (an index smaller than the tensor outside dim takes the leading part, as PyTorch)
        part = tuple(slice(None) if k == d else slice(0, index.shape[k]) for k in range(a.ndim))
        return xp.take_along_axis(a[part], index, axis=d)

    def backward(self, g):
        xp = get_array_module(g)
        out = xp.zeros(self.shape, dtype=g.dtype)
        grid = open_grid(xp, self.index.shape)
        grid[self.dim] = self.index
        scatter_add(out, tuple(grid), g)
        return out, None


class TakeAlong(Function):
    """``take_along_axis(a, index, dim)`` for an index the op computed itself that picks each place at most
    once along ``dim`` (a sort's, a top-k's, ``max(x, dim)``'s): the gradient is written back to those places.
    Its backward reads only that index, as PyTorch's sort, topk and ``max.dim`` save only their indices, so
    an in-place change of ``a`` afterwards backpropagates."""

    saves_tensors = False  # (the index is the op's own array, no caller's tensor to check)

    def forward(self, a, index, dim):
        self.index, self.dim, self.shape = index, dim, a.shape
        return get_array_module(a).take_along_axis(a, index, axis=dim)

    def backward(self, g):
        xp = get_array_module(g)
        out = xp.zeros(self.shape, dtype=g.dtype)
        grid = open_grid(xp, self.index.shape)
        grid[self.dim] = self.index
        out[tuple(grid)] = g
        return out, None


class TakeAlongReduced(TakeAlong):
    """TakeAlong of an index with one place along ``dim`` (the values of ``max(x, dim)``, ``kthvalue``, ``median``,
    ``mode``), ``dim`` dropped unless ``keepdim``: one node, as PyTorch's (MaxBackward0...), named after ``op``."""

    _TORCH_NAMES = {"max": "MaxBackward0", "min": "MinBackward0", "kthvalue": "KthvalueBackward0",
                    "median": "MedianBackward1", "nanmedian": "NanmedianBackward1", "mode": "ModeBackward0"}

    def forward(self, a, index, dim, keepdim, op):
        self.keepdim, self.op = keepdim, op
        out = TakeAlong.forward(self, a, index, dim)
        return out if keepdim else out.squeeze(dim)

    def torch_name_of_call(self) -> str:
        return self._TORCH_NAMES[self.op]

    def backward(self, g):
        if not self.keepdim:
            g = get_array_module(g).expand_dims(g, self.dim)
        return TakeAlong.backward(self, g)
