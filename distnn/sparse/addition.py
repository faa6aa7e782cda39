"""``sparse + sparse`` (``add``, ``sub``, ``add_``, ``sub_``, a sparse gradient's accumulation), entry for entry
as PyTorch 2.13's CPU kernel: the same ``_indices()``, ``_values()``, ``_nnz()`` and ``is_coalesced()``.

PyTorch walks both operands in stored order (:mod:`.merge_order`), emitting an index present at both heads
once, summed: ``0 + t + alpha * s``. An operand with no entries gives the other one (times ``alpha``), its
coalesced flag kept. Values that are not contiguous take PyTorch's other path: the two operands' entries
concatenated, summed up (still flagged uncoalesced) only when there are more entries than elements.
Otherwise the result is coalesced when both operands are.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.backend import get_array_module
from distnn.dtypes import promote_types

from distnn.autograd.tensor import Tensor

from .coo import SparseTensor
from .layout_grads import carrier_for, distinct_grad, takes_layout
from .merge_order import merge_order
from .rows import gather_rows


def _scaled(x, alpha):
    """``alpha * x`` with ``alpha`` cast to ``x``'s dtype first, as PyTorch's ``value.to<scalar_t>()``."""
    return x if alpha == 1 else x * x.dtype.type(alpha)


class MergedValues(Function):
    """The result's values: row ``k`` is ``0 + t[u]`` or ``0 + alpha * s[v]`` (``rows[k]`` = ``u`` or ``n + v``
    counting ``s``'s rows after ``t``'s), and the rows of paired entries add ``alpha * s[partner]``; backward
    gathers each operand's rows back (times ``alpha`` for ``s``); a sparse leaf operand gets PyTorch's gradient,
    the sum's whole gradient (entries at the other operand's indices too: :mod:`.layout_grads`)."""

    saves_tensors = False  # (backward reads the positions only)

    def forward(self, t_vals, s_vals, rows=None, t_out=None, s_out=None, paired_out=None, paired_s=None, alpha=1,
                out=None, leaf_idx=(None, None)):
        self.t_out, self.s_out, self.alpha = t_out, s_out, alpha
        self.out, self.leaf_idx = out, leaf_idx  # (the sum's (indices, size, coalesced); the operands' indices)
        xp = get_array_module(t_vals)
        s_scaled = _scaled(s_vals, alpha)
        both = xp.concatenate([t_vals, s_scaled])
        if both.dtype.kind in "fc":
            both += 0  # (0 + x, as PyTorch's axpy into zeros: a -0.0 becomes 0.0)
        out = xp.take(both, rows, axis=0)  # (a gather: far cheaper than writing rows into zeros)
        if paired_out.shape[0]:  # (gathers, and one scatter: cheaper than a fancy-index +=)
            summed = xp.take(out, paired_out, axis=0)
            summed += xp.take(s_scaled, paired_s, axis=0)
            out[paired_out] = summed
        return out

    def backward(self, grad):
        xp = get_array_module(grad)
        grads = [xp.take(grad, self.t_out, axis=0), None]
        whole = None
        for i, parent in enumerate(self.parents):
            if takes_layout(parent):  # (PyTorch's AddBackward0 passes the sum's gradient on, times alpha for s)
                if whole is None:
                    whole = distinct_grad(*self.out, grad)
                scaled = whole if i == 0 or self.alpha == 1 else SparseTensor(
                    whole._idx, Tensor(_scaled(whole._vals.data, self.alpha)), whole.shape, whole.is_coalesced())
                grads[i] = carrier_for(parent, scaled, self.leaf_idx[i], self._shared(i))
            elif i == 1:
                grads[1] = _scaled(xp.take(grad, self.s_out, axis=0), self.alpha)
        return tuple(grads)

    def backward_graph(self, g):  # (create_graph: the same rows, recorded; the operands' own indices)
        label = g.grad_fn.name() if g.grad_fn is not None else None  # (PyTorch's: the gradient as it came)
        if self.alpha == 1:
            return gather_rows(g, self.t_out, label=label), gather_rows(g, self.s_out, label=label)
        # (PyTorch's grad * alpha is the Scalar overload's node, MulBackward1)
        return gather_rows(g, self.t_out, label=label), gather_rows(g * self.alpha, self.s_out, label="MulBackward1")

    def _shared(self, i):
        """Whether PyTorch's ``AccumulateGrad`` of input ``i`` finds its gradient held elsewhere too, so clones it
        (flag kept): with ``alpha=1`` both inputs get one tensor, and the other input still holds it unless it is
        input 0 and a leaf (leaves' ``AccumulateGrad`` runs first, input 0's before input 1's)."""
        other = self.parents[1 - i]
        return self.alpha == 1 and other is not None and (i == 0 or not isinstance(other, Tensor))


def _check_operands(t, s, alpha):
    from distnn.autograd.tensor_inplace_methods import alpha_scaled

    if not isinstance(s, SparseTensor):
        raise TypeError(f"add(sparse, {type(s).__name__}): expected a sparse COO tensor")
    t._same_layout_check(s, "add")
    dtype = np.dtype(promote_types(t.dtype, s.dtype))
    if dtype == np.bool_:
        raise NotImplementedError("\"cadd_sparse\" not implemented for 'Bool'")
    alpha_scaled(np.zeros(0, t.dtype), np.zeros(0, s.dtype), alpha)  # (PyTorch's alpha checks, by dtype)
    return dtype


def _contiguous(x: SparseTensor) -> bool:
    return bool(getattr(x._vals.data, "flags", None) is None or x._vals.data.flags.c_contiguous)


def add(t: SparseTensor, s: SparseTensor, alpha=1) -> SparseTensor:
    """``torch.add(t, s, alpha=alpha)`` of two sparse COO tensors of one size: PyTorch's entries and order
    (see the module docstring); the values are in the graph (gradients reach both operands' values)."""
    dtype = _check_operands(t, s, alpha)
    xp = get_array_module(t._idx)
    if s._nnz() == 0:
        return SparseTensor(t._idx, t._vals.to(dtype) * 1, t.shape, t.is_coalesced())
    if t._nnz() == 0:
        vals = s._vals.to(dtype)
        return SparseTensor(s._idx, vals * alpha if alpha != 1 else vals * 1, t.shape, s.is_coalesced())
    if not (_contiguous(t) and _contiguous(s)):
        from distnn.functional.join import cat

        s_vals = s._vals.to(dtype)
        out = SparseTensor(xp.concatenate([t._idx, s._idx], axis=1),
                           cat([t._vals.to(dtype), s_vals * alpha if alpha != 1 else s_vals], 0), t.shape)
        if out._nnz() > out.numel():  # (coalesced, but PyTorch's flag stays unset)
            out = out.coalesce()
            out = SparseTensor(out._idx, out._vals, out.shape, coalesced=False)
        return out
    emitted_at, partner, s_taken = merge_order(t._linear(), s._linear())
    n = t._nnz()
    s_left = ~s_taken
    s_left_before = xp.concatenate([xp.zeros(1, dtype=np.int64), xp.cumsum(s_left)])  # (per entry of s)
    t_out = xp.arange(n, dtype=np.int64) + s_left_before[emitted_at]
    left = xp.nonzero(s_left)[0]
    t_upto = xp.cumsum(xp.bincount(emitted_at, minlength=s._nnz() + 1))  # (entries of t emitted before s's)
    left_out = t_upto[left] + s_left_before[left]
    paired = xp.nonzero(partner >= 0)[0]
    s_out = xp.empty(s._nnz(), dtype=np.int64)
    s_out[left] = left_out
    s_out[partner[paired]] = t_out[paired]
    rows = xp.empty(n + int(left.shape[0]), dtype=np.int64)  # (each result row's source: t's, then s's)
    rows[t_out] = xp.arange(n, dtype=np.int64)
    rows[left_out] = left + n
    idx = xp.take(xp.concatenate([t._idx, s._idx], axis=1), rows, axis=1)
    vals = MergedValues.apply(t._vals.to(dtype), s._vals.to(dtype), rows=rows, t_out=t_out, s_out=s_out,
                              paired_out=t_out[paired], paired_s=partner[paired], alpha=alpha,
                              out=(idx, t.shape, t.is_coalesced() and s.is_coalesced()), leaf_idx=(t._idx, s._idx))
    return SparseTensor(idx, vals, t.shape, t.is_coalesced() and s.is_coalesced())


def add_(t: SparseTensor, s: SparseTensor, alpha=1) -> SparseTensor:
    """``t.add_(s, alpha=alpha)``: :func:`add`'s result written into ``t`` (its dtype kept; a promotion to a
    wider kind refused, as PyTorch's); a leaf that requires grad is refused while recording."""
    from distnn.autograd.grad_mode import is_grad_enabled
    from distnn.autograd.tensor_inplace_methods import _can_cast, torch_dtype_name

    dtype = _check_operands(t, s, alpha)
    if not _can_cast(dtype, t.dtype):
        raise RuntimeError(f"Can't convert result type {torch_dtype_name(dtype)} to output "
                           f"{torch_dtype_name(t.dtype)} in add operation")
    if t.requires_grad and t.is_leaf and is_grad_enabled():
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    out = add(t, s, alpha)
    t._idx, t._vals, t._coalesced = out._idx, out._vals.to(t.dtype), out._coalesced
    return t


__all__ = ["add", "add_", "MergedValues"]
