"""Graph backwards of the elementwise losses: binary_cross_entropy, binary_cross_entropy_with_logits and
smooth_l1_loss (huber_loss and l1_loss are composed of covered ops already).

Each is its op's ``backward`` on Tensors of the input and the target (both may need a gradient, as in
PyTorch); the weights and the clamps' masks are constants.
"""
from __future__ import annotations

from distnn.autograd.function import Function
from distnn.functional import activation as A
from distnn.functional import elementwise as E
from distnn.functional import elementwise_choice as C
from distnn.functional.binary_loss import _BCE, _BCE_GRAD_FLOOR, _BCEWithLogits
from distnn.functional.loss_more import _SmoothL1

from . import recorded, register, saved_input


def _scale(node, g, n):
    """The per-element factor of the reduction: g / n for a mean, g otherwise (a 0-d or per-element g)."""
    return g / n if node.reduction == "mean" else g


@register(_BCE)
def _bce(node, g):
    need = node.needs_input_grad
    p, y = saved_input(node, 0, node.p), saved_input(node, 1, node.y)
    scale = _scale(node, g, node.p.size)
    if node.weight is not None:
        scale = scale * node.weight
    gp = gy = None
    if need[0]:
        raw = node.p * (1 - node.p)
        gp = (p - y) / C.where(raw > _BCE_GRAD_FLOOR, p * (1 - p), _BCE_GRAD_FLOOR) * scale
    if need[1]:  # (the op's own: PyTorch's -logit(p) * grad, unclamped, then the weight, then the mean)
        gy = -E.log(p / (1 - p)) * g
        if node.weight is not None:
            gy = gy * node.weight
        if node.reduction == "mean":
            gy = gy / node.p.size
    return gp, gy, None


@register(_BCEWithLogits)
def _bce_with_logits(node, g):
    need = node.needs_input_grad
    x, y = saved_input(node, 0, node.x), saved_input(node, 1, node.y)
    scale = _scale(node, g, node.x.size)
    if node.weight is not None:
        scale = scale * node.weight
    pw = node.pos_weight
    gx = gy = None
    if need[0]:
        L = 1 + (pw - 1) * y if pw is not None else 1
        gx = ((1 - y) - L * (1 - A.sigmoid(x))) * scale
    if need[1]:
        gy = (-x if pw is None else (pw - 1) * A.softplus(-x) - x) * scale
    return gx, gy, None, None


class _Difference(Function):
    """``x - y`` (smooth L1's d, which the op keeps rather than x and y), made by :func:`recorded`."""

    saves_tensors = False

    def backward(self, g):
        return g, -g


@register(_Difference)
def _difference(node, g):
    return g, -g


@register(_SmoothL1)
def _smooth_l1(node, g):
    need = node.needs_input_grad
    d, beta = node.d, node.beta
    d_t = recorded(_Difference, node.parents, node.input_shapes, d)
    inside = (d > -beta) & (d < beta)
    gd = C.where(inside, d_t / beta, C.where(d <= -beta, -1.0, 1.0)) * _scale(node, g, node.n)
    return gd, (-gd if len(need) > 1 and need[1] else None)
