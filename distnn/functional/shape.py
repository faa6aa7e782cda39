"""Shape ops: reshape, transpose, broadcast, squeeze/unsqueeze, flatten, repeat.

Indexing (:mod:`.indexing`), concat/stack/split (:mod:`.join`) and padding (:mod:`.padding`) have
modules of their own; their names are importable from here too."""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.grad_mode import is_grad_enabled
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._dims import dim_or_axis, wrap_dim
from .shape_checks import expanded_shape, infer_size, permutation, squeeze_dims
from .strides import cached_view_strides, torch_strides
# (the shape ops' neighbours, importable from here as before)
from . import indexing as _indexing, join as _join, padding as _padding
from .indexing import CopySlices, Gather, GetItem, SetItem, TakeAlong, getitem, scatter_add
from .join import Concat, Stack, cat, concat, split, stack
from .padding import PAD_MODES, Pad, PadIndexed, pad

__all__ = ["PAD_MODES", "BroadcastTo", "Concat", "CopySlices", "Gather", "GetItem", "Pad", "PadIndexed", "Repeat",
           "Reshape", "SetItem", "Squeeze", "SqueezeDim", "SqueezeDims", "Stack", "TakeAlong", "Transpose",
           "TransposeDims", "TransposeT", "Unsqueeze", "broadcast_to", "cat", "concat", "expand", "flatten", "getitem",
           "pad", "reshape", "scatter_add", "split", "squeeze", "stack", "transpose", "unsqueeze"]
_is_advanced, _numpy_bounds, _split_at = _indexing._is_advanced, _join._numpy_bounds, _join._split_at
_normalize_pad, _source_index = _padding._normalize_pad, _padding._source_index


class Reshape(Function):
    """``a`` with another shape; ``strides`` (in elements, PyTorch's ``computeStride`` of a view) are given to the
    dims of size 1 of numpy's view, where numpy's reshape sets strides of its own (the same memory either way)."""

    silences_float_warnings = False  # (computes no float: numpy's error state is left alone, ~0.25 us less)
    saves_tensors = False
    supports_complex = True

    def forward(self, a, shape, strides=None):
        self.shape = a.shape
        try:
            out = a.reshape(shape)
        except ValueError:
            raise ValueError(f"cannot reshape tensor of shape {tuple(a.shape)} ({a.size} elements) into {tuple(shape)}") from None
        if strides is not None:
            size = a.itemsize
            strides = tuple([s * size for s in strides])
            # (only where numpy's differ, on size-1 dims alone: else numpy copied, and its strides stay)
            if strides != out.strides and all(n == 1 or s == t for n, s, t in zip(out.shape, strides, out.strides)):
                out = get_array_module(a).lib.stride_tricks.as_strided(out, shape=out.shape, strides=strides)
        return out

    def torch_name_of_call(self) -> str:
        # a view: PyTorch's view (reshape of a tensor it can view); a copy is two nodes there (UnsafeView, Clone)
        # (``reshape`` of a tensor that records and is not row-major: PyTorch's names, see reshape_recorded)
        named = self.__dict__.get("reshape_name")
        if named is not None:
            return named
        return "ViewBackward0" if self.viewed_input is not None else "ReshapeBackward"

    def backward(self, g):
        return (g.reshape(self.shape),)


class Transpose(Function):
    """Dims permuted (``permute``, ``.T``); the subclasses below are the same op named as PyTorch's other nodes."""

    silences_float_warnings = False  # (computes no float: numpy's error state is left alone, ~0.25 us less)
    torch_name = "PermuteBackward0"
    saves_tensors = False
    supports_complex = True

    def forward(self, a, axes=None):
        if axes is None:
            self.axes = None
            return a.transpose()  # (the array's method: numpy's and cupy's, without np.transpose's dispatch)
        self.axes = axes = permutation(axes, a.ndim)  # (PyTorch's refusals: a dim missing, repeated or out of range)
        return a.transpose(axes)

    def backward(self, g):
        xp = get_array_module(g)
        if self.axes is None:
            return (xp.transpose(g),)
        inverse = [0] * len(self.axes)
        for i, ax in enumerate(self.axes):
            inverse[ax] = i
        return (xp.transpose(g, inverse),)


