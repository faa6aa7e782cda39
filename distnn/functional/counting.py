"""Counting and bucketing, as PyTorch's: unique, unique_consecutive, bincount, histc, searchsorted, bucketize.

None has a gradient (PyTorch's have none either); indices and counts are int64 (int32 with ``out_int32``).
"""
from __future__ import annotations

import numbers

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._dims import wrap_dim
from .shape_more import as_tensor


def _results(values, inverse, counts, return_inverse, return_counts):
    out = [Tensor(values)]
    if return_inverse:
        out.append(Tensor(inverse.astype(np.int64)))
    if return_counts:
        out.append(Tensor(counts.astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):  # noqa: A002
    """``torch.unique``: the distinct elements (of the flattened tensor; distinct slices along ``dim``), sorted
    (``sorted=False`` is accepted and sorts too, as PyTorch's CPU kernel does), with the inverse indices
    (the input's shape; ``dim``'s length) and the counts. Each NaN is a value of its own, after the others, as
    PyTorch's. With ``dim``, slices holding NaN sort after the others (numpy's order); PyTorch's comparator leaves
    them anywhere there (its order of such slices is not sorted), which is not copied."""
    data = as_tensor(input).data
    xp = get_array_module(data)
    if dim is None:
        # (each NaN its own value, as PyTorch's: NaN != NaN; numpy's default would merge them into one)
        nan_apart = {"equal_nan": False} if data.dtype.kind in "fc" else {}
        try:
            values, inverse, counts = xp.unique(data.reshape(-1), return_inverse=True, return_counts=True,
                                                **nan_apart)
        except TypeError:  # (a cupy without equal_nan: its NaNs merged, as before)
            values, inverse, counts = xp.unique(data.reshape(-1), return_inverse=True, return_counts=True)
        inverse = inverse.reshape(data.shape)
    else:
        d = wrap_dim(dim, data.ndim, "unique")
        values, inverse, counts = xp.unique(data, return_inverse=True, return_counts=True, axis=d)
        inverse = inverse.reshape(-1)
    return _results(values, inverse, counts, return_inverse, return_counts)


def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):  # noqa: A002
    """``torch.unique_consecutive``: each run of equal consecutive elements (slices along ``dim``) kept once,
    with the inverse indices and the run lengths."""
    data = as_tensor(input).data
    xp = get_array_module(data)
    if dim is None:
        flat = data.reshape(-1)
        moved, d = flat, 0
    else:
        d = wrap_dim(dim, data.ndim, "unique_consecutive")
        moved = xp.moveaxis(data, d, 0)
    n = moved.shape[0]
    changes = xp.ones(n, bool)
    if n > 1:
        differ = moved[1:] != moved[:-1]
        changes[1:] = differ.reshape(n - 1, -1).any(axis=1) if differ.ndim > 1 else differ
    starts = xp.nonzero(changes)[0]
    values = moved[starts]
    inverse = xp.cumsum(changes) - 1
    counts = xp.diff(xp.concatenate([starts, xp.asarray([n])])) if n else xp.zeros(0, np.int64)
    if dim is None:
        inverse = inverse.reshape(data.shape)
    else:
        values = xp.moveaxis(values, 0, d)
    return _results(values, inverse, counts, return_inverse, return_counts)


def bincount(input, weights=None, minlength=0):  # noqa: A002
    """``torch.bincount``: how often each value occurs in a 1-D tensor of non-negative integers (int64), or
    the sums of ``weights`` per value (float32 weights give float32, others float64, as PyTorch)."""
    data = as_tensor(input).data
    xp = get_array_module(data)
    if data.ndim != 1 or data.dtype.kind not in "iu" or (data.size and int(data.min()) < 0):
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if minlength < 0:
        raise RuntimeError("minlength should be >= 0")
    if weights is None:
        return Tensor(xp.bincount(data, minlength=int(minlength)).astype(np.int64))
    w = as_tensor(weights).data
    if w.shape != data.shape:
        raise RuntimeError("weights should be 1-d and have the same length as input")
    out_dtype = np.float32 if w.dtype == np.float32 else np.float64
    return Tensor(xp.bincount(data, weights=w, minlength=int(minlength)).astype(out_dtype))


