"""``DistributedSampler`` with PyTorch's signature: ``(dataset, num_replicas, rank, shuffle, seed, drop_last)``.

It is :class:`distnn.distributed.DistributedSampler` (whose second argument is
a communicator) with the arguments in ``torch.utils.data.DistributedSampler``'s
order, so a PyTorch script's ``DistributedSampler(ds, 2, 0)`` works. Sharding,
padding and ``drop_last`` are PyTorch's, and so are the index lists without
``shuffle``; the shuffled order is drawn from
``numpy.random.default_rng([seed, epoch])`` (call :meth:`set_epoch` each epoch,
as with PyTorch's), not PyTorch's ``randperm``. Mid-epoch resume
(``set_start``, ``state_dict``) is the distributed sampler's. Without
``num_replicas``/``rank``, they come from ``comm`` (default: distnn's
communicator, ``distnn.distributed.init()``).
"""
from __future__ import annotations

from ..distributed.sampler import DistributedSampler as _CommSampler


class DistributedSampler(_CommSampler):
    """This rank's share of ``dataset`` (a length, or anything with ``len``), as PyTorch's (module doc)."""

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False, *, comm=None):
        if num_replicas is not None and rank is not None and (rank >= num_replicas or rank < 0):
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        super().__init__(dataset, comm=comm, shuffle=shuffle, seed=seed, drop_last=drop_last,
                         num_replicas=num_replicas, rank=rank)
