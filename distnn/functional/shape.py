"""Shape ops: reshape, transpose, broadcast, squeeze, indexing, concat/stack/split, pad."""
from __future__ import annotations

import numbers

import numpy as np

from distnn.autograd.dtype_rules import torch_operands
from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._dims import dim_or_axis, wrap_dim


class Reshape(Function):
    saves_tensors = False

    def forward(self, a, shape):
        self.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"cannot reshape tensor of shape {tuple(a.shape)} ({a.size} elements) into {tuple(shape)}") from None

    def backward(self, g):
        return (g.reshape(self.shape),)


class Transpose(Function):
    saves_tensors = False

    def forward(self, a, axes=None):
        xp = get_array_module(a)
        if axes is not None:
            axes = tuple(ax % a.ndim for ax in axes)
            if sorted(axes) != list(range(a.ndim)):
                raise ValueError(f"axes {axes} are not a permutation of the {a.ndim} dimensions of shape {a.shape}")
        self.axes = axes
        return xp.transpose(a, axes)

    def backward(self, g):
        xp = get_array_module(g)
        if self.axes is None:
            return (xp.transpose(g),)
        inverse = [0] * len(self.axes)
        for i, ax in enumerate(self.axes):
            inverse[ax] = i
        return (xp.transpose(g, inverse),)


class BroadcastTo(Function):
    """The engine's sum_to_shape is the whole backward."""

    saves_tensors = False

    def forward(self, a, shape):
        shape = tuple(shape)
        if -1 in shape:  # PyTorch's expand: -1 keeps that dim's size (not in a new leading dim)
            lead = len(shape) - a.ndim
            if lead < 0 or -1 in shape[:lead]:
                raise ValueError(f"cannot broadcast tensor of shape {tuple(a.shape)} to {shape}: -1 (keep the size) "
                                 f"is allowed only for one of its {a.ndim} existing dims, the last ones")
            shape = shape[:lead] + tuple(a.shape[i] if s == -1 else s for i, s in enumerate(shape[lead:]))
        try:
            return get_array_module(a).broadcast_to(a, shape)
        except ValueError:
            raise ValueError(f"cannot broadcast tensor of shape {tuple(a.shape)} to {shape}") from None

    def backward(self, g):
        return (g,)


class Squeeze(Function):
    saves_tensors = False

    def forward(self, a, axis=None):
        self.shape = a.shape
        if axis is not None:
            axes = (axis,) if isinstance(axis, int) else tuple(axis)
            axes = tuple(ax for ax in axes if a.shape[ax] == 1)  # PyTorch: non-1 axes are left alone
            return a.squeeze(axis=axes) if axes else a
        return a.squeeze()

    def backward(self, g):
        return (g.reshape(self.shape),)


class Unsqueeze(Function):
    saves_tensors = False

    def forward(self, a, axis):
        self.shape = a.shape
        return get_array_module(a).expand_dims(a, axis)

    def backward(self, g):
        return (g.reshape(self.shape),)


def flatten(a, start_dim=0, end_dim=-1):
    """Dims ``start_dim`` .. ``end_dim`` (PyTorch's: out of range is an IndexError, ``start_dim`` after
    ``end_dim`` a ValueError) merged into one; a 0-d tensor becomes (1,)."""
    shape = a.shape
    start, end = wrap_dim(start_dim, len(shape), "flatten"), wrap_dim(end_dim, len(shape), "flatten")
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} cannot come after end_dim {end_dim} "
                         f"(a tensor of shape {tuple(shape)})")
    if not shape:
        return Reshape.apply(a, shape=(1,))
    n = 1
    for s in shape[start : end + 1]:
        n *= s
    return Reshape.apply(a, shape=tuple(shape[:start]) + (n,) + tuple(shape[end + 1 :]))


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


class GetItem(Function):
    """Basic and advanced indexing; backward scatter-adds (repeated indices accumulate)."""

    saves_tensors = False

    def forward(self, a, index):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        try:
            out = a[index]
        except IndexError as e:
            raise IndexError(f"index {index!r} is invalid for tensor of shape {tuple(a.shape)}: {e}") from None
        if isinstance(out, np.generic):  # numpy's a[i, j] is a scalar copy: PyTorch's is a 0-d view, ``e *= w`` writes a
            out = a[(index if isinstance(index, tuple) else (index,)) + (Ellipsis,)]
        return out

    def backward(self, g):
        xp = get_array_module(g)
        out = xp.zeros(self.shape, dtype=g.dtype)
        if _is_advanced(self.index):
            scatter_add(out, self.index, g)
        else:
            out[self.index] = g
        return (out,)


