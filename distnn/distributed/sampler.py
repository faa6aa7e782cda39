"""``DistributedSampler``: which samples each rank sees, every epoch (``torch.utils.data.DistributedSampler``).

Each epoch has one global order shared by every rank: a permutation of
``range(n)`` drawn from ``numpy.random.default_rng([seed, epoch])`` (or the
identity without ``shuffle``). Rank ``r`` of ``size`` takes every ``size``-th
position starting at ``r``. So the shards are disjoint and together cover the
dataset, the order changes every epoch (call :meth:`set_epoch`), and the same
seed and epoch give the same order.

When ``n`` does not divide by ``size``, the order is padded at the end with
its own first entries so every rank gets the same number of samples (equal
steps per epoch, no rank waits in a collective for a batch that never comes).
The padded positions are marked invalid in :meth:`indices_and_mask`, so an
evaluation that honours the mask counts every sample exactly once.
``drop_last=True`` drops the tail instead.

Resuming mid-epoch: because ranks take consecutive positions round-robin,
after every rank consumed ``k`` samples the first ``k * size`` positions of
the global order are done, whatever the number of ranks. :meth:`set_start`
skips such a prefix (``global_position``), and the rest is sharded again over
the current ranks, so a run can even resume on a different number of ranks.
:meth:`position_after` converts "this rank consumed k samples" into it.
"""
from __future__ import annotations

import math

import numpy as np


class DistributedSampler:
    """Shard ``dataset`` (a length, or anything with ``len``) over the ranks of ``comm``.

    ``num_replicas``/``rank`` may be given instead of ``comm`` (as in PyTorch).
    Iterating yields this rank's indices for the current epoch (padding included).
    """

    def __init__(self, dataset, comm=None, shuffle: bool = True, seed: int = 0, drop_last: bool = False,
                 num_replicas: int | None = None, rank: int | None = None):
        self.dataset_len = int(dataset) if isinstance(dataset, (int, np.integer)) else len(dataset)
        if self.dataset_len < 0:
            raise ValueError(f"dataset length must be >= 0, got {self.dataset_len}")
        if isinstance(comm, (int, np.integer)):  # PyTorch's positional (dataset, num_replicas, rank)
            raise TypeError(f"DistributedSampler's second argument is a communicator (comm), got the integer {comm}; "
                            "give the number of ranks and the rank by keyword: num_replicas=..., rank=...")
        if num_replicas is None or rank is None:
            if comm is None:
                from . import init

                comm = init()
            num_replicas = comm.size if num_replicas is None else num_replicas
            rank = comm.rank if rank is None else rank
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"invalid rank {rank} for num_replicas {num_replicas}")
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = shuffle, int(seed), drop_last
        self.epoch = 0
        self.start = 0

    # --------------------------------------------------------------- control
    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's order (reseeds the shuffle); also resets :meth:`set_start` to 0."""
        self.epoch = int(epoch)
        self.start = 0

    def set_start(self, global_position: int) -> None:
        """Skip the first ``global_position`` samples of this epoch's global order (resume mid-epoch)."""
        if not 0 <= global_position <= self.dataset_len:
            raise ValueError(f"start position {global_position} outside the dataset of {self.dataset_len} samples")
        self.start = int(global_position)

    def position_after(self, local_samples: int) -> int:
        """The global position reached when every rank consumed ``local_samples`` of its shard this epoch."""
        return min(self.dataset_len, self.start + int(local_samples) * self.num_replicas)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "start": self.start, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.set_epoch(state["epoch"])
        self.set_start(state.get("start", 0))
        self.seed = int(state.get("seed", self.seed))

    # ----------------------------------------------------------------- order
    def global_order(self) -> np.ndarray:
        """This epoch's order of all sample indices (identical on every rank)."""
        if self.shuffle:
            return np.random.default_rng([self.seed, self.epoch]).permutation(self.dataset_len)
        return np.arange(self.dataset_len)

    def _sizes(self):
        remaining = self.dataset_len - self.start
        per = remaining // self.num_replicas if self.drop_last else math.ceil(remaining / self.num_replicas)
        return remaining, per

    def indices_and_mask(self) -> tuple[np.ndarray, np.ndarray]:
        """(this rank's indices, boolean mask: True for real samples, False for padding)."""
        order = self.global_order()[self.start:]
        remaining, per = self._sizes()
        total = per * self.num_replicas
        if total > remaining:  # pad with the order's own first entries, as often as needed
            reps = math.ceil(total / remaining)
            order = np.tile(order, reps)
        positions = np.arange(self.rank, total, self.num_replicas)
        return order[positions], positions < remaining

    @property
    def valid_mask(self) -> np.ndarray:
        """True for this rank's real samples, False for padding (see :meth:`indices_and_mask`)."""
        return self.indices_and_mask()[1]

    @property
    def num_samples(self) -> int:
        """Samples this rank yields this epoch (padding included)."""
        return self._sizes()[1]

    @property
    def total_size(self) -> int:
        return self.num_samples * self.num_replicas

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self):
        return iter(self.indices_and_mask()[0].tolist())
