"""Graph backwards of the normalizations: batch_norm (training and eval), layer_norm, group_norm,
instance_norm, rms_norm.

Each is its op's ``backward`` written with recorded Tensor ops, with the normalized input ``xhat`` and the
inverse deviation ``rstd`` recomputed as Tensors from the input (so that their dependence on it, through
the mean and the variance, is in the graph). The nodes keep ``xhat`` and ``rstd``, not the input: since
``xhat`` and ``rstd`` do not change when a constant is added to each normalized group, the input's value is
taken as ``xhat / rstd`` (the input less its mean), and eps as ``1 / rstd^2 - var`` (the nodes do not keep
it either). rms_norm is not shift-invariant, and ``xhat / r`` is its input itself.

Batch norm in training reads the batch statistics the forward was given; the double pass recomputes them
from the input (the same values) and never touches the running statistics. Synchronized batch norm (whose
statistics span ranks) and the padded-rows variants are refused.

A float16 input (or weight, or incoming gradient) is cast to float32 first, with recorded casts, as the first
derivative computes in float32 (PyTorch's opmath): in float16 the recomputed variance lost the digits that eps
is recovered from, and a sum of squares of values near 300 overflows. The pass casts each gradient back to its
input's dtype (float16), as PyTorch's are.
"""
from __future__ import annotations

import numpy as np

from distnn.functional.group_norm import GroupNorm
from distnn.functional import norm as NM

from distnn.autograd.tensor import Tensor

from . import register, saved_input


def _opmath(v):
    """``v`` (a Tensor, an array or None) in float32 when it is float16, by a recorded cast for a Tensor (whose
    backward casts the gradient back to float16); as it is otherwise."""
    if v is None or v.dtype != np.float16:
        return v
    return v.to(np.float32) if isinstance(v, Tensor) else v.astype(np.float32)


def _tensor(v):
    """A saved input as a Tensor (a constant one when it needs no gradient)."""
    return v if isinstance(v, Tensor) else Tensor._make(v, None)


def _stats(x, axes, rstd):
    """(xhat, rstd) as Tensors of the Tensor ``x``, normalized over ``axes``, matching the node's ``rstd``
    (from which eps is recovered)."""
    xc = x - x.mean(dim=axes, keepdim=True)
    var = (xc * xc).mean(dim=axes, keepdim=True)
    eps = 1.0 / (rstd * rstd) - var.data  # (the node's eps, up to rounding)
    r = (var + eps) ** -0.5
    return xc * r, r


def _normalized_grads(g, x, w_b, axes, rstd):
    """gx of y = xhat * w (+ b), xhat normalized over ``axes``: rstd * (gxh - mean(gxh) - xhat mean(gxh xhat)),
    with gxh = g * w; and xhat (for the weight's gradient)."""
    xhat, r = _stats(x, axes, rstd)
    gxh = g * w_b if w_b is not None else g
    gx = r * (gxh - gxh.mean(dim=axes, keepdim=True) - xhat * (gxh * xhat).mean(dim=axes, keepdim=True))
    return gx, xhat


def _channel(v, nd):
    """(C,) -> (1, C, 1, ...), recorded when a Tensor."""
    return v.reshape((1, -1) + (1,) * (nd - 2))


@register(NM.LayerNorm)
def _layer_norm(node, g):
    need = node.needs_input_grad
    x = _opmath(_tensor(saved_input(node, 0, node.xhat / node.rstd)))
    w = _opmath(saved_input(node, 1, node.weight)) if node.weight is not None else None
    g = _opmath(g)
    gx, xhat = _normalized_grads(g, x, w, node.axes, node.rstd)
    lead = tuple(range(g.ndim - node.ndim))
    gw = (g * xhat).sum(dim=lead) if w is not None and len(need) > 1 and need[1] else None
    gb = g.sum(dim=lead) if node.has_bias and len(need) > 2 and need[2] else None
    return (gx if need[0] else None), gw, gb


