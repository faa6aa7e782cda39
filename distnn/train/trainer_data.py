"""What the :class:`~distnn.train.Trainer` trains and evaluates on: arrays, or a map-style dataset.

``train_data`` / ``val_data`` may be

* a :class:`distnn.data.Dataset` (arrays ``x``, ``y``): batches are gathered by fancy indexing (the
  fast path);
* any map-style dataset, PyTorch's protocol: ``__len__`` and ``__getitem__(i) -> (x, y)``
  (:class:`~distnn.data.TensorDataset`, ``Subset``, ``ConcatDataset``, a PyTorch dataset of CPU tensors, a
  class of your own whose ``__getitem__`` loads and transforms a sample). Samples are fetched one by one
  and stacked into numpy arrays (``collate_xy``); ``x`` and ``y`` may be distnn Tensors, numpy arrays
  or numbers.

Either way the Trainer shards by *index* with its own
:class:`~distnn.distributed.DistributedSampler`, as PyTorch Lightning replaces a loader's sampler: the
same global batches in the same order as arrays of the same samples (bit for bit the same training),
N ranks equal to one process, and an exact mid-epoch resume (the order is a function of seed and epoch,
a sample a function of its index). So ``__getitem__`` must be deterministic per index for those to
hold: random augmentation belongs in the Trainer's ``transform=`` (its draws belong to a sample's
place in the global batch, on any number of ranks), not in a global random generator inside
``__getitem__``.

Refused, by name: an ``IterableDataset`` (a stream has no indices, so it can be neither sharded by
the Trainer's sampler nor resumed mid-epoch exactly: wrap it in a map-style dataset), a ``DataLoader``
(the Trainer builds its own loader: pass its dataset; ``batch_size`` is the Trainer's global batch),
an object without ``__len__``/``__getitem__``, samples that are not ``(x, y)`` pairs, and a bare
``(x, y)`` tuple of arrays (whose length would be 2: wrap it, ``TensorDataset(x, y)``).
"""
from __future__ import annotations

import numpy as np

from distnn.autograd import Tensor
from distnn.backend import to_numpy
from distnn.data.iterable import IterableDataset
from distnn.data.loader import DataLoader, _arrays


def array_pair(data):
    """``(x, y)`` arrays of a ``Dataset`` (the fast path), or None for a map-style dataset."""
    return None if isinstance(data, (tuple, list)) else _arrays(data)


def _as_array(value) -> np.ndarray:
    """A sample's ``x`` or ``y`` (a distnn Tensor, a numpy array, a number, a CPU PyTorch tensor) as numpy."""
    return to_numpy(value) if isinstance(value, Tensor) else np.asarray(value)


def _check_sample(sample, what: str):
    if not isinstance(sample, (tuple, list)) or len(sample) != 2:
        kind = f"a {type(sample).__name__} of {len(sample)}" if isinstance(sample, (tuple, list)) else \
            f"a {type(sample).__name__}"
        raise TypeError(f"{what}: the Trainer needs (x, y) samples, but sample 0 is {kind}; return (input, "
                        "label) from __getitem__ (TensorDataset(x, y) with two tensors)")


def check_dataset(data, what: str):
    """``(x, y)`` arrays for the fast path, or None for a usable map-style dataset; refuses others by name."""
    if isinstance(data, DataLoader):
        raise TypeError(f"{what}: got a DataLoader; the Trainer makes its own loader (its batch_size is the "
                        "global batch, sharded over ranks): pass the loader's dataset instead")
    if isinstance(data, IterableDataset):
        raise TypeError(f"{what}: {type(data).__name__} is an IterableDataset; the Trainer shards and resumes by "
                        "index, which a stream has not: use a map-style dataset (__len__ and __getitem__)")
    if isinstance(data, (tuple, list)) and _arrays(data) is not None:
        raise TypeError(f"{what}: got an (x, y) {type(data).__name__} of arrays, which is a dataset of 2 samples; "
                        "pass TensorDataset(x, y) or a distnn.data.Dataset")
    pair = array_pair(data)
    if pair is not None:
        _check_labels(pair[1], what)
        return pair
    if not (hasattr(data, "__getitem__") and hasattr(data, "__len__")) or isinstance(data, (str, bytes)):
        raise TypeError(f"{what}: expected a distnn.data.Dataset, an (x, y) pair of arrays or a map-style dataset "
                        f"(__len__ and __getitem__), got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{what}: {type(data).__name__} is empty")
    _check_sample(data[0], f"{what} ({type(data).__name__})")
    _check_labels(_as_array(data[0][1]), f"{what} ({type(data).__name__}, sample 0)")
    return None


