"""Gaussian negative log-likelihood: a regression loss that also learns the prediction's variance."""
from __future__ import annotations

import math

import numpy as np

from distnn.autograd.engine import sum_to_shape
from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from .loss import _check_reduction, _const, _raw, _reduce


def _var_shape(input_shape, var_shape):
    """The shape ``var`` takes in the loss, by PyTorch's rules, or a ValueError.

    var is either the input's shape (one variance per prediction), or homoscedastic along
    one dimension: the input's shape with one dimension of size 1 (e.g. (N, 1) for (N, D)),
    or the input's shape without its last dimension ((N,) for (N, D), made (N, 1) here).
    """
    if var_shape == input_shape:
        return var_shape
    if var_shape == input_shape[:-1]:
        return var_shape + (1,)
    differ = [v for i, v in zip(input_shape, var_shape) if i != v]
    if len(var_shape) == len(input_shape) and differ == [1]:
        return var_shape
    raise ValueError(f"gaussian_nll_loss: var of shape {var_shape} is of incorrect size for input of shape "
                     f"{input_shape}: it must be the input's shape, that shape with one dimension of size 1, "
                     f"or that shape without its last dimension")


class _GaussianNLL(Function):
    """0.5 (log v + (x - y)^2 / v) [+ 0.5 log(2 pi)], with v = max(var, eps).

    As PyTorch's, the clamp is outside the graph: var's gradient is the loss's derivative at v,
    passed to var unchanged even where var < eps (so a variance pushed below eps still gets pushed
    back up, where a clamp's zero gradient would leave it stuck).
    """

    # backward reads only its own arrays (d = x - y and the clamped v); PyTorch's, composed, saves only
    # intermediates (its own clamped clone of var): an in-place change of any input or the result is fine
    reads = ((), (), ())

    def forward(self, x, y, var, var_shape=None, full=False, eps=1e-6, reduction="mean"):
        xp = get_array_module(x)
        dt = x.dtype
        y = y.astype(dt, copy=False)
        v = xp.maximum(var.astype(dt, copy=False).reshape(var_shape), eps)  # (NaN stays NaN, as PyTorch's clamp)
        d = x - y
        loss = 0.5 * (xp.log(v) + d * d / v)
        if full:
            loss = loss + 0.5 * math.log(2 * math.pi)
        self.d, self.v, self.n, self.reduction = d, v, loss.size, reduction
        self.var_in_shape = var.shape
        self.x, self.y = x, y  # (the graph backward's inputs)
        return _reduce(loss, reduction).astype(dt, copy=False)

    def backward(self, g):
        d, v = self.d, self.v
        scale = g / self.n if self.reduction == "mean" else g
        gx = gy = gv = None
        # PyTorch's composed 0.5 (log v + d ** 2 / v), differentiated step by step: h / v * (2 d) and
        # h / v - h * (d^2 / v / v), so d^2 may overflow to inf (+-inf and -inf where distnn's d / v and
        # d^2 / v^2 were finite or NaN) and finite values round as PyTorch's
        h = 0.5 * scale
        if self.needs_input_grad[0] or self.needs_input_grad[1]:
            gx = h / v * (2 * d)
            gy = -gx if self.needs_input_grad[1] else None
        if self.needs_input_grad[2]:
            gv = h / v - h * (d * d / v / v)
            # var may have been given without its last dimension: reduce to (N, 1), then back to (N,)
            gv = sum_to_shape(gv, self.v.shape).reshape(self.var_in_shape)
        return gx, gy, gv


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """Negative log-likelihood of ``target`` under Normal(``input``, ``var``), as PyTorch's.

    ``var``: one variance per prediction (``input``'s shape), one shared along a dimension (that
    shape with a 1 there, or without the last dimension), or a number for all. Entries must be
    >= 0 (a ValueError otherwise); they are clamped at ``eps`` for stability, with the gradient
    passing the clamp unchanged. ``full`` adds the constant 0.5 log(2 pi). ``target`` broadcasts
    against ``input`` (as in PyTorch); the loss is computed in ``input``'s dtype, and 'mean'
    averages over the elements of the broadcast loss.
    """
    _check_reduction("gaussian_nll_loss", reduction)
    xp = get_array_module(_raw(input))
    if isinstance(var, (int, float)) and not isinstance(var, bool):
        if var < 0:
            raise ValueError(f"gaussian_nll_loss: var must be >= 0, got {var}")
        var = xp.full(tuple(input.shape), var, dtype=_raw(input).dtype)  # (PyTorch: var * ones_like(input))
    raw_var = xp.asarray(_const(input, var))
    if raw_var.size and bool((raw_var < 0).any()):  # (checked before the clamp: a negative variance is a bug)
        raise ValueError("gaussian_nll_loss: var has negative entries; variances must be >= 0")
    var_shape = _var_shape(tuple(input.shape), tuple(raw_var.shape))
    if not isinstance(target, Tensor):
        target = xp.asarray(_const(input, target))
    try:
        np.broadcast_shapes(tuple(input.shape), tuple(target.shape), var_shape)  # (shapes only)
    except ValueError:
        raise ValueError(f"gaussian_nll_loss: target shape {tuple(target.shape)} does not broadcast with input "
                         f"shape {tuple(input.shape)}") from None
    var = var if isinstance(var, Tensor) else raw_var
    return _GaussianNLL.apply(input, target, var, var_shape=var_shape, full=full, eps=eps, reduction=reduction)


__all__ = ["gaussian_nll_loss"]
