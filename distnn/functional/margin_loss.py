"""Margin losses for a score ``input`` against labels in {-1, +1}.

The lecture notes' hinge loss is max(0, 1 - y * s) (notes 003). PyTorch has no loss that is
exactly this; its two closest are here with PyTorch's definitions:

* ``soft_margin_loss``: log(1 + e^(-y s)), the logistic (smooth) version of the hinge, which is
  notes 004's sigmoid-output loss -log sigmoid((2y' - 1) z) with the labels y = 2y' - 1;
* ``hinge_embedding_loss``: s where y = 1, max(0, margin - s) where y = -1, a loss on distances
  (s >= 0) between pairs, not on classification scores.

``binary_hinge_loss`` is the notes' loss itself. As in PyTorch, no loss here checks that the labels
are -1 or +1: other values give the formula's value (see each function).
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.autocast_state import autocast_policy
from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from .activation import relu, sigmoid_array, softplus_array
from .loss import _check_reduction, _raw, _reduce, _saved

def _broadcast_shape(name, x, y):
    """The shape of the elementwise loss of ``x`` against ``y``, or a ValueError naming both shapes."""
    try:
        return np.broadcast_shapes(x.shape, y.shape)  # (shape arithmetic only: numpy's serves cupy arrays too)
    except ValueError:
        raise ValueError(f"{name}: target shape {tuple(y.shape)} does not broadcast with input shape "
                         f"{tuple(x.shape)}") from None


def _target(input, target):
    """The target on ``input``'s device, a constant (no gradient). A Tensor on that device stays one (detached
    if it requires grad: the same memory and version counter), so that a loss whose backward reads it refuses
    a change of it in place before backward, as PyTorch's saved target does (it would give a wrong gradient);
    anything else becomes an array."""
    if isinstance(target, Tensor) and target.requires_grad:
        target = target.detach()
    t = _saved(input, target)
    return t if hasattr(t, "shape") else get_array_module(_raw(input)).asarray(t)  # a number, a list


class _SoftMargin(Function):
    """log(1 + e^(-y x)) = softplus(-y x), formed stably: PyTorch's log1p(exp(-y x)) overflows to inf
    (and its gradient to NaN) once -y x passes about 88 in float32 or 709 in float64; this does not."""

    torch_name = "SoftMarginLossBackward0"

    # backward reads the target (``self.y`` may be its memory) and its own ``m``; the input is what PyTorch's
    # saves besides the target, so that both refuse the same changes (the result is read by neither)
    reads = ((0, 1), ())

    def forward(self, x, y, reduction="mean"):
        if _broadcast_shape("soft_margin_loss", x, y) != x.shape:
            # (PyTorch refuses a target that would enlarge the loss beyond the input's shape, too)
            raise ValueError(f"soft_margin_loss: target shape {tuple(y.shape)} must broadcast to the input's "
                             f"shape {tuple(x.shape)}, not enlarge it")
        _check_reduction("soft_margin_loss", reduction)
        y = y.astype(x.dtype, copy=False)
        m = -y * x
        loss = softplus_array(m)
        self.m, self.y, self.n, self.reduction = m, y, x.size, reduction
        self.x = x  # (the graph backward's input)
        return _reduce(loss, reduction).astype(x.dtype, copy=False)

    def backward(self, g):
        scale = g / self.n if self.reduction == "mean" else g
        return -self.y * sigmoid_array(self.m) * scale, None  # d/dx softplus(-y x) = -y sigmoid(-y x)


@autocast_policy("float32")
def soft_margin_loss(input, target, reduction="mean"):
    """Logistic loss log(1 + exp(-target * input)) for ``target`` in {-1, +1}, as PyTorch's.

    ``target`` must broadcast to ``input``'s shape; 'mean' averages over the input's elements.
    Computed stably (where PyTorch's overflows to inf, this gives the exact value).
    """
    return _SoftMargin.apply(input, _target(input, target), reduction=reduction)


class _HingeEmbedding(Function):
    """x where y != -1, plus max(0, margin - x) where y != 1: PyTorch's definition, so a label that is
    neither (0, 2) gets both terms. Its gradient is -1 at margin - x = 0 (PyTorch's clamp_min passes ties)."""

    # backward reads only its own masks; PyTorch's (composed: where on ``target != 1``, a new tensor) saves
    # neither the input nor the target, so a change of either in place afterwards backpropagates in both
    reads = ((), ())

    def forward(self, x, y, margin=1.0, reduction="mean"):
        xp = get_array_module(x)
        shape = _broadcast_shape("hinge_embedding_loss", x, y)
        _check_reduction("hinge_embedding_loss", reduction)
        hinge = margin - x
        not_similar = y != 1
        # PyTorch's clamp_min(hinge, 0): NaN passes into the loss (maximum's), but its gradient mask
        # hinge >= 0 is false at NaN, so a NaN input's gradient is the self term's alone
        self.on_hinge = not_similar & (hinge >= 0)
        self.on_self = xp.broadcast_to(y != -1, shape)
        loss = xp.where(not_similar, xp.maximum(hinge, 0), 0) + xp.where(self.on_self, x, 0)
        self.n, self.reduction = loss.size, reduction
        return _reduce(loss, reduction).astype(x.dtype, copy=False)

    def backward(self, g):
        xp = get_array_module(g)
        scale = g / self.n if self.reduction == "mean" else g
        # (a broadcast loss sums back to the input's shape in the engine)
        return (xp.where(self.on_self, scale, 0) - xp.where(self.on_hinge, scale, 0)), None


@autocast_policy("float32")
def hinge_embedding_loss(input, target, margin=1.0, reduction="mean"):
    """PyTorch's HingeEmbeddingLoss: ``input`` where ``target`` is 1, max(0, margin - input) where it is -1.

    Meant for ``input`` a distance between a pair, ``target`` 1 (similar) or -1 (dissimilar). It is not
    the notes' classification hinge, though that equals ``hinge_embedding_loss(target * s, -1)``: see
    :func:`binary_hinge_loss`. Input and target broadcast, as in PyTorch.
    """
    return _HingeEmbedding.apply(input, _target(input, target), margin=margin, reduction=reduction)


def binary_hinge_loss(input, target, margin=1.0, reduction="mean"):
    """The notes' binary hinge loss max(0, margin - target * input), ``target`` in {-1, +1}.

    ``input`` holds one score per sample (a linear output, not a probability); ``target`` must have
    its shape. PyTorch has no such loss; in PyTorch it is ``torch.relu(margin - target * input)``
    reduced, which is what this computes (so its gradient at the hinge's corner is 0, relu's). It also
    equals ``hinge_embedding_loss(target * input, -1)`` and twice ``multi_margin_loss`` of the two
    class scores (-input / 2, input / 2) with class (target + 1) / 2 (multi_margin divides by C = 2).
    Labels are not checked: a 0/1 label must be mapped to -1/+1 first (``2 * y - 1``).
    """
    _check_reduction("binary_hinge_loss", reduction)
    t = _target(input, target)
    if tuple(t.shape) != tuple(input.shape):  # a (N, 1) score against (N,) labels would broadcast to N x N
        raise ValueError(f"binary_hinge_loss: target shape {tuple(t.shape)} must equal the input's shape "
                         f"{tuple(input.shape)}")
    dtype = _raw(input).dtype
    if _raw(t).dtype != dtype:  # a copy in the input's dtype; a Tensor target of that dtype is kept, so that
        t = _raw(t).astype(dtype)  # the product's node checks it, as PyTorch's mul saves the target
    return _reduce(relu(margin - input * t), reduction)


__all__ = ["soft_margin_loss", "hinge_embedding_loss", "binary_hinge_loss"]
