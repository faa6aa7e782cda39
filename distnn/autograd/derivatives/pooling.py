"""Graph backwards of the pools: max_pool1d/2d/3d, avg_pool1d/2d/3d, adaptive average and max pooling (1-D, 2-D,
3-D), and LP pooling's root (:class:`~distnn.functional.lp_pooling._Root`; its power and average pool are ops of
their own).

A pool's backward is linear in the gradient, with the pool's geometry and (max pooling) its winners fixed:
its graph backward is a :class:`~.linear_maps.LinearVJP` whose tangent map is, for average pooling, the pool
itself and, for max pooling, each output taking ``v`` at its winner. The input reaches the gradient only
through the winners, whose derivative is zero: PyTorch's double backward gives it zeros, and so does
:func:`zero_link`.
"""
from __future__ import annotations

from distnn.backend import get_array_module
from distnn.functional import adaptive_pooling as AP
from distnn.functional import elementwise_choice as C
from distnn.functional import lp_pooling as LP
from distnn.functional import pooling as P
from distnn.functional import pooling3d as P3

from . import register, saved_input, zero_link
from .linear_maps import LinearVJP, frozen


def _pool_graph(tangent):
    def graph_backward(node, g):
        return (zero_link(LinearVJP.apply(g, op=frozen(node), tangent=tangent), node, 0),)
    return graph_backward


def _padded_like(xp, v, pshape, padding):
    """``v`` (N, C, H, W) in zeros of the padded shape, at offset ``padding``."""
    vpad = xp.zeros(pshape, dtype=v.dtype)
    ph, pw = padding
    vpad[:, :, ph:ph + v.shape[2], pw:pw + v.shape[3]] = v
    return vpad


def _max2d_tangent(op, v, out_shape):
    xp = get_array_module(v)
    xshape, kernel, stride, padding, dilation, Ho, Wo = op.geom
    vpad = _padded_like(xp, v.reshape(xshape), op.xpad.shape, padding)
    out = xp.zeros(op.out.shape, dtype=v.dtype)
    winners = P._winner_masks(op.xpad, op.out, xshape, padding, op.extra, kernel, stride, dilation, Ho, Wo)
    for hit, view in zip(winners, P._views(vpad, kernel, stride, dilation, Ho, Wo)):
        out += hit * view
    return out.reshape(out_shape)


def _avg2d_tangent(op, v, out_shape):
    xp = get_array_module(v)
    xshape, pshape, kernel, stride, padding, Ho, Wo = op.geom
    vpad = _padded_like(xp, v, pshape, padding)
    views = P._views(vpad, kernel, stride, (1, 1), Ho, Wo)
    out = next(views).copy()
    for view in views:
        out += view
    return (out / op.div).astype(v.dtype, copy=False)


def _adaptive_avg_tangent(op, v, out_shape):
    fresh = object.__new__(AP.AdaptiveAvgPool)
    return fresh.forward(v, output_size=tuple(out_shape[2:]))


def _adaptive_max_tangent(op, v, out_shape):
    xp = get_array_module(v)
    N, C = out_shape[:2]
    flat = xp.take_along_axis(v.reshape(N, C, -1), op.indices.reshape(N, C, -1), axis=2)
    return flat.reshape(out_shape)


def _max3d_tangent(op, v, out_shape):
    xp = get_array_module(v)  # (the adjoint of max_pool_grad's scatter: a gather at the winners)
    N, C = out_shape[:2]
    flat = xp.take_along_axis(v.reshape(N, C, -1), op.indices.reshape(N, C, -1), axis=2)
    return flat.reshape(out_shape)


def _avg3d_tangent(op, v, out_shape):
    xp = get_array_module(v)
    xshape, pshape, kernel, stride, padding, out = op.geom
    vpad = xp.zeros(pshape, dtype=v.dtype)
    vpad[(slice(None), slice(None)) + tuple(slice(p, p + n) for n, p in zip(xshape[2:], padding))] = v
    views = P3._views(vpad, kernel, stride, (1, 1, 1), out)
    total = next(views)[1].copy()
    for _, view in views:
        total += view
    return (total / op.div).astype(v.dtype, copy=False)


@register(LP._Root)
def _lp_root(node, g):
    # The chain _Root fuses (PyTorch's: sign(s) * relu(|s|), times the cells, to the power q) on Tensors. sign and
    # relu's mask are piecewise constant (constants here); t = sign(s) relu(|s|) cells is s * sign(s)^2 * cells,
    # linked to s.
    xp = get_array_module(node.s)
    sign = xp.sign(node.s)
    s = saved_input(node, 0, node.s)
    t = s * (sign * sign * node.cells)
    q = node.q
    gr = g * q * t ** (q - 1) * node.cells * sign
    return (C.where(xp.maximum(xp.abs(node.s), 0) != 0, gr, 0.0) * sign,)


register(P3.MaxPool3d)(_pool_graph(_max3d_tangent))
register(P3.AvgPool3d)(_pool_graph(_avg3d_tangent))
register(P.MaxPool2d)(_pool_graph(_max2d_tangent))  # (MaxPool1d too: its backward and tangent reshape)
register(P.AvgPool2d)(_pool_graph(_avg2d_tangent))
register(AP.AdaptiveAvgPool)(_pool_graph(_adaptive_avg_tangent))
register(AP.AdaptiveMaxPool)(_pool_graph(_adaptive_max_tangent))
