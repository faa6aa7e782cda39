"""``Embedding``: a lookup table of learnable vectors, as ``torch.nn.Embedding``."""
from __future__ import annotations

import numpy as np

from distnn import random as drandom
from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, to_numpy
from distnn.functional._into import destinations

from .module import Module, Parameter


class EmbeddingLookup(Function):
    """``weight[indices]``; backward scatter-adds rows (repeated indices accumulate).

    The row ``padding_idx`` (if any) gets no gradient, as in PyTorch.
    """

    def forward(self, weight, indices, padding_idx=None):
        self.indices, self.num, self.padding_idx = indices, weight.shape[0], padding_idx
        return weight[indices]

    def backward(self, grad):
        xp = get_array_module(grad)
        dim = grad.shape[-1]
        flat_idx = self.indices.reshape(-1)
        flat_g = grad.reshape(-1, dim)
        dest = destinations(self, 1)[0]  # the engine's destination for the weight gradient
        if dest is not None and dest.dtype == grad.dtype:
            out = dest
            out[...] = 0
        else:
            out = xp.zeros((self.num, dim), dtype=grad.dtype)
        if xp.__name__ == "numpy":
            np.add.at(out, flat_idx, flat_g)
        else:  # cupy
            import cupyx

            cupyx.scatter_add(out, flat_idx, flat_g)
        if self.padding_idx is not None:
            out[self.padding_idx] = 0
        return out, None


class Embedding(Module):
    """``Embedding(num_embeddings, embedding_dim, padding_idx=None)``.

    ``forward(input)`` takes integer indices of any shape and returns
    ``input.shape + (embedding_dim,)``. Weights start N(0, 1); the ``padding_idx``
    row starts at zero and never receives a gradient.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, _weight=None, dtype=None, generator=None):
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx {padding_idx} must be within num_embeddings ({num_embeddings})"
                )
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        dtype = np.dtype(dtype or np.float32)
        if _weight is None:
            gen = generator if generator is not None else drandom.default_generator()
            w = gen.standard_normal((num_embeddings, embedding_dim)).astype(dtype)
            if padding_idx is not None:
                w[padding_idx] = 0
        else:
            w = to_numpy(_weight).astype(dtype, copy=False)
            if w.shape != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight has shape {w.shape}, expected {(num_embeddings, embedding_dim)}")
        self.weight = Parameter(w)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None):
        w = to_numpy(embeddings)
        m = cls(w.shape[0], w.shape[1], padding_idx=padding_idx, _weight=w, dtype=w.dtype)
        m.weight.requires_grad = not freeze
        return m

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        return s + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")

    def forward(self, input):
        idx = input.data if isinstance(input, Tensor) else input
        xp = get_array_module(self.weight.data)
        idx = xp.asarray(idx)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"{self.where()}: indices must be integers, got dtype {idx.dtype}")
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= self.num_embeddings):
            raise IndexError(
                f"{self.where()}: index out of range: indices span [{int(idx.min())}, {int(idx.max())}] "
                f"but num_embeddings is {self.num_embeddings}"
            )
        return EmbeddingLookup.apply(self.weight, idx, padding_idx=self.padding_idx)