def histc(input, bins=100, min=0, max=0):  # noqa: A002 - PyTorch's names
    """``torch.histc``: counts in ``bins`` equal bins between ``min`` and ``max`` (both 0: the data's own
    range; equal: widened by 1 each way); elements outside are left out, one equal to ``max`` counts in the
    last bin. Float tensors only; the counts have the input's dtype."""
    x = as_tensor(input)
    data = x.data
    xp = get_array_module(data)
    if data.dtype.kind != "f":
        raise NotImplementedError(f'"histogram_cpu" not implemented for {data.dtype} (float tensors only)')
    if bins <= 0:
        raise RuntimeError(f"torch.histc(): bins must be > 0, but got {bins} for dimension 0")
    lo, hi = float(min), float(max)
    if lo > hi:
        raise RuntimeError(f"torch.histc(): max must be larger than min, but got min {lo} max {hi}")
    flat = data.reshape(-1)
    if lo == hi and flat.size:
        lo, hi = float(flat.min()), float(flat.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    inside = flat[(flat >= lo) & (flat <= hi)]
    lo_, hi_ = data.dtype.type(lo), data.dtype.type(hi)  # (bins computed in the input's precision, as PyTorch)
    position = ((inside - lo_) / (hi_ - lo_) * data.dtype.type(bins)).astype(np.int64)
    position = xp.minimum(position, bins - 1)
    return Tensor(xp.bincount(position, minlength=int(bins)).astype(data.dtype))


def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None, sorter=None):  # noqa: A002
    """``torch.searchsorted``: where each value of ``input`` goes in ``sorted_sequence``'s last dim to keep it
    sorted (the first such place; the last with ``right=True`` or ``side='right'``). A sequence of several
    dims is searched row by row (its leading dims match ``input``'s); ``sorter`` sorts an unsorted one."""
    seq = as_tensor(sorted_sequence).data
    xp = get_array_module(seq)
    scalar = isinstance(input, numbers.Number)
    values = xp.asarray(input, dtype=seq.dtype) if scalar else as_tensor(input).data
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"torch.searchsorted(): side can only be 'left' or 'right' but got {side}")
        if right and side == "left":
            raise RuntimeError("torch.searchsorted(): side and right can't be set to opposites, got side of left "
                               "while right was True")
        right = side == "right"
    if sorter is not None:
        order = as_tensor(sorter).data
        if order.shape != seq.shape:
            raise RuntimeError("torch.searchsorted(): boundary and sorter must have the same size")
        seq = xp.take_along_axis(seq, order, axis=-1)
    if seq.ndim == 0:
        raise RuntimeError("torch.searchsorted(): boundaries tensor should have positive dimension, but got 0 "
                           "dimension")
    if seq.ndim == 1:
        out = xp.searchsorted(seq, values, side="right" if right else "left")
        out = _nan_last(xp, values, out, seq.shape[-1])
    else:
        if values.ndim != seq.ndim or values.shape[:-1] != seq.shape[:-1]:
            raise RuntimeError(f"torch.searchsorted(): boundaries tensor should be 1 dimension or the first N-1 "
                               f"dimensions of boundaries tensor and input value tensor must match, but we got "
                               f"boundaries tensor {list(seq.shape)} and input value tensor {list(values.shape)}")
        # (per row: how many entries come before the value; a comparison per pair, no loop over the rows)
        before = seq[..., None, :] <= values[..., :, None] if right else seq[..., None, :] < values[..., :, None]
        out = _nan_last(xp, values, before.sum(-1), seq.shape[-1])
    return Tensor(xp.asarray(out).astype(np.int32 if out_int32 else np.int64))


def _nan_last(xp, values, positions, n):
    """A NaN value's place is after every entry (NaNs included) on both sides, as PyTorch's binary search puts it
    (no comparison with NaN holds). A number in a sequence that ends in NaNs keeps its sorted place: PyTorch's
    search there depends on where its halving lands (0 in [1, 2, nan, nan] comes out at 4), not copied."""
    if values.dtype.kind != "f":
        return positions
    nan = xp.isnan(values)
    return xp.where(nan, n, positions) if nan.any() else positions


def bucketize(input, boundaries, *, out_int32=False, right=False):  # noqa: A002
    """``torch.bucketize``: the index of the bucket of 1-D ``boundaries`` each value falls in (``right=True``:
    ``boundaries[i-1] <= x < boundaries[i]``, else ``boundaries[i-1] < x <= boundaries[i]``)."""
    b = as_tensor(boundaries)
    if b.ndim != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim({b.ndim})")
    return searchsorted(b, input, out_int32=out_int32, right=right)
