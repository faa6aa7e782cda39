"""``scaled_dot_product_attention``: softmax(q k^T * scale + mask) v, as PyTorch's F.scaled_dot_product_attention.

Shapes as PyTorch's: query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev); the leading
(batch, head) dimensions of the three broadcast against each other. ``attn_mask`` broadcasts to the scores
(..., L, S): a bool mask is True where a query may attend (PyTorch's sense, the opposite of
MultiheadAttention's), a float mask is added to the scores and gets a gradient when it requires one; a float
mask is float32 or the query's dtype (another is refused, as PyTorch refuses it).
``is_causal`` is the top-left aligned lower-triangular mask ``tril(ones(L, S))``; ``enable_gqa`` lets key
and value have fewer heads (dimension -3) than the query, each shared by ``Hq / Hk`` consecutive query heads
(PyTorch's ``repeat_interleave``).

A query whose scores are all -inf (every key masked) gets probabilities 0, hence an output of 0 and zero
gradients, as PyTorch 2.13's math backend (its ``_safe_softmax``) and its fused CPU kernel give; not NaN.

``attend`` / ``attend_backward`` are the arithmetic on (..., L, E) arrays, shared with MultiheadAttention's
fused core (``functional.attention``), which splits heads out of its own layouts. Softmax backward:
dS = P * (dP - sum(dP * P, -1)).
"""
from __future__ import annotations

import math

import numpy as np

from distnn.autograd.autocast_state import autocast_policy
from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._dtype_checks import check_attn_mask
from .sdpa_backends import check_backend


def _safe_softmax(scores, xp):
    """Softmax over the last axis, in place; a row of -inf only gives zeros (PyTorch's _safe_softmax), not NaN."""
    top = scores.max(axis=-1, keepdims=True)
    top[top == -xp.inf] = 0  # (exp(-inf - 0) = 0 for the whole row; a NaN or +inf row stays NaN, as PyTorch's)
    scores -= top
    p = xp.exp(scores, out=scores)
    total = p.sum(axis=-1, keepdims=True)
    total[total == 0] = 1  # (only such a row sums to 0: the max's own entry is exp(0) = 1)
    p /= total
    return p


def attend(q, k, v, mask, dropmask, scale):
    """softmax(q k^T * scale + mask) (times ``dropmask``) @ v: (output, probabilities, dropped probabilities)."""
    xp = get_array_module(q)
    scores = (q * q.dtype.type(scale)) @ k.swapaxes(-1, -2)
    if mask is not None:  # (it broadcasts to the scores: checked by the caller, as PyTorch adds it in place)
        scores += mask
    p = _safe_softmax(scores, xp) if scores.shape[-1] else scores  # (no keys: an empty row, output 0)
    pd = p if dropmask is None else p * dropmask
    return pd @ v, p, pd


def attend_backward(g, q, k, v, p, pd, dropmask, scale, need=(True, True, True)):
    """Gradients of ``attend`` for the upstream ``g``: (dq, dk, dv, dscores); None where ``need`` says no
    (dscores, the gradient of an additive mask, always comes)."""
    dv = pd.swapaxes(-1, -2) @ g if need[2] else None
    ds = g @ v.swapaxes(-1, -2)  # dP, then dS in place (a fresh array)
    if dropmask is not None:
        ds *= dropmask
    ds -= (ds * p).sum(axis=-1, keepdims=True)
    ds *= p
    s = ds.dtype.type(scale)
    dq = (ds @ k) * s if need[0] else None
    dk = (ds.swapaxes(-1, -2) @ q) * s if need[1] else None
    return dq, dk, dv, ds


