"""Elementwise losses of an input against a target, as PyTorch's: ``smooth_l1_loss``, ``kl_div`` and
``poisson_nll_loss``. Input and target broadcast; 'mean' averages over the broadcast loss's elements.
Each is one Function, computed in the input's dtype, and differentiable in the target too where PyTorch's is.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from distnn.autograd.autocast_state import autocast_policy
from distnn.autograd.engine import sum_to_shape
from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from . import elementwise as E
from .elementwise import _quiet
from .loss import _check_reduction, _operand, _raw, _reduce, _saved, _warn_if_shapes_differ


def _target(input, target):
    """The target as the Function takes it: a Tensor that requires grad stays one (it gets a gradient),
    any other on ``input``'s device (a Tensor there stays one, so that its version is checked)."""
    if isinstance(target, Tensor) and target.requires_grad:
        return target
    t = _saved(input, target)
    return t if hasattr(t, "shape") else get_array_module(_raw(input)).asarray(t)


def _shape(name, x, y):
    try:
        return np.broadcast_shapes(x.shape, y.shape)  # (shapes only: serves cupy too)
    except ValueError:
        raise ValueError(f"{name}: target shape {tuple(y.shape)} does not broadcast with input shape "
                         f"{tuple(x.shape)}") from None


def _scale(g, n, reduction):
    return g / n if reduction == "mean" else g


def _full(xp, grad, shape):
    """A gradient of the loss's shape: one computed from the smaller of input and target (a target broadcast
    against the input) is broadcast up (the engine sums it back to each input's shape)."""
    return grad if grad is None or grad.shape == shape else xp.broadcast_to(grad, shape)


