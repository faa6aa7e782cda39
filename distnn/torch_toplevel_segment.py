"""``torch.segment_reduce``: the sum, mean, maximum, minimum or product of consecutive segments of ``data``
along ``axis``, the segments given by their ``lengths`` or ``offsets``.

The segments are reduced on padded grids, one per class of lengths (``_reduce_segments``): a few vectorized
passes however many segments there are, each entry folded in in order as torch's kernel does, on numpy and cupy
alike (no ``ufunc.reduceat``: cupy has only add's, by differences of a cumulative sum, which an inf or NaN
poisons for every later segment). An empty segment holds the fill value: ``initial`` when given, else torch's
0 (sum), 1 (prod), NaN (mean), -inf (max), +inf (min). ``initial`` also takes part in every non-empty segment's
reduction, as torch's: the fold starts from it (from +0.0 for a sum, 1 for a product without it), so sums and
products round as torch's CPU kernel's, bit for bit (a mean is ``(initial + sum) / length``). A float16 sum, mean
or product steps through its segment in float16 as torch's kernel does, each step rounded (an accumulate over the
segments padded to one length), where a wider accumulator would not reach inf or lose the small terms as it does.

Gradients are torch's: sum spreads the output's gradient over the segment, mean divides it by the length,
max/min share it among the entries equal to the result (a NaN result: the NaN entries), prod gives each entry
the product of the others (and ``initial``), computed as ``out / x`` except for zeros and NaNs.
"""
from __future__ import annotations

import math

import numpy as np

from .autograd.function import Function
from .autograd.tensor import Tensor
from .backend import get_array_module, to_numpy
from .functional._elementwise_common import _silent
from .functional.norm import opmath

__all__ = ["segment_reduce"]

_REDUCES = {"sum": "sum", "prod": "prod", "mean": "mean", "max": "max", "amax": "max", "min": "min", "amin": "min"}
_UFUNCS = {"sum": "add", "mean": "add", "prod": "multiply", "max": "maximum", "min": "minimum"}
_FILLS = {"sum": 0.0, "mean": math.nan, "prod": 1.0, "max": -math.inf, "min": math.inf}
_STARTS = {"add": 0.0, "multiply": 1.0}  # (torch's kernel's initial_value for a sum or mean, a product)


def _reduce_segments(xp, op, entries, lens, start=None):
    """``op`` ('add', 'multiply', 'maximum', 'minimum') over each segment of ``entries`` (E, R), the segments'
    entries one after another, ``lens`` their host lengths (S,): (S, R), an empty segment's row ``op``'s identity.
    ``start`` (add, multiply): the value each non-empty segment's fold starts from, as torch's kernel's
    ``initial_value`` (its first entry added to it, not it added last: the roundings differ).
    The segments of each length class ((2^(c-1), 2^c]) are padded with the identity to one grid (all the grids
    together: at most twice the entries), reduced along the grid's rows; sums and products by ``accumulate``,
    one entry at a time in the entries' order on numpy (as torch's CPU kernel: the same overflows), cupy's
    cumsum/cumprod on the GPU."""
    # (-0.0: x + -0.0 is x for every x, -0.0 too; max/min: NaN propagates, as torch's)
    identity = {"add": -0.0, "multiply": 1.0, "maximum": -math.inf, "minimum": math.inf}[op]
    out = xp.full((len(lens), entries.shape[1]), identity, entries.dtype)
    first = np.cumsum(lens) - lens
    length_class = np.ceil(np.log2(np.maximum(lens, 1))).astype(np.int64)
    for c in np.unique(length_class[lens > 0]):
        rows = np.flatnonzero((length_class == c) & (lens > 0))
        k = lens[rows]
        lead = 0 if start is None else 1
        grid = xp.full((rows.size, int(k.max()) + lead, entries.shape[1]), identity, entries.dtype)
        if lead:
            grid[:, 0] = start
        within = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)  # (each entry's place in its segment)
        grid[xp.asarray(np.repeat(np.arange(rows.size), k)), xp.asarray(within + lead)] = \
            entries[xp.asarray(np.repeat(first[rows], k) + within)]
        if op in ("add", "multiply"):
            out[xp.asarray(rows)] = getattr(xp, op).accumulate(grid, axis=1)[:, -1]
        else:
            best = grid.max(axis=1) if op == "maximum" else grid.min(axis=1)
            # (a zero: the sign of the segment's first zero, which torch's fold keeps among equals, where numpy's
            # max may give either)
            first_zero = xp.take_along_axis(grid, (grid == 0).argmax(axis=1)[:, None], axis=1)[:, 0]
            out[xp.asarray(rows)] = xp.where(best == 0, first_zero, best)
    return out


