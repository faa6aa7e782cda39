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

Dropout masks are too many numbers for that (one per activation, every layer,
every step: ``W`` times the draws would cap the speed-up of more ranks), so
:meth:`BatchShareGenerator.keep_mask` is counter-based instead: global position
``p`` in the ``d``-th mask of a batch has its own SplitMix64 stream, keyed by the
output at counter ``(d, p)``, and element ``e`` of its row takes the stream's
``e``-th bits; computed for the rank's own rows only. Same masks on any number
of ranks, at the cost of the rank's share. A sample's bits do not depend on its
row's length either: a rank whose packed sequences are all shorter than the
global batch's runs its RNN over fewer time steps, and its time-major masks are
the first steps of the longer ones (element ``e = t * H + h``). A
time-major mask ``(T, N, ...)`` (the RNN's inter-layer dropout, a transformer
layer's without batch_first) has its samples on the second axis; those layers say
so (``batch_dim=1``), and it is made as
``(N, T, ...)`` and transposed. Callers that don't say get a guess from the
shape, which cannot tell ``(T, N, ...)`` from ``(N, T, ...)`` when ``N == T``.
"""
from __future__ import annotations

import functools
import math
import sys

import numpy as np

_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment
_COUNTER_BITS = 40  # a mask's counters (one per position: its stream's key); the draw index above them


def _mix64(z):
    """SplitMix64's output function, in place on a uint64 array (or on a Python int: returned)."""
    if isinstance(z, int):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return z ^ (z >> 31)
    t = np.right_shift(z, _SHIFTS[0])  # (0-d uint64 constants: numpy converts a scalar anew for every call)
    np.bitwise_xor(z, t, out=z)
    np.multiply(z, _MULTIPLIERS[0], out=z)
    np.right_shift(z, _SHIFTS[1], out=t)
    np.bitwise_xor(z, t, out=z)
    np.multiply(z, _MULTIPLIERS[1], out=z)
    np.right_shift(z, _SHIFTS[2], out=t)
    np.bitwise_xor(z, t, out=z)
    return z


def _uint64_constants(*values):
    made = tuple(np.array(v, dtype=np.uint64) for v in values)
    for a in made:
        a.flags.writeable = False
    return made


_SHIFTS = _uint64_constants(30, 27, 31)
_MULTIPLIERS = _uint64_constants(0xBF58476D1CE4E5B9, 0x94D049BB133111EB)


def _key(words) -> int:
    """A 64-bit key for a sequence of integers (the seed words), chained through SplitMix64."""
    k = 0
    for w in words:
        w = int(w)
        if w < 0:
            raise ValueError(f"seed words must be non-negative, got {w}")
        while True:  # any size: 64 bits at a time (no length mark: seed words here are small)
            k = _mix64((k + (w & _MASK64) + _GAMMA) & _MASK64)
            w >>= 64
            if not w:
                break
    return k


class BatchShareGenerator:
    """A ``numpy.random.Generator`` look-alike whose per-sample draws are rows ``rows`` of draws made for
    ``total`` samples (the global batch).

    ``seed``: the entropy that names the batch (a list of non-negative ints, as
    ``numpy.random.default_rng`` takes it). The numpy generator behind the
    shared draws is made on first use.
    """

    def __init__(self, seed, total: int, rows: np.ndarray):
        self.seed, self.total, self.rows = list(seed), int(total), np.asarray(rows, dtype=np.int64)
        self._generator = None
        self._masks = 0  # keep_mask draws so far: the next one's index
        self._key = None  # the seed's 64-bit key, made on first use
        self._rows_generator = None  # keep masks that are not per sample (made on first use)
        self._row_offsets = None  # the rows' counters times gamma, uint64 (made on first use)

    @property
    def generator(self) -> np.random.Generator:
        if self._generator is None:
            self._generator = np.random.default_rng(self.seed)
        return self._generator

    def keep_mask(self, shape, p: float, batch_dim: int | None = None) -> np.ndarray:
        """A bool array of ``shape``, each element True with probability ``1 - p`` (a dropout mask).

        ``batch_dim``: the axis of ``shape`` that holds the samples, when the
        caller knows it (an RNN's time-major ``(T, N, H)``: 1). Where that axis
        is the rank's row count, the mask is per sample: counter-based, the same
        bits for a sample on any number of ranks, computed for this rank's rows
        only (made batch-major and moved to ``batch_dim``). ``None`` guesses from
        the shape: batch-major if ``shape[0]`` is the row count, else time-major
        if ``shape[1]`` is; when both are (a batch as long as its sequences) the
        guess says batch-major, which for a time-major mask is wrong: callers
        whose layout is not batch-major should say. A shape whose batch axis is
        not the row count cannot be told apart by sample: drawn from a stream of
        these rows, so ranks (and micro-batches) still get different masks, but
        a resume on another number of ranks draws others.
        """
        return self._draw(shape, batch_dim, lambda s: self._per_sample(s, p),
                          lambda g, s: g.random(s, dtype=np.float32) >= p)

    def unit_uniform(self, shape, batch_dim: int | None = None) -> np.ndarray:
        """A float64 array of ``shape``, uniform on [0, 1): RReLU's random slopes, drawn as :meth:`keep_mask`
        draws its masks (per sample along ``batch_dim``, counter-based: a sample's numbers are the same on
        any number of ranks). Each is one of the 2**32 multiples of 2**-32, from the 32 bits a mask would
        compare with its threshold; it takes the next mask index, so the masks after it move on."""
        return self._draw(shape, batch_dim, lambda s: self._bits(s) * 2.0 ** -32, lambda g, s: g.random(s))

    def _draw(self, shape, batch_dim, per_sample, by_rows):
        """``per_sample(shape')`` laid out with the samples on ``batch_dim`` (see :meth:`keep_mask`), or,
        where no axis is this batch's rows, ``by_rows(generator, shape)`` from a stream of these rows."""
        shape = tuple(shape)
        n = len(self.rows)
        if batch_dim is None:  # guessed from the shape (callers that don't say)
            batch_dim = 0 if shape and shape[0] == n else 1 if len(shape) >= 2 and shape[1] == n else None
        else:
            if not -len(shape) <= batch_dim < len(shape):
                raise ValueError(f"keep_mask: batch_dim {batch_dim} is out of range for a mask of shape {shape}")
            batch_dim %= len(shape)
            if shape[batch_dim] != n:  # not this batch's rows (a tensor split some other way)
                batch_dim = None
        if batch_dim is None:
            if self._rows_generator is None:
                first = int(self.rows[0]) if len(self.rows) else self.total
                self._rows_generator = np.random.default_rng(self.seed + [1 << 32, first])
            return by_rows(self._rows_generator, shape)
        if batch_dim:  # made (N, ...) with the other axes in order, then the samples moved to their axis
            rest = shape[:batch_dim] + shape[batch_dim + 1:]
            return np.ascontiguousarray(np.moveaxis(per_sample((n,) + rest), 0, batch_dim))
        return per_sample(shape)

    def _per_sample(self, shape, p: float) -> np.ndarray:
        """The keep mask of ``shape`` whose first axis is this rank's rows (counter-based)."""
        threshold = min(round(float(p) * 2.0 ** 32), 1 << 32)  # keep iff 32 random bits >= threshold
        if threshold >= 1 << 32:
            return np.zeros(shape, dtype=bool)
        return self._bits(shape) >= np.uint32(threshold)

    def _bits(self, shape) -> np.ndarray:
        """32 random bits per element of ``shape`` for this rank's rows: element ``e`` of position ``p`` of
        this batch's ``d``-th mask is half of output ``e // 2`` of the SplitMix64 stream keyed by SplitMix64's
        output at counter ``(d, p)``. A stream per position, not counters ``p * row + e``: a row's bits are
        then the same whatever its length (an RNN's masks over a rank's shorter padded length)."""
        row = math.prod(shape[1:])
        pairs = (row + 1) // 2  # one 64-bit output gives two elements
        if self.total > 1 << _COUNTER_BITS:  # (positions 0 .. total - 1 must fit below the draw index)
            raise ValueError(f"keep_mask: {self.total} samples exceed the counter range")
        d = self._masks
        if d >= 1 << (64 - _COUNTER_BITS):  # (d << 40 would wrap around 64 bits onto an earlier mask's counters)
            raise ValueError(f"keep_mask: more than {1 << (64 - _COUNTER_BITS)} masks in one batch's forward pass")
        self._masks += 1
        if self._key is None:
            self._key = _key(self.seed)
        # SplitMix64's state after c steps is key + c * gamma: counter c = (d << 40) + p gives each position's key
        start = ((d << _COUNTER_BITS) * _GAMMA + self._key + _GAMMA) & _MASK64
        offsets = getattr(self, "_row_offsets", None)  # (p * gamma for the rows: the same for every mask)
        if offsets is None:
            offsets = self._row_offsets = self.rows.astype(np.uint64) * np.uint64(_GAMMA)
            offsets.flags.writeable = False
        keys = _mix64(offsets + np.uint64(start))
        # outputs 0 .. pairs - 1 of each stream: (key + gamma) + j gamma, the gamma added to the steps once (mod 2^64)
        z = _mix64(np.add.outer(keys, _steps_after_first(pairs)))
        bits = z.view(np.uint32)  # (rows, 2 * pairs): low then high half of each output, on any platform
        if sys.byteorder != "little":
            bits = bits.reshape(len(self.rows), pairs, 2)[:, :, ::-1].reshape(len(self.rows), 2 * pairs)
        return (bits if row == 2 * pairs else bits[:, :row]).reshape(shape)

    def draw_state(self):
        """Where this generator's draws stand: the mask counter and the states of the numpy generators behind
        the shared and the by-rows draws (None where not made yet). :meth:`set_draw_state` puts it back, so the
        draws that followed are drawn again alike (:func:`distnn.random.draw_point`); makes nothing."""
        return (self._masks, None if self._generator is None else self._generator.bit_generator.state,
                None if self._rows_generator is None else self._rows_generator.bit_generator.state)

    def set_draw_state(self, state) -> None:
        """Put back a :meth:`draw_state` (a generator not made then is unmade again: made later, it starts over)."""
        self._masks, shared, by_rows = state
        for name, saved in (("_generator", shared), ("_rows_generator", by_rows)):
            if saved is not None and getattr(self, name) is None:  # (unmade since: made again to take the state)
                setattr(self, name, np.random.default_rng(0))
            if saved is None:
                setattr(self, name, None)
            else:
                getattr(self, name).bit_generator.state = saved

    @staticmethod
    def continues_on_any_world(draw_states) -> bool:
        """Whether a run on another number of ranks continues exactly the draws of one whose ranks' generators
        stood at ``draw_states`` (each saved rank's :meth:`draw_state`, as a checkpoint holds them).

        Yes when they agree on what is the same on every rank and hold nothing per rank: the mask counter
        (the masks of a sample are keyed by (counter, position in the global batch), whichever rank draws
        them), the shared draws' generator (every rank draws the whole global batch from it) and no
        by-rows generator (a stream of one rank's rows: made once a mask's batch axis was not the rows,
        a short last batch, its draws depend on how the batch was split). A resumed rank then takes any
        saved rank's state (:func:`distnn.train.callbacks.resume.restore_trainer`: its own, or rank 0's)
        and draws what the uninterrupted run draws for the same samples.
        """
        states = [tuple(s) for s in draw_states]
        return bool(states) and all(s[0] == states[0][0] and s[1] == states[0][1] and s[2] is None
                                    for s in states)

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

    def poisson(self, lam=1.0, size=None):
        return self._by_sample("poisson", size, lam)

    def binomial(self, n, p, size=None):
        return self._by_sample("binomial", size, n, p)

    def _by_sample(self, method, size, *params):
        """A draw with a parameter per element (``distnn.poisson``'s rates): where the parameters' first axis
        is the rank's rows, each sample draws from a stream of its own, keyed by a per-sample integer (itself
        shared out), so its numbers are those it gets in the whole batch. Other draws: the generator's."""
        shape = np.broadcast_shapes(*(np.shape(v) for v in params))
        n = len(self.rows)
        if size is not None or not shape or shape[0] != n or n == 0:
            return getattr(self.generator, method)(*params, size=size)
        keys = self.integers(0, 1 << 63, size=n)
        params = [np.broadcast_to(v, shape) for v in params]
        return np.stack([getattr(np.random.default_rng(int(key)), method)(*(v[i] for v in params))
                         for i, key in enumerate(keys)])

    def __getattr__(self, name):  # any other method: as the generator draws it (the same on every rank)
        if name.startswith("_"):  # (not yet set: copying, unpickling)
            raise AttributeError(name)
        return getattr(self.generator, name)


@functools.lru_cache(maxsize=64)
def _steps(n: int) -> np.ndarray:
    """``j * gamma`` for j < n: the state offsets of consecutive SplitMix64 counters (read-only)."""
    steps = np.arange(n, dtype=np.uint64) * np.uint64(_GAMMA)
    steps.flags.writeable = False
    return steps


@functools.lru_cache(maxsize=64)
def _steps_after_first(n: int) -> np.ndarray:
    """``(j + 1) * gamma`` for j < n (mod 2**64): a stream's state offsets from its key to outputs 0 .. n - 1
    (read-only)."""
    steps = _steps(n) + np.uint64(_GAMMA)
    steps.flags.writeable = False
    return steps
