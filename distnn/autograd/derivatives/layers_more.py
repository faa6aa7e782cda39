"""Graph backwards of the remaining layers: einsum, glu, prelu, bilinear, conv_transpose3d, embedding_bag,
max_unpool1d/2d/3d, rrelu (in training and in evaluation) and alpha_dropout/feature_alpha_dropout.

Each is its op's first backward written on Tensors: einsum's gradient is an einsum of the output's gradient
with the other operands (then broadcast, summed, transposed or put on a diagonal as the op's backward does),
bilinear's three gradients are einsums, conv_transpose3d's are the convolution's bilinear maps
(:mod:`.conv`), embedding_bag's and max_unpool's are gathers and scatter-adds (:class:`~.structure.IndexBackward`)
at the forward's indices. rrelu's and the alpha dropouts' masks and slopes are the forward's draws, constants
(``g * noise``), so their derivatives match PyTorch's for the same draws.
"""
from __future__ import annotations

import math

from distnn.backend import get_array_module
from distnn.functional import elementwise_choice as C
from distnn.functional.activation_more import GLU, PReLU
from distnn.functional.activation_of_result import NEGATIVE_LEAKY_SLOPE
from distnn.functional.bilinear import Bilinear
from distnn.functional.conv_transpose3d import ConvTranspose3d
from distnn.functional.dropout_variants import AlphaDropout
from distnn.functional.einsum import _Einsum, einsum
from distnn.functional.embedding_bag import EmbeddingBagFunction
from distnn.functional.join import concat
from distnn.functional.rrelu import RReLU, RReLUOfResult
from distnn.functional.unpooling import MaxUnpool

from . import register, saved_input, zero_link
from .conv import _conv_graph
from .structure import IndexBackward


def _fresh_letters(used, n):
    letters = [c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in used]
    return letters[:n]


@register(_Einsum)
def _einsum(node, g):
    n = len(node.terms)
    ops = [saved_input(node, j, getattr(node, f"a{j}")) if hasattr(node, f"a{j}") else None for j in range(n)]
    return tuple(_einsum_grad(node, g, ops, i) if node.needs_input_grad[i] else None for i in range(n))


def _einsum_grad(node, g, ops, i):
    """``_Einsum._grad`` on Tensors."""
    term, shape = node.terms[i], node.shapes[i]
    xp = get_array_module(g.data)
    unique = "".join(dict.fromkeys(term))
    size = {c: shape[term.index(c)] for c in unique}
    others = [j for j in range(len(node.terms)) if j != i]
    reachable = set(node.rhs).union(*(node.terms[j] for j in others))
    target = "".join(c for c in unique if c in reachable)
    spec = ",".join([node.rhs] + [node.terms[j] for j in others]) + "->" + target
    G = einsum(spec, g, *[ops[j] for j in others])
    sizes = dict(zip(target, G.shape))
    if len(target) < len(unique):  # letters summed in this operand alone: the same gradient along them
        G = G.reshape(tuple(sizes.get(c, 1) for c in unique)).expand(*[sizes.get(c, size[c]) for c in unique])
    broadcast = tuple(k for k, c in enumerate(unique) if size[c] == 1 and G.shape[k] != 1)
    if broadcast:
        G = G.sum(dim=broadcast, keepdim=True)
    if len(unique) == len(term):
        return G if unique == term else G.permute(*[unique.index(c) for c in term])
    # a repeated letter: the gradient lies on its diagonal, G times identity matrices (constants) over a fresh
    # letter per repeat
    fresh = iter(_fresh_letters(set(term), len(term) - len(unique)))
    seen, out_term, eyes = set(), "", []
    for c in term:
        if c in seen:
            f = next(fresh)
            out_term += f
            eyes.append((c + f, xp.eye(size[c], dtype=g.dtype)))
        else:
            seen.add(c)
            out_term += c
    return einsum(",".join([unique] + [e for e, _ in eyes]) + "->" + out_term, G, *[a for _, a in eyes])


@register(GLU)
def _glu(node, g):
    x = saved_input(node, 0, node.x)
    a, b = x.chunk(2, dim=node.dim)
    s = b.sigmoid()
    return (concat([g * s, g * a * s * (1 - s)], node.dim),)


