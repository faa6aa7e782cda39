"""Token-sequence classification tasks for recurrent and attention models.

Each returns ``(x int64 (N, T) token ids, y int64 (N,), num_classes)``,
deterministic given ``seed``, with balanced classes:

- ``parity``: bits 0/1; label = number of ones mod 2. Needs the whole
  sequence (a single flipped bit flips the label); an LSTM learns it for short
  lengths.
- ``sorted``: tokens 0..V-1; label 1 when the sequence is non-decreasing. The
  unsorted half are random sequences that are not sorted.
- ``majority``: uniform tokens 0..V-1; label = the most frequent token
  (sequences with a tie are redrawn), a counting task that suits attention.
"""
from __future__ import annotations

import numpy as np

from .synthetic import _positive


def parity(n_samples: int = 2000, length: int = 8, seed: int = 0):
    n, t = _positive("n_samples", n_samples), _positive("length", length)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, size=(n, t))
    # Balance classes exactly: flip one random bit in samples whose parity is over-represented.
    y = x.sum(axis=1) % 2
    target = np.arange(n) % 2
    flip = np.flatnonzero(y != target)
    x[flip, rng.integers(0, t, size=len(flip))] ^= 1
    return x.astype(np.int64), (x.sum(axis=1) % 2).astype(np.int64), 2


def sorted_or_not(n_samples: int = 2000, length: int = 8, vocab_size: int = 10, seed: int = 0):
    n, t, v = _positive("n_samples", n_samples), _positive("length", length, 2), _positive("vocab_size", vocab_size, 2)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, v, size=(n, t))
    y = (np.arange(n) % 2).astype(np.int64)
    x[y == 1] = np.sort(x[y == 1], axis=1)
    # Redraw "unsorted" samples that happen to be sorted.
    for i in np.flatnonzero(y == 0):
        while np.all(np.diff(x[i]) >= 0):
            x[i] = rng.integers(0, v, size=t)
    return x.astype(np.int64), y, 2


def majority(n_samples: int = 2000, length: int = 16, vocab_size: int = 4, seed: int = 0):
    n, t, v = _positive("n_samples", n_samples), _positive("length", length), _positive("vocab_size", vocab_size, 2)
    rng = np.random.default_rng(seed)
    x = np.empty((n, t), dtype=np.int64)
    y = (np.arange(n) % v).astype(np.int64)
    for i in range(n):
        # Uniform sequences, redrawn until their strict majority is the target class: balanced
        # classes and no hint in the token distribution beyond the counts themselves.
        while True:
            seq = rng.integers(0, v, size=t)
            counts = np.bincount(seq, minlength=v)
            if counts.argmax() == y[i] and (counts == counts.max()).sum() == 1:
                x[i] = seq
                break
    return x, y, v
