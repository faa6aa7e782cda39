"""Iterable-style datasets (``torch.utils.data.IterableDataset``, ``ChainDataset``) and ``get_worker_info``.

An ``IterableDataset`` yields its samples from ``__iter__`` (a stream, a file
read line by line): the :class:`~distnn.data.DataLoader` takes them in order,
``batch_size`` at a time, with no sampler. Such a loader has a length only if
the dataset has one (``len`` is otherwise PyTorch's ``TypeError``).

distnn's loader loads in the calling process: there are no worker processes,
so ``get_worker_info()`` is always ``None`` (as PyTorch's in its main process,
``num_workers=0``), and an iterable dataset need not split its stream by worker.
"""
from __future__ import annotations


def get_worker_info():
    """``None``: distnn's DataLoader has no worker processes (``torch.utils.data.get_worker_info`` in the
    main process)."""
    return None


class IterableDataset:
    """Base class of datasets that are iterated, not indexed: subclasses define ``__iter__``.

    ``a + b`` chains two of them (``ChainDataset``). (Unlike PyTorch's, it is not a subclass of
    :class:`~distnn.data.Dataset`, which is distnn's split of arrays.)
    """

    def __iter__(self):
        raise NotImplementedError("Subclasses of IterableDataset should implement __iter__.")

    def __add__(self, other):
        return ChainDataset([self, other])


class ChainDataset(IterableDataset):
    """The iterable ``datasets`` one after another (built lazily: each is iterated when reached)."""

    def __init__(self, datasets):
        self.datasets = datasets

    def _check(self, d):
        if not isinstance(d, IterableDataset):
            raise AssertionError("ChainDataset only supports IterableDataset")
        return d

    def __iter__(self):
        for d in self.datasets:
            yield from self._check(d)

    def __len__(self) -> int:
        return sum(len(self._check(d)) for d in self.datasets)
