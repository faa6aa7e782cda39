"""Samplers: which dataset indices a loader visits, in what order (``torch.utils.data``'s samplers).

``Sampler``, ``SequentialSampler``, ``RandomSampler``, ``SubsetRandomSampler``,
``WeightedRandomSampler`` and ``BatchSampler`` take PyTorch's arguments and refuse
PyTorch's bad input with its error types. ``data_source`` may also be a plain
length (distnn's shorthand: ``RandomSampler(100)``).

Randomness differs from PyTorch's on purpose: numbers come from numpy
generators, never PyTorch's. ``generator=`` (a ``numpy.random.Generator``)
continues that generator on every pass, as PyTorch continues its own. Without
one, a pass draws from ``numpy.random.default_rng([seed, epoch])`` (``seed``
keyword, default 0) where PyTorch draws from its global generator: the same
epoch always gives the same order, so :class:`~distnn.data.DataLoader` (which
calls ``set_epoch`` each epoch) reshuffles per epoch and resumes mid-epoch
exactly.
"""
from __future__ import annotations

import itertools
import numbers

import numpy as np


class Sampler:
    """Base class of samplers: ``__iter__`` yields indices (or, for a batch sampler, lists of them)."""

    def __iter__(self):
        raise NotImplementedError


def _length(data_source) -> int:
    """``len(data_source)``, or the number itself (distnn's shorthand)."""
    if isinstance(data_source, numbers.Integral) and not isinstance(data_source, bool):
        return int(data_source)
    return len(data_source)


class _EpochDraws:
    """Where a random sampler's numbers come from (see the module docstring)."""

    def _init_draws(self, generator, seed):
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(f"generator must be a numpy.random.Generator (distnn draws with numpy), "
                            f"got {type(generator).__name__}")
        self.generator, self.seed, self.epoch = generator, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order a pass draws (ignored with an explicit ``generator``)."""
        self.epoch = int(epoch)

    def _draws(self) -> np.random.Generator:
        return self.generator if self.generator is not None else np.random.default_rng([self.seed, self.epoch])


class SequentialSampler(Sampler):
    """``0, 1, ..., len(data_source) - 1`` every pass."""

    def __init__(self, data_source):
        self.data_source = data_source

    @property
    def n(self) -> int:
        return _length(self.data_source)

    def set_epoch(self, epoch: int) -> None:
        pass

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self) -> int:
        return self.n


class RandomSampler(_EpochDraws, Sampler):
    """A random order of ``data_source``'s indices: a permutation (``num_samples`` beyond the length: whole
    permutations and then part of one, as PyTorch), or ``num_samples`` indices drawn uniformly with
    ``replacement``. ``num_samples`` defaults to the length."""

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None, generator=None,
                 *, seed: int = 0):
        self.data_source, self.replacement, self._num_samples = data_source, replacement, num_samples
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got replacement={replacement}")
        n = self.num_samples
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={n}")
        self._init_draws(generator, seed)

    @property
    def n(self) -> int:
        return _length(self.data_source)

    @property
    def num_samples(self) -> int:
        return self.n if self._num_samples is None else self._num_samples

    def __iter__(self):
        n, k, gen = self.n, self.num_samples, self._draws()
        if self.replacement:
            return iter(gen.integers(0, n, size=k).tolist())
        parts = [gen.permutation(n) for _ in range(k // n)] + ([gen.permutation(n)[:k % n]] if k % n else [])
        return iter(np.concatenate(parts).tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(_EpochDraws, Sampler):
    """The elements of ``indices`` in a random order (a fresh permutation each pass)."""

    def __init__(self, indices, generator=None, *, seed: int = 0):
        self.indices = indices
        self._init_draws(generator, seed)

    def __iter__(self):
        return iter([self.indices[i] for i in self._draws().permutation(len(self.indices)).tolist()])

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(_EpochDraws, Sampler):
    """``num_samples`` indices of ``weights``, index ``i`` with probability ``weights[i] / sum(weights)``
    (with ``replacement``; without it, each drawn once at most, as ``torch.multinomial``)."""

    def __init__(self, weights, num_samples: int, replacement: bool = True, generator=None, *, seed: int = 0):
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got replacement={replacement}")
        from ..autograd import Tensor

        weights = np.asarray(weights.data if isinstance(weights, Tensor) else weights, dtype=np.float64)
        if weights.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape {tuple(weights.shape)}")
        self.weights, self.num_samples, self.replacement = weights, num_samples, replacement
        self._init_draws(generator, seed)

    def __iter__(self):
        # distnn.multinomial: PyTorch's checks (negative or non-finite weights, too many draws without
        # replacement) raise its RuntimeErrors here, on iteration, where PyTorch raises them.
        from ..functional.creation import multinomial
        from ..autograd import Tensor

        drawn = multinomial(Tensor(self.weights), self.num_samples, self.replacement, generator=self._draws())
        return iter(np.asarray(drawn.data).tolist())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of ``batch_size`` indices from ``sampler`` (any iterable of indices); the last may be shorter,
    unless ``drop_last``."""

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self):
        it = iter(self.sampler)
        while True:
            batch = list(itertools.islice(it, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else (n + self.batch_size - 1) // self.batch_size