def _ungroup(grad, groups):
    """The gradient of ``repeat(a, groups, axis=-3)`` for its (..., H * groups, S, E) gradient: (..., H, S, E)."""
    if groups == 1:
        return grad
    shape = grad.shape
    return grad.reshape(shape[:-3] + (shape[-3] // groups, groups) + shape[-2:]).sum(axis=-3)


class ScaledDotProductAttention(Function):
    # PyTorch's fused CPU kernel (the default in float32 and float64) saves query, key, value, the mask and the
    # output whichever needs a gradient: so do we (distnn reads q, k, v and its own probabilities)
    reads = ((0, 1, 2, 3, OUTPUT),) * 4 + ((),)

    def forward(self, q, k, v, mask=None, dropmask=None, scale=1.0, k_groups=1, v_groups=1):
        xp = get_array_module(q)
        self.mask_dtype = None if mask is None else mask.dtype
        self.mask_value = mask  # (the input as given: the graph backward's mask)
        if mask is not None and mask.dtype != q.dtype:
            mask = mask.astype(q.dtype)
        if k_groups > 1:  # grouped-query attention: each key/value head serves k_groups consecutive query heads
            k = xp.repeat(k, k_groups, axis=-3)
        if v_groups > 1:
            v = xp.repeat(v, v_groups, axis=-3)
        out, p, pd = attend(q, k, v, mask, dropmask, scale)
        self.q, self.k, self.v, self.p, self.pd, self.dropmask = q, k, v, p, pd, dropmask
        self.scale, self.k_groups, self.v_groups = scale, k_groups, v_groups
        return out

    def backward(self, grad):
        need = self.needs_input_grad
        dq, dk, dv, ds = attend_backward(grad, self.q, self.k, self.v, self.p, self.pd, self.dropmask, self.scale,
                                         need[:3])
        dk = None if dk is None else _ungroup(dk, self.k_groups)
        dv = None if dv is None else _ungroup(dv, self.v_groups)
        dmask = None
        if len(need) > 3 and need[3]:  # (broadcast to the scores' shape: the engine sums it to the mask's)
            dmask = ds if ds.dtype == self.mask_dtype else ds.astype(self.mask_dtype)
        return dq, dk, dv, dmask, None


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _check(q, k, v, attn_mask, dropout_p, is_causal, enable_gqa):
    """PyTorch's refusals (ValueError for its RuntimeErrors on shapes and values, TypeError on dtypes; a mask's
    dtype is refused by ``_mask_array`` with PyTorch's RuntimeError)."""
    where = "scaled_dot_product_attention"
    if min(q.ndim, k.ndim, v.ndim) < 2:
        raise ValueError(f"{where}: expected query, key and value to all be at least 2 dimensional, got "
                         f"query.dim {q.ndim}, key.dim {k.ndim}, value.dim {v.ndim}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"{where}: expected query, key and value to have the same dtype, got {q.dtype}, "
                        f"{k.dtype}, {v.dtype}")
    if q.dtype.kind != "f":
        raise TypeError(f"{where}: query, key and value must be floating point, got {q.dtype}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"{where}: query's last dimension E={q.shape[-1]} must equal key's, got query "
                         f"{tuple(q.shape)} and key {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{where}: key and value must have the same length S (dimension -2), got key "
                         f"{tuple(k.shape)} and value {tuple(v.shape)}")
    if attn_mask is not None and is_causal:
        raise ValueError(f"{where}: explicit attn_mask should not be set when is_causal=True")
    if dropout_p > 1:  # (p <= 0: no dropout, as PyTorch, which refuses only p > 1)
        raise ValueError(f"{where}: dropout probability has to be between 0 and 1, but got {dropout_p}")
    if enable_gqa:
        if min(q.ndim, k.ndim, v.ndim) < 3:
            raise IndexError(f"{where}: enable_gqa needs a heads dimension (-3) in query, key and value, got "
                             f"query.dim {q.ndim}, key.dim {k.ndim}, value.dim {v.ndim}")
        hq, hk, hv = q.shape[-3], k.shape[-3], v.shape[-3]
        if hk == 0 or hv == 0 or hq % hk or hq % hv:
            raise ValueError(f"{where}: number of heads in key ({hk}) and value ({hv}) must divide the number of "
                             f"heads in query ({hq}) with enable_gqa=True")


def _scores_shape(q, k, v, k_groups, v_groups, where):
    """The scores' shape (..., L, S): query's and key's leading dimensions broadcast (value's must broadcast
    with those; the output then has theirs). Refuses leading dimensions that do not broadcast."""
    def grouped(a, groups):  # (the leading dimensions after enable_gqa's repeat of the heads)
        return a.shape[:-3] + (a.shape[-3] * groups,) if groups > 1 else a.shape[:-2]

    try:
        lead = np.broadcast_shapes(q.shape[:-2], grouped(k, k_groups))
        np.broadcast_shapes(lead, grouped(v, v_groups))
    except ValueError:
        raise ValueError(f"{where}: the leading (batch, head) dimensions of query {tuple(q.shape)}, key "
                         f"{tuple(k.shape)} and value {tuple(v.shape)} do not broadcast") from None
    return lead + (q.shape[-2], k.shape[-2])


def _mask_array(attn_mask, is_causal, shape, dtype, xp, where):
    """The mask as a Function input: a float Tensor as it is (it may need a gradient), a bool one (True: take
    part) or is_causal as an additive 0 / -inf array; None when there is none."""
    if is_causal:
        L, S = shape[-2:]
        return xp.where(xp.tril(xp.ones((L, S), dtype=bool)), dtype.type(0), dtype.type(-np.inf))
    if attn_mask is None:
        return None
    raw = xp.asarray(_raw(attn_mask))
    check_attn_mask(raw.dtype, dtype, fused=True)  # (integers too: PyTorch's RuntimeError)
    try:
        fits = np.broadcast_shapes(raw.shape, shape) == tuple(shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{where}: attn_mask of shape {tuple(raw.shape)} does not broadcast to the attention "
                         f"scores' shape {tuple(shape)} (..., L, S)")
    if raw.dtype == bool:
        return xp.where(raw, dtype.type(0), dtype.type(-np.inf))
    return attn_mask if isinstance(attn_mask, Tensor) else raw


@autocast_policy("lower")  # (PyTorch's CPU autocast runs it in the lower dtype)
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False, *, generator=None):
    """softmax(query @ key^T * scale + mask) @ value, PyTorch's F.scaled_dot_product_attention (see the module
    docstring for shapes and masks). ``scale`` defaults to 1 / sqrt(E).

    ``dropout_p`` > 0 drops attention probabilities (and scales the rest by 1 / (1 - p)) on every call, as
    PyTorch's (there is no training flag: pass 0 in evaluation). The masks come from ``generator`` or
    distnn's per-thread generator, the trainer's per-sample streams when it runs (the scores' first dimension
    holds the samples), so N data-parallel ranks drop what one process does.

    ``nn.attention.sdpa_kernel`` decides which calls are allowed, as PyTorch's CPU backend selection does;
    the arithmetic is always the math backend's (see ``functional.sdpa_backends``).
    """
    from distnn import random as drandom

    from .activation import _float_kind, keep_mask

    where = "scaled_dot_product_attention"
    q, k, v = (_raw(t) for t in (query, key, value))
    _check(q, k, v, attn_mask, dropout_p, is_causal, enable_gqa)
    check_backend(q, k, v, dropout_p, enable_gqa)  # (what nn.attention.sdpa_kernel enabled allows this call)
    k_groups = q.shape[-3] // k.shape[-3] if enable_gqa else 1
    v_groups = q.shape[-3] // v.shape[-3] if enable_gqa else 1
    shape = _scores_shape(q, k, v, k_groups, v_groups, where)
    xp = get_array_module(q)
    mask = _mask_array(attn_mask, is_causal, shape, q.dtype, xp, where)
    E = q.shape[-1]
    scale = (1.0 / math.sqrt(E) if E else math.inf) if scale is None else float(scale)
    dropmask = None
    if dropout_p > 0:
        if dropout_p >= 1:
            dropmask = xp.zeros(shape, dtype=q.dtype)
        else:
            rng = generator if generator is not None else drandom.default_generator()
            keep = keep_mask(rng, shape, dropout_p, _float_kind(q.dtype), batch_dim=0 if len(shape) > 2 else None)
            dropmask = xp.asarray(keep.astype(q.dtype) * q.dtype.type(1.0 / (1.0 - dropout_p)))
    return ScaledDotProductAttention.apply(query, key, value, mask, dropmask, scale=scale, k_groups=k_groups,
                                           v_groups=v_groups)
