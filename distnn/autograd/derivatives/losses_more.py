"""Graph backwards of the remaining fused losses: kl_div, poisson_nll_loss, gaussian_nll_loss, soft_margin_loss,
hinge_embedding_loss and multilabel_margin_loss.

Each is its op's ``backward`` written on Tensors of the input and the target (and the variance), so the
losses' second and third derivatives follow, in both, as PyTorch's (which composes these losses of pointwise
ops). Piecewise-linear losses (hinge_embedding, multilabel_margin) have gradients that depend on the input
only through masks: those are constants, and the input gets a zero second derivative (:func:`zero_link`).
Quirks of the first backward are kept: kl_div's target gradient is NaN where a probability target is 0;
gaussian_nll's clamp of the variance at ``eps`` passes its gradient unchanged (a clamped value, the
identity's derivative, as PyTorch's no_grad clamp).
"""
from __future__ import annotations

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module
from distnn.functional._elementwise_common import _quiet
from distnn.functional import elementwise as E
from distnn.functional import elementwise_choice as C
from distnn.functional.gaussian_nll import _GaussianNLL
from distnn.functional.loss_more import _KLDiv, _PoissonNLL
from distnn.functional.margin_loss import _HingeEmbedding, _SoftMargin
from distnn.functional.multilabel_loss import _MultiLabelMargin

from . import register, saved_input, zero_link


def _full(t, shape):
    """``t`` broadcast up to the loss's ``shape`` (the engine sums each gradient back to its input's)."""
    return t if tuple(t.shape) == tuple(shape) else t.expand(*shape)


@register(_KLDiv)
def _kl_div(node, g):
    need = node.needs_input_grad
    s = g / node.divisor if node.divisor is not None else g
    x, y = saved_input(node, 0, node.x), saved_input(node, 1, node.y)
    gx = gy = None
    if need[0]:
        gx = _full(-(E.exp(y) if node.log_target else y) * s, node.shape)
    if need[1]:
        if node.log_target:
            ey = E.exp(y)
            gy = _full(s * (y - x) * ey + s * ey, node.shape)
        else:  # s log y + (s y) / y - s x, NaN at y = 0 and +-inf as the first backward's (PyTorch's xlogy);
            # y a constant in (s y) / y: its derivative there is 0 where it is defined
            zero = node.y == 0
            gy = _full(s * E.log(C.where(zero, 1.0, y)) + s * node.y / node.y - s * x, node.shape)
    return gx, gy


@register(_PoissonNLL)
def _poisson_nll(node, g):
    need = node.needs_input_grad
    s = g / node.n if node.reduction == "mean" else g
    x, y = saved_input(node, 0, node.x), saved_input(node, 1, node.y)
    gx = gy = None
    if need[0]:
        gx = _full((E.exp(x) - y if node.log_input else 1 - y / (x + node.eps)) * s, node.shape)
    if need[1]:
        gy = (-x if node.log_input else -E.log(x + node.eps)) * s
        if node.full:  # (the first backward's masked term, NaN at y <= 0 and y = inf; y / y a constant)
            with _quiet(get_array_module(node.y)):
                ratio = node.y / node.y
            sm = s * node.big.astype(node.y.dtype)
            gy = gy + (sm * E.log(y) + sm * ratio - sm + 0.5 * sm / y)
        gy = _full(gy, node.shape)
    return gx, gy


@register(_GaussianNLL)
def _gaussian_nll(node, g):
    need = node.needs_input_grad
    s = g / node.n if node.reduction == "mean" else g
    v = node.v
    if need[2]:
        var = saved_input(node, 2, v.reshape(node.var_in_shape)).reshape(v.shape)
        # (the clamped value; the derivative passes the clamp. 0 where unclamped: inf - inf would be NaN)
        v = var + Tensor._make(get_array_module(v).where(v == var.data, 0, v - var.data), None)
    x, y = saved_input(node, 0, node.x), saved_input(node, 1, node.y)
    d = x - y
    gx = gy = gv = None
    h = 0.5 * s  # (the first backward's steps, PyTorch's)
    if need[0] or need[1]:
        gx = h / v * (2 * d)
        gy = -gx if need[1] else None
        gx = gx if need[0] else None
    if need[2]:
        gv = h / v - h * (d * d / v / v)
        axes = tuple(k for k, n in enumerate(node.v.shape) if n == 1 and gv.shape[k] != 1)
        gv = (gv.sum(dim=axes, keepdim=True) if axes else gv).reshape(node.var_in_shape)
    return gx, gy, gv


@register(_SoftMargin)
def _soft_margin(node, g):
    s = g / node.n if node.reduction == "mean" else g
    x = saved_input(node, 0, node.x)
    return -node.y * (-node.y * x).sigmoid() * s, None


@register(_HingeEmbedding)
def _hinge_embedding(node, g):
    s = g / node.n if node.reduction == "mean" else g
    gx = C.where(node.on_self, s, 0.0) - C.where(node.on_hinge, s, 0.0)
    return zero_link(gx, node, 0), None


@register(_MultiLabelMargin)
def _multilabel_margin(node, g):
    xp = get_array_module(g.data)
    # the gradient is (coefficients, constant in the input) * the output's gradient: per class, the pairs it
    # is the other class of minus those it is the target of
    coef = xp.zeros((node.N, node.C), dtype=node.x2.dtype)
    for rows, _, c in node._pairs(xp):
        coef[rows] = c.sum(axis=1) - c.sum(axis=2)
    if node.reduction == "none":
        scale = g.reshape(node.N, 1)
    else:
        scale = g / node.N if node.reduction == "mean" else g
    return zero_link((scale * (coef / node.C)).reshape(node.in_shape), node, 0), None