class SetItem(Function):
    """``x[index] = v`` while recording: a copy of ``a`` with ``v`` written at ``index``.

    Backward: ``a`` gets the gradient with the overwritten positions zeroed; ``v``
    gets the gradient at the positions written (summed over broadcast axes by the engine).
    """

    saves_tensors = False

    def forward(self, a, v, index):
        self.index = index
        out = a.copy()
        try:
            out[index] = v
        except (IndexError, ValueError) as e:
            raise type(e)(f"cannot assign a value of shape {tuple(getattr(v, 'shape', ()))} to index {index!r} of "
                          f"a tensor of shape {tuple(a.shape)}: {e}") from None
        return out

    def backward(self, g):
        ga = gv = None
        if self.needs_input_grad[0]:
            ga = g.copy()
            ga[self.index] = 0
        if self.needs_input_grad[1]:
            gv = g[self.index]
        return ga, gv


class CopySlices(SetItem):
    """The graph node of a base whose memory an in-place change already wrote at ``index`` (PyTorch's
    CopySlices): SetItem's gradients, and no forward work (its output is the base's memory as is).
    Recorded by distnn.autograd.inplace, never applied to compute a value."""

    def forward(self, a, v, index):
        self.index = index
        return a


class Concat(Function):
    saves_tensors = False

    def forward(self, *arrays, axis=0):
        xp = get_array_module(*arrays)
        self.axis = axis
        self.sizes = [a.shape[axis] for a in arrays]
        try:
            return xp.concatenate(arrays, axis=axis)
        except ValueError:
            raise ValueError(f"concat along axis {axis}: shapes {[tuple(a.shape) for a in arrays]} do not match") from None

    def backward(self, g):
        xp = get_array_module(g)
        bounds = []
        total = 0
        for s in self.sizes[:-1]:
            total += s
            bounds.append(total)
        return tuple(xp.split(g, bounds, axis=self.axis))


class Stack(Function):
    saves_tensors = False

    def forward(self, *arrays, axis=0):
        xp = get_array_module(*arrays)
        self.axis = axis
        try:
            return xp.stack(arrays, axis=axis)
        except ValueError:
            raise ValueError(f"stack: shapes {[tuple(a.shape) for a in arrays]} must all be equal") from None

    def backward(self, g):
        xp = get_array_module(g)
        n = g.shape[self.axis]
        return tuple(xp.take(g, i, axis=self.axis) for i in range(n))


class Pad(Function):
    """Constant padding with numpy's ``pad_width`` convention; a negative amount crops (as PyTorch)."""

    saves_tensors = False

    def forward(self, a, pad_width, value=0.0):
        xp = get_array_module(a)
        pw = _normalize_pad(pad_width, a.ndim)
        self.crop = tuple(slice(max(-lo, 0), n - max(-hi, 0)) for (lo, hi), n in zip(pw, a.shape))
        kept = a[self.crop]
        if any(n - max(-lo, 0) - max(-hi, 0) < 0 for (lo, hi), n in zip(pw, a.shape)):
            raise ValueError(f"pad: cropping {pad_width} removes more than the shape {tuple(a.shape)} has")
        pos = [(max(lo, 0), max(hi, 0)) for lo, hi in pw]
        self.slices = tuple(slice(lo, lo + n) for (lo, _), n in zip(pos, kept.shape))
        self.shape, self.cropped = a.shape, any(lo < 0 or hi < 0 for lo, hi in pw)
        return xp.pad(kept, pos, mode="constant", constant_values=value)

    def backward(self, g):
        inner = g[self.slices]
        if not self.cropped:
            return (inner,)
        out = get_array_module(g).zeros(self.shape, dtype=g.dtype)  # (cropped cells get no gradient)
        out[self.crop] = inner
        return (out,)


