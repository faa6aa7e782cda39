"""How an ensemble's K members map onto W ranks: groups of consecutive ranks, each training its
members in turns (see :mod:`distnn.train.ensemble`)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .ensemble_config import EnsembleError


@dataclass(frozen=True)
class EnsemblePlan:
    """How K members map onto W ranks: ``groups`` groups of ``group_size`` consecutive ranks.

    Group ``g`` trains members ``g, g + groups, ...`` in that order.
    """

    world_size: int
    members: int
    groups: int

    @property
    def group_size(self) -> int:
        return self.world_size // self.groups

    @property
    def rounds(self) -> int:
        """Members each group trains one after another."""
        return self.members // self.groups

    def group_of(self, rank: int) -> int:
        return int(rank) // self.group_size

    def members_of(self, group: int) -> list:
        return list(range(group, self.members, self.groups))

    def group_of_member(self, member: int) -> int:
        return int(member) % self.groups

    def in_run_order(self) -> list:
        """The members group by group, each group's in the order it trains them: the order in which a run's
        first error is found (each group stops at its own first; of several groups, the job says the
        lowest group's, see :func:`~distnn.train.ensemble_preemption._agree_on_group_endings`)."""
        return [m for g in range(self.groups) for m in self.members_of(g)]

    def group_label(self, group: int) -> str:
        """How the job's one error line names group ``group`` when there are several: its world ranks and
        members (``ensemble group 1 (world rank(s) 2-3, member(s) 1, 3)``)."""
        n, g = self.group_size, int(group)
        ranks = f"{g * n}-{(g + 1) * n - 1}" if n > 1 else f"{g * n}"
        return f"ensemble group {g} (world rank(s) {ranks}, member(s) {', '.join(map(str, self.members_of(g)))})"

    def group_ending(self, member: int, message: str) -> str:
        """``message``, an error of ``member``'s training, as the job says it: after its group's
        :meth:`group_label` when there are several groups, as it is when the group is the whole job."""
        if self.groups == 1:
            return message
        return f"{self.group_label(self.group_of_member(member))}: {message}"

    def describe(self) -> str:
        if self.members == 1:
            return f"1 model on {self.world_size} rank(s)"
        how = "at once" if self.rounds == 1 else f"in {self.rounds} turns"
        return (f"{self.members} members {how}: {self.groups} group(s) of {self.group_size} rank(s), "
                f"{self.rounds} member(s) per group")


def _divisors(n: int) -> list:
    return [d for d in range(1, n + 1) if n % d == 0]


def plan_groups(world_size: int, members: int) -> EnsemblePlan:
    """Split ``world_size`` ranks among ``members`` members (see :mod:`distnn.train.ensemble`).

    Raises :class:`EnsembleError` when ``members <= world_size`` does not divide it.
    """
    W, K = int(world_size), int(members)
    if W < 1 or K < 1:
        raise EnsembleError(f"world size and ensemble.members must be >= 1, got {W} and {K}")
    if W >= K and W % K:
        raise EnsembleError(f"ensemble.members={K} does not divide the world size {W}: use members in "
                            f"{{{', '.join(map(str, _divisors(W)))}}} or a world size that is a multiple of {K} "
                            f"(more members than ranks also works: they train in turns)")
    return EnsemblePlan(W, K, math.gcd(W, K))


def group_communicator(comm, plan: EnsemblePlan):
    """This rank's group communicator (collective over ``comm``; ``comm`` itself when there is one group).

    A split of ``comm`` is the caller's to ``free()`` when done with it (collectively: every rank of its group).
    """
    if plan.groups == 1:
        return comm
    return comm.split(plan.group_of(comm.rank), key=comm.rank)
