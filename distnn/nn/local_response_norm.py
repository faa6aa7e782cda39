"""``LocalResponseNorm`` and ``CrossMapLRN2d``: PyTorch's modules over ``distnn.functional.local_response_norm``
(see there for the two windows and gradients)."""
from __future__ import annotations

from distnn.functional.local_response_norm import _check_size, cross_map_lrn2d, local_response_norm

from .module import Module


class _LRNBase(Module):
    def __init__(self, size, alpha, beta, k):
        super().__init__()
        _check_size(type(self).__name__, size)  # (a bad size fails when the layer is built)
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class LocalResponseNorm(_LRNBase):
    """``LocalResponseNorm(size, alpha=1e-4, beta=0.75, k=1.0)``: each value divided by ``(k + alpha / size *
    sum of squares over size neighbouring channels) ** beta``; inputs (N, C, *) of 3 or more dimensions."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__(size, alpha, beta, k)

    def forward(self, input):
        return local_response_norm(input, self.size, self.alpha, self.beta, self.k)


class CrossMapLRN2d(_LRNBase):
    """``CrossMapLRN2d(size, alpha=1e-4, beta=0.75, k=1)``: PyTorch's legacy cross-channel LRN of (N, C, H, W)
    inputs, its forward and its own backward (see
    ``distnn.functional.local_response_norm.cross_map_lrn2d``; PyTorch has no F. function for it)."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1):
        super().__init__(size, alpha, beta, k)

    def forward(self, input):
        return cross_map_lrn2d(input, self.size, self.alpha, self.beta, self.k)
