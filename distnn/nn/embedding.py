"""``Embedding``: a lookup table of learnable vectors, as ``torch.nn.Embedding``."""
from __future__ import annotations

import numpy as np

from distnn import random as drandom
from distnn.backend import default_dtype, to_numpy
from distnn.functional.embedding import _embedding

from .linear import _finish
from .module import Module, Parameter


def embedding_weight(who, num_embeddings, embedding_dim, padding_idx, _weight, dtype, generator):
    """The starting table of an ``Embedding``/``EmbeddingBag``: ``_weight`` (checked for its shape), else
    N(0, 1) draws from ``generator`` (the default generator) with the ``padding_idx`` row zeroed."""
    dtype = np.dtype(dtype or default_dtype())
    if _weight is None:
        gen = generator if generator is not None else drandom.default_generator()
        w = gen.standard_normal((num_embeddings, embedding_dim)).astype(dtype)
        if padding_idx is not None:
            w[padding_idx] = 0
        return w
    w = to_numpy(_weight).astype(dtype, copy=False)
    if w.shape != (num_embeddings, embedding_dim):
        raise ValueError(f"{who}: _weight has shape {w.shape}, expected {(num_embeddings, embedding_dim)}")
    return w


class Embedding(Module):
    """``Embedding(num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
    scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, device=None, dtype=None)``,
    PyTorch's arguments in PyTorch's order (plus distnn's keyword ``generator``).

    ``forward(input)`` takes integer indices of any shape and returns
    ``input.shape + (embedding_dim,)``. Weights start N(0, 1); the ``padding_idx``
    row starts at zero and never receives a gradient. With ``max_norm``, each forward
    first rescales IN PLACE the rows it looks up whose ``norm_type``-norm exceeds
    ``max_norm`` (see ``distnn.functional.embedding``). ``scale_grad_by_freq`` divides
    each row's gradient by its index's count in the batch; ``sparse=True`` makes ``weight.grad`` a sparse COO
    tensor (one entry per lookup; for ``optim.SGD``, ``optim.Adagrad``, ``optim.SparseAdam``), as PyTorch's.
    Under DataParallel, ``max_norm`` rescales the rows each rank's own batch looks up,
    so replicas drift apart (as under PyTorch's DDP); ``DataParallel.check_replicas()`` tells.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, device=None, dtype=None,
                 generator=None):
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx {padding_idx} must be within num_embeddings ({num_embeddings})"
                )
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        self.weight = Parameter(embedding_weight("Embedding", num_embeddings, embedding_dim, padding_idx, _weight,
                                                 dtype, generator))
        self.weight.requires_grad = not _freeze
        _finish(self, device)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False):
        """An Embedding whose weight is (a copy of) the 2-D ``embeddings``; frozen unless ``freeze=False``."""
        w = to_numpy(embeddings)
        if w.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape {w.shape}")
        return cls(w.shape[0], w.shape[1], padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=w, _freeze=freeze, dtype=w.dtype)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        if self.sparse:
            s += ", sparse=True"
        return s

    def forward(self, input):
        return _embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                          self.scale_grad_by_freq, self.sparse, self.where())
