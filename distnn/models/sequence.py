"""Sequence classifiers: ``LSTMClassifier`` and ``TransformerClassifier``.

Both take either token ids (N, T) (give ``vocab_size``: an ``Embedding`` comes
first) or float features (N, T, F) (give ``input_size``, or let ``input_shape``
(T, F) set it); integer features (token ids given with ``input_size = 1`` and no
``vocab_size``) are read as numbers in the parameters' float type. Images (N, C, H, W) are read as sequences of H rows of C*W
features, so the digits datasets work too.
"""
from __future__ import annotations


from distnn import nn
from distnn import random as drandom
from distnn.autograd.tensor import Tensor
from distnn.backend import default_dtype, get_array_module

from . import arguments as argspec
from .inputs import as_real
from .registry import register_model


def _feature_layout(input_size, input_shape, vocab_size, who):
    """(input_size, image_shape or None) for feature inputs; checks token inputs have a vocabulary."""
    if vocab_size is not None:
        return None, None
    if input_shape is not None:
        shape = tuple(int(s) for s in input_shape)
        if len(shape) == 3:  # (C, H, W): rows are timesteps
            return shape[0] * shape[2], shape
        if len(shape) == 2:
            return (input_size or shape[1]), None
        if len(shape) == 1 and input_size is None:
            raise ValueError(f"{who}: input_shape {shape} looks like token ids; give vocab_size (or input_size "
                             f"for flat features read input_size at a time)")
    if input_size is None:
        raise ValueError(f"{who}: give vocab_size (token inputs) or input_size (feature inputs)")
    return int(input_size), None


def _as_sequence(module, x):
    """Token ids -> embeddings; images -> rows; flat features -> (N, T, input_size). Returns (N, T, E)."""
    if module.vocab_size is not None:
        ids = x.data if isinstance(x, Tensor) else x
        if ids.ndim != 2:
            raise ValueError(f"{module.where()}: expected token ids (N, T), got shape {tuple(ids.shape)}")
        return module.embedding(ids)
    x = as_real(module, x)  # token ids read as numbers (input_size = 1)
    if x.ndim == 4:
        n, c, h, w = x.shape
        return x.permute(0, 2, 1, 3).reshape(n, h, c * w)
    if x.ndim == 2 and x.shape[1] % module.input_size == 0:
        return x.reshape(x.shape[0], -1, module.input_size)
    if x.ndim != 3 or x.shape[2] != module.input_size:
        raise ValueError(f"{module.where()}: expected features (N, T, {module.input_size}), got {tuple(x.shape)}")
    return x


@register_model("lstm_classifier", "lstm")
class LSTMClassifier(nn.Module):
    """``LSTMClassifier(input_size=None, hidden_size=64, num_layers=1, num_classes=2, vocab_size=None,
    embedding_dim=32, bidirectional=False, dropout=0.0)``.

    ``embedding`` (token inputs) -> ``lstm`` (batch_first) -> the last layer's final
    hidden state (both directions concatenated) -> ``fc``. Sequences are not
    packed: all samples of a batch run the full length.
    """

    arguments = argspec.Arguments({
        "input_size": argspec.integer(optional=True),
        "hidden_size": argspec.integer(),
        "num_layers": argspec.integer(),
        "vocab_size": argspec.integer(optional=True),
        "embedding_dim": argspec.integer(),
        "bidirectional": argspec.boolean(),
        "dropout": argspec.probability(),
        "padding_idx": argspec.integer(minimum=None, optional=True),
    }, relations=[argspec.index_in_vocabulary()], only_with=argspec.tokens_or_features("embedding_dim", "padding_idx"))

    def __init__(self, input_size=None, hidden_size=64, num_layers=1, num_classes=2, vocab_size=None,
                 embedding_dim=32, bidirectional=False, dropout=0.0, padding_idx=None, input_shape=None,
                 generator=None):
        super().__init__()
        self.arguments.check("LSTMClassifier", defaults=argspec.signature_defaults(LSTMClassifier),
                             input_size=input_size, hidden_size=hidden_size, num_layers=num_layers,
                             vocab_size=vocab_size, embedding_dim=embedding_dim, bidirectional=bidirectional,
                             dropout=dropout, padding_idx=padding_idx)
        input_size, _ = _feature_layout(input_size, input_shape, vocab_size, "LSTMClassifier")
        self.vocab_size, self.input_size = vocab_size, input_size
        if vocab_size is not None:
            self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx, generator=generator)
            input_size = embedding_dim
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout,
                            bidirectional=bidirectional, generator=generator)
        self.num_directions = 2 if bidirectional else 1
        self.fc = nn.Linear(hidden_size * self.num_directions, num_classes, generator=generator)

    def forward(self, x):
        seq = _as_sequence(self, x)
        _, (h_n, _) = self.lstm(seq)
        D = self.num_directions
        last = h_n[-D:]  # (D, N, H): the top layer's directions
        feats = last[0] if D == 1 else last.permute(1, 0, 2).reshape(last.shape[1], -1)
        return self.fc(feats)


