"""Graph backwards of the pools: max_pool1d/2d, avg_pool1d/2d, adaptive average and max pooling (1-D, 2-D, 3-D).

A pool's backward is linear in the gradient: ``gx = L(g)``, with the pool's geometry and (max pooling) its
winners fixed. Its graph backward is :class:`LinearVJP`, L as an op, whose own backward is L's adjoint, the
pool's tangent map ``J(v)`` (average pooling: the pool itself; max pooling: each output takes ``v`` at its
winner), and J's backward is L again (:class:`LinearJVP`): so the pair differentiates to any order. The
input reaches the gradient only through the winners, whose derivative is zero: PyTorch's double backward
gives it zeros, and so does :func:`zero_link`.

The ops run the node's own backward for L, on a frozen copy of the node (the engine may free the node
after its backward; the copy keeps what L reads).
"""
from __future__ import annotations

from distnn.autograd.function import Function
from distnn.backend import get_array_module
from distnn.functional import adaptive_pooling as AP
from distnn.functional import pooling as P

from . import register, zero_link


def _frozen(node):
    op = object.__new__(type(node))
    op.__dict__.update(node.__dict__)
    return op


class LinearVJP(Function):
    """``op.backward(g)[0]`` as an op of ``g`` (``tangent(op, v, out_shape)``: its adjoint)."""

    saves_tensors = False

    def forward(self, g, op, tangent):
        self.op, self.tangent, self.out_shape = op, tangent, g.shape
        return self.op.backward(g)[0]

    def backward(self, h):
        return (self.tangent(self.op, h, self.out_shape),)


class LinearJVP(Function):
    """``tangent(op, v, out_shape)`` as an op of ``v``; its adjoint is ``op.backward``."""

    saves_tensors = False

    def forward(self, v, op, tangent, out_shape):
        self.op, self.tangent = op, tangent
        return tangent(op, v, out_shape)

    def backward(self, h):
        return (self.op.backward(h)[0],)


@register(LinearVJP)
def _linear_vjp(node, h):
    return (LinearJVP.apply(h, op=node.op, tangent=node.tangent, out_shape=node.out_shape),)


@register(LinearJVP)
def _linear_jvp(node, h):
    return (LinearVJP.apply(h, op=node.op, tangent=node.tangent),)


def _pool_graph(tangent):
    def graph_backward(node, g):
        return (zero_link(LinearVJP.apply(g, op=_frozen(node), tangent=tangent), node, 0),)
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
