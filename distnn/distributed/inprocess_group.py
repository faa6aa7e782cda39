"""Where simulated ranks meet: the shared table of collective calls, and a rank's deposit and wait.

Collectives meet in a table keyed by each rank's call counter (:class:`_Slot`): a rank deposits a copy
of its contribution, and whoever waits reads all of them once the last rank has deposited. Each call
records what it is (kind, op, shape, dtype), so ranks that disagree get a :class:`CollectiveError`
naming both calls. A failed rank, a rank that returned, a timeout or a deadlock across groups ends the
wait (:class:`_Group`, :meth:`_Rendezvous._collect`). The overview is
:mod:`distnn.distributed.inprocess_comm`'s.
"""
from __future__ import annotations

import threading
import time

from .comm_base import CollectiveAbortedError, CollectiveError, CollectiveTimeoutError, Handle


class _Slot:
    """One collective call, as deposited by the ranks."""

    __slots__ = ("kind", "values", "metas", "arrived", "readers")

    def __init__(self, kind, size):
        self.kind = kind
        self.values = [None] * size
        self.metas = [None] * size
        self.arrived = 0
        self.readers = size


class _Group:
    """State shared by the ranks of one simulated group."""

    def __init__(self, size: int, timeout, world_ranks=None, parent=None, key=None):
        self.size = size
        self.timeout = timeout
        self.world_ranks = list(range(size)) if world_ranks is None else world_ranks
        self.cond = threading.Condition()
        self.slots = {}
        self.failure = None      # the first (rank, exception) that ended the group
        self.finished = set()    # ranks whose function returned
        self.children = {}       # (split id, color) -> _Group
        self.parent, self.key = parent, key  # a split's group: where it is among its parent's children
        # The world (the group simulate made) knows which rank waits where, in every group: see _deadlock.
        self.root = self if parent is None else parent.root
        if parent is None:
            self.waits_lock = threading.Lock()
            self.waiting = {}    # thread ident -> (communicator, seq, slot) it waits in
            self.splits = 0
            self.label = "the simulated world"
        else:
            with self.root.waits_lock:
                self.root.splits += 1
                number = self.root.splits
            self.label = f"split communicator #{number} (world ranks {self.world_ranks})"

    def fail(self, rank, exc) -> None:
        with self.cond:
            if self.failure is None:
                self.failure = (rank, exc)
            self.cond.notify_all()
            children = list(self.children.values())
        for child in children:
            child.fail(rank, exc)

    def forget_failure(self) -> None:
        """Drop the failure (and its traceback, whose frames hold the ranks' communicators and jobs) from this
        group and its sub-groups: a split cached for reuse (DataParallel's pool, keyed weakly by its base
        communicator) would otherwise keep that base, and with it the whole failed job, alive for good."""
        with self.cond:
            self.failure = None
            children = list(self.children.values())
        for child in children:
            child.forget_failure()

    def finish(self, world_rank) -> None:
        with self.cond:
            if world_rank in self.world_ranks:
                self.finished.add(self.world_ranks.index(world_rank))
            self.cond.notify_all()
            children = list(self.children.values())
        for child in children:
            child.finish(world_rank)


class _InProcessHandle(Handle):
    __slots__ = ("comm", "seq", "slot", "finish", "done", "result")

    def __init__(self, comm, seq, slot, finish):
        self.comm, self.seq, self.slot, self.finish = comm, seq, slot, finish
        self.done, self.result = False, None

    def test(self) -> bool:
        if not self.done:
            with self.comm._group.cond:
                complete = self.slot.arrived == self.comm.size
            if complete:
                self.wait()
        return self.done

    def wait(self):
        if not self.done:
            values = self.comm._collect(self.seq, self.slot)
            self.result = self.finish(values)
            self.done, self.finish = True, None
        return self.result