@register_model("transformer_classifier", "transformer")
class TransformerClassifier(nn.Module):
    """``TransformerClassifier(vocab_size=None, input_size=None, d_model=64, nhead=4, num_layers=2,
    dim_feedforward=128, dropout=0.1, num_classes=2, max_len=None, norm_first=True, activation="gelu")``.

    ``embedding`` (tokens) or ``input_proj`` (features) plus a learned
    ``pos_embedding`` (max_len, d_model) -> ``encoder`` (TransformerEncoder,
    batch_first; a final LayerNorm when norm_first) -> mean over the positions
    that are not padding (``padding_idx`` tokens are masked out of attention too)
    -> ``fc``.
    """

    arguments = argspec.Arguments({
        "vocab_size": argspec.integer(optional=True),
        "input_size": argspec.integer(optional=True),
        **argspec.transformer_stack(),
        "norm_first": argspec.boolean(),
        "activation": argspec.Rule("'relu', 'gelu' or a callable", lambda v: v in ("relu", "gelu") or callable(v)),
        "padding_idx": argspec.integer(minimum=None, optional=True),
    }, relations=[argspec.heads_divide_width(), argspec.index_in_vocabulary()],
        only_with=argspec.tokens_or_features("padding_idx"))

    def __init__(self, vocab_size=None, input_size=None, d_model=64, nhead=4, num_layers=2, dim_feedforward=128,
                 dropout=0.1, num_classes=2, max_len=None, norm_first=True, activation="gelu", padding_idx=None,
                 input_shape=None, generator=None):
        super().__init__()
        self.arguments.check("TransformerClassifier", defaults=argspec.signature_defaults(TransformerClassifier),
                             vocab_size=vocab_size, input_size=input_size, d_model=d_model, nhead=nhead,
                             num_layers=num_layers, dim_feedforward=dim_feedforward, dropout=dropout, max_len=max_len,
                             norm_first=norm_first, activation=activation, padding_idx=padding_idx)
        input_size, image = _feature_layout(input_size, input_shape, vocab_size, "TransformerClassifier")
        self.vocab_size, self.input_size, self.padding_idx = vocab_size, input_size, padding_idx
        if max_len is None:
            max_len = (image[1] if image else int(input_shape[0])) if input_shape is not None else 512
        if vocab_size is not None:
            self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=padding_idx, generator=generator)
        else:
            self.input_proj = nn.Linear(input_size, d_model, generator=generator)
        gen = generator if generator is not None else drandom.default_generator()
        self.pos_embedding = nn.Parameter((0.02 * gen.standard_normal((max_len, d_model))).astype(default_dtype()))
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation, batch_first=True,
                                           norm_first=norm_first, generator=generator)
        self.encoder = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(d_model) if norm_first else None)
        self.fc = nn.Linear(d_model, num_classes, generator=generator)
        self.max_len = max_len

    def forward(self, x):
        h = _as_sequence(self, x) if self.vocab_size is not None else self.input_proj(_as_sequence(self, x))
        T = h.shape[1]
        if T > self.max_len:
            raise ValueError(f"{self.where()}: sequence length {T} exceeds max_len {self.max_len}")
        h = h + self.pos_embedding[:T]
        pad = None
        if self.vocab_size is not None and self.padding_idx is not None:
            ids = x.data if isinstance(x, Tensor) else x
            pad = get_array_module(h.data).asarray(ids == self.padding_idx)  # (N, T), True = ignore
        h = self.encoder(h, src_key_padding_mask=pad)
        if pad is None:
            pooled = h.mean(axis=1)
        else:
            xp = get_array_module(h.data)
            keep = (~pad).astype(h.dtype)
            count = xp.maximum(keep.sum(axis=1, keepdims=True), 1)
            pooled = (h * keep[:, :, None]).sum(axis=1) / count
        return self.fc(pooled)

