"""Map-style datasets built from tensors or other datasets (``torch.utils.data``'s).

``TensorDataset(*tensors)``: sample ``i`` is ``(t[i] for t in tensors)``.
``StackDataset(*datasets)`` / ``StackDataset(**datasets)``: sample ``i`` is the
tuple (or dict) of every dataset's sample ``i``. ``ConcatDataset(datasets)``:
the datasets one after another (``cumulative_sizes``, negative indices).
``Subset(dataset, indices)``: the samples at ``indices``.

A map-style dataset is anything with ``__getitem__`` and ``__len__`` (distnn's
:class:`~distnn.data.Dataset` split, a list, these); ``dataset + other`` of
these, and of :class:`~distnn.data.Dataset`, is a ``ConcatDataset`` as in
PyTorch. Errors are PyTorch's (types and messages).
"""
from __future__ import annotations

import bisect


class ConcatAdd:
    """``a + b`` -> ``ConcatDataset([a, b])`` (PyTorch's ``Dataset.__add__``)."""

    def __add__(self, other):
        return ConcatDataset([self, other])


class TensorDataset(ConcatAdd):
    """Samples ``tuple(t[i] for t in tensors)`` of distnn Tensors (or numpy arrays) of equal first size."""

    def __init__(self, *tensors):
        if any(len(tensors[0]) != len(t) for t in tensors):
            raise AssertionError("Size mismatch between tensors")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])


class StackDataset(ConcatAdd):
    """Sample ``i`` of several datasets of one length together: a tuple (positional datasets) or a dict
    (keyword datasets)."""

    def __init__(self, *args, **kwargs):
        if args and kwargs:
            raise ValueError("Supported either ``tuple``- (via ``args``) or``dict``- (via ``kwargs``) like "
                             "input/output, but both types are given.")
        if not args and not kwargs:
            raise ValueError("At least one dataset should be passed")
        datasets = list(args) if args else list(kwargs.values())
        self._length = len(datasets[0])
        if any(self._length != len(d) for d in datasets):
            raise ValueError("Size mismatch between datasets")
        self.datasets = args if args else kwargs

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __len__(self) -> int:
        return self._length


class ConcatDataset(ConcatAdd):
    """The map-style ``datasets`` one after another; ``cumulative_sizes[k]`` is the length of the first
    ``k + 1`` together."""

    @staticmethod
    def cumsum(sequence) -> list:
        sizes, total = [], 0
        for d in sequence:
            total += len(d)
            sizes.append(total)
        return sizes

    def __init__(self, datasets):
        from .iterable import IterableDataset

        self.datasets = list(datasets)
        if not self.datasets:
            raise AssertionError("datasets should not be an empty iterable")
        if any(isinstance(d, IterableDataset) for d in self.datasets):
            raise AssertionError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = self.cumsum(self.datasets)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        k = bisect.bisect_right(self.cumulative_sizes, idx)
        # (an index past the end: k == len(datasets), an IndexError, as PyTorch's)
        return self.datasets[k][idx - (self.cumulative_sizes[k - 1] if k else 0)]


class Subset(ConcatAdd):
    """The samples of ``dataset`` at ``indices``: ``Subset(d, idx)[i] == d[idx[i]]``."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: list) -> list:
        """Samples at ``indices`` (the loader fetches a batch with it): the dataset's own ``__getitems__``
        if it has one."""
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)
