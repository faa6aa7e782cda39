"""DataLoader: numpy mini-batches over a sampler, reproducible and resumable.

The sampler decides *which* samples this rank sees and in what order (a
``DistributedSampler`` shard in a multi-rank job, ``RandomSampler`` or
``SequentialSampler`` for one process); the loader cuts that order into
batches, gathers ``(x, y)`` and applies the per-batch ``transform``.

Sampler protocol (duck-typed, so any sampler works): ``__iter__`` yields
indices, ``__len__`` counts them, ``set_epoch(epoch)`` reseeds the shuffle.
Optional padding info, for samplers that repeat samples so that every rank
gets the same number: ``valid_mask()`` returning a bool array aligned with the
iteration order, or an int attribute ``num_valid`` (the first ``num_valid``
indices are real, the rest padding). The loader turns it into a per-batch
``mask`` (``with_mask=True``), so evaluation can count each sample once.

Randomness: with a ``DistributedSampler`` the transform of a batch draws
from a :class:`~distnn.data.batch_random.BatchShareGenerator` seeded by
``[seed, e, p]`` (``p``: the global batch's first position in epoch ``e``'s
order): its per-sample draws are the rank's rows of draws for the whole
global batch, so every sample is augmented alike on any number of ranks (and
a run resumed on another number continues exactly). With another sampler,
batch ``b`` on rank ``r`` draws from ``numpy.random.default_rng([seed, r, e, b])``.
:meth:`DataLoader.sample_generator` hands out further such per-sample streams
(the trainer's dropout masks). Nothing else is random, so
the loader's whole state is (epoch, next batch index): ``state_dict()`` /
``load_state_dict()`` or ``set_epoch(epoch, start_batch=k)`` resume mid-epoch
and produce exactly the batches the uninterrupted run would have.
"""
from __future__ import annotations

import math

import numpy as np

from .batch_random import BatchShareGenerator
from .errors import DataError


class SequentialSampler:
    """0, 1, ..., n-1 every epoch."""

    def __init__(self, n: int):
        self.n = int(n)

    def set_epoch(self, epoch: int) -> None:
        pass

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self) -> int:
        return self.n


class RandomSampler:
    """A fresh permutation of 0..n-1 per epoch, from ``default_rng([seed, epoch])``.

    Call ``set_epoch`` each epoch (the loader does it for you); the same seed and
    epoch always give the same order.
    """

    def __init__(self, n: int, seed: int = 0):
        self.n, self.seed, self.epoch = int(n), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        return iter(np.random.default_rng([self.seed, self.epoch]).permutation(self.n).tolist())

    def __len__(self) -> int:
        return self.n


def _arrays(dataset):
    if isinstance(dataset, (tuple, list)) and len(dataset) == 2:
        x, y = dataset
    elif hasattr(dataset, "x") and hasattr(dataset, "y"):
        x, y = dataset.x, dataset.y
    else:
        raise DataError(f"DataLoader needs a Dataset or an (x, y) pair, got {type(dataset).__name__}")
    if len(x) != len(y):
        raise DataError(f"DataLoader: {len(x)} inputs but {len(y)} labels")
    return x, y


