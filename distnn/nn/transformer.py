"""``TransformerEncoderLayer`` and ``TransformerEncoder``, with PyTorch's submodule names.

A layer is self-attention then a feed-forward block, each wrapped in a residual
connection and a LayerNorm: after the residual add (post-norm, the default) or
on the branch input (``norm_first=True``, pre-norm). Submodules are
``self_attn, linear1, dropout, linear2, norm1, norm2, dropout1, dropout2`` and the
stack's are ``layers.{i}`` and ``norm``, so PyTorch state_dicts load unchanged.
"""
from __future__ import annotations

import copy

import numpy as np

from distnn.backend import get_array_module
from distnn.functional import activation as A

from .attention import MultiheadAttention, causal_mask
from .dropout import Dropout
from .linear import Linear
from .containers import ModuleList
from .module import Module
from .normalization import LayerNorm

_ACTIVATIONS = {"relu": A.relu, "gelu": A.gelu}


def _activation(activation, where):
    """"relu" or "gelu" as its function; a callable as is."""
    if isinstance(activation, str):
        if activation not in _ACTIVATIONS:
            raise ValueError(f"{where}: activation must be 'relu' or 'gelu' (or a callable), got {activation!r}")
        return _ACTIVATIONS[activation]
    if not callable(activation):
        raise TypeError(f"{where}: activation must be 'relu', 'gelu' or a callable, got {type(activation).__name__}")
    return activation


def _clones(layer, num_layers, where):
    """``num_layers`` deep copies of ``layer`` that share its random generators (one reproducible stream)."""
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"{where}: num_layers must be a positive int, got {num_layers!r}")
    shared = {id(v): v for m in layer.modules() for v in vars(m).values() if isinstance(v, np.random.Generator)}
    return ModuleList(copy.deepcopy(layer, dict(shared)) for _ in range(num_layers))


class _TransformerLayer(Module):
    """The branches TransformerEncoderLayer and TransformerDecoderLayer share: self-attention (then
    ``dropout1``) and the feed-forward block (then the dropout given: ``dropout2`` in an encoder layer,
    ``dropout3`` in a decoder layer)."""

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                           is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x, dropout):
        return dropout(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerEncoderLayer(_TransformerLayer):
    """``TransformerEncoderLayer(d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
    layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True)``.

    ``forward(src, src_mask=None, src_key_padding_mask=None, is_causal=False)``;
    ``src`` is (S, N, E), or (N, S, E) when batch_first, or unbatched (S, E).
    ``activation`` is "relu", "gelu" or a callable on Tensors.

    The dropout layers are told where the samples are (``batch_dim`` 0 when
    batch_first, else 1), so the trainer's per-sample masks are the same for a
    sample on any number of ranks; a guess from the shape would take time steps
    for samples when a (S, N, E) batch has N == S. (Unbatched (S, E) input has
    no batch axis: a mask that does not fit the batch's rows is drawn per rank.)
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, dtype=None, generator=None):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype, generator=generator)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype, generator=generator)
        batch_dim = 0 if batch_first else 1  # (every activation below keeps src's layout)
        self.dropout = Dropout(dropout, generator=generator, batch_dim=batch_dim)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype, generator=generator)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout, generator=generator, batch_dim=batch_dim)
        self.dropout2 = Dropout(dropout, generator=generator, batch_dim=batch_dim)
        self.activation = _activation(activation, "TransformerEncoderLayer")
        self.batch_first = batch_first

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x), self.dropout2)
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x, self.dropout2))
        return x


class TransformerEncoder(Module):
    """``TransformerEncoder(encoder_layer, num_layers, norm=None)``: ``num_layers`` copies of the layer.

    The copies are deep copies (independent parameters) that share the layer's
    random generator, if it has one, so dropout masks stay one reproducible stream.
    ``forward(src, mask=None, src_key_padding_mask=None, is_causal=None)``;
    ``is_causal=True`` with no mask builds the causal mask once for all layers.
    """

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True, mask_check=True):
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers, "TransformerEncoder")
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        if is_causal and mask is None:
            seq_axis = 1 if self.layers[0].batch_first and src.ndim == 3 else 0
            # Built where src lives, so a GPU run does not copy it from the host at every layer.
            mask = causal_mask(src.shape[seq_axis], xp=get_array_module(src.data))
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        if self.norm is not None:
            x = self.norm(x)
        return x
