"""Graph backwards of the structural ops: shape ops (reshape, transpose, expand, squeeze, unsqueeze),
indexing, cat/stack, reductions (sum, mean, max, min) and the products (matmul, linear).

Their backwards are linear in the gradient: each is rewritten with recorded shape ops and products.
Indexing's backward (a scatter into zeros) gets a Function of its own, :class:`IndexBackward`, whose
backward is the indexing again.
"""
from __future__ import annotations

from distnn.autograd.function import Function
from distnn.functional import elementwise as E
from distnn.functional import indexing as I
from distnn.functional import join as J
from distnn.functional.linear import Linear
from distnn.functional import reduce as R
from distnn.functional import shape as S
from distnn.functional import view_strides as VS

from . import register, saved_input, unsqueeze_to, zero_link


@register(S.Reshape, S.Squeeze, S.Unsqueeze, complex_ok=True)
def _reshape(node, g):
    return (g.reshape(node.shape),)


@register(VS.Contiguous, complex_ok=True)  # (a row-major copy: reshape's of a tensor it cannot view, as PyTorch's)
def _contiguous(node, g):
    return (g,)


@register(S.Transpose, complex_ok=True)
def _transpose(node, g):
    if node.axes is None:
        return (g.permute(tuple(reversed(range(g.ndim)))),)
    inverse = [0] * len(node.axes)
    for i, ax in enumerate(node.axes):
        inverse[ax] = i
    return (g.permute(tuple(inverse)),)


@register(S.BroadcastTo, complex_ok=True)
def _broadcast_to(node, g):
    return (g,)  # (the create_graph pass reduces it to the input's shape, with recorded sums)


class IndexBackward(Function):
    """GetItem's backward as an op: ``g`` written (scatter-added, for repeated indices) into zeros of the
    indexed tensor's shape. Its own backward is the indexing again."""

    saves_tensors = False
    supports_complex = True

    def forward(self, g, index, shape, dtype=None):
        self.index = index  # (dtype: the indexed tensor's, complex where a real view of its parts was indexed)
        return I.GetItem.backward(_Indexed(index, shape, g.dtype if dtype is None else dtype), g)[0]

    def backward(self, g):
        if type(self.index) in I.VIEW_INDEXES:  # (diagonal's and unfold's index: a view, read as GetItem reads it)
            return (self.index.take(g),)
        return (g[self.index],)


class _Indexed:
    """The attributes GetItem.backward reads, for IndexBackward.forward to call it."""

    def __init__(self, index, shape, dtype):
        self.index, self.shape, self.dtype = index, shape, dtype


@register(I.GetItem, complex_ok=True)  # (linear: a real view of a complex base's parts too, see view_index_kinds)
def _getitem(node, g):
    return (IndexBackward.apply(g, index=node.index, shape=node.shape, dtype=node.dtype),)


@register(IndexBackward, complex_ok=True)
def _index_backward(node, g):
    return (I.GetItem.apply(g, index=node.index),)  # (GetItem's own apply: the index may be a DiagonalView)


@register(I.SetItem, complex_ok=True)
def _setitem(node, g):
    """``x[index] = v``, and the ``CopySlices`` of an in-place change through a view (its subclass): ``x`` gets ``g``
    with the written region zeroed, ``v`` the region (summed to its shape by the pass where it was broadcast)."""
    need_a, need_v = node.needs_input_grad
    ga = I.SetItem.apply(g, 0.0, index=node.index) if need_a else None
    gv = I.GetItem.apply(g, index=node.index) if need_v else None
    if gv is not None and node.value_dtype is not None and gv.dtype != node.value_dtype:
        gv = gv.to(node.value_dtype)
    return ga, gv


def _slices(g, axis, sizes):
    """``g`` split along ``axis`` into pieces of ``sizes``, by recorded indexing."""
    out, start = [], 0
    lead = (slice(None),) * (axis % g.ndim)
    for s in sizes:
        out.append(g[lead + (slice(start, start + s),)])
        start += s
    return tuple(out)


@register(J.Concat, complex_ok=True)
def _concat(node, g):
    return _slices(g, node.axis, node.sizes)


@register(J.Stack, complex_ok=True)
def _stack(node, g):
    lead = (slice(None),) * (node.axis % g.ndim)
    return tuple(g[lead + (i,)] for i in range(g.shape[node.axis]))


@register(R.Sum, complex_ok=True)
def _sum(node, g):
    return (unsqueeze_to(g, node.axes, node.keepdims).expand(node.shape),)


@register(R.Mean, complex_ok=True)
def _mean(node, g):
    return (unsqueeze_to(g / node.count, node.axes, node.keepdims).expand(node.shape),)


@register(R.Max, R.Min)
def _extremum(node, g):
    mask = node.mask.astype(g.dtype)
    count = mask.sum(axis=node.axes, keepdims=True)
    return (zero_link(unsqueeze_to(g, node.axes, node.keepdims) * (mask / count), node, 0),)


def _mT(t):
    return t.transpose(-1, -2)


@register(E.MatMul)
def _matmul(node, g):
    na, nb = node.needs_input_grad
    a = saved_input(node, 0, node.a) if nb else None
    b = saved_input(node, 1, node.b) if na else None
    if node.a_ndim == 1 and node.b_ndim == 1:  # inner product: g is 0-d
        return (g * b if na else None), (g * a if nb else None)
    if node.a_ndim == 1:  # promote 1-D operands to matrices, as the forward did implicitly
        g = g.unsqueeze(-2)
        a = a.reshape((1, -1)) if a is not None else None
    if node.b_ndim == 1:
        g = g.unsqueeze(-1)
        b = b.reshape((-1, 1)) if b is not None else None
    ga = gb = None
    if na:
        ga = E.matmul(g, _mT(b))
        if node.a_ndim == 1:
            ga = ga.squeeze(-2)
    if nb:
        gb = E.matmul(_mT(a), g)
        if node.b_ndim == 1:
            gb = gb.squeeze(-1)
    return ga, gb


@register(Linear)
def _linear(node, g):
    need = node.needs_input_grad
    gx = gw = gb = None
    if need[0]:
        gx = E.matmul(g, saved_input(node, 1, node.w))
    if need[1]:
        x = saved_input(node, 0, node.x)
        if g.ndim == 2:
            gw = E.matmul(_mT(g), x)
        elif g.ndim == 1:  # (a single sample: the outer product)
            gw = E.matmul(g.reshape((-1, 1)), x.reshape((1, -1)))
        else:
            gw = E.matmul(_mT(g.reshape((-1, g.shape[-1]))), x.reshape((-1, x.shape[-1])))
    if len(need) > 2 and need[2]:
        gb = g if g.ndim == 1 else g.sum(dim=tuple(range(g.ndim - 1)))
    return gx, gw, gb