@register(NM.RMSNorm)
def _rms_norm(node, g):
    need = node.needs_input_grad
    x = _opmath(_tensor(saved_input(node, 0, node.xhat / node.r)))
    w = saved_input(node, 1, node.weight) if node.weight is not None else None
    ms = (x * x).mean(dim=node.axes, keepdim=True)
    eps = 1.0 / (node.r * node.r) - ms.data
    r = (ms + eps) ** -0.5
    xhat = x * r
    gxh = g * w if w is not None else g
    gx = r * (gxh - xhat * (gxh * xhat).mean(dim=node.axes, keepdim=True)) if need[0] else None
    gw = (g * xhat).sum(dim=tuple(range(g.ndim - node.ndim))) if w is not None and len(need) > 1 and need[1] else None
    return gx, gw


def _grouped(node, g, x_arr, group_shape, axes):
    """The channel-affine norms (batch norm, group norm, instance norm): normalization over ``axes`` of the
    input seen as ``group_shape``, weight and bias per channel."""
    need = node.needs_input_grad
    nd, shape = g.ndim, tuple(g.shape)
    x = _opmath(_tensor(saved_input(node, 0, x_arr))).reshape(group_shape)
    w = _opmath(saved_input(node, 1, node.weight)) if node.weight is not None else None
    g = _opmath(g)
    gxh = (g * _channel(w, nd) if w is not None else g).reshape(group_shape)
    gx, xhat = _normalized_grads(gxh, x, None, axes, node.rstd.reshape(_keep(group_shape, axes)))
    caxes = (0,) + tuple(range(2, nd))
    gw = (g * xhat.reshape(shape)).sum(dim=caxes) if w is not None and need[1] else None
    gb = g.sum(dim=caxes) if node.has_bias and need[2] else None
    return (gx.reshape(shape) if need[0] else None), gw, gb


def _keep(shape, axes):
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


@register(NM.BatchNormTrain)
def _batch_norm_train(node, g):
    nd = g.ndim
    axes = (0,) + tuple(range(2, nd))
    rstd_b = _channel(node.rstd, nd)
    return _grouped(node, g, node.xhat / rstd_b, tuple(g.shape), axes)


_batch_norm_train.unsupported = lambda node: (
    None if type(node) is NM.BatchNormTrain else
    "only plain batch norm is differentiable twice (not synchronized batch norm, whose statistics span ranks, "
    "nor the padded-rows variant)")


@register(GroupNorm)  # (InstanceNormTrain too: a group per channel, its own copy of the weight)
def _group_norm(node, g):
    if g.data.size == 0:  # (nothing normalized: the gradient passes as it is, as the first-order backward)
        caxes = (0,) + tuple(range(2, g.ndim))
        return tuple((g * 1.0 if i == 0 else g.sum(dim=caxes)) if n else None
                     for i, n in enumerate(node.needs_input_grad))
    N, G = g.shape[0], node.num_groups
    group = (N, G, g.data.size // (N * G))
    x_arr = (node.xhat.reshape(group) / node.rstd).reshape(g.shape)
    need = tuple(node.needs_input_grad) + (False,) * (3 - len(node.needs_input_grad))
    gx, gw, gb = _grouped(_Needs(node, need), g, x_arr, group, (2,))
    return (gx, gw, gb)[:len(node.needs_input_grad)]


class _Needs:
    """``node`` with ``needs_input_grad`` padded to 3 entries (group norm may be applied without weight and bias)."""

    def __init__(self, node, need):
        self._node, self.needs_input_grad = node, need

    def __getattr__(self, name):
        return getattr(self._node, name)


@register(NM.BatchNormEval)  # (InstanceNormEval too)
def _batch_norm_eval(node, g):
    need = node.needs_input_grad
    nd = g.ndim
    axes = (0,) + tuple(range(2, nd))
    rstd_b = _channel(node.rstd, nd)
    gx = gw = gb = None
    w = None
    g = _opmath(g)
    if node.has_weight:
        w = _opmath(saved_input(node, 1, node.scale / node.rstd))
    if need[0]:
        gx = g * (rstd_b * _channel(w, nd) if w is not None else rstd_b)
    if node.has_weight and need[1]:
        x = _opmath(saved_input(node, 0, node.x))
        gw = (g * ((x - _channel(node.mean, nd)) * rstd_b)).sum(dim=axes)
    if node.has_bias and need[2]:
        gb = g.sum(dim=axes)
    return gx, gw, gb