class SegmentReduce(Function):
    """Segments of ``data`` reshaped (P * A, R) (the dims before ``axis``, ``axis``, those after), bounded by
    the flat host ``starts``/``ends`` (P * S,); the output (P * S, R), reshaped by the caller."""

    def forward(self, data, starts, ends, reduce="sum", initial=None):
        xp = get_array_module(data)
        x = opmath(data)  # (float16 computed in float32; its sums and products stepped in float16, _half_steps)
        lens = ends - starts
        # every entry's segment and flat position (host arrays: their sizes decide the shapes)
        seg = np.repeat(np.arange(len(lens)), lens)
        pos = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64), lens) + np.arange(
            seg.size)
        stepped = _half_steps(xp, data, lens, seg, pos, _UFUNCS[reduce], initial) if len(lens) and \
            data.dtype == np.float16 and reduce in ("sum", "mean", "prod") else None
        self.shape, self.dtype, self.reduce, self.initial = data.shape, data.dtype, reduce, initial
        self.seg, self.pos, self.lens = xp.asarray(seg), xp.asarray(pos), lens
        # (segments past the float's range: inf, as PyTorch's, with no warning)
        with _silent():
            if stepped is not None:  # (initial taken already)
                out = stepped.astype(x.dtype)
            else:
                op = _UFUNCS[reduce]
                # (torch's initial_value: initial as the data's dtype, else +0.0 (so [-0.0] sums to +0.0) or 1)
                init = x.dtype.type(data.dtype.type(initial if initial is not None else _STARTS.get(op, 0.0)))
                out = _reduce_segments(xp, op, x[self.pos], lens, init if op in _STARTS else None)
                if initial is not None and op not in _STARTS:  # (initial first in the fold: it wins a tie, 0.0
                    # over -0.0, where numpy's maximum gives the second; a NaN initial stays, a NaN entry wins)
                    keep = (init >= out) if reduce == "max" else (init <= out)
                    out = xp.where(keep | bool(np.isnan(init)), init, out)
            if reduce == "mean":
                # (the length as the data's dtype, as torch's kernel's value / length: float16 rounds 2049 to 2048)
                out = out / xp.asarray(np.maximum(lens, 1)[:, None].astype(data.dtype).astype(x.dtype))
            out[xp.asarray(lens == 0)] = _FILLS[reduce] if initial is None else initial
            if reduce in ("max", "min", "prod"):
                self.x, self.out = x, out
            return out.astype(data.dtype, copy=False)

    def backward(self, grad):
        xp = get_array_module(grad)
        g = opmath(grad)[self.seg]  # each entry's segment's gradient
        reduce, seg = self.reduce, self.seg
        if reduce == "mean":
            g = g / xp.asarray(self.lens.astype(g.dtype))[seg][:, None]
        elif reduce in ("max", "min"):
            x, out = self.x[self.pos], self.out[seg]
            hit = (x == out) | (xp.isnan(x) & xp.isnan(out))
            g = g * hit / xp.maximum(self._segment_sums(hit.astype(g.dtype)), 1)[seg]  # (none: initial won)
        elif reduce == "prod":
            g = g * self._prod_of_others(xp)
        gx = xp.zeros((self.shape[0], g.shape[1]), g.dtype)
        gx[self.pos] = g
        return gx.astype(self.dtype, copy=False), None, None

    def _segment_sums(self, values):
        """Per segment, the sum of ``values`` (one per entry, in the entries' order)."""
        return _reduce_segments(get_array_module(values), "add", values, self.lens)

    def _prod_of_others(self, xp):
        """Per entry, the product of its segment's other entries and ``initial``: ``out / x``, except for a
        zero or NaN entry, which gets the product of the rest directly, as torch's."""
        x, seg = self.x[self.pos], self.seg
        zero, nan = x == 0, xp.isnan(x)
        special = zero | nan
        with np.errstate(divide="ignore", invalid="ignore"):
            others = self.out[seg] / x
        if not bool(special.any()):
            return others
        rest = _reduce_segments(xp, "multiply", xp.where(special, 1, x), self.lens)  # (of its ordinary entries)
        if self.initial is not None:
            rest = rest * x.dtype.type(self.initial)
        zeros_left = self._segment_sums(zero.astype(x.dtype))[seg] - zero
        nans_left = self._segment_sums(nan.astype(x.dtype))[seg] - nan
        other_specials = xp.where(nans_left > 0, np.nan, xp.where(zeros_left > 0, 0.0, 1.0)).astype(x.dtype)
        return xp.where(special, rest[seg] * other_specials, others)


