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

PyTorch's datasets and samplers (``torch.utils.data``'s names, in
``distnn.data``) work as in PyTorch: any map-style dataset (``__getitem__`` and
``__len__``: ``TensorDataset``, ``Subset``, ``ConcatDataset``, a list) is
fetched sample by sample and each batch is ``collate_fn(samples)``
(``default_collate``: distnn Tensors); so is a ``Dataset`` or ``(x, y)`` pair
given a ``collate_fn``. Without one, those keep the fast path above (numpy
arrays gathered by fancy indexing, ``transform``). ``batch_sampler`` yields whole
batches of indices; an ``IterableDataset`` is read in order, ``batch_size`` at a
time. ``batch_size=None`` turns batching off, as PyTorch's: each sample as it is, through
``collate_fn`` (default ``default_convert``: numpy arrays to Tensors). There are no worker processes
(``num_workers`` must be 0); PyTorch's other loader options are accepted (``loader_options.py`` says
which have no effect here and which are refused).
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .batch_random import BatchShareGenerator
from .collate import default_collate, default_convert
from .dataset import Dataset
from .errors import DataError
from .iterable import IterableDataset
from .loader_options import check_options, check_worker_options
from .samplers import RandomSampler, SequentialSampler, _EpochDraws


def _arrays(dataset):
    """(x, y) of a ``Dataset``/``(x, y)`` pair (the fast path), or None for any other dataset."""
    if isinstance(dataset, (tuple, list)) and len(dataset) == 2 and all(
            getattr(a, "ndim", 0) >= 1 for a in dataset):  # (two arrays; a list of two samples is a dataset)
        x, y = dataset
    elif hasattr(dataset, "x") and hasattr(dataset, "y") and \
            getattr(type(dataset), "__getitem__", Dataset.__getitem__) is Dataset.__getitem__:
        # (a dataset with its own __getitem__ is fetched through it, as PyTorch's, whatever its attributes)
        x, y = dataset.x, dataset.y
    else:
        return None
    if len(x) != len(y):
        raise DataError(f"DataLoader: {len(x)} inputs but {len(y)} labels")
    return x, y


