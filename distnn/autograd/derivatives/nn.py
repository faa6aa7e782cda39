"""Graph backwards of the network ops: activations (relu, leaky_relu, tanh, sigmoid, logsigmoid, softplus,
gelu, softmax, log_softmax), the norms (``Tensor.norm(2)``, ``linalg.vector_norm`` of every ord: the
gradient-penalty path) and the fused class losses (cross_entropy with class indices, nll_loss).

A fused op keeps arrays, not Tensors, of what it computed on the way (softplus's sigmoid, gelu's normal CDF,
cross-entropy's softmax). Those become Tensors in the graph through :func:`recorded`: a node whose forward
already happened, of a small Function class here whose backward is that quantity's derivative.
"""
from __future__ import annotations

import math

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module
from distnn.functional import activation as A
from distnn.functional import class_loss as CL
from distnn.functional import elementwise as E
from distnn.functional import elementwise_choice as C
from distnn.functional import reduce as R
from distnn.linalg import norms as N

from . import recorded, register, saved_input, saved_output, unsqueeze_to, zero_link


@register(A.ReLU)
def _relu(node, g):
    return (zero_link(C.where(node.out != 0, g, 0.0), node, 0),)


@register(A.LeakyReLU)
def _leaky_relu(node, g):
    return (zero_link(C.where(node.x > 0, g, g * node.slope), node, 0),)


@register(A.Tanh)
def _tanh(node, g):
    y = saved_output(node, node.out)
    return (g * (1 - y * y),)


@register(A.Sigmoid)
def _sigmoid(node, g):
    y = saved_output(node, node.out)
    return (g * y * (1 - y),)


@register(A.LogSigmoid)
def _logsigmoid(node, g):
    return (g * A.sigmoid(-saved_input(node, 0, node.x)),)


class _SigmoidOfScaled(Function):
    """``sigmoid(beta * x)`` (Softplus's derivative), made by :func:`recorded` from the array Softplus keeps."""

    saves_tensors = False

    def backward(self, g):
        return (g * self.beta * self.sig * (1 - self.sig),)


@register(_SigmoidOfScaled)
def _sigmoid_of_scaled(node, g):
    s = saved_output(node, node.sig)
    return (g * node.beta * s * (1 - s),)


@register(A.Softplus)
def _softplus(node, g):
    sig = recorded(_SigmoidOfScaled, node.parents, node.input_shapes, node.sig, sig=node.sig, beta=node.beta)
    return (C.where(node.linear, g, g * sig),)


def _pdf(x):
    return E.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))


class _NormalCDF(Function):
    """Phi(x) (exact GELU's CDF), made by :func:`recorded` from the array GELU keeps; derivative: the pdf."""

    saves_tensors = False

    def backward(self, g):
        xp = get_array_module(g)
        return (g * xp.exp(-0.5 * self.x * self.x) / math.sqrt(2 * math.pi),)


@register(_NormalCDF)
def _normal_cdf(node, g):
    return (g * _pdf(saved_input(node, 0, node.x)),)


@register(A.GELU)
def _gelu(node, g):
    x = saved_input(node, 0, node.x)
    if node.approximate == "tanh":
        k = math.sqrt(2.0 / math.pi)
        t = A.tanh(k * (x + 0.044715 * x * x * x))
        return (g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)),)
    cdf = recorded(_NormalCDF, node.parents, node.input_shapes, node.cdf, x=node.x)
    return (g * (cdf + x * _pdf(x)),)


@register(A.Softmax)
def _softmax(node, g):
    y = saved_output(node, node.out)
    return (y * (g - (g * y).sum(dim=node.axis, keepdim=True)),)


@register(A.LogSoftmax)
def _log_softmax(node, g):
    y = saved_output(node, node.out)
    return (g - E.exp(y) * g.sum(dim=node.axis, keepdim=True),)


def _divide_unless_zero(x, g, n, zero):
    """``x * g / n``, 0 where the norm ``n`` is 0 (PyTorch's subgradient there)."""
    return x * C.where(zero, 0.0, g / C.where(zero, 1.0, n))


@register(R.Norm2)
def _norm2(node, g):
    n = node.n
    out = saved_output(node, n if node.keepdims else n.reshape(g.shape))
    if not node.keepdims and node.a.ndim:
        g, out = unsqueeze_to(g, node.axes, False), unsqueeze_to(out, node.axes, False)
    return (_divide_unless_zero(saved_input(node, 0, node.a), g, out, n == 0),)


