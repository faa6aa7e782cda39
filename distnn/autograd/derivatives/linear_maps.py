"""Graph backwards of the ops whose backward is a fixed linear map of the gradient: embedding (the weight's
gradient, indices fixed), pad (constant, reflect, replicate, circular) and interpolate's resampling (nearest,
linear, bilinear, bicubic...: ``Resample``); and the two ops the pools' graph backwards use too. Also fold/unfold
and local_response_norm's channel window sum, whose backwards are ops of their own: fold's is unfold, unfold's
fold, the window sum's the mirrored window sum, so each graph backward applies that op (to any order).

Such a backward is ``gx = L(g)``. :class:`LinearVJP` is L as an op (the node's own backward, run on a frozen
copy of the node: the engine may free the node after its backward, the copy keeps what L reads); its
backward is L's adjoint, the op's tangent map ``J(v)`` (the op itself for a linear op: pad and resample; a
gather for the embedding), as :class:`LinearJVP`, whose backward is L again: the pair differentiates to any
order. The input does not enter L at all: it gets no gradient from the double pass (None, as PyTorch's).
"""
from __future__ import annotations

from distnn.autograd.function import Function
from distnn.backend import get_array_module
from distnn.functional.embedding import EmbeddingLookup
from distnn.functional.fold import Fold, Unfold
from distnn.functional.interpolate import Resample
from distnn.functional.local_response_norm import ChannelWindowSum
from distnn.functional.padding import Pad, PadIndexed

from . import register


def frozen(node):
    """A copy of ``node`` for calling its backward later (never a destination: its gradient is a new array)."""
    op = object.__new__(type(node))
    op.__dict__.update(node.__dict__)
    op.grad_out = None
    return op


class LinearVJP(Function):
    """``op.backward(g)[0]`` as an op of ``g``; ``tangent(op, v, out_shape)`` is its adjoint."""

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


def _graph(tangent, n_inputs=1):
    def graph_backward(node, g):
        return (LinearVJP.apply(g, op=frozen(node), tangent=tangent),) + (None,) * (n_inputs - 1)
    return graph_backward


def _embedding_tangent(op, v, out_shape):
    xp = get_array_module(v)
    rows = v[op.indices]
    if op.scale_grad_by_freq:
        counts = xp.bincount(op.indices.reshape(-1), minlength=op.num)
        rows = rows * (1.0 / counts[op.indices]).astype(v.dtype)[..., None]
    if op.padding_idx is not None:
        rows = rows * (op.indices != op.padding_idx)[..., None]
    return rows.astype(v.dtype, copy=False)


def _pad_tangent(op, v, out_shape):
    xp = get_array_module(v)
    out = xp.zeros(out_shape, dtype=v.dtype)  # (the padding value is a constant: its derivative is 0)
    out[op.slices] = v[op.crop]
    return out


def _pad_indexed_tangent(op, v, out_shape):
    xp = get_array_module(v)
    for axis, idx, _ in op.steps:
        v = xp.take(v, idx, axis=axis)
    return v if op.steps else v.copy()


def _resample_tangent(op, v, out_shape):
    return object.__new__(Resample).forward(v, plans=op.plans)


register(EmbeddingLookup)(_graph(_embedding_tangent, 2))
register(Pad)(_graph(_pad_tangent))
register(PadIndexed)(_graph(_pad_indexed_tangent))
register(Resample)(_graph(_resample_tangent))


@register(Unfold)
def _unfold(node, g):
    return (Fold.apply(g, size=tuple(node.in_shape[2:]), geom=node.geom),)


@register(Fold)
def _fold(node, g):
    return (Unfold.apply(g, geom=node.geom),)


@register(ChannelWindowSum)
def _channel_window_sum(node, g):
    return (ChannelWindowSum.apply(g, before=node.width - 1 - node.before, width=node.width),)
