"""Graph backwards of the pools: max_pool1d/2d, avg_pool1d/2d, adaptive average and max pooling (1-D, 2-D, 3-D).

A pool's backward is linear in the gradient, with the pool's geometry and (max pooling) its winners fixed:
its graph backward is a :class:`~.linear_maps.LinearVJP` whose tangent map is, for average pooling, the pool
itself and, for max pooling, each output taking ``v`` at its winner. The input reaches the gradient only
through the winners, whose derivative is zero: PyTorch's double backward gives it zeros, and so does
:func:`zero_link`.
"""
from __future__ import annotations

from distnn.backend import get_array_module
from distnn.functional import adaptive_pooling as AP
from distnn.functional import pooling as P

from . import register, zero_link
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


register(P.MaxPool2d)(_pool_graph(_max2d_tangent))  # (MaxPool1d too: its backward and tangent reshape)
register(P.AvgPool2d)(_pool_graph(_avg2d_tangent))
register(AP.AdaptiveAvgPool)(_pool_graph(_adaptive_avg_tangent))
register(AP.AdaptiveMaxPool)(_pool_graph(_adaptive_max_tangent))
