"""Augmentation draws that belong to samples, not ranks: the same on any number of ranks.

Under data parallelism a global batch of ``B`` samples is dealt round-robin:
rank ``r`` of ``W`` gets its positions ``r, r + W, r + 2W, ...``. A transform
draws its per-sample randomness (a shift per image, noise per element) from
the generator it is handed. :class:`BatchShareGenerator` makes those draws for
the whole global batch, from a seed that names the batch (not the rank), and
hands each rank the rows of its own positions. So sample ``i`` of a global
batch gets the same shift on 1, 2 or 3 ranks, and a run resumed on another
number of ranks continues the uninterrupted run's augmentation exactly.

A draw counts as per-sample when its ``size`` starts with the rank's batch
length (``rng.integers(..., size=(n, 2))``, ``rng.standard_normal(x.shape)``);
those of the methods below are shared out. Other draws (a scalar, another
shape) and other methods go to the generator as they are: every rank of the
batch draws the same values.

The cost: every rank draws for the whole global batch (``W`` times its share);
the built-in transforms draw a few numbers per sample (shifts, angles), noise
one per element.
"""
from __future__ import annotations

import numpy as np


class BatchShareGenerator:
    """A ``numpy.random.Generator`` look-alike whose per-sample draws are rows ``rows`` of draws made for
    ``total`` samples (the global batch)."""

    def __init__(self, generator: np.random.Generator, total: int, rows: np.ndarray):
        self.generator, self.total, self.rows = generator, int(total), np.asarray(rows)

    def _shared(self, method, size, *args, **kwargs):
        shape = (size,) if isinstance(size, (int, np.integer)) else size
        if shape is None or len(shape) == 0 or shape[0] != len(self.rows):
            return getattr(self.generator, method)(*args, size=size, **kwargs)
        full = getattr(self.generator, method)(*args, size=(self.total,) + tuple(shape[1:]), **kwargs)
        return full[self.rows]

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        return self._shared("integers", size, low, high, dtype=dtype, endpoint=endpoint)

    def random(self, size=None, dtype=np.float64, out=None):
        if out is not None:  # (fills a given array: not shared out)
            return self.generator.random(size, dtype, out)
        return self._shared("random", size, dtype=dtype)

    def uniform(self, low=0.0, high=1.0, size=None):
        return self._shared("uniform", size, low, high)

    def normal(self, loc=0.0, scale=1.0, size=None):
        return self._shared("normal", size, loc, scale)

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        if out is not None:
            return self.generator.standard_normal(size, dtype, out)
        return self._shared("standard_normal", size, dtype=dtype)

    def __getattr__(self, name):  # any other method: as the generator draws it (the same on every rank)
        return getattr(self.generator, name)
