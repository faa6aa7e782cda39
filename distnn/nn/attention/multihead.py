"""``MultiheadAttention`` with PyTorch's parameters, arguments, shapes and masks.

Parameters: ``in_proj_weight`` (3E, E), ``in_proj_bias`` (3E,), ``out_proj.weight``
(E, E), ``out_proj.bias`` (E,), so a PyTorch state_dict loads unchanged.
Masks: boolean masks are True where attention is NOT allowed; float masks are
added to the scores (in the query's dtype; or float32 with ``need_weights=False``:
another is refused, as PyTorch refuses it). ``attn_mask`` is (L, S) or (N*num_heads, L, S);
``key_padding_mask`` is (N, S). A query whose keys are all masked gets an
attention output of 0 with ``need_weights=False`` (the fused path, which
TransformerEncoderLayer uses; PyTorch's training path does the same), so one
empty sequence does not turn the batch's gradients into NaN; with
``need_weights=True`` it gives NaN, as PyTorch's reference path does.

``kdim``/``vdim`` other than embed_dim give separate ``q_proj_weight`` (E, E),
``k_proj_weight`` (E, kdim) and ``v_proj_weight`` (E, vdim) in place of
``in_proj_weight``; ``add_bias_kv`` appends the learned ``bias_k``/``bias_v`` (1, 1, E)
to the projected keys and values, ``add_zero_attn`` a zero key and value after
them (every mask lets a query see these), as PyTorch.
"""
from __future__ import annotations

import math

import numpy as np

from distnn import random as drandom
from distnn.autograd.tensor import Tensor
from distnn.backend import default_dtype, get_array_module
from distnn.functional import activation as A
from distnn.functional import shape as S
from distnn.functional._dtype_checks import attn_mask_dtype, autocast_dtype_of, check_attn_mask
from distnn.functional.attention import MultiheadAttentionCore
from distnn.functional.linear import linear

from .. import init
from ..linear import Linear
from ..module import Module, Parameter


def causal_mask(L, S=None, xp=np):
    """Boolean (L, S) mask, True above the diagonal (position i may not see j > i)."""
    S = L if S is None else S
    return xp.triu(xp.ones((L, S), dtype=bool), k=1)


def _raw(m):
    return m.data if isinstance(m, Tensor) else m


def _additive(mask, dtype, xp, what, where):
    """Bool (True = forbidden) or float mask -> additive float array; other dtypes refused, as PyTorch's
    _canonical_mask refuses them."""
    mask = xp.asarray(_raw(mask))
    if mask.dtype == bool:
        return xp.where(mask, dtype.type(-np.inf), dtype.type(0))
    if mask.dtype.kind != "f":
        raise AssertionError(f"only bool and floating types of {what} are supported ({where}: got dtype "
                             f"{mask.dtype})")
    return mask.astype(dtype, copy=False)


