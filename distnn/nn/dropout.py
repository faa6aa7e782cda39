"""``Dropout``: inverted dropout in training mode, identity in eval mode."""
from __future__ import annotations

from distnn.functional.activation import dropout

from .module import Module


class Dropout(Module):
    """Zero each element with probability ``p`` while training and scale the rest by 1/(1-p).

    ``generator`` (a ``numpy.random.Generator``) makes the masks reproducible;
    by default the masks come from ``distnn.random.default_generator()``.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, generator=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = float(p)
        self.inplace = inplace  # as PyTorch's: the input tensor itself becomes the output (training only)
        self.generator = generator

    def forward(self, x):
        return dropout(x, self.p, self.training, self.inplace, generator=self.generator)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"
