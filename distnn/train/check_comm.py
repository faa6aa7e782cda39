"""``PlannedRankComm``: rank 0 of a job that has not started, for ``distnn train --check``.

The check builds the job as rank 0 of the ``size`` ranks it will have (the batch split, the shards, the
ensemble groups are all sized by it) in this one process, with no launcher and no MPI. The ranks that are
not there are taken to do exactly what rank 0 does: a broadcast gives rank 0's object back, an allgather
``size`` copies of it. That is what the job's set-up exchanges (agreed errors, rank 0's choices) give when
every rank reads the same config and data, which a job's ranks do. It has no array collectives: a check
that reached one would be training, not checking.
"""
from __future__ import annotations

import copy


class PlannedRankComm:
    """Rank 0 of ``size`` planned ranks (see the module docstring); ``local_size``: the ranks of its host."""

    backend = "planned"

    def __init__(self, size: int, local_size: int | None = None):
        if int(size) < 1:
            raise ValueError(f"a job needs at least 1 rank, got {size}")
        self.size = int(size)
        self.rank = self.world_rank = self.local_rank = 0
        self.local_size = int(local_size or size)
        self.timeout = None

    def set_timeout(self, seconds) -> None:
        self.timeout = seconds  # (nothing here waits: noted, as the config asks)

    def broadcast_object(self, obj, root: int = 0):
        self._check_root(root)
        return obj

    def allgather_object(self, obj) -> list:
        return [copy.deepcopy(obj) for _ in range(self.size)]

    def barrier(self) -> None:
        pass

    def split(self, color, key=None):
        raise NotImplementedError("a planned rank cannot split: the check sizes an ensemble's groups itself")

    def free(self) -> None:
        pass

    def _check_root(self, root) -> None:
        if not 0 <= int(root) < self.size:
            raise ValueError(f"root {root} is not a rank of {self.size}")
