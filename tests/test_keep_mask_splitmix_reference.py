"""The trainer's per-sample dropout masks, bit for bit, against SplitMix64 written out in Python integers from
``distnn.data.batch_random``'s description: element ``e`` of position ``p`` in the ``d``-th mask of a batch is half
``e % 2`` (low, then high) of output ``e // 2`` of the SplitMix64 stream keyed by SplitMix64's output at counter
``(d << 40) + p`` of the seed's key. Exact resume depends on these bits, so a faster way of making them (session 42:
0-d constants, cached row offsets) must not move one."""
from __future__ import annotations

import numpy as np
import pytest

from distnn.data.batch_random import BatchShareGenerator

MASK64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


def mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def seed_key(words):
    k = 0
    for w in words:
        while True:
            k = mix((k + (w & MASK64) + GAMMA) & MASK64)
            w >>= 64
            if not w:
                break
    return k


def reference_bits(seed, rows, d, row_length):
    """32-bit words, one row per position in ``rows``, for the ``d``-th draw."""
    key = seed_key(seed)
    out = []
    for p in rows:
        stream = mix((key + ((d << 40) + int(p) + 1) * GAMMA) & MASK64)
        words = []
        for e in range(row_length):
            z = mix((stream + (e // 2 + 1) * GAMMA) & MASK64)
            words.append(z & 0xFFFFFFFF if e % 2 == 0 else z >> 32)
        out.append(words)
    return np.array(out, dtype=np.uint64)


@pytest.mark.parametrize("seed, total, rows", [
    ([0, 1, 2], 8, np.arange(8)),
    ([7, 3, 640, 1], 10, np.arange(1, 10, 2)),  # (rank 1 of 2: its positions only)
    ([2 ** 70 + 5, 0, 9], 3, np.array([2])),  # (a seed word of more than 64 bits)
])
def test_masks_and_uniforms_are_splitmix64s_bits(seed, total, rows):
    n = len(rows)
    g = BatchShareGenerator(seed, total, rows)
    # three draws in order: a mask with an odd row, a time-major mask, the slopes' uniforms
    keep = g.keep_mask((n, 7), 0.3)
    bits = reference_bits(seed, rows, 0, 7)
    assert np.array_equal(keep, bits >= round(0.3 * 2 ** 32))
    time_major = g.keep_mask((3, n, 2), 0.5, batch_dim=1)  # (made (n, 3, 2), then moved: element e = t * 2 + h)
    bits = reference_bits(seed, rows, 1, 6).reshape(n, 3, 2).transpose(1, 0, 2)
    assert np.array_equal(time_major, bits >= 1 << 31)
    uniform = g.unit_uniform((n, 5))
    assert uniform.dtype == np.float64
    assert np.array_equal(uniform, reference_bits(seed, rows, 2, 5).astype(np.float64) * 2.0 ** -32)


def test_a_wide_mask_is_splitmix64s_bits():
    """A dropout layer's mask of the digits MLP's shape (64 rows of 128): the arrays the fast path reuses."""
    rows = np.arange(64)
    g = BatchShareGenerator([0, 3, 640, 1], 64, rows)
    g.keep_mask((64, 3), 0.1)  # (a first mask: the second reuses the rows' offsets)
    keep = g.keep_mask((64, 128), 0.1)
    assert np.array_equal(keep, reference_bits([0, 3, 640, 1], rows, 1, 128) >= round(0.1 * 2 ** 32))
