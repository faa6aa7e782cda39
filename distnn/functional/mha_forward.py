"""PyTorch's ``F.multi_head_attention_forward``: MultiheadAttention's arithmetic on weights given as arguments.

The layout is the sequence-first one: query (L, N, E), key (S, N, kdim), value (S, N, vdim), or unbatched
(L, E), (S, kdim), (S, vdim). The steps are PyTorch's, in its order:

* the input projection: ``in_proj_weight`` (3E, E) split in three (or, with ``use_separate_proj_weight``,
  ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim), ``v_proj_weight`` (E, vdim)), ``in_proj_bias``
  (3E,) likewise;
* ``bias_k`` / ``bias_v`` (1, 1, E) appended to the keys and values; ``static_k`` / ``static_v``
  (N * num_heads, S, E / num_heads) replace the projected ones; ``add_zero_attn`` appends a zero key and
  value; every mask gets a 0 (may attend) column for each appended key;
* masks: bool (True: may NOT attend) or float (added to the scores); ``attn_mask`` (L, S) or
  (N * num_heads, L, S), ``key_padding_mask`` (N, S), added together; their sum's dtype (a bool mask counts
  as the query's) must be the projected query's, or with ``need_weights=False`` float32 too, as PyTorch's;
* ``need_weights=True``: softmax(q k^T / sqrt(d) + mask), dropout, times v, composed from differentiable
  ops so the returned weights carry gradients (a query that sees no key gets NaN, as PyTorch's);
  ``need_weights=False``: ``F.scaled_dot_product_attention`` (a query that sees no key gets 0), with
  ``is_causal`` passed on when there is no key_padding_mask (PyTorch's fast path);
* ``dropout_p`` applies only with ``training`` (True by default, as PyTorch's); its masks come from
  distnn's per-sample dropout streams, as nn.MultiheadAttention's, so N ranks drop what one process does.

Returns ``(attn_output, attn_weights)``: (L, N, E) (or (L, E)) through ``out_proj``, and the weights
(N, L, S) averaged over the heads, (N, num_heads, L, S) without ``average_attn_weights``, or None.
PyTorch's refusals are its AssertionErrors and RuntimeErrors, with its messages.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from . import activation as A
from . import shape as S
from ._dtype_checks import attn_mask_dtype, autocast_dtype_of, check_attn_mask
from .linear import linear
from .sdpa import scaled_dot_product_attention


def _shape_check(query, key, value, key_padding_mask, attn_mask, num_heads):
    """PyTorch's _mha_shape_check: whether the input is batched, or its AssertionError."""
    if query.ndim == 3:
        if key.ndim != 3 or value.ndim != 3:
            raise AssertionError("For batched (3-D) `query`, expected `key` and `value` to be 3-D but found "
                                 f"{key.ndim}-D and {value.ndim}-D tensors respectively")
        if key_padding_mask is not None and key_padding_mask.ndim != 2:
            raise AssertionError("For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D but "
                                 f"found {key_padding_mask.ndim}-D tensor instead")
        if attn_mask is not None and attn_mask.ndim not in (2, 3):
            raise AssertionError("For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D but "
                                 f"found {attn_mask.ndim}-D tensor instead")
        return True
    if query.ndim == 2:
        if key.ndim != 2 or value.ndim != 2:
            raise AssertionError("For unbatched (2-D) `query`, expected `key` and `value` to be 2-D but found "
                                 f"{key.ndim}-D and {value.ndim}-D tensors respectively")
        if key_padding_mask is not None and key_padding_mask.ndim != 1:
            raise AssertionError("For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or 1-D "
                                 f"but found {key_padding_mask.ndim}-D tensor instead")
        if attn_mask is not None:
            if attn_mask.ndim not in (2, 3):
                raise AssertionError("For unbatched (2-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D "
                                     f"but found {attn_mask.ndim}-D tensor instead")
            expected = (num_heads, query.shape[0], key.shape[0])
            if attn_mask.ndim == 3 and tuple(attn_mask.shape) != expected:
                raise AssertionError(f"Expected `attn_mask` shape to be {expected} but got {tuple(attn_mask.shape)}")
        return False
    raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received {query.ndim}-D query "
                         "tensor")


