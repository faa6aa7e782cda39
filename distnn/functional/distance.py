"""Distances between vectors, as PyTorch's: ``cosine_similarity`` and ``pairwise_distance``.

Both are composed of differentiable ops in the order PyTorch's ATen composes them, so that their
gradients are PyTorch's (the triplet and cosine-embedding losses build on them).
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._dims import wrap_dim
from .loss import _as_tensor
from .normalize import NormP
from .reduce import norm
from .shape import broadcast_to


def _broadcast_shape(name, a, b):
    try:
        return tuple(np.broadcast_shapes(tuple(a.shape), tuple(b.shape)))  # (shapes only: serves cupy too)
    except ValueError:
        raise ValueError(f"{name}: the shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast") from None


class _ClampMinKeepGrad(Function):
    """``max(a, lo)`` whose gradient is the identity's, as PyTorch's clamp under ``no_grad`` on a norm:
    a norm below ``lo`` is divided by ``lo`` but its own derivative still flows (NaN stays NaN)."""

    reads = ((),)

    def forward(self, a, lo):
        return get_array_module(a).maximum(a, lo)

    def backward(self, g):
        return (g,)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """Cosine of the angle between ``x1`` and ``x2`` along ``dim``, as PyTorch's (torch >= 2.0):
    ``sum((x1 / max(||x1||, eps)) * (x2 / max(||x2||, eps)), dim)``.

    The inputs broadcast against each other first; ``dim`` is one of the broadcast shape's. Each norm is
    clamped at ``eps`` (not their product, as older PyTorch did), and the clamp passes the norm's gradient
    unchanged, as PyTorch's (it clamps outside the graph): a vector of norm below ``eps`` still gets the
    gradient of its direction. An integer input takes the other's floating dtype; two integer inputs are
    refused, as in PyTorch.
    """
    x1 = _as_tensor(x1, x2 if isinstance(x2, Tensor) else None)
    x2 = _as_tensor(x2, x1)
    k1, k2 = x1.dtype.kind, x2.dtype.kind
    if k1 != "f" and k2 != "f":
        raise TypeError(f"cosine_similarity: expected a floating-point input, got {x1.dtype} and {x2.dtype}")
    if k1 != "f":
        x1 = x1.astype(x2.dtype)
    if k2 != "f":
        x2 = x2.astype(x1.dtype)
    shape = _broadcast_shape("cosine_similarity", x1, x2)
    axis = wrap_dim(dim, len(shape), "cosine_similarity")
    if tuple(x1.shape) != shape:
        x1 = broadcast_to(x1, shape)
    if tuple(x2.shape) != shape:
        x2 = broadcast_to(x2, shape)
    n1 = _ClampMinKeepGrad.apply(norm(x1, 2, axis, keepdim=True), lo=eps)
    n2 = _ClampMinKeepGrad.apply(norm(x2, 2, axis, keepdim=True), lo=eps)
    return ((x1 / n1) * (x2 / n2)).sum(axis)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """The ``p``-norm of ``x1 - x2 + eps`` over the last dimension of their broadcast shape, as PyTorch's.

    ``eps`` is added to the difference (not to its absolute value), so that equal vectors are at a
    distance with a gradient. ``p`` is any real or +-inf, with PyTorch's vector-norm gradients (see
    :class:`~distnn.functional.normalize.NormP`); 0-d inputs give ``|x1 - x2 + eps|``.
    """
    x1 = _as_tensor(x1, x2 if isinstance(x2, Tensor) else None)
    x2 = _as_tensor(x2, x1)
    shape = _broadcast_shape("pairwise_distance", x1, x2)
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"pairwise_distance: p must be a number, got {p!r}")
    return NormP.apply(x1 - x2 + eps, p=float(p), axis=max(len(shape), 1) - 1, keepdims=keepdim)


__all__ = ["cosine_similarity", "pairwise_distance"]