class DataLoader:
    """Iterates ``(x_batch, y_batch)`` numpy arrays (plus ``mask`` with ``with_mask``).

    Args:
        dataset: a ``Dataset`` or an ``(x, y)`` pair of arrays.
        batch_size: samples per batch on this rank (the per-rank share of the global batch).
        shuffle: with no ``sampler``, use a ``RandomSampler(seed)`` instead of sequential order.
        sampler: any object following the sampler protocol (module docstring).
        drop_last: drop this rank's last incomplete batch.
        transform: ``transform(x_batch, rng) -> x_batch``, applied per batch.
        seed: base seed of the per-batch transform generators (and of the local shuffle).
        generator: alternatively a ``numpy.random.Generator``; one base seed is drawn from it here.
        rank: rank used in the per-batch seed (default: ``sampler.rank`` or 0), so ranks draw differently.
        with_mask: also yield a bool mask of real (non-padding) samples per batch.
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, sampler=None, drop_last: bool = False,
                 transform=None, seed: int | None = None, generator: np.random.Generator | None = None,
                 rank: int | None = None, with_mask: bool = False):
        self.x, self.y = _arrays(dataset)
        if int(batch_size) != batch_size or batch_size < 1:
            raise DataError(f"batch_size must be a positive integer, got {batch_size}")
        if sampler is not None and shuffle:
            raise DataError("DataLoader: pass either sampler or shuffle=True, not both (the sampler shuffles)")
        if seed is None:
            seed = int(generator.integers(0, 2**63 - 1)) if generator is not None else 0
        self.seed = int(seed)
        self._own_sampler = sampler is None  # (then each pass is the next epoch; a given sampler decides)
        if sampler is None:
            sampler = RandomSampler(len(self.x), self.seed) if shuffle else SequentialSampler(len(self.x))
        self.sampler = sampler
        self.batch_size, self.drop_last, self.transform = int(batch_size), bool(drop_last), transform
        self.rank = int(rank if rank is not None else getattr(sampler, "rank", 0) or 0)
        self.with_mask = with_mask
        self.epoch, self.batch_index, self._start = 0, 0, 0
        self._positioned = False  # set_epoch/load_state_dict chose where the next pass starts
        self._passes = 0  # passes begun by iterating the loader itself

    # ------------------------------------------------------------ epochs and resume
    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch (reseeds the sampler) and where the next iteration starts."""
        if start_batch < 0 or start_batch > len(self):
            raise DataError(f"start_batch {start_batch} is outside 0..{len(self)} for this loader")
        self.epoch, self._start, self.batch_index = int(epoch), int(start_batch), int(start_batch)
        self._positioned = True

    def state_dict(self) -> dict:
        """Where the loader is: the epoch and the index of the next batch it will yield."""
        return {"epoch": self.epoch, "batch": self.batch_index, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict`'s position: the next pass yields exactly the batches the
        uninterrupted loader would have. A state saved after an epoch's last batch (where a
        checkpoint usually is) continues with the next epoch, not with that epoch's empty rest."""
        self.seed = int(state.get("seed", self.seed))
        epoch, batch = int(state["epoch"]), int(state["batch"])
        if batch >= len(self) and batch > 0:
            epoch, batch = epoch + 1, 0
        self.set_epoch(epoch, batch)

    # ------------------------------------------------------------ iteration
    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _epoch_indices(self):
        # Only when the sampler is on another epoch: reseeding the same epoch would also undo a
        # DistributedSampler's set_start.
        if hasattr(self.sampler, "set_epoch") and getattr(self.sampler, "epoch", None) != self.epoch:
            self.sampler.set_epoch(self.epoch)
        if hasattr(self.sampler, "indices_and_mask"):  # DistributedSampler: both arrays in one pass
            indices, valid = self.sampler.indices_and_mask()
            indices, valid = np.asarray(indices, dtype=np.int64), np.asarray(valid, dtype=bool)
        else:
            indices, valid = np.fromiter((int(i) for i in self.sampler), dtype=np.int64), None
        if valid is None and hasattr(self.sampler, "valid_mask"):
            # A method here, a property on distnn.distributed.DistributedSampler: accept both.
            mask = self.sampler.valid_mask
            valid = np.asarray(mask() if callable(mask) else mask, dtype=bool)
        elif valid is None and getattr(self.sampler, "num_valid", None) is not None:
            valid = np.arange(len(indices)) < int(self.sampler.num_valid)
        elif valid is None:
            valid = np.ones(len(indices), dtype=bool)
        if len(valid) != len(indices):
            raise DataError(f"sampler valid mask has {len(valid)} entries for {len(indices)} indices")
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self.x)):
            raise DataError(f"sampler yielded index {int(indices.max())} for a dataset of {len(self.x)} samples")
        return indices, valid

    def batches(self, epoch: int | None = None, start_batch: int | None = None, with_mask: bool | None = None):
        """Generator over one epoch's batches, from ``start_batch`` on."""
        epoch = self.epoch if epoch is None else int(epoch)
        start = self._start if start_batch is None else int(start_batch)
        with_mask = self.with_mask if with_mask is None else with_mask
        self.epoch, self._start = epoch, 0
        indices, valid = self._epoch_indices()
        for b in range(start, len(self)):
            sel = indices[b * self.batch_size:(b + 1) * self.batch_size]
            xb, yb = self.x[sel], self.y[sel]
            if self.transform is not None:
                # Deterministic transforms (standardization) need no generator: skip making one per batch.
                rng = None if getattr(self.transform, "deterministic", False) else \
                    self._batch_generator(epoch, b, len(sel))
                xb = self.transform(xb, rng)
            self.batch_index = b + 1
            if with_mask:
                yield xb, yb, valid[b * self.batch_size:(b + 1) * self.batch_size]
            else:
                yield xb, yb

    def _batch_generator(self, epoch: int, b: int, n: int):
        """The generator batch ``b`` of ``epoch`` (``n`` samples here) is transformed with (see the module)."""
        if getattr(self.sampler, "num_replicas", None) is None:
            return np.random.default_rng([self.seed, self.rank, epoch, b])
        return self.sample_generator(epoch, b, n)

    def sample_generator(self, epoch: int, b: int, n: int, stream: int = 0, rows=slice(None)):
        """A :class:`~distnn.data.batch_random.BatchShareGenerator` for per-sample draws of batch ``b`` of
        ``epoch`` (``n`` samples on this rank), restricted to the batch's rows ``rows`` (a micro-batch).

        Its draws belong to the samples' positions in the global batch, not to the rank: the same on any
        number of ranks. ``stream`` 0 is the transform's; other streams are independent of it (the
        trainer draws dropout masks from stream 1). Every call starts the stream afresh, so two
        micro-batches of one batch draw the same global values and each takes its own rows of them.
        """
        # ranks take the global order's positions round-robin: this batch holds positions rank, rank + W, ...
        # of a global batch of batch_size * W positions starting at `first`
        world = int(getattr(self.sampler, "num_replicas", None) or 1)
        rank = int(getattr(self.sampler, "rank", self.rank)) if world > 1 else 0
        first = int(getattr(self.sampler, "start", 0)) + b * self.batch_size * world
        seed = [self.seed, epoch, first] + ([stream] if stream else [])
        return BatchShareGenerator(seed, self.batch_size * world,
                                   np.arange(rank, n * world, world)[rows])

    def __iter__(self):
        """One epoch's batches, as PyTorch's loader: with its own sampler (``shuffle``) each new pass is
        the next epoch (a fresh order and augmentation); with a sampler given, the sampler's epoch
        decides (``sampler.set_epoch(e)`` before a pass, PyTorch's pattern with a ``DistributedSampler``;
        passes without it repeat the order). ``set_epoch``/``load_state_dict`` place the next pass exactly."""
        if not self._positioned:
            if not self._own_sampler:
                epoch = getattr(self.sampler, "epoch", None)
                if epoch is not None and int(epoch) != self.epoch:
                    self.epoch, self._start = int(epoch), 0
            elif self._passes:
                self.epoch, self._start = self.epoch + 1, 0
        self._positioned = False
        self._passes += 1
        return self.batches()

    def __repr__(self) -> str:
        return (f"DataLoader({len(self.x)} samples, batch_size={self.batch_size}, batches={len(self)}, "
                f"sampler={type(self.sampler).__name__}, transform={self.transform!r})")
