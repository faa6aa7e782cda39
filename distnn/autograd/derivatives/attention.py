"""Graph backwards of attention: ``scaled_dot_product_attention`` (:class:`ScaledDotProductAttention`) and
MultiheadAttention's fused core (:class:`MultiheadAttentionCore`, which nn.MultiheadAttention and the
Transformer layers run), so a gradient penalty or a meta-gradient can go through attention.

The fused ops keep the probabilities as an array. The graph backward recomputes them as Tensors of the
query, key and (additive) mask, as PyTorch's math backend does, and then writes the first backward,
``dv = P^T g``, ``dS = P * (dP - sum(dP * P))`` with ``dP = g v^T`` (times the dropout mask, a constant),
``dq = dS k * scale``, ``dk = dS^T q * scale``, ``dmask = dS``, on those Tensors: each is a recorded op with a
graph backward of its own, so second and third derivatives follow (in q, k, v, the mask and ``g``).

A query row whose every key is masked has probabilities 0 (PyTorch's ``_safe_softmax``): its scores are
replaced by zeros before the softmax and its probabilities by zeros after, with constant masks, so no
NaN reaches any derivative.
"""
from __future__ import annotations

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module
from distnn.functional import elementwise_choice as C
from distnn.functional.attention import MultiheadAttentionCore, _heads, _merge
from distnn.functional.join import concat
from distnn.functional.sdpa import ScaledDotProductAttention

from . import register, saved_input


def _probabilities(q, k, mask, scale, p_value):
    """softmax(q k^T * scale + mask) as a Tensor; ``p_value`` (the forward's) marks the dead rows."""
    xp = get_array_module(p_value)
    scores = (q * scale) @ k.transpose(-1, -2)
    if mask is not None:
        scores = scores + mask
    if not p_value.shape[-1]:
        return scores
    dead = p_value.sum(axis=-1, keepdims=True) == 0
    if not xp.any(dead):
        return scores.softmax(dim=-1)
    dead = xp.broadcast_to(dead, scores.shape)
    return C.where(dead, 0.0, C.where(dead, 0.0, scores).softmax(dim=-1))


def attention_grads(g, q, k, v, mask, dropmask, scale, p_value, need):
    """(dq, dk, dv, dscores) of softmax(q k^T * scale + mask) (* dropmask) @ v for the upstream ``g``, as
    Tensors; None where ``need`` (for q, k, v) says no."""
    p = _probabilities(q, k, mask, scale, p_value)
    pd = p if dropmask is None else p * dropmask
    dv = pd.transpose(-1, -2) @ g if need[2] else None
    dp = g @ v.transpose(-1, -2)
    if dropmask is not None:
        dp = dp * dropmask
    ds = p * (dp - (dp * p).sum(dim=-1, keepdim=True))
    dq = (ds @ k) * scale if need[0] else None
    dk = (ds.transpose(-1, -2) @ q) * scale if need[1] else None
    return dq, dk, dv, ds


def _repeat_heads(t, groups):
    """``repeat_interleave(t, groups, dim=-3)`` as recorded ops (its backward sums the copies)."""
    if groups == 1:
        return t
    shape = tuple(t.shape)
    wide = t.unsqueeze(-3).expand(*shape[:-2], groups, *shape[-2:])
    return wide.reshape(shape[:-3] + (shape[-3] * groups,) + shape[-2:])


def _ungroup(t, groups):
    if groups == 1:
        return t
    shape = tuple(t.shape)
    return t.reshape(shape[:-3] + (shape[-3] // groups, groups) + shape[-2:]).sum(dim=-3)


@register(ScaledDotProductAttention)
def _sdpa(node, g):
    need = node.needs_input_grad
    kg, vg = node.k_groups, node.v_groups
    # (the saved key/value are the grouped copies: every kg-th head is the input's own)
    k_in = node.k if kg == 1 else node.k[..., ::kg, :, :]
    v_in = node.v if vg == 1 else node.v[..., ::vg, :, :]
    q = saved_input(node, 0, node.q)
    k = _repeat_heads(saved_input(node, 1, k_in), kg)
    v = _repeat_heads(saved_input(node, 2, v_in), vg)
    mask = None
    if len(node.parents) > 3:
        mask = saved_input(node, 3, node.mask_value)
        if node.mask_dtype is not None and node.mask_dtype != node.q.dtype:
            mask = mask.to(node.q.dtype) if isinstance(mask, Tensor) else mask.astype(node.q.dtype)
    dq, dk, dv, ds = attention_grads(g, q, k, v, mask, node.dropmask, node.scale, node.p, need[:3])
    dk = None if dk is None else _ungroup(dk, kg)
    dv = None if dv is None else _ungroup(dv, vg)
    dmask = None
    if len(need) > 3 and need[3]:
        dmask = ds if node.mask_dtype == ds.dtype else ds.to(node.mask_dtype)
    return (dq, dk, dv, dmask, None)[: len(node.parents)]


def _heads_t(t, num_heads, seq_first):
    """``attention._heads`` on a Tensor: (L, N, E) or (N, L, E) -> (N, heads, L, d)."""
    a, b, E = t.shape
    t = t.reshape(a, b, num_heads, E // num_heads)
    return t.permute(1, 2, 0, 3) if seq_first else t.permute(0, 2, 1, 3)


def _merge_t(t, seq_first):
    N, h, L, d = t.shape
    if seq_first:
        return t.permute(2, 0, 1, 3).reshape(L, N, h * d)
    return t.permute(0, 2, 1, 3).reshape(N, L, h * d)


@register(MultiheadAttentionCore)
def _mha_core(node, g):
    h, sf = node.num_heads, node.seq_first
    arrays = [_merge(a, sf) for a in (node.q4, node.k4, node.v4)]
    if node.packed:
        xp = get_array_module(arrays[0])
        qkv = saved_input(node, 0, xp.concatenate(arrays, axis=-1))
        E = arrays[0].shape[-1]
        ins = (qkv[..., :E], qkv[..., E:2 * E], qkv[..., 2 * E:])
        need = (True, True, True)
    else:
        ins = tuple(saved_input(node, i, a) for i, a in enumerate(arrays))
        need = node.needs_input_grad[:3]
    q4, k4, v4 = (_heads_t(t, h, sf) for t in ins)
    g4 = _heads_t(g, h, sf)
    mask = node.mask_value
    dq, dk, dv, _ = attention_grads(g4, q4, k4, v4, mask, node.dropmask, node.scale, node.p, need)
    if node.packed:
        return concat([_merge_t(d, sf) for d in (dq, dk, dv)], -1), None, None, None, None
    return tuple(None if d is None else _merge_t(d, sf) for d in (dq, dk, dv)) + (None, None)
