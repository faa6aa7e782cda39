"""float16 cross-entropy and NLL with PyTorch 2.13's CPU roundings, so the per-sample losses ('none') and the
gradients are its values bitwise.

PyTorch composes the float16 loss from float16 tensors, each op rounding its result once: ``log_softmax``
(see :func:`~distnn.functional.activation.log_softmax_values`), then ``nll_loss``'s ``-logp[t] * w[t]``; with
label smoothing, ``smooth = -(logp * w).sum(1)`` (float32 sum, rounded), and ``(1 - eps) * nll +
smooth * (eps / C)``, where each Python scalar multiplies in float32 (the op's compute type), not rounded to
float16 first. Computing the whole loss in float32 and rounding once at the end (distnn's earlier path) is
the more accurate value but differs from PyTorch's by one unit in about 18 % of samples. The backward is
PyTorch's chain in reverse: each gradient rounded to float16 where its autograd graph rounds it, and
``log_softmax_backward`` in float32 on the float16 log-probabilities.

'mean' and 'sum' add the per-sample losses in float32 and round once (distnn's own, see ``cross_entropy``);
their gradients are PyTorch's: a weighted 'mean' divides the NLL term's gradient by PyTorch's own float16
total weight (:mod:`.nll_cascade_sum`), the label-smoothing term's by the float32-accumulated one, as it does.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.half_rounding import narrowed

from ._elementwise_common import _quiet
from .activation import log_softmax_values
from .nll_cascade_sum import nll_total_weight

_F32 = np.float32


def half_forward(fn, xp, x2, t, all_valid, weight, ignore_index, eps):
    """The (M,) float16 per-sample losses of (M, C) float16 ``x2``, reduced as ``fn.reduction`` says; saves on
    ``fn`` what :func:`half_backward` reads."""
    M, C = x2.shape
    # (PyTorch's log_softmax runs over dim 1 of the original layout: its last axis only for 1-D and 2-D input)
    logp = log_softmax_values(xp, x2, 1, len(fn.in_shape) <= 2) if fn.from_logits and x2.size else x2
    rows = xp.arange(M)
    valid = t != ignore_index
    safe_t = t if all_valid else xp.where(valid, t, 0)
    w_t = None if weight is None else weight[safe_t]
    picked = -logp[rows, safe_t]
    nll = picked if w_t is None else picked * w_t
    if not all_valid:  # (PyTorch writes +0 for an ignored sample; where, as its log-probabilities may be NaN)
        nll = xp.where(valid, nll, nll.dtype.type(0))
    per = nll
    if eps:
        terms = logp if weight is None else logp * weight
        smooth = -terms.sum(axis=1, dtype=_F32).astype(x2.dtype)
        if not all_valid:
            smooth = xp.where(valid, smooth, smooth.dtype.type(0))
        per = (nll * _F32(1 - eps)).astype(x2.dtype) + (smooth * _F32(eps / C)).astype(x2.dtype)
    fn.half, fn.logp, fn.rows, fn.t, fn.valid, fn.all_valid = True, logp, rows, safe_t, valid, all_valid
    fn.weight, fn.eps = weight, eps
    if fn.reduction == "none":
        return per.reshape(fn.batch_shape if len(fn.in_shape) > 1 else ())
    if fn.reduction == "sum":
        return per.sum().astype(x2.dtype)
    if all_valid and weight is None and not eps:  # (the float path's reductions, unchanged)
        fn.denom = x2.dtype.type(M)
        return per.mean().astype(x2.dtype)
    counted = (xp.ones(M, x2.dtype) if w_t is None else w_t) * valid
    fn.denom = counted.sum()
    with _quiet(xp):  # (every sample ignored: NaN, as PyTorch's)
        return (per.sum() / fn.denom).astype(x2.dtype)


def half_backward(fn, xp, g):
    """The (M, C) float16 gradient of :func:`half_forward`'s loss, as PyTorch's autograd rounds it."""
    logp, rows, t, eps, weight = fn.logp, fn.rows, fn.t, fn.eps, fn.weight
    dtype = logp.dtype
    M, C = logp.shape
    # (a reduced loss's one gradient value broadcasts over the samples: shape (1,))
    go = (g.reshape(-1) if fn.reduction == "none" else xp.asarray(g).reshape(1)).astype(dtype, copy=False)
    g_nll = (go * _F32(1 - eps)).astype(dtype) if eps else go
    g_smooth = (go * _F32(eps / C)).astype(dtype) if eps else None
    if fn.reduction == "mean":  # (grad / total weight in float16, as nll_loss_backward and DivBackward)
        # (weighted: nll_loss divides by its own float16 cascade total; the smoothing term's divisor is a float16
        # sum, float32 inside, as the forward's)
        nll_denom = fn.denom if weight is None else nll_total_weight(xp, weight[t], fn.valid)
        with _quiet(xp):
            g_nll = g_nll / nll_denom
            g_smooth = None if g_smooth is None else g_smooth / fn.denom
    grad = xp.zeros((M, C), dtype)
    if eps:  # smooth = -(logp * w).sum(1), ignored rows filled with 0: its gradient
        g_smooth = xp.where(fn.valid, -g_smooth, dtype.type(0)) if not fn.all_valid else -g_smooth
        grad[...] = g_smooth[:, None] if weight is None else g_smooth[:, None] * weight
    at_target = -g_nll if weight is None else weight[t] * -g_nll
    if not fn.all_valid:
        at_target = xp.where(fn.valid, at_target, dtype.type(0))
    if eps:
        grad[rows, t] += at_target
    else:  # (written, not added: PyTorch's -0 where the divided gradient underflows, the total being inf)
        grad[rows, t] = at_target
    if not fn.from_logits:
        return grad
    grad = _log_softmax_backward(xp, grad, logp)
    if not fn.all_valid:  # ignored rows get exactly 0, as distnn's float32 path (PyTorch's: 0 * NaN on a NaN row)
        grad = xp.where(fn.valid[:, None], grad, dtype.type(0))
    return grad


def _log_softmax_backward(xp, grad, logp):
    """``grad - exp(logp) * grad.sum(1)`` as PyTorch's float16 kernel: in float32, one fused multiply-add (its
    product exact: redone in float64, rounded once to float32), then rounded to float16. exp is taken in float64
    and rounded: PyTorch's float32 exp is within an ulp of that, numpy's float32 exp is not (about 40 % of
    values differ from PyTorch's in the last bit, and 1 gradient in 10,000 then rounds to another float16)."""
    wide = grad.astype(np.float64)
    total = grad.astype(_F32).sum(axis=1, keepdims=True).astype(np.float64)
    with _quiet(xp):
        e = xp.exp(logp.astype(np.float64)).astype(_F32).astype(np.float64)
        return narrowed((wide - e * total).astype(_F32), grad.dtype)
