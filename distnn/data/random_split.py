"""``random_split``: a dataset cut into non-overlapping random ``Subset``s (``torch.utils.data.random_split``).

The lengths are PyTorch's: integers that sum to the dataset's length, or
fractions that sum to 1, each ``floor(n * fraction)`` and the remainder dealt
one by one round-robin from the first split. The permutation comes from a
numpy generator (``generator=``, or distnn's default one, which
``distnn.manual_seed`` seeds), so it is not PyTorch's; the same generator state
gives the same split.
"""
from __future__ import annotations

import itertools
import math
import warnings

import numpy as np

from .combine import Subset


def _fraction_lengths(n: int, fractions) -> list:
    lengths = []
    for i, frac in enumerate(fractions):
        if frac < 0 or frac > 1:
            raise ValueError(f"Fraction at index {i} is not between 0 and 1")
        lengths.append(math.floor(n * frac))
    for i in range(n - sum(lengths)):  # the remainder, one each from the first split on
        lengths[i % len(lengths)] += 1
    for i, length in enumerate(lengths):
        if length == 0:
            warnings.warn(f"Length of split at index {i} is 0. This might result in an empty dataset.",
                          stacklevel=3)
    return lengths


def random_split(dataset, lengths, generator=None) -> list:
    """``Subset``s of ``dataset`` with the given ``lengths`` (integers, or fractions summing to 1), drawn as
    one random permutation of its indices from ``generator`` (a ``numpy.random.Generator``)."""
    from ..random import default_generator

    n = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        lengths = _fraction_lengths(n, lengths)
    if sum(lengths) != n:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    generator = default_generator() if generator is None else generator
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"random_split: generator must be a numpy.random.Generator (distnn draws with numpy), "
                        f"got {type(generator).__name__}")
    indices = generator.permutation(n).tolist()
    return [Subset(dataset, indices[end - length:end]) for end, length in zip(itertools.accumulate(lengths), lengths)]
