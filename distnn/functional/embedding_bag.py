"""``embedding_bag``: the sums, means or maxima of bags of embedding rows, as
``torch.nn.functional.embedding_bag``, without building the (bag, entry, dim) lookups.

Bags are runs of the 1-D ``input`` starting at ``offsets``, the last one to the end of
the input (with ``include_last_offset``, ``offsets`` has one more entry, the input's
length, which PyTorch's CPU kernel does not read: the last bag still runs to the end),
or the rows of a 2-D input. Entries equal to
``padding_idx`` are left out of their bag (a mean divides by the others' count); an
empty bag gives zeros. ``max`` takes, per dimension, the first largest entry (a NaN
counts only as its bag's first entry, as PyTorch's CPU kernel compares with ``>``),
and its gradient goes to that entry's weight row alone.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, to_numpy

from .embedding import _renorm_
from .indexing import scatter_add

_MODES = ("sum", "mean", "max")


def bag_max(rows, rows_idx, bags, num_bags):
    """Per bag and dimension, the largest of the bag's ``rows`` (weight rows ``rows_idx``, bags ``bags``,
    non-decreasing): ``(max, argrow)``, argrow the weight row of the first entry holding it (a NaN counts
    only as its bag's first entry). An empty bag's max is -inf, its argrow row 0.

    No atomics: cupy 14.2's float64 ``scatter_max`` (and ``maximum.at``) rounds the maxima to float32, so no
    entry equalled its bag's maximum and every argrow was the last entry's row. Bags are runs of entries, so
    a running maximum within each run (doubling steps) gives the exact maxima, and a running count of hits
    within each run the first hit."""
    xp = get_array_module(rows)
    K, D = rows.shape
    first_of_bag = xp.ones(K, dtype=bool)
    first_of_bag[1:] = bags[1:] != bags[:-1]
    vals = xp.where(xp.isnan(rows) & ~first_of_bag[:, None], -np.inf, rows)  # a later NaN never wins
    starts = xp.nonzero(first_of_bag)[0]
    ends = xp.concatenate([starts[1:], xp.full(1, K, dtype=starts.dtype)])[:len(starts)] - 1  # (K 0: none)
    run = xp.cumsum(first_of_bag, dtype=np.int64) - 1  # (each entry's run: its bag among the non-empty ones)
    longest = int((ends - starts).max()) + 1 if K else 0
    top, step = vals, 1
    while step < longest:  # (top[k]: the largest of its run's entries up to k, once step reaches the run's length)
        same = (run[step:] == run[:-step])[:, None]
        top = xp.concatenate([top[:step], xp.where(same, xp.maximum(top[step:], top[:-step]), top[step:])])
        step *= 2
    mx = xp.full((num_bags, D), -np.inf, dtype=rows.dtype)
    mx[bags[ends]] = top[ends]  # (a run's last entry holds its maximum; one run per bag: no repeats)
    hit = (vals == mx[bags]) | (xp.isnan(vals) & xp.isnan(mx[bags]))
    seen = xp.cumsum(hit, axis=0, dtype=np.int64)
    before = (seen - hit)[starts]  # (the hits before each run)
    at, col = xp.nonzero(hit & (seen - before[run] == 1))  # (each bag's first hit per dimension: no repeats)
    argrow = xp.zeros((num_bags, D), dtype=rows_idx.dtype)
    argrow[bags[at], col] = rows_idx[at]
    return mx, argrow


class EmbeddingBagFunction(Function):
    """Bags (B, D) of the weight rows ``idx[sel]`` (their bags ``bag[sel]``, non-decreasing); inputs the
    weight and the per-sample weights (or None, taken as 1), the rest constants."""

    torch_name = "EmbeddingBagBackward0"

    # As PyTorch's: the weight's gradient reads the per-sample weights, theirs reads the weight.
    reads = ((1,), (0,))

    def forward(self, weight, psw, idx, sel, bag, num_bags, mode="mean", scale_grad_by_freq=False, sparse=False):
        xp = get_array_module(weight)
        rows_idx, bags = idx[sel], bag[sel]
        D = weight.shape[1]
        rows = weight[rows_idx]
        counts = xp.bincount(bags, minlength=num_bags)[:num_bags]
        self.weight, self.psw, self.idx, self.sel, self.rows_idx, self.bags = weight, psw, idx, sel, rows_idx, bags
        self.counts, self.mode, self.scale_grad_by_freq, self.num = counts, mode, scale_grad_by_freq, weight.shape[0]
        self.sparse = sparse
        if mode == "max":
            mx, self.argrow = bag_max(rows, rows_idx, bags, num_bags)
            self.nonempty = (counts > 0)[:, None]
            return xp.where(self.nonempty, mx, xp.zeros((), dtype=weight.dtype))
        if psw is not None:
            rows = rows * psw[sel][:, None]
        out = xp.zeros((num_bags, D), dtype=weight.dtype)
        scatter_add(out, bags, rows)
        if mode == "mean":
            out = out / xp.maximum(counts, 1)[:, None].astype(weight.dtype)
        return out

    def backward(self, grad):
        xp = get_array_module(grad)
        D = grad.shape[1]
        gw = gpsw = None
        if self.needs_input_grad[0]:
            if self.mode == "max":
                gw = xp.zeros((self.num, D), dtype=grad.dtype)
                cols = xp.broadcast_to(xp.arange(D), self.argrow.shape)
                keep = xp.broadcast_to(self.nonempty, self.argrow.shape)
                scatter_add(gw, (self.argrow[keep], cols[keep]), grad[keep])
            else:
                g = grad[self.bags]  # each entry's gradient row
                if self.mode == "mean":
                    g = g / self.counts[self.bags][:, None].astype(grad.dtype)
                if self.psw is not None:
                    g = g * self.psw[self.sel][:, None]
                if self.scale_grad_by_freq:  # each index's count in the whole input (see embedding_bag)
                    if self.sparse:
                        raise RuntimeError("embedding_backward: scale_grad_by_freq not supported with sparse "
                                           "gradients")
                    freq = xp.bincount(self.idx, minlength=self.num)
                    g = g / freq[self.rows_idx][:, None].astype(grad.dtype)
                if self.sparse:  # one gradient row per entry of a bag, as PyTorch's sparse backward
                    from distnn.sparse.grads import sparse_weight_grad

                    gw = sparse_weight_grad(self, self.rows_idx, g, self.num)
                if gw is None:
                    gw = xp.zeros((self.num, D), dtype=grad.dtype)
                    scatter_add(gw, self.rows_idx, g)
        if self.psw is not None and self.needs_input_grad[1]:
            gpsw = xp.zeros(self.idx.shape, dtype=grad.dtype)
            gpsw[self.sel] = (grad[self.bags] * self.weight[self.rows_idx]).sum(axis=1)
        return gw, gpsw, None, None, None, None


def _offsets(offsets, n, who):
    """The offsets as host int64, checked: from 0, non-decreasing, at most the input's length."""
    off = to_numpy(offsets.data if isinstance(offsets, Tensor) else offsets)
    off = np.asarray(off)
    if off.ndim != 1:
        raise ValueError(f"{who}: offsets has to be a 1D Tensor, got shape {off.shape}")
    if off.size and off.dtype.kind not in "iu":
        raise TypeError(f"{who}: offsets must hold integers, got dtype {off.dtype}")
    off = off.astype(np.int64)
    if off.size == 0:  # (PyTorch crashes)
        raise ValueError(f"{who}: offsets must hold at least one offset, got none")
    if off[0] != 0:
        raise ValueError(f"{who}: offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start "
                         f"from position 0; got {int(off[0])}")
    if off[-1] > n:
        raise ValueError(f"{who}: offsets[-1] can not be greater than input's length {n}, got {int(off[-1])}")
    if (np.diff(off) < 0).any():  # (PyTorch's bags would then not be those the offsets name)
        raise ValueError(f"{who}: offsets must be non-decreasing, got {off.tolist()[:10]}")
    return off


def _embedding_bag(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                   per_sample_weights, include_last_offset, padding_idx, who):
    """``embedding_bag`` with ``who`` (the function's or the layer's name) in its error messages."""
    args, params = bag_arguments(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                                 per_sample_weights, include_last_offset, padding_idx, who)
    return EmbeddingBagFunction.apply(*args, **params)


def bag_arguments(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                  per_sample_weights, include_last_offset, padding_idx, who):
    """The checked arguments of :class:`EmbeddingBagFunction`: ``((weight, psw, idx, sel, bag, num_bags),
    params)``, ``bag`` every entry's bag, ``sel`` the entries taken (padding left out)."""
    w = weight.data if isinstance(weight, Tensor) else weight
    if w.ndim != 2:
        raise ValueError(f"{who}: weight has to be a 2D Tensor, but got Tensor of dimension {w.ndim}")
    if w.dtype.kind != "f":
        raise TypeError(f"{who}: weight must be floating, got dtype {w.dtype}")
    xp = get_array_module(w)
    idx = xp.asarray(input.data if isinstance(input, Tensor) else input)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{who}: indices must be integers (Long or Int), got dtype {idx.dtype}")
    psw = per_sample_weights
    if psw is not None and not isinstance(psw, Tensor):
        psw = xp.asarray(psw)
    if psw is not None and tuple(psw.shape) != tuple(idx.shape):
        raise ValueError(f"{who}: If per_sample_weights ({tuple(psw.shape)}) is not None, then it must have the same "
                         f"shape as the input ({tuple(idx.shape)})")
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError(f"{who}: if input is 2D, then offsets has to be None, as input is treated is a mini-batch "
                             f"of fixed length sequences")
        if idx.shape[1] == 0:
            raise ValueError(f"{who}: a 2-D input needs bags of at least one index, got shape {tuple(idx.shape)} "
                             f"(as PyTorch refuses)")
        off = np.arange(0, idx.size, max(idx.shape[1], 1), dtype=np.int64)
        idx = idx.reshape(-1)
        if psw is not None:
            psw = psw.reshape(-1)
    elif idx.ndim == 1:
        if offsets is None:
            raise ValueError(f"{who}: offsets has to be a 1D Tensor but got None")
        off = _offsets(offsets, idx.shape[0], who)
    else:
        raise ValueError(f"{who}: input has to be 1D or 2D Tensor, but got Tensor of dimension {idx.ndim}")
    if mode not in _MODES:
        raise ValueError(f"{who}: mode has to be one of sum, mean or max, got {mode!r}")
    if mode == "max" and scale_grad_by_freq:
        raise ValueError(f"{who}: max mode does not support scaling the gradient by the frequency")
    if mode == "max" and sparse:
        raise ValueError(f"{who}: max mode does not support sparse weights")
    num = w.shape[0]
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= num):
        raise IndexError(f"{who}: index out of range: indices span [{int(idx.min())}, {int(idx.max())}] but "
                         f"num_embeddings is {num}")
    if max_norm is not None:  # in place, before the lookup, as PyTorch's (no gradient)
        _renorm_(weight, idx, max_norm, norm_type)
    if psw is not None and mode != "sum":
        raise NotImplementedError(f"{who}: per_sample_weights was not None. per_sample_weights is only supported "
                                  f"for mode='sum' (got mode='{mode}')")
    if psw is not None and getattr(psw, "dtype", None) != w.dtype:
        raise TypeError(f"{who}: per_sample_weights must have the weight's dtype {w.dtype}, got "
                        f"{getattr(psw, 'dtype', type(psw).__name__)}")
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ValueError(f"{who}: padding_idx must be within the number of embeddings, {-num} through "
                             f"{num - 1}, but got {padding_idx}")
        padding_idx %= num
    if include_last_offset:  # the last offset ends the last bag; PyTorch's CPU kernel runs it to the input's end
        off = off[:-1]
    num_bags = len(off)
    bag = np.searchsorted(off, np.arange(idx.shape[0]), side="right") - 1  # (-1: no bag, when there are none)
    keep = xp.asarray(bag >= 0)
    if padding_idx is not None:
        keep &= idx != padding_idx
    sel = xp.nonzero(keep)[0]
    if isinstance(input, Tensor) and input.data is idx:  # (the caller's memory: kept a Tensor, version-checked)
        idx = input
    return ((weight, psw, idx, sel, xp.asarray(bag), num_bags),
            dict(mode=mode, scale_grad_by_freq=scale_grad_by_freq, sparse=bool(sparse)))


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False, mode="mean",
                  sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """``torch.nn.functional.embedding_bag``: (B, embedding_dim), each bag's sum, mean or max of its rows.

    ``input``: 1-D indices with 1-D ``offsets`` (where each bag starts; see the module docstring for
    ``include_last_offset``), or 2-D (B, bag length) with no offsets. ``per_sample_weights`` (the input's
    shape, mode 'sum' only) scale each entry's row and get their gradient. ``padding_idx`` entries are left
    out of their bags. ``max_norm`` renormalizes the rows looked up IN PLACE first, as
    :func:`embedding`; ``scale_grad_by_freq`` divides each row's gradient by its index's count in the
    input (not with 'max'). Differences from PyTorch: decreasing or empty offsets are refused (PyTorch
    takes other bags than the offsets name, or crashes); with ``scale_grad_by_freq`` the divisor is each
    index's own count, as documented and as :func:`embedding` does (PyTorch 2.13's CPU kernel divides the
    rows of the k-th smallest distinct index by the count of the index at position k of the sorted input).
    ``sparse=True`` (not with 'max') makes a leaf weight's gradient a sparse COO tensor with one entry per
    entry of a bag (padding left out), as PyTorch's.
    """
    return _embedding_bag(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                          per_sample_weights, include_last_offset, padding_idx, "embedding_bag")


__all__ = ["embedding_bag"]
