"""``Dropout``: inverted dropout in training mode, identity in eval mode; its relatives Dropout1d/2d/3d
(whole channels), AlphaDropout and FeatureAlphaDropout (SELU networks)."""
from __future__ import annotations

from distnn.functional.activation import dropout
from distnn.functional.dropout_variants import (
    alpha_dropout, dropout1d, dropout2d, dropout3d, feature_alpha_dropout,
)

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


class _DropoutNd(Module):
    """PyTorch's ``_DropoutNd``: ``p`` (checked) and ``inplace``; ``generator`` (a distnn addition, as
    :class:`Dropout`'s) makes the masks reproducible and is saved with a checkpoint."""

    def __init__(self, p: float = 0.5, inplace: bool = False, generator=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = float(p)
        self.inplace = inplace
        self.generator = generator

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(_DropoutNd):
    """Zero whole channels of ``(N, C, L)`` or ``(C, L)`` while training (see ``F.dropout1d``)."""

    def forward(self, x):
        return dropout1d(x, self.p, self.training, self.inplace, generator=self.generator)


class Dropout2d(_DropoutNd):
    """Zero whole channels of ``(N, C, H, W)`` while training (see ``F.dropout2d``: as PyTorch's, a 3-D
    input is taken as ``(N, C, L)``, with a warning)."""

    def forward(self, x):
        return dropout2d(x, self.p, self.training, self.inplace, generator=self.generator)


class Dropout3d(_DropoutNd):
    """Zero whole channels of ``(N, C, D, H, W)`` or ``(C, D, H, W)`` while training (see ``F.dropout3d``)."""

    def forward(self, x):
        return dropout3d(x, self.p, self.training, self.inplace, generator=self.generator)


class AlphaDropout(_DropoutNd):
    """Alpha dropout while training (see ``F.alpha_dropout``): keeps a SELU network's zero mean and unit
    variance. As PyTorch's module, ``inplace`` is stored and shown but not used (the input is never
    changed). ``batch_dim``: as :class:`Dropout`'s, the samples' axis for the trainer's per-sample masks."""

    def __init__(self, p: float = 0.5, inplace: bool = False, generator=None, batch_dim: int | None = None):
        super().__init__(p, inplace, generator)
        self.batch_dim = None if batch_dim is None else int(batch_dim)

    def forward(self, x):
        return alpha_dropout(x, self.p, self.training, generator=self.generator, batch_dim=self.batch_dim)

    def extra_repr(self):
        return super().extra_repr() + (f", batch_dim={self.batch_dim}" if self.batch_dim is not None else "")


class FeatureAlphaDropout(_DropoutNd):
    """Alpha dropout of whole channels while training (see ``F.feature_alpha_dropout``); ``inplace`` unused,
    as in PyTorch's module."""

    def forward(self, x):
        return feature_alpha_dropout(x, self.p, self.training, generator=self.generator)