class TransposeDims(Transpose):
    """Two dims swapped (``transpose(d0, d1)``, ``mT``, ``swapaxes``)."""

    torch_name = "TransposeBackward0"


class TransposeT(Transpose):
    """``t()``: a matrix transposed, a vector or 0-d tensor as it is."""

    torch_name = "TBackward0"


class BroadcastTo(Function):
    """The engine's sum_to_shape is the whole backward."""

    silences_float_warnings = False  # (computes no float: numpy's error state is left alone, ~0.25 us less)
    torch_name = "ExpandBackward0"
    saves_tensors = False
    supports_complex = True

    def forward(self, a, shape):
        shape = tuple(shape)
        if -1 in shape:  # PyTorch's expand: -1 keeps that dim's size (not in a new leading dim)
            shape = expanded_shape(a.shape, shape)
        try:
            out = get_array_module(a).broadcast_to(a, shape)
        except ValueError:  # (PyTorch's refusal, in its words)
            expanded_shape(a.shape, shape)
            raise
        strides = _kept_size1_strides(a, out) if 1 in out.shape and out.size else out.strides
        if out.size == a.size and out.size and not getattr(out.flags, "writeable", True) and a.flags.writeable:
            # (no element seen twice, only dims of size 1 added: a writable view with the broadcast's strides, as
            # PyTorch's, whose in-place changes it allows; numpy's broadcast is read-only)
            return np.lib.stride_tricks.as_strided(a, out.shape, strides)
        if strides != out.strides:
            from .as_strided import restrided

            return restrided(out, strides)
        return out

    def backward(self, g):
        return (g,)


def _kept_size1_strides(a, out) -> tuple:
    """``out``'s (byte) strides with PyTorch's ``expand`` strides on its dims of size 1 that were the input's: the
    input's stride kept (numpy's broadcast gives them 0, which ``stride()`` reads as a new dim's; a size-1 dim is
    never stepped over, so only the reported strides change). PyTorch's ``ones(2, 1, 3)[:, :, :1].expand(2, 1, 3)``
    has strides (3, 3, 0), ``ones(1, 1).expand(1, 5)`` (1, 0)."""
    lead = out.ndim - a.ndim
    return tuple(a.strides[i - lead] if size == 1 and i >= lead else step
                 for i, (size, step) in enumerate(zip(out.shape, out.strides)))


class Squeeze(Function):
    """Size-1 dims dropped: every one (``squeeze()``); ``SqueezeDim`` and ``SqueezeDims``, named as PyTorch's
    nodes, for a dim or dims given."""

    silences_float_warnings = False  # (computes no float: numpy's error state is left alone, ~0.25 us less)
    torch_name = "SqueezeBackward0"
    saves_tensors = False
    supports_complex = True

    def forward(self, a, axis=None):
        self.shape = a.shape
        if axis is not None:
            axes = squeeze_dims(axis, a.ndim)
            axes = tuple(ax for ax in axes if a.ndim and a.shape[ax] == 1)  # PyTorch: others are left alone
            return a.squeeze(axis=axes) if axes else a
        return a.squeeze()

    def backward(self, g):
        return (g.reshape(self.shape),)


class SqueezeDim(Squeeze):
    torch_name = "SqueezeBackward1"


class SqueezeDims(Squeeze):
    torch_name = "SqueezeBackward2"


class Unsqueeze(Function):
    silences_float_warnings = False  # (computes no float: numpy's error state is left alone, ~0.25 us less)
    torch_name = "UnsqueezeBackward0"
    saves_tensors = False
    supports_complex = True

    def forward(self, a, axis):
        self.shape = a.shape
        d = wrap_dim(axis, a.ndim + 1, "unsqueeze")
        # (indexing with None, not numpy's expand_dims: the new dim gets stride 0, which stride() reports as
        # PyTorch's unsqueeze has it; expand_dims' reshape may give it another)
        return a[(slice(None),) * d + (None,)]

    def backward(self, g):
        return (g.reshape(self.shape),)


