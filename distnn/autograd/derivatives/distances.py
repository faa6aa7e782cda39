"""Graph backwards of the p-norms with any order (``NormP``: ``F.normalize`` and ``F.pairwise_distance`` with
p != 2, and ``p_norm``'s other users), of the norm clamp of ``F.cosine_similarity`` and of
``logcumsumexp``: PyTorch's ``norm_backward`` and ``logcumsumexp_backward`` (FunctionsManual.cpp) written with
recorded ops.

Where PyTorch masks a value (a zero norm, an ``x == 0`` for p < 1, the tied extrema for +-inf, the sign of x),
the mask is a constant here too: its derivative is zero, as PyTorch's.
"""
from __future__ import annotations

import math

import numpy as np

from distnn.backend import get_array_module
from distnn.functional import elementwise as E
from distnn.functional import elementwise_choice as C
from distnn.functional.normalize import NormP
from distnn.functional import reduce_scan as RS
from distnn.functional.distance import _ClampMinKeepGrad

from . import register, saved_input, saved_output, unsqueeze_to, zero_link


@register(NormP)
def _norm_p(node, g):
    a = saved_input(node, 0, node.a)
    p, axes, keep = node.p, node.axes, node.keepdims
    if p == 0:  # (the count of non-zeros is flat)
        return (None,)
    xp = get_array_module(g.data)
    g = unsqueeze_to(g, axes, keep) if a.ndim else g
    a_raw, n_raw = node.a, node.n
    sign = xp.sign(a_raw)
    if p == 1:
        return (zero_link(g * sign, node, 0),)
    if math.isinf(p):  # (the extrema share the gradient: a mask, so linear in g)
        ab = xp.abs(a_raw)
        mask = (ab == n_raw) | xp.isnan(ab)
        return (zero_link(g * (sign * mask / mask.sum(axis=axes, keepdims=True)), node, 0),)
    out = node.n if keep else node.n.reshape([s for i, s in enumerate(a_raw.shape) if i not in axes])
    n = unsqueeze_to(saved_output(node, out), axes, keep) if a.ndim else saved_output(node, out)
    zero_norm = (n_raw == 0)
    if p == 2:
        return (g * a / (n + zero_norm.astype(a.dtype)) * (~zero_norm).astype(a.dtype),)
    zero_x = (a_raw == 0).astype(a.dtype)
    if p < 1:  # sgn(x) |x|^(p-1), 0 where x = 0; times g n^(1-p)
        scaled = sign * (a.abs() + zero_x) ** (p - 1) * (1 - zero_x)
        return (scaled * g * n ** (1 - p),)
    scaled = sign * a.abs() ** (p - 1) if p < 2 else a * a.abs() ** (p - 2)
    scale = g / (n + zero_norm.astype(a.dtype)) ** (p - 1) * (~zero_norm).astype(a.dtype)
    return (scaled * scale,)


@register(_ClampMinKeepGrad)
def _clamp_keep_grad(node, g):
    return (g,)


def _reverse_logcumsumexp(x, d):
    return RS.LogCumSumExp.apply(x.flip(d), dim=d).flip(d)


@register(RS.LogCumSumExp)
def _logcumsumexp(node, g):
    d = node.dim
    a = saved_input(node, 0, node.a)
    out = saved_output(node, node.out)
    lowest = float(np.finfo(g.dtype).min)  # (PyTorch's stand-in for log 0)
    log_abs = E.log(g.abs())
    parts = []
    for keep in (g.data > 0, g.data < 0):
        part = C.where(keep, log_abs, lowest)
        parts.append(E.exp(_reverse_logcumsumexp(part - out, d) + a))
    return (parts[0] - parts[1],)