@register(N.VectorNorm)
def _vector_norm(node, g):
    """Every order: PyTorch's norm_backward, on Tensors of x and the norm (masks and signs constants)."""
    xp = get_array_module(node.norm)
    n, p, x_raw = node.norm, node.ord, node.x  # (the norm kept with the reduced dims: g has the output's shape)
    if p == 0:
        return (zero_link(Tensor._make(xp.zeros_like(x_raw), None), node, 0),)
    gk = g.reshape(n.shape)
    if p == 1:
        return (zero_link(gk * xp.sign(x_raw), node, 0),)
    if math.isinf(p):
        mask = ((xp.abs(x_raw) == n) | xp.isnan(x_raw)).astype(x_raw.dtype)
        return (zero_link(gk * (xp.sign(x_raw) * mask / mask.sum(axis=node.axis, keepdims=True)), node, 0),)
    x = saved_input(node, 0, x_raw)
    out = saved_output(node, n.reshape(g.shape)).reshape(n.shape)
    zero = n == 0
    if p == 2:
        return (_divide_unless_zero(x, gk, out, zero),)
    nonzero_x = x_raw != 0
    ax = E.abs(C.where(nonzero_x, x, 1.0))  # (|x| off 0, so that no power of 0 reaches the graph)
    if p < 1:
        scaled = C.where(nonzero_x, ax ** (p - 1), 0.0) * xp.sign(x_raw)
        return (scaled * gk * out ** (1 - p),)
    scaled = C.where(nonzero_x, ax ** (p - 1), 0.0) * xp.sign(x_raw)
    return (scaled * C.where(zero, 0.0, gk / C.where(zero, 1.0, out) ** (p - 1)),)


@register(CL._CrossEntropy, CL._NLLLoss)
def _class_loss(node, g):
    """The loss's gradient (M, C) = P * (a_sum * s) - B * s for the row scale s (g and the reduction),
    P the softmax (from logits; none for nll_loss) and B, a_sum the label/weight/smoothing coefficients."""
    xp = get_array_module(node.rows)
    M, Ccount, dtype = node.rows.shape[0], node.C, node.in_dtype
    plain = getattr(node, "plain", False)
    B = xp.zeros((M, Ccount), dtype=dtype)
    if plain:
        B[node.rows, node.t] = 1
        a_sum = None
        scale = 1.0 / M if node.reduction == "mean" else 1.0
    else:
        eps = node.eps
        if eps == 0.0:
            a_sum = node.w_t
            B[node.rows, node.t] = node.w_t
        else:
            a_sum = (1 - eps) * node.w_t + (eps / Ccount) * node.wc.sum() * node.valid
            B += (eps / Ccount) * node.wc[None, :] * node.valid[:, None]
            B[node.rows, node.t] += (1 - eps) * node.w_t
        scale = node.scale
    s = g.reshape((-1, 1)) if node.reduction == "none" else g * scale
    grad = -(s * B)
    if node.from_logits:
        probs = node.probs if plain else xp.exp(node.logp)
        P = _to_rows(node, recorded(A.Softmax, node.parents[:1], node.input_shapes[:1], _from_rows_array(node, probs),
                                    out=_from_rows_array(node, probs), axis=_class_axis(node)))
        grad = P * (s if a_sum is None else s * a_sum.reshape((-1, 1))) + grad
    if not plain and not node.all_valid:
        grad = C.where(node.valid[:, None], grad, 0.0)
    return _from_rows(node, grad), None, None


def _class_axis(node):
    return 0 if len(node.in_shape) == 1 else 1


def _from_rows_array(node, a):
    shape = node.in_shape
    if len(shape) > 2:
        return get_array_module(a).moveaxis(a.reshape(node.batch_shape + (node.C,)), -1, 1)
    return a.reshape(shape)


def _to_rows(node, t):
    """A Tensor in the input's layout (class axis 1) as (M, C) rows, recorded."""
    nd = len(node.in_shape)
    if nd > 2:
        t = t.permute((0,) + tuple(range(2, nd)) + (1,))
    return t.reshape((-1, node.C))


def _from_rows(node, t):
    nd = len(node.in_shape)
    if nd > 2:
        return t.reshape(node.batch_shape + (node.C,)).permute((0, nd - 1) + tuple(range(1, nd - 1)))
    return t.reshape(node.in_shape)