class DataLoader:
    """Iterates ``(x_batch, y_batch)`` numpy arrays (plus ``mask`` with ``with_mask``) over a ``Dataset``
    or an ``(x, y)`` pair; over other datasets (or with ``collate_fn``), ``collate_fn(samples)`` per batch.

    Args:
        dataset: a ``Dataset``, an ``(x, y)`` pair of arrays, any map-style dataset, or an ``IterableDataset``.
        batch_size: samples per batch on this rank (the per-rank share of the global batch); None: no
            batching, each sample through ``collate_fn`` (default ``default_convert``), as PyTorch's.
        shuffle: with no ``sampler``, use a ``RandomSampler`` (seeded with ``seed``) instead of sequential order.
        sampler: any object following the sampler protocol (module docstring).
        batch_sampler: yields lists of indices, one per batch (excludes batch_size, shuffle, sampler, drop_last).
        num_workers: must be 0 (no worker processes).
        collate_fn: ``collate_fn(list of samples) -> batch`` (default for generic datasets: ``default_collate``).
        pin_memory, pin_memory_device, timeout, worker_init_fn, in_order: accepted, no effect (no pinned memory,
            no worker processes: ``loader_options.py``).
        drop_last: drop this rank's last incomplete batch.
        multiprocessing_context, prefetch_factor, persistent_workers: PyTorch's worker options, refused as
            PyTorch refuses them with ``num_workers=0``.
        generator: a ``numpy.random.Generator``; with no ``seed``, one base seed is drawn from it here.
        transform: ``transform(x_batch, rng) -> x_batch``, applied per batch (``Dataset``/``(x, y)`` only).
        seed: base seed of the per-batch transform generators (and of the local shuffle).
        rank: rank used in the per-batch seed (default: ``sampler.rank`` or 0), so ranks draw differently.
        with_mask: also yield a bool mask of real (non-padding) samples per batch.
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn=None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn=None, multiprocessing_context=None,
                 generator: np.random.Generator | None = None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = "", in_order: bool = True,
                 transform=None, seed: int | None = None, rank: int | None = None, with_mask: bool = False):
        check_worker_options(num_workers, timeout, prefetch_factor, persistent_workers, multiprocessing_context)
        check_options(dataset, batch_size, shuffle, sampler, batch_sampler, drop_last)
        self.dataset, self.num_workers = dataset, 0
        # PyTorch's options with nothing to act on here (see loader_options.py), kept as its loader keeps them
        self.pin_memory, self.pin_memory_device, self.in_order = bool(pin_memory), pin_memory_device, in_order
        self.timeout, self.worker_init_fn, self.multiprocessing_context = timeout, worker_init_fn, None
        self.prefetch_factor, self.persistent_workers = None, False
        # batch_size=None (without a batch_sampler): no batching, each sample on its own (PyTorch's auto-collation off)
        self._batching = batch_size is not None or batch_sampler is not None
        self._iterable = isinstance(dataset, IterableDataset)
        arrays = None if self._iterable else _arrays(dataset)
        if arrays is None and not self._iterable and not (hasattr(dataset, "__getitem__")
                                                            and hasattr(dataset, "__len__")):
            raise DataError(f"DataLoader needs a Dataset, an (x, y) pair, a map-style dataset (__getitem__ and "
                            f"__len__) or an IterableDataset, got {type(dataset).__name__}")
        self.x, self.y = arrays if arrays is not None else (None, None)
        # the fast path: numpy arrays gathered per batch; otherwise samples fetched one by one and collated
        self._fast = arrays is not None and collate_fn is None and self._batching
        if transform is not None and not self._fast:
            raise DataError("DataLoader: transform= applies to batches of a Dataset or an (x, y) pair without "
                            "collate_fn (and batch_size not None); transform the samples in the dataset or in "
                            "collate_fn instead")
        if collate_fn is None:
            collate_fn = default_collate if self._batching else default_convert
        self.collate_fn = collate_fn
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(f"DataLoader: generator must be a numpy.random.Generator (distnn draws with numpy), "
                            f"got {type(generator).__name__}")
        if seed is None:
            seed = int(generator.integers(0, 2**63 - 1)) if generator is not None else 0
        self.seed, self.generator = int(seed), generator
        self.batch_sampler = batch_sampler
        self._own_sampler = sampler is None and batch_sampler is None  # (then each pass is the next epoch)
        if batch_sampler is not None:
            sampler = getattr(batch_sampler, "sampler", None)  # (its epoch is the loader's, as a sampler's)
        elif sampler is None and not self._iterable:
            n = self._length()
            sampler = RandomSampler(n, seed=self.seed) if shuffle else SequentialSampler(n)
        self.sampler = sampler
        self.batch_size = None if batch_sampler is not None or batch_size is None else int(batch_size)
        self.drop_last, self.transform = bool(drop_last), transform
        self.rank = int(rank if rank is not None else getattr(sampler, "rank", 0) or 0)
        self.with_mask = with_mask
        self.epoch, self.batch_index, self._start = 0, 0, 0
        self._positioned = False  # set_epoch/load_state_dict chose where the next pass starts
        self._passes = 0  # passes begun by iterating the loader itself

    def _length(self) -> int:
        """The number of samples of a map-style dataset."""
        return len(self.x) if self.x is not None else len(self.dataset)

    # ------------------------------------------------------------ epochs and resume
    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch (reseeds the sampler) and where the next iteration starts."""
        n = self._count()  # (None: an IterableDataset without a length)
        if start_batch < 0 or (n is not None and start_batch > n):
            raise DataError(f"start_batch {start_batch} is outside 0..{n} for this loader")
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
        n = self._count()
        if n is not None and batch >= n and batch > 0:
            epoch, batch = epoch + 1, 0
        self.set_epoch(epoch, batch)

    # ------------------------------------------------------------ iteration
    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.dataset) if self._iterable else len(self.sampler)  # (an IterableDataset: its len or TypeError)
        if not self._batching:
            return n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _sync_sampler_epoch(self):
        # Only when the sampler is on another epoch: reseeding the same epoch would also undo a
        # DistributedSampler's set_start.
        if hasattr(self.sampler, "set_epoch") and getattr(self.sampler, "epoch", None) != self.epoch:
            self.sampler.set_epoch(self.epoch)

    def _epoch_indices(self):
        self._sync_sampler_epoch()
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
        if self._fast and len(indices) and (indices.min() < 0 or indices.max() >= len(self.x)):
            raise DataError(f"sampler yielded index {int(indices.max())} for a dataset of {len(self.x)} samples")
        return indices, valid

    def _epoch_selections(self, start: int):
        """(b, indices of batch b, its valid mask) for this epoch's batches from ``start`` on."""
        if self.batch_sampler is not None:
            self._sync_sampler_epoch()
            for b, sel in enumerate(itertools.islice(self.batch_sampler, start, None), start):
                yield b, list(sel), np.ones(len(sel), dtype=bool)
            return
        indices, valid = self._epoch_indices()
        for b in range(start, len(self)):
            part = slice(b * self.batch_size, (b + 1) * self.batch_size)
            yield b, indices[part], valid[part]

    def _fetch(self, sel) -> list:
        """The samples at ``sel`` (a map-style dataset's ``__getitems__`` where it has one, as PyTorch's)."""
        sel = [int(i) for i in sel]
        if isinstance(self.dataset, (tuple, list)) and self.x is not None:  # an (x, y) pair with a collate_fn
            return [(self.x[i], self.y[i]) for i in sel]
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__(sel)
        return [self.dataset[i] for i in sel]

    def _iterable_batches(self, start: int):
        """(b, samples of batch b) of an IterableDataset, read in order, from batch ``start`` on."""
        stream = iter(self.dataset)
        for b in itertools.count():
            samples = list(itertools.islice(stream, self.batch_size))
            if not samples or (self.drop_last and len(samples) < self.batch_size):
                return
            if b >= start:
                yield b, samples

    def batches(self, epoch: int | None = None, start_batch: int | None = None, with_mask: bool | None = None):
        """Generator over one epoch's batches, from ``start_batch`` on."""
        epoch = self.epoch if epoch is None else int(epoch)
        start = self._start if start_batch is None else int(start_batch)
        with_mask = self.with_mask if with_mask is None else with_mask
        self.epoch, self._start = epoch, 0
        if not self._batching:
            yield from self._samples(start, with_mask)
            return
        if self._iterable:
            for b, samples in self._iterable_batches(start):
                self.batch_index = b + 1
                batch = self.collate_fn(samples)
                yield (batch, np.ones(len(samples), dtype=bool)) if with_mask else batch
            return
        for b, sel, valid in self._epoch_selections(start):
            if not self._fast:
                batch = self.collate_fn(self._fetch(sel))
                self.batch_index = b + 1
                yield (batch, valid) if with_mask else batch
                continue
            xb, yb = self.x[sel], self.y[sel]
            if self.transform is not None:
                # Deterministic transforms (standardization) need no generator: skip making one per batch.
                rng = None if getattr(self.transform, "deterministic", False) else \
                    self._batch_generator(epoch, b, len(sel))
                xb = self.transform(xb, rng)
            self.batch_index = b + 1
            if with_mask:
                yield xb, yb, valid
            else:
                yield xb, yb

    def _samples(self, start: int, with_mask: bool):
        """Batching off (``batch_size=None``): each sample from ``start`` on, through ``collate_fn``."""
        if self._iterable:
            numbered = enumerate(itertools.islice(iter(self.dataset), start, None), start)
            numbered = ((i, sample, True) for i, sample in numbered)
        else:
            indices, valid = self._epoch_indices()
            numbered = ((i, self._fetch([indices[i]])[0], bool(valid[i])) for i in range(start, len(indices)))
        for i, sample, real in numbered:
            self.batch_index = i + 1
            sample = self.collate_fn(sample)
            yield (sample, real) if with_mask else sample

    def _batch_generator(self, epoch: int, b: int, n: int):
        """The generator batch ``b`` of ``epoch`` (``n`` samples here) is transformed with (see the module)."""
        if getattr(self.sampler, "num_replicas", None) is None or self.batch_sampler is not None:
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
        return BatchShareGenerator(seed, self.batch_size * world, self._positions(rank, n, world)[rows])

    def _positions(self, rank: int, n: int, world: int) -> np.ndarray:
        """``rank, rank + world, ...``: the global-batch positions of a rank's ``n`` rows, read-only. Kept for
        the next batch (the trainer asks for them every step, nearly always for the same ``n``)."""
        key = (rank, n, world)
        cached = getattr(self, "_positions_cache", None)
        if cached is None or cached[0] != key:
            positions = np.arange(rank, n * world, world)
            positions.flags.writeable = False  # (shared by the batches' generators)
            self._positions_cache = cached = (key, positions)
        return cached[1]

    def __iter__(self):
        """One epoch's batches, as PyTorch's loader: with its own sampler (``shuffle``) each new pass is
        the next epoch (a fresh order and augmentation); with a sampler given, the sampler's epoch
        decides (``sampler.set_epoch(e)`` before a pass, PyTorch's pattern with a ``DistributedSampler``;
        passes without it repeat the order). ``set_epoch``/``load_state_dict`` place the next pass exactly."""
        if not self._positioned:
            epoch = getattr(self.sampler, "epoch", None)
            if not self._own_sampler and epoch is not None and int(epoch) != self.epoch:  # set by the caller
                self.epoch, self._start = int(epoch), 0
            elif self._passes and (self._own_sampler or isinstance(self.sampler, _EpochDraws)):
                # distnn's random samplers draw per epoch: a new pass is a new epoch (a new order, as
                # PyTorch's RandomSampler draws anew each pass)
                self.epoch, self._start = self.epoch + 1, 0
        self._positioned = False
        self._passes += 1
        return self.batches()

    def _count(self) -> int | None:
        """len(self), or None where the dataset (an IterableDataset) has no length."""
        try:
            return len(self)
        except TypeError:
            if self._iterable:
                return None
            raise

    def __repr__(self) -> str:
        try:
            samples = f"{self._length()} samples"
        except TypeError:  # an IterableDataset without a length
            samples = type(self.dataset).__name__
        return (f"DataLoader({samples}, batch_size={self.batch_size}, batches={self._count()}, "
                f"sampler={type(self.sampler).__name__}, transform={self.transform!r})")