def _half_steps(xp, data, lens, seg, pos, op, initial):
    """float16 sums and products as torch's: from ``initial`` (or 0, 1), one entry at a time in float16, each
    step rounded (3000 ones sum to 2048; 60000 + 60000 is inf, and so is its mean). None where the segments'
    lengths differ so much that the padded grid would be large (four times the data): float32 steps then."""
    width = int(lens.max()) + 1
    if len(lens) * width > 4 * len(seg) + 1024:
        return None
    # (the padding after a segment's entries changes nothing: -0.0 keeps a -0.0 sum, which +0.0 would not)
    identity = {"add": -0.0, "multiply": 1.0}[op]
    grid = xp.full((len(lens), width, data.shape[1]), identity, data.dtype)
    grid[:, 0] = initial if initial is not None else _STARTS[op]
    within = np.arange(seg.size) - np.repeat(np.cumsum(lens) - lens, lens) + 1
    with _silent():
        grid[xp.asarray(seg), xp.asarray(within)] = data[xp.asarray(pos)]
        return getattr(xp, op).accumulate(grid, axis=1)[:, -1]


def _host_ints(t, name):
    a = np.asarray(to_numpy(t.data if isinstance(t, Tensor) else t))
    if a.dtype.kind not in "iu":
        raise NotImplementedError(f"segment_reduce(): {name} must hold integers (Long or Int), got dtype {a.dtype}")
    return a.astype(np.int64)