def _check_labels(y, what: str) -> None:
    """The Trainer's loss is cross-entropy over class indices (its accuracy compares them with the argmax,
    padding marks them ignore_index): one-hot or probability rows would reach the loss and then fail
    inside the accuracy, a float label at the first step."""
    if np.asarray(y).dtype.kind not in "iu":
        raise TypeError(f"{what}: the Trainer trains classifiers on integer class labels (y), got "
                        f"{np.asarray(y).dtype} labels of shape {tuple(np.shape(y))}; one-hot or probability "
                        "targets: pass their argmax along the class axis")


def collate_xy(samples):
    """``(x, y)`` samples -> ``(x_batch, y_batch)`` numpy arrays (the arrays the fast path gathers)."""
    _check_sample(samples[0], "collate_xy")
    xs, ys = zip(*samples)
    return np.stack([_as_array(x) for x in xs]), np.stack([_as_array(y) for y in ys])


def take(data, idx):
    """``(x, y)`` arrays of the samples ``idx`` of ``data`` (arrays, or a map-style dataset)."""
    pair = array_pair(data)
    if pair is not None:
        return pair[0][idx], pair[1][idx]
    if len(idx) == 0:  # nothing to fetch: empty arrays shaped like sample 0
        x, y = collate_xy([data[0]])
        return x[:0], y[:0]
    return collate_xy([data[int(i)] for i in idx])


def input_dtype(data) -> np.dtype:
    """The dtype of the inputs ``x`` (of sample 0 for a map-style dataset)."""
    pair = array_pair(data)
    return pair[0].dtype if pair is not None else _as_array(data[0][0]).dtype


def train_batches(loader, transform, epoch: int, start: int, fast: bool):
    """``(x, y, valid)`` per batch of ``epoch`` from batch ``start`` on, transformed as the fast path does.

    The fast path's loader applies ``transform`` itself; for a map-style dataset (``collate_xy``) it is
    applied here with the generator the fast path uses (``loader.sample_generator``: the draws of the
    samples' places in the global batch), so both train alike.
    """
    if fast:
        return loader.batches(epoch, start)  # (the loader's own generator: no extra generator frame a step)
    return _transformed_batches(loader, transform, epoch, start)


def _transformed_batches(loader, transform, epoch: int, start: int):
    """``train_batches`` of a map-style dataset: the collated batches, transformed here."""
    for (xb, yb), valid in loader.batches(epoch, start):
        if transform is not None:
            rng = None if getattr(transform, "deterministic", False) else \
                loader.sample_generator(epoch, loader.batch_index - 1, len(yb))
            xb = transform(xb, rng)
        yield xb, yb, valid


def check_batch_sizes(B: int, W: int, A: int, epochs: int, n: int | None = None, drop_last: bool = False) -> None:
    """Raise ValueError when global batch ``B`` does not split over ``W`` ranks into per-rank batches of
    ``A`` micro-batches, or (``n`` given) over ``n`` training samples. ``n`` None: the checks that need no
    data (``train --check`` on a host without the job's data files)."""
    if B < 1 or epochs < 0 or A < 1:
        raise ValueError(f"batch_size and accumulation_steps must be >= 1 (got {B}, {A}); "
                         f"epochs >= 0 (got {epochs})")
    if n is not None and n < W:
        raise ValueError(f"more ranks ({W}) than training samples ({n}): every rank needs at least one sample")
    if B % W:
        raise ValueError(f"data.batch_size {B} is the global batch and must be divisible by the number of "
                         f"ranks {W}")
    if (B // W) % A:
        raise ValueError(f"per-rank batch {B // W} (global {B} / {W} ranks) must be divisible by "
                         f"train.grad_accumulation (accumulation_steps) {A}")
    # Without drop_last a global batch larger than the data is one short step per epoch (as a
    # PyTorch DataLoader gives one short batch); with it, no step would be left.
    if n is not None and drop_last and B > n:
        raise ValueError(f"data.batch_size {B} is larger than the {n} training samples: with data.drop_last = "
                         f"true no complete batch is left; lower data.batch_size to at most {n - n % W} "
                         "or set data.drop_last = false")
