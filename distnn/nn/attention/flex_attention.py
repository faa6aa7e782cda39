"""``flex_attention``: attention with a user's ``score_mod`` and ``mask_mod``, as PyTorch 2.13's
torch.nn.attention.flex_attention computes it without torch.compile (its eager math reference).

For query (B, Hq, L, E), key (B or 1, Hkv, S, E), value (B or 1, Hkv, S, Ev):

    scores = (query @ key^T) * scale                 in float64 for float64 query, float32 otherwise
    scores = score_mod(scores, b, h, q_idx, kv_idx)  (when given)
    scores = where(mask_mod(b, h, q_idx, kv_idx), scores, -inf)   (the block_mask's, when given)
    output = softmax(scores) @ value                 (B, Hq, L, Ev), in query's dtype

A query row whose scores are all -inf gets output 0 (PyTorch's ``_safe_softmax``) and logsumexp -inf.
``enable_gqa`` shares each key/value head among Hq / Hkv consecutive query heads. The logsumexp
(``return_aux=AuxRequest(lse=True)``, or the deprecated ``return_lse``) is (B, Hq, L) in natural log,
as PyTorch returns it (None when there are no rows, as PyTorch's); ``max_scores`` the rows' maxima (PyTorch's CUDA kernels return them, its CPU refuses:
distnn computes them on every device).

How the mods are called, and what they may contain: see ``_mods``. The block lists of a BlockMask do not
change the result (PyTorch's eager reference applies the mask_mod to every score: ``block_mask``).
Gradients reach query, key, value and Tensors a score_mod captures (a learned bias table, say); PyTorch
refuses backward on CPU and differentiates on CUDA: distnn differentiates on both, twice too
(``create_graph``).
``kernel_options`` configure PyTorch's compiled kernels: checked as PyTorch checks them, otherwise unused.
"""
from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np

from distnn.autograd.derivatives import saved_input, saved_output
from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import device_of, get_array_module
from distnn.functional import shape as S
from distnn.functional.elementwise_choice import where
from distnn.functional.elementwise import exp
from distnn.functional.sdpa import _safe_softmax

from ._mods import and_masks, create_mask, evaluate_mask, index_tensors, noop_mask, or_masks
from .block_mask import BlockMask, _sliced_mask_mod_error, create_block_mask

__all__ = ["BlockMask", "flex_attention", "AuxOutput", "AuxRequest", "create_block_mask", "create_mask",
           "or_masks", "and_masks", "noop_mask"]

_BACKENDS = ("AUTO", "TRITON", "FLASH", "TRITON_DECODE")


class AuxRequest(NamedTuple):
    """Which auxiliary outputs flex_attention returns (PyTorch's ``AuxRequest``)."""

    lse: bool = False
    max_scores: bool = False


class AuxOutput(NamedTuple):
    """flex_attention's auxiliary outputs: (B, Hq, L) Tensors, None where not requested."""

    lse: Tensor | None = None
    max_scores: Tensor | None = None


class SafeSoftmax(Function):
    """Softmax over the last axis; a row of -inf only gives zeros (PyTorch's ``_safe_softmax``), with zero
    gradient. dS = P * (dP - sum(dP * P))."""

    reads = ((OUTPUT,),)

    def forward(self, scores):
        self.p = _safe_softmax(scores.copy(), get_array_module(scores)) if scores.shape[-1] else scores.copy()
        return self.p

    def backward(self, grad):
        p = self.p
        return (p * (grad - (grad * p).sum(axis=-1, keepdims=True)),)

    def backward_graph(self, g):  # (create_graph: the same formula on recorded Tensors)
        p = saved_output(self, self.p)
        return (p * (g - (g * p).sum(dim=-1, keepdim=True)),)


class SafeLogSumExp(Function):
    """log(sum(exp(scores))) over the last axis: -inf for a row of -inf, whose gradient is 0 (not NaN)."""

    reads = ((0, OUTPUT),)

    def forward(self, scores):
        xp = get_array_module(scores)
        top = scores.max(axis=-1, keepdims=True) if scores.shape[-1] else xp.zeros(scores.shape[:-1] + (1,),
                                                                                   scores.dtype)
        top = xp.where(xp.isneginf(top), 0, top)
        with np.errstate(divide="ignore"):
            self.lse = xp.log(xp.exp(scores - top).sum(axis=-1, keepdims=True)) + top
        self.scores = scores
        return self.lse[..., 0]

    def backward(self, grad):
        xp = get_array_module(grad)
        lse = self.lse
        p = xp.exp(self.scores - xp.where(xp.isneginf(lse), 0, lse))  # (a -inf row: exp(-inf) = 0)
        return (grad[..., None] * p,)

    def backward_graph(self, g):
        xp = get_array_module(g.data)
        scores = saved_input(self, 0, self.scores)
        lse = S.Unsqueeze.apply(saved_output(self, self.lse[..., 0]), axis=-1)
        safe = where(Tensor(xp.isneginf(self.lse)), 0.0, lse)
        return (S.Unsqueeze.apply(g, axis=-1) * exp(scores - safe),)


