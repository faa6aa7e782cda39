"""``Dropout``: inverted dropout in training mode, identity in eval mode."""
from __future__ import annotations

from distnn.functional.activation import dropout

from .module import Module


class Dropout(Module):
    """Zero each element with probability ``p`` while training and scale the rest by 1/(1-p).

    ``generator`` (a ``numpy.random.Generator``) makes the masks reproducible;
    by default the masks come from ``distnn.random.default_generator()``.
    ``batch_dim`` (a distnn addition): the axis of the input that holds the
    samples, e.g. 1 for a time-major ``(T, N, H)`` tensor. Under the trainer a
    sample's mask is then the same on any number of ranks; None guesses from
    the shape (the first axis if it is the batch's row count, else the second),
    which cannot tell ``(T, N, H)`` from ``(N, T, H)`` when ``N == T``.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, generator=None, batch_dim: int | None = None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = float(p)
        self.inplace = inplace  # as PyTorch's: the input tensor itself becomes the output (training only)
        self.generator = generator
        self.batch_dim = None if batch_dim is None else int(batch_dim)

    def forward(self, x):
        return dropout(x, self.p, self.training, self.inplace, generator=self.generator, batch_dim=self.batch_dim)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}" + (f", batch_dim={self.batch_dim}" if self.batch_dim is not None else "")
