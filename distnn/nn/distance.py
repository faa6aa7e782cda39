"""Distance modules (``CosineSimilarity``, ``PairwiseDistance``): thin wrappers over ``distnn.functional.distance``
with PyTorch's constructor arguments."""
from __future__ import annotations

from distnn.functional import distance as D

from .module import Module


class CosineSimilarity(Module):
    """Cosine similarity of ``x1`` and ``x2`` along ``dim``, each norm clamped at ``eps``; see
    ``F.cosine_similarity``."""

    def __init__(self, dim: int = 1, eps: float = 1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1, x2):
        return D.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """The ``p``-norm of ``x1 - x2 + eps`` over the last dimension; see ``F.pairwise_distance``."""

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim  # (``norm``: PyTorch's attribute name for p)

    def forward(self, x1, x2):
        return D.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