def _canonical(mask, name, other, other_name, dtype, xp):
    """PyTorch's _canonical_mask: a bool mask becomes 0 / -inf of ``dtype``; a float one is added as it is (a
    Tensor keeps its gradient); other dtypes are refused. Returns a Tensor or None."""
    if mask is None:
        return None
    kind = np.dtype(mask.dtype).kind
    if kind not in "bf":
        raise AssertionError(f"only bool and floating types of {name} are supported")
    if other is not None and np.dtype(other.dtype) != np.dtype(mask.dtype):
        warnings.warn(f"Support for mismatched {name} and {other_name} is deprecated. Use same type for both "
                      "instead.", UserWarning, stacklevel=3)
    if kind == "b":
        raw = xp.asarray(mask.data if isinstance(mask, Tensor) else mask)
        return Tensor(xp.where(raw, dtype.type(-np.inf), dtype.type(0)))
    # (an array is a constant: taken in the query's dtype, as nn.MultiheadAttention's masks; a Tensor as it is)
    return mask if isinstance(mask, Tensor) else Tensor(xp.asarray(mask).astype(dtype, copy=False))


def _pad_key(mask):
    """A mask with one more key column, 0 (every query may attend the appended key)."""
    xp = get_array_module(mask.data)
    return S.Concat.apply(mask, xp.zeros(mask.shape[:-1] + (1,), dtype=mask.dtype), axis=mask.ndim - 1)


