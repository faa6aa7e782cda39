"""Metrics over a sharded evaluation: sums and counts, reduced over ranks.

A mean of per-rank means is wrong when shards differ in size, and a padded
sample counted on two ranks is counted twice. These metrics keep an exact
sum (:class:`~distnn.distributed.exact_sum.ExactSum`: no rounding until the
value is read) and a count per rank, skipping samples whose ``mask`` is False
(e.g. :attr:`DistributedSampler.valid_mask`), and allreduce both in
:meth:`Metric.compute`: every rank gets, bit for bit, the value one process
computes over the whole set from the same per-sample values, whatever the
number of ranks and the order of the samples.

``compute()`` is a collective: call it on every rank.
"""
from __future__ import annotations

import numpy as np

from distnn.backend import to_numpy

from .exact_sum import ExactSum


def reduce_sum_count(comm, total: float, count: float) -> tuple[float, float]:
    """(sum over ranks of ``total``, sum over ranks of ``count``), in float64. Collective."""
    arr = np.array([total, count], dtype=np.float64)
    if comm is not None and comm.size > 1:
        arr = comm.allreduce(arr, "sum")
    return float(arr[0]), float(arr[1])


def _host(x):
    return to_numpy(x)  # (looks through Tensors; a cupy array's own .data is its memory pointer)


def _masked(values, mask):
    values = _host(values)
    if mask is None:
        return values
    mask = _host(mask).astype(bool)
    if mask.shape != values.shape[:mask.ndim]:
        raise ValueError(f"mask of shape {mask.shape} does not match values of shape {values.shape}")
    return values[mask]


class Metric:
    """Base: an exact ``sum`` and a ``count`` per rank; ``compute()`` reduces them over ``comm``."""

    def __init__(self, comm=None):
        self.comm = comm
        self.reset()

    def reset(self) -> None:
        self.sum = ExactSum()
        self.count = 0.0

    @property
    def total(self) -> float:
        """This rank's sum so far (rounded once)."""
        return self.sum.value()

    def _comm(self):
        if self.comm is None:
            from . import init

            self.comm = init()
        return self.comm

    def reduced(self) -> tuple[float, float]:
        """(global total, global count). Collective: one allreduce, exact for the total too."""
        comm = self._comm()
        if comm.size == 1:
            return self.sum.value(), self.count
        both = comm.allreduce(np.append(self.sum.to_array(), self.count), "sum")
        return ExactSum.from_array(both[:-1]).value(), float(both[-1])

    def compute(self) -> float:  # pragma: no cover - interface
        raise NotImplementedError


class Sum(Metric):
    """Sum of all (unmasked) values seen on all ranks."""

    def update(self, values, mask=None) -> None:
        v = _masked(values, mask)
        self.sum.add(v)
        self.count += float(v.size)

    def compute(self) -> float:
        return self.reduced()[0]


class Mean(Metric):
    """Mean over every value seen on every rank (e.g. per-sample losses).

    ``update(values, mask)`` takes per-sample values (the exact case);
    ``update(batch_mean, count=n)`` takes an already averaged value of ``n``
    samples, whose rounding depends on how the samples were batched.
    """

    def update(self, values, mask=None, count=None) -> None:
        if count is not None:
            if mask is not None:
                raise ValueError("Mean.update: pass either per-sample values with a mask, or a mean with count")
            mean = np.asarray(_host(values))
            if mean.size != 1:
                raise ValueError(f"Mean.update(values, count=...): values is the mean of the count samples, one "
                                 f"number; got shape {mean.shape}")
            self.sum.add(float(mean.reshape(())) * float(count))
            self.count += float(count)
            return
        v = _masked(values, mask)
        self.sum.add(v)
        self.count += float(v.size)

    def compute(self) -> float:
        total, count = self.reduced()
        return total / count if count else float("nan")


class Accuracy(Metric):
    """Fraction of correct predictions over every (unmasked) sample on every rank.

    ``output`` is (N, C) scores (argmax is the prediction) or (N,) predicted
    labels; ``target`` is (N,) labels.
    """

    def update(self, output, target, mask=None) -> None:
        out, tgt = _host(output), _host(target)
        pred = out.argmax(axis=-1) if out.ndim == tgt.ndim + 1 else out
        if pred.shape != tgt.shape:
            raise ValueError(f"Accuracy.update: predictions of shape {pred.shape} (from output {out.shape}) do not "
                             f"match targets of shape {tgt.shape}")
        correct = _masked(pred == tgt, mask)
        self.sum.add(int(correct.sum()))
        self.count += float(correct.size)

    def compute(self) -> float:
        total, count = self.reduced()
        return total / count if count else float("nan")