def _source_index(mode, n, lo, hi):
    """For a (lo, hi)-padded axis of size n in ``mode``, the input index each output cell copies (PyTorch's
    rules; a negative amount crops): reflect mirrors about the edge cell, replicate repeats it, circular
    wraps around the kept cells. None where the amount is out of PyTorch's range."""
    q = np.arange(-lo, n + hi)  # the output's cells in input coordinates
    if q.size == 0:  # cropped to nothing: the empty result (PyTorch refuses most of these; where it takes one,
        # its gradient is garbage)
        return q
    if mode == "replicate":
        return np.clip(q, 0, n - 1)
    if mode == "reflect":
        if max(lo, hi) >= n:
            return None
        return np.where(q < 0, -q, np.where(q >= n, 2 * (n - 1) - q, q))
    start, kept = max(-lo, 0), n - max(-lo, 0) - max(-hi, 0)  # circular
    if max(lo, hi) > n or kept < 1:  # (PyTorch's bound is the size, not the size kept)
        return None
    return start + (np.arange(n + lo + hi) - max(lo, 0)) % kept


class PadIndexed(Function):
    """PyTorch's reflect, replicate and circular padding: along each padded axis the output copies input
    cells (a gather); backward adds each output cell's gradient back to the cell it copies."""

    saves_tensors = False

    def forward(self, a, pairs, mode):
        xp = get_array_module(a)
        self.steps = []  # (axis, index, size before), in the order applied
        out = a
        for axis, (lo, hi) in enumerate(pairs):
            if lo == 0 and hi == 0:
                continue
            n = out.shape[axis]
            idx = _source_index(mode, n, lo, hi) if n + lo + hi >= 0 and n >= 1 else None
            if idx is None:
                raise ValueError(f"pad: padding ({lo}, {hi}) of a dimension of size {n} is out of range for "
                                 f"mode={mode!r} (reflect: each amount < the size; circular: each <= the size, "
                                 f"and a cell kept)")
            idx = xp.asarray(idx)
            self.steps.append((axis, idx, n))
            out = xp.take(out, idx, axis=axis)
        return out

    def backward(self, g):
        xp = get_array_module(g)
        for axis, idx, n in reversed(self.steps):
            shape = g.shape[:axis] + (n,) + g.shape[axis + 1:]
            gin = xp.zeros(shape, dtype=g.dtype)
            scatter_add(gin, (slice(None),) * axis + (idx,), g)
            g = gin
        return (g,)


def _normalize_pad(pad_width, ndim):
    if isinstance(pad_width, int):
        return [(pad_width, pad_width)] * ndim
    pw = list(pad_width)
    if pw and isinstance(pw[0], int):
        if len(pw) == 2:
            return [tuple(pw)] * ndim
        raise ValueError(f"pad_width {pad_width!r} is not an int, a (before, after) pair, or one pair per axis")
    if len(pw) != ndim:
        raise ValueError(f"pad_width has {len(pw)} pairs but the tensor has {ndim} dimensions")
    return [tuple(p) for p in pw]


# ---------------------------------------------------------------- public wrappers
def reshape(a, shape):
    return Reshape.apply(a, shape=tuple(shape))


def transpose(a, *dims, axes=None):
    """As ``Tensor.transpose``: no axes reverse them, two swap them (PyTorch's ``transpose(x, 0, 1)``),
    else a permutation (one tuple, or numpy's ``axes=``)."""
    if not isinstance(a, Tensor):
        a = Tensor(a)
    return a.transpose(*dims) if axes is None else a.transpose(tuple(axes))


def broadcast_to(a, shape):
    return BroadcastTo.apply(a, shape=tuple(shape))


expand = broadcast_to


def squeeze(a, dim=None, *, axis=None):
    """Drop ``dim`` (or every axis) where it has size 1; an axis of another size is left alone, as in PyTorch."""
    return Squeeze.apply(a, axis=dim_or_axis(dim, axis))


def unsqueeze(a, dim=None, *, axis=None):
    """A new axis of size 1 at ``dim``."""
    axis = dim_or_axis(dim, axis)
    if axis is None:
        raise TypeError("unsqueeze() missing its dim")
    return Unsqueeze.apply(a, axis=axis)


def concat(tensors, dim=None, *, axis=None):
    """Join ``tensors`` along an existing axis (``dim`` as ``torch.cat``, or ``axis`` as numpy; default 0)."""
    axis = dim_or_axis(dim, axis)
    # (PyTorch's result dtype: see torch_operands)
    return Concat.apply(*torch_operands(*tensors), axis=0 if axis is None else axis)


cat = concat