class RowMax(Function):
    """The maximum over the last axis (PyTorch's ``torch.max(scores, -1)[0]``; the gradient goes to the first
    maximum)."""

    def forward(self, scores):
        xp = get_array_module(scores)
        self.shape = scores.shape
        self.arg = scores.argmax(axis=-1)[..., None] if scores.shape[-1] else None
        return scores.max(axis=-1) if scores.shape[-1] else xp.full(scores.shape[:-1], -np.inf, scores.dtype)

    def backward(self, grad):
        xp = get_array_module(grad)
        if self.arg is None:
            return (xp.zeros(self.shape, dtype=grad.dtype),)
        first = xp.arange(self.shape[-1]) == self.arg  # (one-hot at the first maximum of each row)
        return (first * grad[..., None],)

    def backward_graph(self, g):
        if self.arg is None:
            return (Tensor(get_array_module(g.data).zeros(self.shape, dtype=g.dtype)),)
        first = get_array_module(g.data).arange(self.shape[-1]) == self.arg
        return (S.Unsqueeze.apply(g, axis=-1) * Tensor(first.astype(g.dtype)),)


def _check(query, key, value, block_mask, enable_gqa):
    """PyTorch's refusals, in its order."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"flex_attention(): {name} must be a Tensor, got {type(t).__name__}")
    if not device_of(query.data) == device_of(key.data) == device_of(value.data):
        raise ValueError(f"Expected query, key, and value to have the same device type, but got query.device: "
                         f"{query.device}, key.device: {key.device}, and value.device: {value.device} instead.")
    if min(query.ndim, key.ndim, value.ndim) < 2:
        raise ValueError(f"Expected query, key, and value to all be  at least 2 dimensional, but got query.dim: "
                         f"{query.ndim}, key.dim: {key.ndim} and value.dim: {value.ndim} instead.")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"Expect query and key/value to have the same embedding dimension but got "
                         f"E={query.shape[-1]} and E={key.shape[-1]}.")
    if not query.ndim == key.ndim == value.ndim == 4:
        raise NotImplementedError("NYI: query, key, and value must be 4D tensors")
    for name, t in (("query", query), ("key", key), ("value", value)):
        if np.dtype(t.dtype).kind != "f":
            raise TypeError(f"flex_attention(): {name} must be floating point, got dtype {t.dtype}")
    if not enable_gqa and query.shape[-3] != key.shape[-3]:
        raise ValueError(f"Expect query and key/value to have the same number of heads but got "
                         f"Hq={query.shape[-3]} and Hkv={key.shape[-3]}. Try setting enable_gqa=True for GQA.")
    if enable_gqa and (key.shape[1] == 0 or query.shape[1] % key.shape[1]):
        raise ValueError(f"Expect number of query heads to be a multiple of kv heads for GQA but got "
                         f"Hq={query.shape[1]} and Hkv={key.shape[1]}.")
    if key.shape[2] == 0:  # (PyTorch's eager reference takes the rows' max, which has no keys to take)
        raise IndexError("flex_attention(): max(): Expected reduction dim 3 to have non-zero size: key and value "
                         "have no positions (S = 0)")
    if value.shape[2] != key.shape[2]:  # (PyTorch's: its matmul's message)
        raise RuntimeError(f"flex_attention(): value {tuple(value.shape)} must have key's length S={key.shape[2]} "
                           f"(dimension 2), got {value.shape[2]}")
    if any(v not in (1, k) for v, k in zip(value.shape[:2], key.shape[:2])):  # (1 broadcasts, as in PyTorch)
        raise RuntimeError(f"flex_attention(): value's batch and heads {tuple(value.shape[:2])} must equal key's "
                           f"{tuple(key.shape[:2])} or be 1")
    if query.shape[0] != key.shape[0]:
        if block_mask is None:
            raise ValueError(f"Expect query and key/value to have the same batch size, or non-none block_mask, "
                             f"but got block_mask=None, Bq={query.shape[0]}, and Bkv={key.shape[0]}.")
        if block_mask.kv_num_blocks.shape[0] != query.shape[0]:
            raise ValueError(f"Expect query and key/value to have the same batch size, or block_mask and query to "
                             f"have the same batch size, but got Bq={query.shape[0]}, Bkv={key.shape[0]}, "
                             f"B_block_mask={block_mask.kv_num_blocks.shape[0]}.")
        if key.shape[0] != 1:  # (PyTorch's math reference broadcasts a single key/value batch only)
            raise RuntimeError(f"Bq and Bkv must broadcast. Got Bq={query.shape[0]} and Bkv={key.shape[0]}")
    if block_mask is not None:
        _check_block_mask(block_mask, query.shape[-2], key.shape[-2])


def _check_block_mask(block_mask, q_len, kv_len):
    if not isinstance(block_mask, BlockMask):
        raise TypeError(f"flex_attention(): block_mask must be a BlockMask, got {type(block_mask).__name__}")
    if block_mask.mask_mod is _sliced_mask_mod_error:
        raise RuntimeError("Cannot use mask_mod from a sliced BlockMask")
    mq, mkv = block_mask.shape[-2:]
    if q_len > mq or kv_len > mkv:
        raise ValueError(f"block_mask was created for block_mask.shape={block_mask.shape} but got q_len={q_len} and "
                         f"kv_len={kv_len}. As the block mask was created for a smaller length than you're using it "
                         f"for, you likely need to create a new block mask.")
    if q_len != mq or kv_len != mkv:
        raise ValueError(f"block_mask was created for block_mask.shape={block_mask.shape} but got q_len={q_len} and "
                         f"kv_len={kv_len}. As the block mask was created for a larger length than you're using it "
                         f"for, create a new block mask with the correct length.")


def _check_options(kernel_options, return_lse, return_aux):
    if return_lse and return_aux is not None:
        raise ValueError("Cannot specify both return_lse and return_aux. return_lse is deprecated, please use "
                         "return_aux=AuxRequest(lse=True) instead.")
    if return_lse:
        warnings.warn("return_lse is deprecated and will be removed in v2.10. Please use "
                      "return_aux=AuxRequest(lse=True) instead.", FutureWarning, stacklevel=3)
    options = dict(kernel_options or {})
    if "BACKEND" in options and options.get("FORCE_USE_FLEX_ATTENTION", False):
        raise RuntimeError("BACKEND cannot be combined with legacy FORCE_USE_FLEX_ATTENTION. BACKEND supersedes the "
                           "legacy knob; please drop FORCE_USE_FLEX_ATTENTION and only specify the desired BACKEND.")
    if "BACKEND" in options and options["BACKEND"] not in _BACKENDS:
        raise ValueError(f"Invalid BACKEND value '{options['BACKEND']}'. Must be one of {_BACKENDS}")
    for internal in ("OUTPUT_LOGSUMEXP", "OUTPUT_MAX"):
        if internal in options:
            raise AssertionError(f"{internal} must not be in kernel_options")


def _to(t, dtype):
    return t if np.dtype(t.dtype) == dtype else t.to(dtype)


def flex_attention(query, key, value, score_mod=None, block_mask=None, scale=None, enable_gqa=False,
                   return_lse=False, kernel_options=None, *, return_aux=None):
    """PyTorch's ``flex_attention`` (see the module docstring). ``score_mod(score, b, h, q_idx, kv_idx)``
    returns the modified scores; ``block_mask`` (from ``create_block_mask``) brings the mask_mod; ``scale``
    defaults to 1 / sqrt(E). Returns the output; with ``return_aux`` (an AuxRequest) ``(output, AuxOutput)``;
    with the deprecated ``return_lse`` ``(output, lse)``."""
    _check(query, key, value, block_mask, enable_gqa)
    _check_options(kernel_options, return_lse, return_aux)
    want_lse = return_lse or (return_aux is not None and return_aux.lse)
    want_max = return_aux is not None and return_aux.max_scores
    B, Hq, L, E = query.shape
    Hkv, S_len, Ev = key.shape[1], key.shape[2], value.shape[-1]
    G = Hq // Hkv if Hkv else 1
    scale = 1.0 / math.sqrt(E) if scale is None else float(scale)  # (E = 0: PyTorch's ZeroDivisionError too)
    work = np.dtype(np.float64 if np.dtype(query.dtype) == np.float64 else np.float32)
    xp = get_array_module(query.data)
    # grouped heads without copies: query head h = kv head h // G, group member h % G (repeat_interleave's order)
    q5 = _to(query, work).reshape(B, Hkv, G, L, E)
    k5 = S.Unsqueeze.apply(_to(key, work), axis=2)
    scores = (q5 @ k5.transpose(-1, -2)).reshape(B, Hq, L, S_len) * scale
    idx = index_tensors(B, Hq, L, S_len, xp)
    if score_mod is not None:
        scores = score_mod(scores, *idx)
        if not isinstance(scores, Tensor):
            raise TypeError(f"flex_attention(): score_mod must return a Tensor, got {type(scores).__name__}")
        if scores.shape != (B, Hq, L, S_len):
            scores = S.broadcast_to(scores, (B, Hq, L, S_len))
    if block_mask is not None and block_mask.mask_mod is not noop_mask:
        allowed = evaluate_mask(block_mask.mask_mod, idx, (B, Hq, L, S_len), xp)
        scores = where(Tensor(allowed), scores, -np.inf)
    p = SafeSoftmax.apply(scores)
    v5 = S.Unsqueeze.apply(_to(value, np.dtype(query.dtype)), axis=2)
    out = (_to(p, np.dtype(query.dtype)).reshape(B, Hkv, G, L, S_len) @ v5).reshape(B, Hq, L, Ev)
    rows = B * Hq * L  # (no rows: PyTorch returns None for the requested statistics)
    lse = SafeLogSumExp.apply(scores) if want_lse and rows else None
    if return_aux is not None:
        return out, AuxOutput(lse=lse, max_scores=RowMax.apply(scores) if want_max and rows else None)
    return (out, lse) if return_lse else out
