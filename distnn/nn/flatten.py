"""``Flatten`` and ``Unflatten``."""
from __future__ import annotations

from distnn.functional import shape as S
from distnn.functional._dims import wrap_dim
from distnn.functional.shape_more import unflatten

from .module import Module


class Flatten(Module):
    """Flatten dims ``start_dim`` .. ``end_dim`` into one (default: all but the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return S.flatten(x, self.start_dim, self.end_dim)  # x may be a raw array, as for the other layers

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Expand dimension ``dim`` into ``unflattened_size``."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x):
        if len(x.shape):  # (a dim out of range named with this module's place in the model)
            wrap_dim(self.dim, len(x.shape), self.where())
        return unflatten(x, self.dim, self.unflattened_size)  # (PyTorch's refusals)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