# ---------------------------------------------------------------- smooth_l1_loss
class _SmoothL1(Function):
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta, with d = x - y; beta > 0. The gradient is
    PyTorch's kernel's: sign(d) where |d| >= beta, d / beta inside."""

    torch_name = "SmoothL1LossBackward0"
    reads = ((0, 1), (0, 1))  # (its own d; the input and target are what PyTorch's saves)

    def forward(self, x, y, beta=1.0, reduction="mean"):
        xp = get_array_module(x)
        _shape("smooth_l1_loss", x, y)
        d = x - y.astype(x.dtype, copy=False)
        ad = xp.abs(d)
        loss = xp.where(ad < beta, 0.5 * d * d / beta, ad - 0.5 * beta)
        self.d, self.beta, self.n, self.reduction = d, beta, loss.size, reduction
        return _reduce(loss, reduction).astype(x.dtype, copy=False)

    def backward(self, g):
        xp = get_array_module(g)
        d, beta = self.d, self.beta
        gd = xp.where(d <= -beta, -1.0, xp.where(d >= beta, 1.0, d / beta)) * _scale(g, self.n, self.reduction)
        return gd, (-gd if self.needs_input_grad[1] else None)


def _check_beta(beta):
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.integer, np.floating)) or not beta >= 0:
        raise ValueError(f"smooth_l1_loss: beta must be a number >= 0, got {beta!r}")


@autocast_policy("float32")
def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """PyTorch's smooth L1 loss: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = input - target).

    ``beta`` = 0 is the L1 loss (PyTorch's special case: gradient sign(d), 0 at d = 0). It equals
    ``huber_loss(delta=beta) / beta``. A target of another shape broadcasts, with PyTorch's warning.
    """
    _check_reduction("smooth_l1_loss", reduction)
    _check_beta(beta)
    _warn_if_shapes_differ("smooth_l1_loss", input, target)
    if beta == 0:
        return _reduce(E.abs(input - _operand(input, target)), reduction)
    return _SmoothL1.apply(input, _target(input, target), beta=float(beta), reduction=reduction)


# ---------------------------------------------------------------- kl_div
class _KLDiv(Function):
    """Pointwise KL divergence ``y (log y - x)`` of log-probabilities x from probabilities y (``xlogy(y, y)
    - y x``, 0 where y = 0), or ``e^y (y - x)`` of log-probabilities y (``log_target``).

    Gradients, PyTorch's: -y (or -e^y) for x; log y + 1 - x (or e^y (y - x + 1)) for y. At y = 0 and y = inf
    the target's gradient is NaN, as PyTorch's (its xlogy's y / y): y log y has slope -inf at 0, so no
    finite value would be right; a target that needs no gradient is not affected.
    """

    reads = ((1,), (0, 1))  # (the target for the input's gradient, both for the target's: PyTorch's saves)

    def forward(self, x, y, log_target=False, reduction="mean", batch=None):
        xp = get_array_module(x)
        _shape("kl_div", x, y)
        y = y.astype(x.dtype, copy=False)
        with _quiet(xp, over=True):
            if log_target:
                self.ey = xp.exp(y)
                loss = self.ey * (y - x)
            else:  # xlogy(y, y): 0 at y = 0, NaN for y < 0 or NaN (as log's)
                loss = xp.where(y == 0, 0, y * xp.log(xp.where(y == 0, 1, y))) - y * x
        self.x, self.y, self.log_target, self.shape = x, y, log_target, loss.shape
        # 'mean' divides the sum by the number of elements, 'batchmean' by the batch's size (a 0-d input: 1)
        self.divisor = loss.size if reduction == "mean" else batch if reduction == "batchmean" else None
        out = loss if reduction == "none" else loss.sum()
        if self.divisor is not None:
            with _quiet(xp):  # (an empty batch: 0 / 0, NaN as PyTorch's)
                out = out / x.dtype.type(self.divisor)
        return xp.asarray(out).astype(x.dtype, copy=False)

    def backward(self, g):
        xp = get_array_module(g)
        if self.divisor is not None:
            with _quiet(xp):
                g = g / self.divisor
        x, y = self.x, self.y
        gx = gy = None
        if self.needs_input_grad[0]:
            gx = _full(xp, -(self.ey if self.log_target else y) * g, self.shape)
        if self.needs_input_grad[1]:
            with _quiet(xp, over=True):
                if self.log_target:  # PyTorch's e^y (y - x) composed: (g (y - x)) e^y + g e^y, NaN at inf * 0
                    gy = _full(xp, g * (y - x) * self.ey + g * self.ey, self.shape)
                else:  # log y + y / y - x, y / y being xlogy's other-operand gradient in PyTorch's composed
                    # xlogy(y, y): NaN at y = 0 and at y = +-inf, log's NaN below 0. The y log y part is summed
                    # to y's shape first, as PyTorch's xlogy of the target alone: a zero target broadcast to an
                    # empty loss still gets 0 * NaN. (g y) / y as PyTorch's: 0 where g y underflows
                    g = _full(xp, g, self.shape)
                    gs = sum_to_shape(g, y.shape)
                    gy = gs * xp.log(xp.where(y == 0, 1, y)) + gs * y / y - sum_to_shape(g * x, y.shape)
        return gx, gy


@autocast_policy("float32")
def kl_div(input, target, reduction="mean", log_target=False):
    """KL divergence of ``target`` (probabilities, or log-probabilities with ``log_target``) from the model's
    log-probabilities ``input``, pointwise: ``target * (log target - input)``, as PyTorch's.

    ``reduction``: 'batchmean' (the sum divided by the size of the input's first dimension: the KL
    divergence averaged over the batch, its mathematical definition: what to use), 'sum', 'none', or 'mean' (over every element; PyTorch's default,
    with its warning). Input and target broadcast. A target that requires grad gets its gradient
    (NaN where a probability target is 0, as PyTorch's: see :class:`_KLDiv`).
    """
    if reduction not in ("mean", "batchmean", "sum", "none"):
        raise ValueError(f"kl_div: reduction must be 'mean', 'batchmean', 'sum' or 'none', got {reduction!r}")
    if reduction == "mean":
        warnings.warn("kl_div: reduction='mean' divides the total loss by both the batch size and the support "
                      "size; 'batchmean' divides by the batch size only, as the KL divergence's definition "
                      "(PyTorch's 'mean' is to become 'batchmean')", UserWarning, stacklevel=2)
    batch = input.shape[0] if reduction == "batchmean" and input.ndim else None
    return _KLDiv.apply(input, _target(input, target), log_target=log_target, reduction=reduction, batch=batch)


# ---------------------------------------------------------------- poisson_nll_loss
class _PoissonNLL(Function):
    """``e^x - y x`` (``log_input``) or ``x - y log(x + eps)``, plus with ``full`` Stirling's approximation of
    log(y!): ``y log y - y + 0.5 log(2 pi y)`` where y > 1 (0 where y <= 1), as PyTorch's.

    The target's gradient is the loss's derivative: -x (or -log(x + eps)), plus log y + 1 / (2 y) where y > 1,
    computed as PyTorch's masked_fill of the term computes it: the term's derivative (log y + y / y - 1 + 1 / (2 y))
    times a gradient of 0 where y <= 1, so NaN at y <= 0 (0 * log 0) and at y = inf (inf / inf), 0 in (0, 1].
    """

    reads = ((0, 1), (0, 1))  # (PyTorch's composition saves input and target, with its own intermediates)

    def forward(self, x, y, log_input=True, full=False, eps=1e-8, reduction="mean"):
        xp = get_array_module(x)
        _shape("poisson_nll_loss", x, y)
        y = y.astype(x.dtype, copy=False)
        with _quiet(xp, over=True):
            if log_input:
                self.ex = xp.exp(x)
                loss = self.ex - y * x
            else:
                self.xe = x + eps
                loss = x - y * xp.log(self.xe)
            if full:
                self.big = y > 1
                safe = xp.where(self.big, y, 2.0)  # (the masked entries' logs never see 0 or a negative)
                stirling = safe * xp.log(safe) - safe + 0.5 * xp.log(2 * math.pi * safe)
                loss = loss + xp.where(self.big, stirling, 0)
        self.x, self.y, self.log_input, self.full, self.eps = x, y, log_input, full, eps
        self.n, self.reduction, self.shape = loss.size, reduction, loss.shape
        return xp.asarray(_reduce(loss, reduction)).astype(x.dtype, copy=False)

    def backward(self, g):
        xp = get_array_module(g)
        g = _scale(g, self.n, self.reduction)
        gx = gy = None
        with _quiet(xp, over=True):
            if self.needs_input_grad[0]:
                gx = (self.ex - self.y if self.log_input else 1 - self.y / self.xe) * g
            if self.needs_input_grad[1]:
                gy = (-self.x if self.log_input else -xp.log(self.xe)) * g
                if self.full:  # (the masked gradient first, as PyTorch's: 0.5 * 0 / y is 0 at a denormal y)
                    y, gm = self.y, g * self.big
                    gy = gy + (gm * xp.log(y) + gm * y / y - gm + 0.5 * gm / y)
        return _full(xp, gx, self.shape), _full(xp, gy, self.shape)


@autocast_policy("float32")
def poisson_nll_loss(input, target, log_input=True, full=False, eps=1e-8, reduction="mean"):
    """Negative log-likelihood of counts ``target`` under Poisson(rate), as PyTorch's: ``input`` is the log
    of the rate (``log_input``, the stable choice) or the rate itself (``eps`` keeps its log finite at 0).

    ``full`` adds Stirling's approximation of log(target!) where target > 1 (the constant that makes it the
    exact likelihood). Input and target broadcast.
    """
    _check_reduction("poisson_nll_loss", reduction)
    return _PoissonNLL.apply(input, _target(input, target), log_input=bool(log_input), full=bool(full), eps=eps,
                             reduction=reduction)


__all__ = ["smooth_l1_loss", "kl_div", "poisson_nll_loss"]