class MultiheadAttention(Module):
    """``MultiheadAttention(embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
    kdim=None, vdim=None, batch_first=False)`` (PyTorch's order; see the module docstring for the options).

    ``forward(query, key, value, key_padding_mask=None, need_weights=True,
    attn_mask=None, average_attn_weights=True, is_causal=False)`` returns
    ``(attn_output, attn_weights)``: output (L, N, E) ((N, L, E) when
    batch_first; (L, E) for unbatched input), weights (N, L, S) averaged over
    heads or (N, num_heads, L, S), None when ``need_weights`` is False.
    ``is_causal=True`` without ``attn_mask`` applies a causal mask (PyTorch
    requires the mask itself; given a mask, it is used as is).

    With ``need_weights=False`` the attention runs as one fused op
    (``functional.attention``); with weights it is composed from differentiable
    ops so the returned weights carry gradients, as in PyTorch.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, dtype=None, generator=None):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim {embed_dim} must be divisible by num_heads {num_heads}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1], got {dropout}")
        dtype = np.dtype(dtype or default_dtype())
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout, self.batch_first, self.generator = float(dropout), batch_first, generator
        self.kdim = embed_dim if kdim is None else int(kdim)
        self.vdim = embed_dim if vdim is None else int(vdim)
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.add_zero_attn = bool(add_zero_attn)
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), dtype))
            for name in ("q", "k", "v"):
                self.register_parameter(f"{name}_proj_weight", None)
        else:
            self.register_parameter("in_proj_weight", None)
            for name, dim in (("q", embed_dim), ("k", self.kdim), ("v", self.vdim)):
                setattr(self, f"{name}_proj_weight", Parameter(np.empty((embed_dim, dim), dtype)))
        if bias:
            self.in_proj_bias = Parameter(np.zeros(3 * embed_dim, dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype, generator=generator)
        # PyTorch's _reset_parameters: xavier_uniform_ on the projections, zero biases, xavier_normal_ on bias_k/v.
        for w in self._proj_weights():
            init.xavier_uniform_(w, generator=generator)
        if bias:
            self.out_proj.bias.data[...] = 0
        if add_bias_kv:
            self.bias_k = Parameter(np.empty((1, 1, embed_dim), dtype))
            self.bias_v = Parameter(np.empty((1, 1, embed_dim), dtype))
            init.xavier_normal_(self.bias_k, generator=generator)
            init.xavier_normal_(self.bias_v, generator=generator)
        else:
            self.register_parameter("bias_k", None)
            self.register_parameter("bias_v", None)

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"

    # ------------------------------------------------------------------ checks
    def _proj_weights(self):
        """The (q, k, v) projection weights: views of ``in_proj_weight``, or the three separate ones."""
        if self.in_proj_weight is not None:
            E, W = self.embed_dim, self.in_proj_weight
            return W[:E], W[E:2 * E], W[2 * E:]
        return self.q_proj_weight, self.k_proj_weight, self.v_proj_weight

    def _check(self, query, key, value):
        for name, t, dim in (("query", query, self.embed_dim), ("key", key, self.kdim), ("value", value, self.vdim)):
            if not isinstance(t, Tensor):
                raise TypeError(f"{self.where()}: {name} must be a Tensor, got {type(t).__name__}")
            if t.ndim not in (2, 3) or t.shape[-1] != dim:
                layout = "(N, L, E)" if self.batch_first else "(L, N, E)"
                what = "embed_dim" if name == "query" else name[0] + "dim"
                raise ValueError(
                    f"{self.where()}: {name} must be {layout} or unbatched (L, E) with E={what}="
                    f"{dim}, got shape {tuple(t.shape)}"
                )
        if not (query.ndim == key.ndim == value.ndim):
            raise ValueError(f"{self.where()}: query, key and value must all be batched or all unbatched, got shapes "
                             f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(f"{self.where()}: key {tuple(key.shape)} and value {tuple(value.shape)} shapes differ")

    def _build_mask(self, attn_mask, key_padding_mask, is_causal, N, L, S_, dtype, xp):
        """One additive mask broadcastable to (N, heads, L, S), or None."""
        w = self.where()
        mask = None
        if attn_mask is None and is_causal:
            attn_mask = causal_mask(L, S_, xp)
        if attn_mask is not None:
            am = _additive(attn_mask, dtype, xp, "attn_mask", w)
            if am.shape == (L, S_):
                am = am[None, None]
            elif am.shape == (N * self.num_heads, L, S_):
                am = am.reshape(N, self.num_heads, L, S_)
            else:
                raise ValueError(f"{w}: attn_mask must be {(L, S_)} or {(N * self.num_heads, L, S_)}, "
                                 f"got {tuple(am.shape)}")
            mask = am
        if key_padding_mask is not None:
            kp = _additive(key_padding_mask, dtype, xp, "key_padding_mask", w)
            if kp.shape != (N, S_):
                raise ValueError(f"{w}: key_padding_mask must be (N, S) = {(N, S_)}, got {tuple(kp.shape)}")
            kp = kp[:, None, None, :]
            mask = kp if mask is None else mask + kp
        return mask

    # ----------------------------------------------------------------- forward
    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        self._check(query, key, value)
        self_attn, kv_same = query is key and key is value, key is value
        unbatched = query.ndim == 2
        if unbatched:  # add the batch axis where the layout expects it
            ax = 0 if self.batch_first else 1
            query = S.Unsqueeze.apply(query, axis=ax)
            key = query if self_attn else S.Unsqueeze.apply(key, axis=ax)
            value = key if kv_same else S.Unsqueeze.apply(value, axis=ax)
            if key_padding_mask is not None:
                key_padding_mask = _raw(key_padding_mask)[None]
        seq_first = not self.batch_first
        N = query.shape[1] if seq_first else query.shape[0]
        L = query.shape[0] if seq_first else query.shape[1]
        S_ = key.shape[0] if seq_first else key.shape[1]
        if (key.shape[1] if seq_first else key.shape[0]) != N:
            raise ValueError(f"{self.where()}: query batch {N} != key batch; shapes {tuple(query.shape)}, "
                             f"{tuple(key.shape)}")
        xp = get_array_module(query.data)
        mask = self._build_mask(attn_mask, key_padding_mask, is_causal, N, L, S_, query.dtype, xp)
        # (PyTorch's: the masks add up in their dtype, a bool one counting as the query's; the sum must be the
        # projected query's dtype, or float32 too without the weights; autocast casts a float32 one)
        mask_dtype = attn_mask_dtype((attn_mask, key_padding_mask), np.dtype(query.dtype))
        lower = autocast_dtype_of(query.data)
        q_dtype = lower if lower is not None and query.dtype == np.float32 else np.dtype(query.dtype)
        check_attn_mask(mask_dtype, q_dtype, fused=not need_weights, autocast_dtype=lower)
        extra = (self.bias_k is not None) + self.add_zero_attn  # keys appended after the projection
        if extra and mask is not None:  # every query may see them (PyTorch pads each mask with 0 / False)
            mask = xp.concatenate([mask, xp.zeros(mask.shape[:-1] + (extra,), dtype=mask.dtype)], axis=-1)
        dropmask = None
        if self.training and self.dropout > 0:
            gen = self.generator if self.generator is not None else drandom.default_generator()
            # the weights' mask is (N, heads, L, S) in either layout: its samples are on axis 0
            keep = A.keep_mask(gen, (N, self.num_heads, L, S_ + extra), self.dropout, batch_dim=0)
            dropmask = xp.asarray(keep.astype(query.dtype) * query.dtype.type(1.0 / (1.0 - self.dropout)))

        packed = self_attn and self._qkv_same_embed_dim and not extra
        if need_weights:
            out, weights = self._composed(query, key, value, mask, dropmask, seq_first, packed)
        else:
            weights = None
            if packed:  # one matmul for q, k and v; the fused core splits and re-packs
                qkv = linear(query, self.in_proj_weight, self.in_proj_bias)
                out = MultiheadAttentionCore.apply(qkv, None, None, mask, dropmask, num_heads=self.num_heads,
                                                   seq_first=seq_first)
            else:
                q, k, v = self._project(query, key, value, seq_first)
                out = MultiheadAttentionCore.apply(q, k, v, mask, dropmask, num_heads=self.num_heads,
                                                   seq_first=seq_first)
        out = self.out_proj(out)
        if unbatched:
            out = S.Squeeze.apply(out, axis=0 if self.batch_first else 1)
        if weights is not None:
            weights = weights.mean(axis=1) if average_attn_weights else weights
            if unbatched:
                weights = S.Squeeze.apply(weights, axis=0)
        return out, weights

    def _project(self, query, key, value, seq_first):
        """Projected (q, k, v), with bias_k/bias_v and the zero key/value appended to k and v."""
        E = self.embed_dim
        Wq, Wk, Wv = self._proj_weights()
        b = self.in_proj_bias
        bq = bk = bv = None
        if b is not None:
            bq, bk, bv = b[:E], b[E : 2 * E], b[2 * E :]
        q = linear(query, Wq, bq)
        if key is value and self.in_proj_weight is not None:
            kv = linear(key, self.in_proj_weight[E:], None if b is None else b[E:])
            k, v = kv[..., :E], kv[..., E:]
        else:
            k, v = linear(key, Wk, bk), linear(value, Wv, bv)
        if self.bias_k is not None or self.add_zero_attn:
            axis = 0 if seq_first else 1  # the keys' sequence axis
            one = (1, k.shape[1], E) if seq_first else (k.shape[0], 1, E)
            ks, vs = [k], [v]
            if self.bias_k is not None:
                ks.append(S.broadcast_to(self.bias_k, one))
                vs.append(S.broadcast_to(self.bias_v, one))
            if self.add_zero_attn:
                zero = get_array_module(k.data).zeros(one, dtype=k.dtype)
                ks.append(zero)
                vs.append(zero)
            k, v = S.Concat.apply(*ks, axis=axis), S.Concat.apply(*vs, axis=axis)
        return q, k, v

    def _composed(self, query, key, value, mask, dropmask, seq_first, packed):
        """Attention from differentiable ops, returning per-head weights (N, h, L, S) too."""
        E, h, d = self.embed_dim, self.num_heads, self.head_dim
        if packed:
            qkv = linear(query, self.in_proj_weight, self.in_proj_bias)
            q, k, v = qkv[..., :E], qkv[..., E : 2 * E], qkv[..., 2 * E :]
        else:
            q, k, v = self._project(query, key, value, seq_first)

        def heads(t):
            a, b_ = t.shape[0], t.shape[1]
            t = t.reshape(a, b_, h, d)
            return t.permute(1, 2, 0, 3) if seq_first else t.permute(0, 2, 1, 3)

        q4, k4, v4 = heads(q), heads(k), heads(v)
        scores = (q4 * (1.0 / math.sqrt(d))) @ k4.transpose(-1, -2)
        if mask is not None:
            scores = scores + mask
        p = A.softmax(scores, axis=-1)
        if dropmask is not None:
            p = A.Dropout.apply(p, dropmask)
        o4 = p @ v4  # (N, h, L, d)
        o = o4.permute(2, 0, 1, 3) if seq_first else o4.permute(0, 2, 1, 3)
        return o.reshape(o.shape[0], o.shape[1], E), p
