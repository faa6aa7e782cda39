"""``EmbeddingBag``: sums, means or maxima of bags of learnable vectors, as ``torch.nn.EmbeddingBag``."""
from __future__ import annotations

from distnn.backend import to_numpy
from distnn.functional.embedding_bag import _MODES, _embedding_bag

from .embedding import embedding_weight
from .linear import _finish
from .module import Module, Parameter


class EmbeddingBag(Module):
    """``EmbeddingBag(num_embeddings, embedding_dim, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
    mode='mean', sparse=False, _weight=None, include_last_offset=False, padding_idx=None, device=None,
    dtype=None)``, PyTorch's arguments in PyTorch's order (plus distnn's keyword ``generator``).

    ``forward(input, offsets=None, per_sample_weights=None)``: see ``distnn.functional.embedding_bag``
    (1-D indices with offsets, or 2-D bags) -> (bags, embedding_dim). Weights start N(0, 1); the
    ``padding_idx`` row starts at zero, and its entries are left out of their bags. ``sparse=True``
    (modes 'sum' and 'mean') makes ``weight.grad`` a sparse COO tensor, as PyTorch's.
    """

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                 mode="mean", sparse=False, _weight=None, include_last_offset=False, padding_idx=None, device=None,
                 dtype=None, generator=None):
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"EmbeddingBag: mode has to be one of sum, mean or max, got {mode!r}")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"EmbeddingBag: padding_idx {padding_idx} must be within num_embeddings "
                                 f"({num_embeddings})")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.max_norm, self.norm_type, self.scale_grad_by_freq = max_norm, norm_type, scale_grad_by_freq
        self.mode, self.sparse, self.include_last_offset = mode, sparse, include_last_offset
        self.padding_idx = padding_idx
        self.weight = Parameter(embedding_weight("EmbeddingBag", num_embeddings, embedding_dim, padding_idx, _weight,
                                                 dtype, generator))
        _finish(self, device)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                        mode="mean", sparse=False, include_last_offset=False, padding_idx=None):
        """An EmbeddingBag whose weight is (a copy of) the 2-D ``embeddings``; frozen unless ``freeze=False``."""
        w = to_numpy(embeddings)
        if w.ndim != 2:
            raise ValueError(f"EmbeddingBag.from_pretrained: embeddings must be 2-D, got shape {w.shape}")
        bag = cls(w.shape[0], w.shape[1], max_norm, norm_type, scale_grad_by_freq, mode, sparse, _weight=w,
                  include_last_offset=include_last_offset, padding_idx=padding_idx, dtype=w.dtype)
        bag.weight.requires_grad = not freeze
        return bag

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        s += f", mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s

    def forward(self, input, offsets=None, per_sample_weights=None):
        return _embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type, self.scale_grad_by_freq,
                              self.mode, self.sparse, per_sample_weights, self.include_last_offset, self.padding_idx,
                              self.where())