def flatten(a, start_dim=0, end_dim=-1):
    """Dims ``start_dim`` .. ``end_dim`` (PyTorch's: out of range is an IndexError, ``start_dim`` after
    ``end_dim`` a RuntimeError) merged into one; a 0-d tensor becomes (1,). Nothing to merge
    (``start_dim == end_dim``): the tensor itself, as PyTorch returns it (so an in-place change of its shape,
    ``x.flatten(1, 1).unsqueeze_(0)``, is ``x``'s)."""
    shape = a.shape
    start, end = wrap_dim(start_dim, len(shape), "flatten"), wrap_dim(end_dim, len(shape), "flatten")
    if start > end:
        raise RuntimeError(f"flatten() has invalid args: start_dim cannot come after end_dim (start_dim "
                           f"{start_dim}, end_dim {end_dim}, a tensor of shape {tuple(shape)})")
    if not shape:
        return Reshape.apply(a, shape=(1,))
    if start == end:
        return a
    n = 1
    for s in shape[start : end + 1]:
        n *= s
    return reshape(a, tuple(shape[:start]) + (n,) + tuple(shape[end + 1 :]))  # (PyTorch's flatten is a reshape)


# ---------------------------------------------------------------- public wrappers


def reshape(a, shape):
    """``a`` with ``shape`` (one size may be -1), a view where numpy's reshape can make one, else a copy; sizes
    refused as PyTorch refuses them (RuntimeErrors: a second -1, a negative size, a product that is not the
    number of elements, -1 of an empty tensor)."""
    data = a.data if isinstance(a, Tensor) else a
    shape = infer_size(shape, data.size if hasattr(data, "size") else np.size(data))
    if getattr(a, "requires_grad", False) and not data.flags.c_contiguous and data.size and is_grad_enabled():
        from .reshape_recorded import reshape_recorded  # (PyTorch's nodes: ReshapeAlias, or UnsafeView of a Clone)

        return reshape_recorded(a, data, shape)
    if 1 in shape and not data.flags.c_contiguous:  # (a view: PyTorch's strides for its dims of size 1)
        return Reshape.apply(a, shape=shape, strides=cached_view_strides(data.shape, torch_strides(data), shape))
    return Reshape.apply(a, shape=shape)


def transpose(a, *dims, axes=None):
    """As ``Tensor.transpose``: no axes reverse them, two swap them (PyTorch's ``transpose(x, 0, 1)``),
    else a permutation (one tuple, or numpy's ``axes=``)."""
    if getattr(a, "is_sparse", False) is True and axes is None:  # (a sparse COO tensor: distnn.sparse.transpose)
        return a.transpose(*dims)
    if not isinstance(a, Tensor):
        a = Tensor(a)
    return a.transpose(*dims) if axes is None else a.transpose(tuple(axes))


def broadcast_to(a, shape):
    return BroadcastTo.apply(a, shape=tuple(shape))


expand = broadcast_to


def squeeze(a, dim=None, *, axis=None):
    """Drop ``dim`` (or every axis) where it has size 1; an axis of another size is left alone, as in PyTorch."""
    axis = dim_or_axis(dim, axis)
    cls = Squeeze if axis is None else SqueezeDims if isinstance(axis, (tuple, list)) else SqueezeDim
    return cls.apply(a, axis=axis)


def unsqueeze(a, dim=None, *, axis=None):
    """A new axis of size 1 at ``dim``."""
    axis = dim_or_axis(dim, axis)
    if axis is None:
        raise TypeError("unsqueeze() missing its dim")
    return Unsqueeze.apply(a, axis=axis)


class Repeat(Function):
    """PyTorch's ``x.repeat(*sizes)`` (numpy's ``tile``); backward sums the copies."""

    torch_name = "RepeatBackward0"
    saves_tensors = False
    supports_complex = True

    def forward(self, a, sizes):
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < a.ndim:
            raise ValueError(f"repeat: {len(sizes)} sizes for a tensor of {a.ndim} dimensions (need at least "
                             f"{a.ndim})")
        self.shape = (1,) * (len(sizes) - a.ndim) + tuple(a.shape)  # (extra sizes add leading dims)
        self.sizes = sizes
        return get_array_module(a).tile(a.reshape(self.shape), sizes)

    def backward(self, g):
        split = []
        for r, s in zip(self.sizes, self.shape):
            split += [r, s]
        summed = g.reshape(split).sum(axis=tuple(range(0, len(split), 2)))
        return (summed,)  # (the engine's sum_to_shape drops the leading dims the sizes added)
