"""``triplet_margin_with_distance_loss``: PyTorch's triplet loss with any distance function.

``max(0, margin + d(anchor, positive) - d(anchor, negative))`` with ``d`` a callable on two Tensors (default
:func:`~distnn.functional.pairwise_distance`, PyTorch's ``torch.pairwise_distance``: p = 2, eps = 1e-6).
Composed of differentiable ops as PyTorch composes it, so the gradient flows through whatever ``d`` is built
of (a ``cosine_similarity`` lambda, a module) and the hinge's corner passes it (PyTorch's clamp_min).
"""
from __future__ import annotations

from distnn.autograd.tensor import Tensor

from . import elementwise as E
from ._loss_common import _as_tensor, _reduce
from .distance import pairwise_distance


def check_margin(margin, who="margin"):
    """PyTorch's refusal of a margin that is not > 0 (``who`` prefixes its message)."""
    if not margin > 0:
        raise ValueError(f"{who} must be greater than 0, got {margin}")


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0,
                                      swap=False, reduction="mean"):
    """PyTorch's ``F.triplet_margin_with_distance_loss``: ``max(0, margin + d(a, p) - d(a, n))`` reduced.

    ``distance_function(x1, x2)`` returns one non-negative distance per sample (default
    ``pairwise_distance``); ``swap`` takes ``min(d(a, n), d(p, n))`` as the negative's distance (the distance
    swap of Balntas et al.). The three inputs must have the same number of dimensions (a RuntimeError
    otherwise, as PyTorch's); ``margin`` must be > 0 and ``reduction`` 'mean', 'sum' or 'none' (ValueErrors,
    as PyTorch's).
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    check_margin(margin)
    a = _as_tensor(anchor)
    pos = _as_tensor(positive, a)
    neg = _as_tensor(negative, a)
    if not a.ndim == pos.ndim == neg.ndim:
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have the same number of "
                           f"dimensions, but got: anchor {a.ndim}D, positive {pos.ndim}D, and negative "
                           f"{neg.ndim}D inputs")
    if distance_function is None:
        distance_function = pairwise_distance
    elif not callable(distance_function):
        raise TypeError(f"triplet_margin_with_distance_loss: distance_function must be callable, got "
                        f"{type(distance_function).__name__}")
    dist_pos = distance_function(a, pos)
    dist_neg = distance_function(a, neg)
    if swap:
        dist_neg = E.minimum(dist_neg, distance_function(pos, neg))
    loss = E.clip(margin + dist_pos - dist_neg, 0.0, None)
    if not isinstance(loss, Tensor):  # (a distance function of plain arrays)
        loss = Tensor(loss)
    return _reduce(loss, reduction)


__all__ = ["triplet_margin_with_distance_loss"]
