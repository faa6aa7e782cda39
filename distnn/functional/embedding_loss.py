"""Losses on pairs and triplets of embeddings or scores, as PyTorch's: ``cosine_embedding_loss``,
``margin_ranking_loss`` and ``triplet_margin_loss``.

Each is composed of differentiable ops in the order PyTorch's ATen composes it, so that the gradients
(ties at a hinge's corner included: a clamp at 0 passes the gradient there) are PyTorch's.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.autocast_state import autocast_policy
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from . import elementwise as E
from .distance import pairwise_distance
from .loss import _as_tensor, _check_reduction, _const, _operand, _reduce

#: added to each squared norm in cosine_embedding_loss: ATen's EPSILON, the float 1e-12 (9.99999996e-13 as a
#: double) in every dtype; 1e-12 itself gives a zero vector's float64 gradient 2e-9 (relative) off PyTorch's
_COSINE_EMBEDDING_EPS = float(np.float32(1e-12))


@autocast_policy("float32")
def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction="mean"):
    """``1 - cos(x1, x2)`` where ``target`` is 1, ``max(0, cos(x1, x2) - margin)`` where it is -1 (0
    elsewhere), with cos along the last dimension, as PyTorch's.

    Inputs (N, D) with a target (N,), or one pair (D,) with a 0-d target; the inputs broadcast. The
    cosine is ``<x1, x2> / sqrt((|x1|^2 + 1e-12) (|x2|^2 + 1e-12))``, PyTorch's (not
    :func:`cosine_similarity`'s). The target gets no gradient.
    """
    _check_reduction("cosine_embedding_loss", reduction)
    x1 = _as_tensor(input1, input2 if isinstance(input2, Tensor) else None)
    x2 = _as_tensor(input2, x1)
    t = _const(x1, target)  # (a condition only: no gradient, on the inputs' device)
    if not hasattr(t, "ndim"):  # a number or a list
        t = get_array_module(x1.data).asarray(t)
    if t.ndim not in (0, 1):
        raise ValueError(f"cosine_embedding_loss: expected a 0-d or 1-d target, got shape {tuple(t.shape)} "
                         f"(multi-target is not supported)")
    want = t.ndim + 1
    if x1.ndim != want or x2.ndim != want:
        raise ValueError(f"cosine_embedding_loss: a {t.ndim}-d target expects {want}-d inputs, got inputs of "
                         f"shapes {tuple(x1.shape)} and {tuple(x2.shape)}")
    try:
        out_shape = np.broadcast_shapes(tuple(x1.shape), tuple(x2.shape))[:-1]
        np.broadcast_shapes(out_shape, tuple(t.shape))
    except ValueError:
        raise ValueError(f"cosine_embedding_loss: the shapes of the inputs {tuple(x1.shape)}, {tuple(x2.shape)} "
                         f"and of the target {tuple(t.shape)} do not broadcast") from None
    dim = t.ndim  # the inputs' last
    prod_sum = (x1 * x2).sum(dim)
    mag_square1 = (x1 * x1).sum(dim) + _COSINE_EMBEDDING_EPS
    mag_square2 = (x2 * x2).sum(dim) + _COSINE_EMBEDDING_EPS
    cos = prod_sum / (mag_square1 * mag_square2).sqrt()
    pos = E.where(t == 1, 1 - cos, 0.0)
    neg = E.where(t == -1, E.clip(cos - margin, 0.0, None), 0.0)
    return _reduce(pos + neg, reduction)


@autocast_policy("float32")
def margin_ranking_loss(input1, input2, target, margin=0.0, reduction="mean"):
    """``max(0, -target * (input1 - input2) + margin)``, as PyTorch's: ``target`` 1 asks ``input1`` to rank
    higher (by ``margin``), -1 lower.

    The three must have the same number of dimensions (PyTorch's rule) and broadcast. A target that
    requires grad gets its gradient, as in PyTorch. A floating target tensor takes part in the result's dtype
    as PyTorch's (float32 inputs with a float64 target give float64: PyTorch composes the loss of pointwise ops);
    a target given as an array or a number is taken in the inputs' dtype.
    """
    _check_reduction("margin_ranking_loss", reduction)
    x1 = _as_tensor(input1, input2 if isinstance(input2, Tensor) else None)
    x2 = _as_tensor(input2, x1)
    t = target if isinstance(target, Tensor) and target.dtype.kind == "f" else _operand(x1, target)
    if not x1.ndim == x2.ndim == t.ndim:
        raise ValueError(f"margin_ranking_loss: all input tensors should have the same number of dimensions, "
                         f"got input1 {tuple(x1.shape)}, input2 {tuple(x2.shape)}, target {tuple(t.shape)}")
    try:
        np.broadcast_shapes(tuple(x1.shape), tuple(x2.shape), tuple(t.shape))
    except ValueError:
        raise ValueError(f"margin_ranking_loss: the shapes input1 {tuple(x1.shape)}, input2 {tuple(x2.shape)} "
                         f"and target {tuple(t.shape)} do not broadcast") from None
    return _reduce(E.clip(-t * (x1 - x2) + margin, 0.0, None), reduction)


def _check_triplet_margin(margin):
    if not margin > 0:
        raise ValueError(f"triplet_margin_loss: margin must be greater than 0, got {margin}")


@autocast_policy("float32")
def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction="mean"):
    """``max(0, margin + d(a, p) - d(a, n))`` with ``d`` :func:`pairwise_distance` (``p``, ``eps``), as
    PyTorch's. ``swap`` takes ``min(d(a, n), d(p, n))`` as the negative's distance (the distance swap of
    Balntas et al.). Inputs (N, D) or (D,), all of the same number of dimensions (they broadcast);
    ``margin`` must be > 0.
    """
    _check_reduction("triplet_margin_loss", reduction)
    _check_triplet_margin(margin)
    a = _as_tensor(anchor)
    pos, neg = _as_tensor(positive, a), _as_tensor(negative, a)
    if not a.ndim == pos.ndim == neg.ndim:
        raise ValueError(f"triplet_margin_loss: the anchor, positive and negative are expected to have the same "
                         f"number of dimensions, got anchor {a.ndim}-d, positive {pos.ndim}-d and negative "
                         f"{neg.ndim}-d inputs")
    dist_pos = pairwise_distance(a, pos, p, eps)
    dist_neg = pairwise_distance(a, neg, p, eps)
    if swap:
        dist_neg = E.minimum(dist_neg, pairwise_distance(pos, neg, p, eps))
    return _reduce(E.clip(margin + dist_pos - dist_neg, 0.0, None), reduction)


__all__ = ["cosine_embedding_loss", "margin_ranking_loss", "triplet_margin_loss"]
