"""Graph backwards of the activations of ``activation_more`` and ELU: ELU, SELU and CELU (:class:`ScaledELU`),
SiLU, Mish, Hardtanh (and relu6), Hardswish, Hardsigmoid, Softsign, Tanhshrink, softshrink/hardshrink,
threshold; the nodes of the in-place forms that keep their result (``activation_of_result``); and dropout (its mask
reused: the double pass draws nothing).

Each is its op's ``backward`` on Tensors. Where the derivative is a quantity of its own (ELU's
exponential), :func:`recorded` gives that array a graph; the masks stay constants (derivative zero almost
everywhere), with :func:`zero_link` giving the input the zero gradient PyTorch's double backward gives it.
"""
from __future__ import annotations

from distnn.autograd.function import Function
from distnn.backend import get_array_module
from distnn.functional import activation as A
from distnn.functional import activation_more as M
from distnn.functional import activation_of_result as O
from distnn.functional import elementwise_choice as C
from distnn.functional import rounding as R

from . import recorded, register, saved_input, saved_output, zero_link


class _ScaledExp(Function):
    """``c * exp(s * x)`` on the negative side (ELU's derivative there), made by :func:`recorded` from the input
    the op keeps; its derivative is ``s`` times itself strictly below 0 and 0 elsewhere, x = 0 included, as
    PyTorch's elu_double_backward (``... * (x < 0)``), though the first derivative takes this side at x = 0."""

    saves_tensors = False

    def backward(self, g):
        return (get_array_module(g).where(self.below, g * self.s * self.e, 0),)


@register(_ScaledExp)
def _scaled_exp(node, g):
    value = recorded(_ScaledExp, node.parents, node.input_shapes, node.e, e=node.e, s=node.s, below=node.below)
    return (C.where(node.below, g * node.s * value, 0.0),)


@register(M.ScaledELU)
def _scaled_elu(node, g):
    x = node.x
    e = node.exponential(x)
    coef = node.negative_coefficient(x.dtype)
    if coef != 1:
        e = e * coef.astype(x.dtype)  # alpha scale e^(input_scale x) where x <= 0
    s = node.input_scale
    slope = recorded(_ScaledExp, node.parents, node.input_shapes, e, e=e, s=s, below=x < 0)
    return (C.where(x <= 0, (g * s if s != 1 else g) * slope, g * node.scale if node.scale != 1 else g),)


@register(M.SiLU)
def _silu(node, g):
    x = saved_input(node, 0, node.x)
    s = A.sigmoid(x)
    return (g * s * (1 + x * (1 - s)),)


@register(M.Mish)
def _mish(node, g):
    x = saved_input(node, 0, node.x)
    t = A.tanh(A.softplus(x))
    return (g * (t + x * A.sigmoid(x) * (1 - t * t)),)


@register(M.Hardtanh, M.Threshold)
def _stops(node, g):
    return (zero_link(C.where(node.stops(), 0.0, g), node, 0),)


@register(M.Hardswish)
def _hardswish(node, g):
    x = saved_input(node, 0, node.x)
    raw = node.x
    return (C.where(raw <= -3, 0.0, C.where(raw < 3, g * (x / 3 + 0.5), g)),)


@register(M.Hardsigmoid)
def _hardsigmoid(node, g):
    return (zero_link(C.where(node.passes(), g * M.SIXTH_F32, 0.0), node, 0),)


@register(M.Softsign)
def _softsign(node, g):
    x = saved_input(node, 0, node.x)
    d = 1 + x.abs()
    return (g / d - g * (x / d / d) * R.sign(x),)


@register(M.Tanhshrink)
def _tanhshrink(node, g):
    t = recorded(A.Tanh, node.parents, node.input_shapes, node.t, out=node.t)
    return (g * t * t,)


@register(M.Shrink)
def _shrink(node, g):
    return (zero_link(C.where(node.inside, 0.0, g), node, 0),)


@register(A.Dropout)
def _dropout(node, g):
    return g * node.mask, None  # (the forward's mask, a constant: no new draw)


# ---------------------------------------------------------------- the in-place forms' nodes
@register(O.LeakyReluOfResult)
def _leaky_relu_of_result(node, g):
    if node.slope < 0:
        raise RuntimeError(O.NEGATIVE_LEAKY_SLOPE)
    return (zero_link(C.where(node.out > 0, g, g * node.slope), node, 0),)


@register(O.EluOfResult)
def _elu_of_result(node, g):
    if node.alpha < 0:
        raise RuntimeError(O.NEGATIVE_ELU_ALPHA)
    # (the result as a Tensor of this node: its derivative, input_scale * (result + alpha * scale), flows back
    # through this node's own backward, as PyTorch's elu_double_backward of the result; which, as PyTorch's, takes
    # none at the kink: a result of 0 is a constant there)
    raw = node.out
    out = C.where(raw < 0, saved_output(node, raw), raw)
    return (C.where(raw <= 0, g * node.input_scale * (out + node.alpha * node.scale), g * node.scale),)
