"""Losses: regression (mse, l1, huber) and the multi-class hinge here; cross-entropy and NLL (one fused op,
log-softmax + NLL, stable and cheap) in :mod:`.class_loss`, binary cross-entropy in :mod:`.binary_loss`,
what they share in :mod:`._loss_common`. Every name stays importable from here."""
from __future__ import annotations

import numpy as np

from distnn.autograd.autocast_state import autocast_policy
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from . import _loss_common, binary_loss, class_loss, elementwise as E
from ._loss_common import _raw, _reduce, _warn_if_shapes_differ
from .activation import log_softmax, relu
from .binary_loss import binary_cross_entropy, binary_cross_entropy_with_logits
from .class_loss import _check_labels, cross_entropy, nll_loss

# (names other modules import from here: the losses' parts moved to _loss_common, class_loss and binary_loss)
IGNORE_INDEX = class_loss.IGNORE_INDEX
_as_tensor, _check_reduction, _const = _loss_common._as_tensor, _loss_common._check_reduction, _loss_common._const
_operand, _saved = _loss_common._operand, _loss_common._saved
_ClassLoss, _CrossEntropy, _NLLLoss = class_loss._ClassLoss, class_loss._CrossEntropy, class_loss._NLLLoss
_cross_entropy_probabilities = class_loss._cross_entropy_probabilities
_BCE, _BCEWithLogits, _BCE_GRAD_FLOOR = binary_loss._BCE, binary_loss._BCEWithLogits, binary_loss._BCE_GRAD_FLOOR


@autocast_policy("float32")
def mse_loss(input, target, reduction="mean"):
    _warn_if_shapes_differ("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction)


@autocast_policy("float32")
def l1_loss(input, target, reduction="mean"):
    _warn_if_shapes_differ("l1_loss", input, target)
    return _reduce(E.abs(input - target), reduction)


@autocast_policy("float32")
def huber_loss(input, target, reduction="mean", delta=1.0):
    """0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta) (PyTorch's HuberLoss); delta > 0."""
    check_huber_delta(delta)
    _warn_if_shapes_differ("huber_loss", input, target)
    diff = input - target
    ad = E.abs(diff)
    quad = E.minimum(ad, delta)
    lin = ad - quad
    return _reduce(0.5 * quad * quad + delta * lin, reduction)


def check_huber_delta(delta) -> None:
    if not (isinstance(delta, (int, float, np.integer, np.floating)) and delta > 0):
        raise ValueError(f"huber_loss: delta must be a number > 0, got {delta!r}")


@autocast_policy("float32")
def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, reduction="mean"):
    """Multi-class hinge loss: sum over j != y of max(0, margin - x[y] + x[j])^p / C."""
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: p must be 1 or 2, got {p}")
    t = np.asarray(_raw(target)) if get_array_module(_raw(input)) is np else _raw(target)
    xp = get_array_module(_raw(input))
    # the target's own memory (a Tensor): it stays one, so that the gather of the target scores checks it, as
    # PyTorch's saved target (changed in place before backward, the gradient would go to the new class)
    index = target if isinstance(input, Tensor) and isinstance(target, Tensor) and target.data is t else t
    if input.ndim == 1:  # one sample (C,) with a 0-d target, as PyTorch allows: a batch of one, a 0-d result
        per = multi_margin_loss(input.reshape(1, -1), index.reshape(1), p, margin, weight, reduction="none")
        return _reduce(per.reshape(()), reduction)
    if input.ndim != 2:
        raise ValueError(f"multi_margin_loss: expected an input of shape (N, C) or (C,), got {tuple(input.shape)}")
    N, C = input.shape
    if tuple(t.shape) != (N,):
        raise ValueError(f"multi_margin_loss: target shape {tuple(t.shape)} does not match the input's batch ({N},)")
    if weight is not None and tuple(_raw(weight).shape) != (C,):
        raise ValueError(f"multi_margin_loss: weight of shape {tuple(_raw(weight).shape)} must have one entry per "
                         f"class ({C},)")
    _check_labels(xp, xp.asarray(t), C, -10**9, "multi_margin_loss")
    rows = xp.arange(N)
    x_y = input[rows, index].reshape(N, 1)
    h = relu(margin - x_y + input)  # no gradient at a hinge of exactly 0 (PyTorch's z > 0)
    if p == 2:
        h = h * h
    not_target = xp.ones((N, C), dtype=_raw(input).dtype)
    not_target[rows, t] = 0
    h = h * not_target
    if weight is not None:
        h = h * xp.asarray(_raw(weight), dtype=_raw(input).dtype)[t].reshape(N, 1)
    per = h.sum(axis=1) / C
    return _reduce(per, reduction)


__all__ = [
    "cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss", "l1_loss",
    "huber_loss", "multi_margin_loss", "log_softmax",
]