def _segment_bounds(shape, axis, lengths, offsets, unsafe):
    """The segments' (starts, ends) along ``axis``, each of ``lengths``'s (or one less than ``offsets``'s)
    shape ``shape[:axis] + (S,)``, from ``lengths`` (taken first when both are given, as torch) or ``offsets``."""
    given, name = (lengths, "lengths") if lengths is not None else (offsets, "offsets")
    if given is None:
        raise RuntimeError("segment_reduce(): Either lengths or offsets must be defined.")
    a = _host_ints(given, name)
    if a.ndim - 1 != axis:
        raise RuntimeError(f"segment_reduce(): Expected axis to be the last dimension of {name} but got {axis} "
                           f"({name} of shape {a.shape}: one row of segments per index of the data's dims before "
                           f"axis)")
    if a.shape[:-1] != tuple(shape[:axis]):
        raise RuntimeError(f"segment_reduce(): expected {name} of shape {tuple(shape[:axis])} + (segments,) (the "
                           f"data's dims before axis), got {a.shape}")
    size = shape[axis]
    if lengths is not None:
        if (a < 0).any():
            raise RuntimeError("segment_reduce(): lengths contains negative value!")
        ends = np.cumsum(a, axis=-1)
        if not unsafe and (ends[..., -1:] != size).any():
            raise RuntimeError(f"segment_reduce(): Expected all rows of lengths along axis to sum to "
                               f"data.size({axis}) = {size} when !unsafe, got sums {ends[..., -1].tolist()}")
        if (ends > size).any():  # (even when unsafe: that would read past the data)
            raise RuntimeError(f"segment_reduce(): lengths sum past data.size({axis}) = {size}")
        return ends - a, ends
    if a.shape[-1] == 0:
        raise RuntimeError("segment_reduce(): offsets must hold at least one offset along axis, got none")
    starts, ends = a[..., :-1], a[..., 1:]
    if (ends < starts).any():
        raise RuntimeError(f"segment_reduce(): offsets must be non-decreasing (segment lengths >= 0), got "
                           f"{a.tolist()}")
    if (a < 0).any() or (a > size).any():
        raise RuntimeError(f"segment_reduce(): offsets must lie in [0, data.size({axis}) = {size}], got "
                           f"{a.tolist()}")
    return starts, ends


def segment_reduce(data, reduce, *, lengths=None, indices=None, offsets=None, axis=0, unsafe=False,
                   initial=None):
    """``torch.segment_reduce``: ``reduce`` ('sum', 'mean', 'max'/'amax', 'min'/'amin', 'prod') over
    consecutive segments of ``data`` along ``axis``.

    The segments are given by ``lengths`` (integers; each row of them sums to ``data.shape[axis]`` unless
    ``unsafe``) or by ``offsets`` (``S + 1`` non-decreasing bounds, entries outside ``[offsets[0],
    offsets[-1])`` left out). Either is 1-D for ``axis=0``; for a larger ``axis`` it has the data's dims
    before ``axis`` and a last one of segments (``axis`` must be its last dim, as torch's). The output is
    ``data.shape[:axis] + (S,) + data.shape[axis + 1:]``; an empty segment holds ``initial`` or torch's fill
    (0, 1, NaN, -inf, +inf for sum, prod, mean, max, min), and ``initial`` joins every other segment's
    reduction. Differentiable in ``data`` (see the module docstring). ``indices`` is refused, as torch's.
    ``unsafe`` skips the check of ``lengths``'s sums only: reading past the data is refused either way.
    """
    if indices is not None:
        raise RuntimeError("segment_reduce(): indices based reduction is not supported yet.")
    if reduce not in _REDUCES:
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    x = data.data if isinstance(data, Tensor) else data
    if x.dtype.kind != "f":
        raise NotImplementedError(f"segment_reduce(): data must be floating point, got dtype {x.dtype}")
    n = x.ndim
    if not -max(n, 1) <= axis < max(n, 1) or n == 0:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-max(n, 1)}, {max(n, 1) - 1}], "
                         f"but got {axis})" + (" (data must have at least one dim)" if n == 0 else ""))
    axis %= n
    starts, ends = _segment_bounds(x.shape, axis, lengths, offsets, unsafe)
    S, before, size = starts.shape[-1], int(np.prod(x.shape[:axis])), x.shape[axis]
    row = (np.arange(before) * size)[:, None]  # each row of segments' first flat position
    starts, ends = (starts.reshape(before, S) + row).reshape(-1), (ends.reshape(before, S) + row).reshape(-1)
    after = int(np.prod(x.shape[axis + 1:]))
    flat = (data if isinstance(data, Tensor) else x).reshape(before * size, after)
    out = SegmentReduce.apply(flat, starts, ends, reduce=_REDUCES[reduce], initial=initial)
    return out.reshape(tuple(x.shape[:axis]) + (S,) + tuple(x.shape[axis + 1:]))
