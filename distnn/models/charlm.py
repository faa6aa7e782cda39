"""``CharLM``: a tiny character-level language model (causal transformer or LSTM)."""
from __future__ import annotations

import numpy as np

from distnn import nn
from distnn import random as drandom
from distnn.autograd.grad_mode import no_grad
from distnn.autograd.tensor import Tensor
from distnn.backend import default_dtype, to_numpy
from distnn.nn.module import evaluating
from distnn.functional import activation as A

from . import arguments as argspec
from .registry import register_model


@register_model("charlm", "char_lm")
class CharLM(nn.Module):
    """``CharLM(vocab_size, arch="transformer", d_model=64, nhead=4, num_layers=2, dim_feedforward=256,
    dropout=0.0, max_len=None, hidden_size=128)``.

    ``forward(ids (N, T)) -> logits (N, T, vocab_size)``: position t predicts token
    t + 1. ``arch="transformer"``: ``embedding`` + learned ``pos_embedding`` ->
    pre-norm ``encoder`` with a causal mask (and a final LayerNorm) -> ``head``.
    ``arch="lstm"``: ``embedding`` -> ``lstm`` (hidden_size) -> ``head``.
    ``vocab_size`` defaults to ``num_classes`` (the trainer's next-token classes);
    ``max_len`` to ``input_shape[0]`` (else 256).
    """

    arguments = argspec.Arguments({
        "vocab_size": argspec.integer(optional=True),
        "arch": argspec.choice("transformer", "lstm"),
        **argspec.transformer_stack(),
        "hidden_size": argspec.integer(),
    }, relations=[argspec.heads_divide_width(when=lambda v: v["arch"] == "transformer")],
        only_with={**{k: argspec.OnlyWith("arch", lambda a: a == "transformer", "with arch = 'transformer'")
                      for k in ("nhead", "dim_feedforward", "max_len")},
                   "hidden_size": argspec.OnlyWith("arch", lambda a: a == "lstm",
                                                   "with arch = 'lstm' (the LSTM's width)")})

    def __init__(self, vocab_size=None, arch="transformer", d_model=64, nhead=4, num_layers=2, dim_feedforward=256,
                 dropout=0.0, max_len=None, hidden_size=128, num_classes=None, input_shape=None, generator=None):
        super().__init__()
        # (defaults: a given argument of the other arch is refused, as in a config; the defaults never are)
        self.arguments.check("CharLM", defaults=argspec.signature_defaults(CharLM), vocab_size=vocab_size, arch=arch,
                             d_model=d_model, nhead=nhead, num_layers=num_layers, dim_feedforward=dim_feedforward,
                             dropout=dropout, max_len=max_len, hidden_size=hidden_size)
        vocab_size = vocab_size if vocab_size is not None else num_classes
        if vocab_size is None:
            raise ValueError("CharLM: give vocab_size (or num_classes)")
        if num_classes is not None and num_classes != vocab_size:
            raise ValueError(f"CharLM: num_classes {num_classes} must equal vocab_size {vocab_size}")
        if max_len is None:
            max_len = int(input_shape[0]) if input_shape else 256
        self.vocab_size, self.arch, self.max_len = vocab_size, arch, max_len
        if arch == "transformer":
            self.embedding = nn.Embedding(vocab_size, d_model, generator=generator)
            gen = generator if generator is not None else drandom.default_generator()
            self.pos_embedding = nn.Parameter((0.02 * gen.standard_normal((max_len, d_model))).astype(default_dtype()))
            layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, "gelu", batch_first=True,
                                               norm_first=True, generator=generator)
            self.encoder = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(d_model))
            self.head = nn.Linear(d_model, vocab_size, generator=generator)
        else:
            self.embedding = nn.Embedding(vocab_size, d_model, generator=generator)
            self.lstm = nn.LSTM(d_model, hidden_size, num_layers, batch_first=True, dropout=dropout,
                                generator=generator)
            self.head = nn.Linear(hidden_size, vocab_size, generator=generator)

    def forward(self, ids):
        ids = ids.data if isinstance(ids, Tensor) else ids
        if ids.ndim != 2:
            raise ValueError(f"{self.where()}: expected token ids (N, T), got shape {tuple(ids.shape)}")
        T = ids.shape[1]
        h = self.embedding(ids)
        if self.arch == "lstm":
            h, _ = self.lstm(h)
            return self.head(h)
        if T > self.max_len:
            raise ValueError(f"{self.where()}: sequence length {T} exceeds max_len {self.max_len}")
        h = h + self.pos_embedding[:T]
        h = self.encoder(h, is_causal=True)
        return self.head(h)

    def generate(self, ids, max_new_tokens, temperature=1.0, generator=None):
        """Sample ``max_new_tokens`` continuations of ``ids`` (N, T); returns (N, T + max_new_tokens) ids."""
        gen = generator if generator is not None else drandom.default_generator()
        ids = np.asarray(to_numpy(ids.data if isinstance(ids, Tensor) else ids), dtype=np.int64)
        with evaluating(self), no_grad():
            for _ in range(int(max_new_tokens)):
                context = ids[:, -self.max_len:] if self.arch == "transformer" else ids
                logits = self(context)[:, -1]
                probs = to_numpy(A.softmax(logits * (1.0 / max(temperature, 1e-8)), axis=-1).data)
                probs = probs.astype(np.float64)
                probs /= probs.sum(axis=1, keepdims=True)
                nxt = np.array([gen.choice(self.vocab_size, p=p) for p in probs], dtype=np.int64)
                ids = np.concatenate([ids, nxt[:, None]], axis=1)
        return ids
