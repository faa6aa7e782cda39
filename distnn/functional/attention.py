"""Fused multi-head scaled dot-product attention: heads split, scores, softmax, dropout, merge.

``MultiheadAttentionCore.apply(q, k, v, mask, dropmask, num_heads, seq_first)`` takes the
projected queries/keys/values as they come out of the input projection, in the
module's layout: (L, N, E) when ``seq_first`` else (N, L, E). When ``k`` and ``v``
are None, ``q`` is the packed self-attention projection (..., 3E) (one matmul
for q, k and v), and the gradient comes back packed the same way, so no split or
concat nodes are needed. The heads are strided views into those arrays (BLAS
reads them in place), and the merged output has the input's layout, ready for
``out_proj``.

``mask`` is an additive float array broadcastable to (N, heads, L, S) (-inf
where attention is forbidden; a query with every key forbidden gets probabilities
0, so its output is 0 and no NaN reaches any gradient, as in PyTorch's
``need_weights=False`` path, which is its scaled_dot_product_attention); ``dropmask`` the
inverted-dropout multiplier on the attention probabilities (or None). The arithmetic is
``functional.sdpa``'s (``attend`` / ``attend_backward``, as F.scaled_dot_product_attention's);
this op adds the heads' layout and the packed gradient.
"""
from __future__ import annotations

import math

from distnn.autograd.function import OUTPUT, Function
from distnn.backend import get_array_module

from .sdpa import attend, attend_backward


def _heads(a, num_heads, seq_first):
    """(L, N, E) or (N, L, E) -> a (N, heads, L, d) view."""
    if seq_first:
        L, N, E = a.shape
        return a.reshape(L, N, num_heads, E // num_heads).transpose(1, 2, 0, 3)
    N, L, E = a.shape
    return a.reshape(N, L, num_heads, E // num_heads).transpose(0, 2, 1, 3)


def _merge(a4, seq_first):
    """(N, heads, L, d) -> (L, N, E) or (N, L, E), contiguous."""
    N, h, L, d = a4.shape
    if seq_first:
        return a4.transpose(2, 0, 1, 3).reshape(L, N, h * d)
    return a4.transpose(0, 2, 1, 3).reshape(N, L, h * d)


def _split_packed(qkv):
    E = qkv.shape[-1] // 3
    return qkv[..., :E], qkv[..., E : 2 * E], qkv[..., 2 * E :]


class MultiheadAttentionCore(Function):
    # backward reads q, k and v (views of them) and the dropout mask, not the additive mask nor the output;
    # PyTorch's scaled_dot_product_attention (its fused CPU kernel, the default in float32 and float64, as its
    # GPU ones) saves the query, key, value, mask and output whichever needs a gradient: so do we. (Its math
    # backend scales q and k before their product and saves neither; distnn reads them, so it could not follow.)
    reads = ((0, 1, 2, 3, 4, OUTPUT),) * 3 + ((), ())

    def forward(self, q, k, v, mask=None, dropmask=None, num_heads=1, seq_first=True):
        self.packed = k is None
        if self.packed:
            q, k, v = _split_packed(q)
        q4, k4, v4 = (_heads(a, num_heads, seq_first) for a in (q, k, v))
        scale = 1.0 / math.sqrt(q4.shape[-1])
        o4, p, pd = attend(q4, k4, v4, mask, dropmask, scale)  # (N, h, L, d)
        out = _merge(o4, seq_first)
        self.q4, self.k4, self.v4, self.p, self.pd, self.dropmask = q4, k4, v4, p, pd, dropmask
        self.scale, self.num_heads, self.seq_first = scale, num_heads, seq_first
        self.mask_value = mask  # (a constant: the graph backward recomputes the probabilities with it)
        self.shapes = (q.shape, k.shape, v.shape)
        return out

    def backward(self, grad):
        xp = get_array_module(grad)
        g4 = _heads(grad, self.num_heads, self.seq_first)
        need = (True,) * 3 if self.packed else self.needs_input_grad[:3]
        dq4, dk4, dv4, _ = attend_backward(g4, self.q4, self.k4, self.v4, self.p, self.pd, self.dropmask,
                                           self.scale, need)
        if self.packed:  # write the three grads straight into one (..., 3E) buffer
            shape = self.shapes[0]
            dqkv = xp.empty(shape[:-1] + (3 * shape[-1],), dtype=grad.dtype)
            for part, a4 in zip(_split_packed(dqkv), (dq4, dk4, dv4)):
                _heads(part, self.num_heads, self.seq_first)[...] = a4
            return dqkv, None, None, None, None
        return (
            _merge(dq4, self.seq_first) if need[0] else None,
            _merge(dk4, self.seq_first) if need[1] else None,
            _merge(dv4, self.seq_first) if need[2] else None,
            None,
            None,
        )