def _static(t, name, N, h, d):
    """static_k / static_v (N * h, S, d) checked as PyTorch's, as (N, h, S, d)."""
    if t.shape[0] != N * h:
        raise AssertionError(f"expecting {name}.size(0) of {N * h}, but got {t.shape[0]}")
    if t.shape[2] != d:
        raise AssertionError(f"expecting {name}.size(2) of {d}, but got {t.shape[2]}")
    return t.reshape(N, h, t.shape[1], d)


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias,
                                 bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias,
                                 training=True, key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None, k_proj_weight=None,
                                 v_proj_weight=None, static_k=None, static_v=None, average_attn_weights=True,
                                 is_causal=False):
    """Multi-head attention with the weights as arguments (PyTorch's ``F.multi_head_attention_forward``,
    its signature and defaults; see the module docstring for the steps, shapes and masks)."""
    batched = _shape_check(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:
        query, key, value = (S.Unsqueeze.apply(t, axis=1) for t in (query, key, value))
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask[None]
    L, N, E = query.shape
    xp = get_array_module(query.data)
    dtype = np.dtype(query.dtype)
    # (the dtype the masks add up in, from the masks as given: an array as a tensor of its dtype)
    mask_dtype = attn_mask_dtype((key_padding_mask, attn_mask), dtype)
    key_padding_mask = _canonical(key_padding_mask, "key_padding_mask", attn_mask, "attn_mask", dtype, xp)
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the Transformer module "
                           "method `generate_square_subsequent_mask` to create this mask.")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # (PyTorch's hint: scaled_dot_product_attention applies the causal mask itself)
        mask_dtype = None
    else:
        attn_mask = _canonical(attn_mask, "attn_mask", None, "", dtype, xp)
        if key_padding_mask is not None:
            is_causal = False
    if E != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {E}")
    h, d = num_heads, E // num_heads
    if d * h != E:
        raise AssertionError(f"embed_dim {E} not divisible by num_heads {num_heads}")
    if use_separate_proj_weight:
        if key.shape[:2] != value.shape[:2]:
            raise AssertionError(f"key's sequence and batch dims {tuple(key.shape[:2])} do not match value's "
                                 f"{tuple(value.shape[:2])}")
    elif key.shape != value.shape:
        raise AssertionError(f"key shape {tuple(key.shape)} does not match value shape {tuple(value.shape)}")

    # the input projection
    b = in_proj_bias
    bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E:2 * E], b[2 * E:])
    if not use_separate_proj_weight:
        if in_proj_weight is None:
            raise AssertionError("use_separate_proj_weight is False but in_proj_weight is None")
        Wq, Wk, Wv = in_proj_weight[:E], in_proj_weight[E:2 * E], in_proj_weight[2 * E:]
    else:
        for name, w in (("q", q_proj_weight), ("k", k_proj_weight), ("v", v_proj_weight)):
            if w is None:
                raise AssertionError(f"use_separate_proj_weight is True but {name}_proj_weight is None")
        Wq, Wk, Wv = q_proj_weight, k_proj_weight, v_proj_weight
    q, k, v = linear(query, Wq, bq), linear(key, Wk, bk), linear(value, Wv, bv)

    if attn_mask is not None:  # -> (1 or N, h, L, S), broadcast against the scores
        S_ = key.shape[0]
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (L, S_):
                raise RuntimeError(f"The shape of the 2D attn_mask is {tuple(attn_mask.shape)}, but should be "
                                   f"{(L, S_)}.")
            attn_mask = attn_mask.reshape(1, 1, L, S_)
        elif attn_mask.ndim == 3:
            if tuple(attn_mask.shape) != (N * h, L, S_):
                raise RuntimeError(f"The shape of the 3D attn_mask is {tuple(attn_mask.shape)}, but should be "
                                   f"{(N * h, L, S_)}.")
            attn_mask = attn_mask.reshape(N, h, L, S_)
        else:
            raise RuntimeError(f"attn_mask's dimension {attn_mask.ndim} is not supported")
    if bias_k is not None and bias_v is not None:
        if static_k is not None:
            raise AssertionError("bias cannot be added to static key.")
        if static_v is not None:
            raise AssertionError("bias cannot be added to static value.")
        k = S.Concat.apply(k, S.broadcast_to(bias_k, (1, N, E)), axis=0)
        v = S.Concat.apply(v, S.broadcast_to(bias_v, (1, N, E)), axis=0)
        attn_mask = None if attn_mask is None else _pad_key(attn_mask)
        key_padding_mask = None if key_padding_mask is None else _pad_key(key_padding_mask)
    elif bias_k is not None:
        raise AssertionError("bias_k is set but bias_v is None")
    elif bias_v is not None:
        raise AssertionError("bias_v is set but bias_k is None")

    # the heads: (N, h, length, d)
    q4 = q.reshape(L, N, h, d).permute(1, 2, 0, 3)
    k4 = k.reshape(k.shape[0], N, h, d).permute(1, 2, 0, 3) if static_k is None else _static(static_k, "static_k",
                                                                                              N, h, d)
    v4 = v.reshape(v.shape[0], N, h, d).permute(1, 2, 0, 3) if static_v is None else _static(static_v, "static_v",
                                                                                              N, h, d)
    if add_zero_attn:
        k4 = S.Concat.apply(k4, xp.zeros((N, h, 1, d), dtype=k4.dtype), axis=2)
        v4 = S.Concat.apply(v4, xp.zeros((N, h, 1, d), dtype=v4.dtype), axis=2)
        attn_mask = None if attn_mask is None else _pad_key(attn_mask)
        key_padding_mask = None if key_padding_mask is None else _pad_key(key_padding_mask)
    S_ = k4.shape[2]
    if key_padding_mask is not None:
        if key_padding_mask.shape[0] != N:
            raise AssertionError(f"Expected key_padded_mask.shape[0] to be {N}, but got {key_padding_mask.shape[0]}")
        if key_padding_mask.shape[1] != S_:
            raise AssertionError(f"Expected key_padded_mask.shape[1] to be {S_}, but got "
                                 f"{key_padding_mask.shape[1]}")
        kp = key_padding_mask.reshape(N, 1, 1, S_)
        attn_mask = kp if attn_mask is None else attn_mask + kp
    if not training:
        dropout_p = 0.0
    check_attn_mask(mask_dtype, np.dtype(q4.dtype), fused=not need_weights, autocast_dtype=autocast_dtype_of(q4.data))

    if need_weights:
        scores = (q4 * math.sqrt(1.0 / d)) @ k4.transpose(-1, -2)
        if attn_mask is not None:
            scores = scores + attn_mask
        p = A.softmax(scores, axis=-1)
        if dropout_p > 0.0:
            from distnn import random as drandom

            # the weights' mask is (N, h, L, S): its samples are on axis 0, as nn.MultiheadAttention's
            keep = A.keep_mask(drandom.default_generator(), tuple(p.shape), dropout_p, batch_dim=0)
            p = A.Dropout.apply(p, xp.asarray(keep.astype(dtype) * dtype.type(1.0 / (1.0 - dropout_p))))
        o4 = p @ v4
        weights = p.mean(axis=1) if average_attn_weights else p
    else:
        o4 = scaled_dot_product_attention(q4, k4, v4, attn_mask, dropout_p, is_causal and attn_mask is None)
        weights = None
    out = linear(o4.permute(2, 0, 1, 3).reshape(L, N, E), out_proj_weight, out_proj_bias)
    if not batched:
        out = S.Squeeze.apply(out, axis=1)
        weights = None if weights is None else S.Squeeze.apply(weights, axis=0)
    return out, weights