@register(PReLU)
def _prelu(node, g):
    need = node.needs_input_grad
    pos = node.pos
    aa = saved_input(node, 1, node.a.reshape(node.a_shape)).reshape(node.a.shape)  # (as the forward broadcasts it)
    gx = ga = None
    if need[0]:
        gx = zero_link(C.where(pos, g, g * aa), node, 0)
    if len(need) > 1 and need[1]:
        neg = C.where(pos, 0.0, g * saved_input(node, 0, node.x))
        full = (1,) * (neg.ndim - node.a.ndim) + tuple(node.a.shape)
        axes = tuple(k for k, n in enumerate(full) if n == 1)
        ga = (neg.sum(dim=axes, keepdim=True) if axes else neg).reshape(node.a_shape)
    return gx, ga


@register(Bilinear)
def _bilinear(node, g):
    need = node.needs_input_grad
    K, I, J = node.w.shape
    B = node.a1.shape[0]
    x1 = saved_input(node, 0, node.a1.reshape(node.lead + (I,))).reshape(B, I)
    x2 = saved_input(node, 1, node.a2.reshape(node.lead + (J,))).reshape(B, J)
    w = saved_input(node, 2, node.w)
    g2 = g.reshape(B, K)
    gx1 = einsum("bk,kij,bj->bi", g2, w, x2).reshape(node.lead + (I,)) if need[0] else None
    gx2 = einsum("bk,kij,bi->bj", g2, w, x1).reshape(node.lead + (J,)) if need[1] else None
    gw = einsum("bk,bi,bj->kij", g2, x1, x2) if need[2] else None
    gb = g2.sum(dim=0) if len(need) > 3 and need[3] else None
    return gx1, gx2, gw, gb


@register(ConvTranspose3d)
def _conv_transpose3d(node, g):
    xshape, wshape, stride, padding, dilation, G = node.geom
    # output_padding is not kept: the output's size gives it back
    full = tuple((n - 1) * s + d * (k - 1) + 1 - 2 * p
                 for n, s, d, k, p in zip(xshape[2:], stride, dilation, wshape[2:], padding))
    output_padding = tuple(o - f for o, f in zip(g.shape[2:], full))
    params = dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=G)
    spec = (ConvTranspose3d, params, xshape, wshape)
    return _conv_graph(node, g, spec, lambda: node.x4.reshape(xshape), lambda: node.w2.reshape(wshape),
                       (0, 2, 3, 4))


@register(EmbeddingBagFunction)
def _embedding_bag(node, g):
    need = node.needs_input_grad
    xp = get_array_module(g.data)
    D = g.shape[1]
    gw = gpsw = None
    if need[0]:
        if node.mode == "max":
            cols = xp.broadcast_to(xp.arange(D), node.argrow.shape)
            keep = xp.broadcast_to(node.nonempty, node.argrow.shape)
            gw = IndexBackward.apply(g[keep], index=(node.argrow[keep], cols[keep]), shape=(node.num, D))
            gw = zero_link(gw, node, 0)
        else:
            rows = g[node.bags]
            if node.mode == "mean":
                rows = rows / node.counts[node.bags][:, None].astype(g.dtype)
            if node.psw is not None:
                rows = rows * saved_input(node, 1, node.psw)[node.sel].unsqueeze(1)
            if node.scale_grad_by_freq:
                freq = xp.bincount(node.idx, minlength=node.num)
                rows = rows / freq[node.rows_idx][:, None].astype(g.dtype)
            gw = IndexBackward.apply(rows, index=node.rows_idx, shape=(node.num, D))
    if node.psw is not None and len(need) > 1 and need[1]:
        w = saved_input(node, 0, node.weight)
        per_entry = (g[node.bags] * w[node.rows_idx]).sum(dim=1)
        gpsw = IndexBackward.apply(per_entry, index=node.sel, shape=node.idx.shape)
    return gw, gpsw, None, None, None, None


@register(MaxUnpool)
def _max_unpool(node, g):
    planes_n = node.xshape[0] * node.xshape[1]
    return g.reshape(planes_n, math.prod(g.shape[2:]))[node.planes, node.flat_idx].reshape(node.xshape), None


@register(RReLU)
def _rrelu(node, g):
    slope = node.eval_slope
    if slope is None:
        return (zero_link(g * node.noise, node, 0),)
    return (zero_link(C.where(node.x > 0, g, g * slope), node, 0),)


@register(RReLUOfResult)
def _rrelu_of_result(node, g):
    slope = node.eval_slope
    if slope is None:
        return (zero_link(g * node.noise, node, 0),)
    if slope < 0:
        raise RuntimeError(NEGATIVE_LEAKY_SLOPE)
    return (zero_link(C.where(node.out > 0, g, g * slope), node, 0),)


@register(AlphaDropout)
def _alpha_dropout(node, g):
    return g * node.scale, None, None