def stack(tensors, dim=None, *, axis=None):
    """Join ``tensors`` along a new axis (``dim`` as ``torch.stack``, or ``axis`` as numpy; default 0)."""
    axis = dim_or_axis(dim, axis)
    return Stack.apply(*torch_operands(*tensors), axis=0 if axis is None else axis)


def split(a, split_size_or_sections, dim=0, *, axis=None):
    """PyTorch's split: pieces of ``split_size_or_sections`` along ``dim`` (an int: that size, the last
    piece smaller; a list: the sizes). With numpy's keyword ``axis=``, numpy's meaning: an int number
    of equal sections, or a list of split points."""
    if axis is not None:
        return _split_at(a, _numpy_bounds(a.shape[axis], split_size_or_sections, axis), axis)
    n = a.shape[dim]
    if isinstance(split_size_or_sections, numbers.Integral):
        split_size_or_sections = int(split_size_or_sections)
        if split_size_or_sections <= 0:
            raise ValueError(f"split: split_size must be a positive int, got {split_size_or_sections}")
        bounds = list(range(0, n, split_size_or_sections)) + [n]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n:
            raise ValueError(f"split: the sizes {sizes} add up to {sum(sizes)}, not to the size {n} of dim {dim}")
        bounds = [0]
        for s in sizes:
            bounds.append(bounds[-1] + s)
    return _split_at(a, bounds, dim)


def _numpy_bounds(n, indices_or_sections, axis):
    if isinstance(indices_or_sections, int):
        if n % indices_or_sections:
            raise ValueError(f"split: axis {axis} of size {n} does not divide into {indices_or_sections} equal sections")
        step = n // indices_or_sections
        return list(range(0, n + 1, step))
    return [0] + list(indices_or_sections) + [n]


def _split_at(a, bounds, axis):
    pieces = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        index = [slice(None)] * a.ndim
        index[axis] = slice(lo, hi)
        pieces.append(GetItem.apply(a, index=tuple(index)))
    return pieces


PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(a, pad, mode="constant", value=None):
    """PyTorch's ``pad``: a flat tuple of (before, after) pairs from the LAST dimension backwards, e.g.
    ``(1, 1)`` pads the last dim and ``(1, 1, 2, 2)`` the last two; a negative amount crops, as in
    PyTorch. numpy's ``pad_width`` (one ``(before, after)`` pair per axis, as pairs; or an int for every
    axis) is taken too.

    ``mode``: "constant" (``value``, default 0), or PyTorch's "reflect" (mirrored about the edge cell,
    each amount smaller than the dimension), "replicate" (the edge cell repeated) or "circular" (wrapped
    around), which take no ``value``. PyTorch pads at most the last three dimensions of a 2-D to 5-D
    input in these modes; distnn pads any.
    """
    if mode not in PAD_MODES:
        raise ValueError(f"pad: mode must be one of {PAD_MODES}, got {mode!r}")
    if isinstance(pad, (tuple, list)) and pad and all(isinstance(p, (int, np.integer)) for p in pad):
        if len(pad) % 2 or len(pad) // 2 > a.ndim:
            raise ValueError(f"pad: {tuple(pad)} must be (before, after) pairs for at most {a.ndim} dimensions, "
                             "last dimension first")
        pairs = [(0, 0)] * a.ndim
        for i in range(len(pad) // 2):
            pairs[a.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
        pad = pairs
    if mode == "constant":
        return Pad.apply(a, pad_width=pad, value=0.0 if value is None else value)  # (an int: numpy's, every axis)
    if value is not None and value != 0:  # (PyTorch's default 0 is taken, as there)
        raise ValueError(f"pad: mode={mode!r} takes no value (got value={value})")
    return PadIndexed.apply(a, pairs=_normalize_pad(pad, a.ndim), mode=mode)


def getitem(a, index):
    return a[index] if isinstance(a, Tensor) else GetItem.apply(a, index=index)


class Repeat(Function):
    """PyTorch's ``x.repeat(*sizes)`` (numpy's ``tile``); backward sums the copies."""

    saves_tensors = False

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


class Gather(Function):
    """PyTorch's ``x.gather(dim, index)``: ``out[i][j] = x[index[i][j]][j]`` for dim 0 (and so on);
    backward scatter-adds (an index used twice gets both gradients)."""

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
        grid = list(xp.indices(self.index.shape, sparse=True))
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
        grid = list(xp.indices(self.index.shape, sparse=True))
        grid[self.dim] = self.index
        out[tuple(grid)] = g
        return out, None