class _Rendezvous:
    """A simulated rank's side of the table: deposit its contribution to a collective, wait for the others.

    Mixed into :class:`~distnn.distributed.inprocess_communicator.InProcessCommunicator`, whose ``_group``,
    ``rank``, ``size``, ``_seq``, ``_world_rank`` and ``_check_live`` it uses.
    """

    def _post(self, kind: str, value, meta, finish) -> Handle:
        """Deposit this rank's contribution to its next collective; returns the handle to wait on."""
        self._check_live()
        g = self._group
        seq = self._seq
        self._seq += 1
        with g.cond:
            self._raise_if_failed(seq, kind)
            slot = g.slots.get(seq)
            if slot is None:
                slot = g.slots[seq] = _Slot(kind, self.size)
            other = next((r for r, m in enumerate(slot.metas) if m is not None), None)
            if other is not None and (slot.kind, slot.metas[other]) != (kind, meta):
                err = CollectiveError(
                    f"collective #{seq}: rank {self.rank} called {kind}{_fmt(meta)} but rank {other} called "
                    f"{slot.kind}{_fmt(slot.metas[other])}; every rank must make the same collective calls "
                    "in the same order")
                g.fail(self.rank, err)
                raise err
            slot.values[self.rank] = value
            slot.metas[self.rank] = meta
            slot.arrived += 1
            if slot.arrived == self.size:
                g.cond.notify_all()
        return _InProcessHandle(self, seq, slot, finish)

    def _raise_if_failed(self, seq, kind):
        failure = self._group.failure
        if failure is not None:
            rank, exc = failure
            why = f"rank {rank} failed with" if rank is not None else "the run was interrupted:"
            err = CollectiveAbortedError(f"collective #{seq} ({kind}) on rank {self.rank} aborted: {why} "
                                         f"{type(exc).__name__}: {exc}")
            err.gone_ranks = getattr(exc, "gone_ranks", None)  # (the ranks that had ended, if that was why)
            raise err

    def _collect(self, seq, slot):
        """Wait until every rank deposited into ``slot``; return the contributions in rank order."""
        g = self._group
        deadline = None if g.timeout is None else time.monotonic() + g.timeout
        with g.cond:
            try:
                while slot.arrived < self.size:
                    self._raise_if_failed(seq, slot.kind)
                    missing = [r for r in range(self.size) if slot.metas[r] is None]
                    gone = [r for r in missing if r in g.finished]
                    deadlock = None if gone else self._deadlock(seq, slot)
                    if gone:
                        err = CollectiveError(f"collective #{seq} ({slot.kind}): rank(s) {gone} returned without "
                                              f"calling it; rank {self.rank} waited for them")
                        err.gone_ranks = gone
                    elif deadlock is not None:
                        err = CollectiveError(deadlock)
                    elif deadline is not None and time.monotonic() >= deadline:
                        err = CollectiveTimeoutError(
                            f"collective #{seq} ({slot.kind}) did not complete within {g.timeout} s on rank "
                            f"{self.rank}: missing ranks {missing} never called it")
                    else:
                        g.cond.wait(None if deadline is None else max(0.0, min(1.0, deadline - time.monotonic())))
                        continue
                    if deadlock is None:
                        g.fail(self.rank, err)
                    else:  # (the other ranks wait in other groups: release them all)
                        g.root.fail(self._world_rank, err)
                    raise err
            finally:
                with g.root.waits_lock:
                    g.root.waiting.pop(threading.get_ident(), None)
            slot.readers -= 1
            if slot.readers == 0:
                del g.slots[seq]
        return slot.values

    def _deadlock(self, seq, slot):
        """Note that this thread waits in ``slot``; say why no collective can complete, if none can.

        Ranks may wait in different groups (SyncBatchNorm's and DataParallel's
        communicators are splits of the world), where no slot ever shows a
        mismatch: rank 0 waits in one group's collective #5 for rank 1 while
        rank 1 waits in another's #2 for rank 0. A rank that waits deposits
        nothing, so when every rank still running waits, each in a collective
        some other rank has not joined, none ever will: the run is over now,
        not at the timeout. (A simulated rank is one thread making collectives.)
        """
        root = self._group.root
        with root.waits_lock:
            root.waiting[threading.get_ident()] = (self, seq, slot)
            waits = sorted(root.waiting.values(), key=lambda w: w[0]._world_rank)
            live = set(range(root.size)) - root.finished
            if not live <= {comm._world_rank for comm, _, _ in waits} or \
                    any(s.arrived == comm.size for comm, _, s in waits):
                return None
        lines = []
        for comm, q, s in waits:
            missing = [comm._group.world_ranks[r] for r in range(comm.size) if s.metas[r] is None]
            lines.append(f"rank {comm._world_rank} waits in collective #{q} {s.kind}{_fmt(s.metas[comm.rank])} "
                         f"on {comm._group.label} for rank(s) {missing}")
        return ("deadlock: every simulated rank waits in a collective that another rank never joins, so none can "
                "complete: " + "; ".join(lines) + ". Every rank must make the same collective calls in the same "
                "order (did a rank skip a forward or backward, e.g. in a data-dependent branch?)")


def _fmt(meta) -> str:
    return "(" + ", ".join(map(str, meta)) + ")"
