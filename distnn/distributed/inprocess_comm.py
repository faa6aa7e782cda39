"""``InProcessCommunicator`` and ``simulate``: N ranks as threads of one process.

For tests and debugging without MPI: ``simulate(n, fn, *args)`` runs
``fn(comm, *args)`` on n threads, each with its own communicator, and returns
the list of results. distnn's default random generator and grad mode are
per thread, so each simulated rank has its own. Each rank's generator starts
as a copy of the caller's (what every process of an MPI run has when the
script seeded before starting its ranks): ``distnn.manual_seed(s)`` before
``simulate`` seeds every rank alike, as it does every ``mpiexec`` rank.

Collectives meet in a shared table keyed by each rank's call counter: a rank
deposits a copy of its contribution, and whoever waits reads all of them once
the last rank has deposited. Reductions run in rank order on every rank, so
the result is identical on all ranks and reproducible run to run. Each call
also records what it is (kind, op, shape, dtype); ranks that disagree get a
:class:`CollectiveError` naming both calls instead of garbage.

A rank that raises aborts the group: every rank waiting in a collective gets
:class:`CollectiveAbortedError`, and ``simulate`` re-raises the first exception
with a note naming its rank. A rank that returns while others still wait for
it, or a collective that outlasts the timeout, ends the group the same way,
naming the missing ranks. So does a deadlock across groups (every running
rank waits, each in a collective, perhaps of another split, that some other
rank never joins: a rank that skipped SyncBatchNorm's forward), at once
rather than at the timeout, naming where each rank waits. ``sys.exit()`` on
a rank is the exit of that rank's process, as under a launcher (torchrun,
``torch.multiprocessing.spawn``): with a non-zero status it is a failure like
any other (and is reported on stderr, since Python exits silently on an
uncaught ``SystemExit``); with status 0 or None the rank has ended normally,
as if it had returned None.
"""
from __future__ import annotations

import pickle
import sys
import threading
import time

from distnn import random as _random
from distnn._threads import cap_blas_threads_for_ranks
from distnn.backend import get_array_module

from .comm_base import (
    CollectiveAbortedError, CollectiveError, CollectiveTimeoutError, Communicator, Handle, as_array, check_alltoall,
    check_color, reduce_in_order, reducible,
)
from .exit_watch import exit_status
from .watchdog import collective_timeout

_current = threading.local()


def current_simulated_comm():
    """The communicator of the simulated rank running in this thread (None outside ``simulate``)."""
    return getattr(_current, "comm", None)


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


class InProcessCommunicator(Communicator):
    """Rank ``rank`` of a simulated group; made by :func:`simulate` or :meth:`create_group`."""

    backend = "inprocess"

    def __init__(self, group: _Group, rank: int):
        self._group = group
        self.rank, self.size = rank, group.size
        self.local_rank, self.local_size = rank, group.size  # one simulated host
        self._world_rank = group.world_ranks[rank]
        self._seq = 0

    @classmethod
    def create_group(cls, size: int, timeout="env") -> list:
        """``size`` communicators of one new group (run each on its own thread)."""
        if size < 1:
            raise ValueError(f"a group needs at least one rank, got size={size}")
        group = _Group(size, collective_timeout() if timeout == "env" else timeout)
        return [cls(group, r) for r in range(size)]

    def set_timeout(self, seconds) -> None:
        """Seconds a collective may wait for the other simulated ranks (None: forever); group-wide."""
        self._group.timeout = seconds

    @property
    def timeout(self):
        """Seconds a collective may wait (None: forever); group-wide, as :meth:`set_timeout` sets it."""
        return self._group.timeout

    @timeout.setter
    def timeout(self, seconds) -> None:
        self._group.timeout = seconds

    # ------------------------------------------------------------ plumbing
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

    # -------------------------------------------------------------- arrays
    def iallreduce(self, array, op: str = "sum") -> Handle:
        array = reducible(array, op)

        def finish(values):
            array[...] = reduce_in_order(values, op)
            return array

        return self._post("allreduce", array.copy(), (op, tuple(array.shape), str(array.dtype)), finish)

    def iallgather(self, array) -> Handle:
        array = as_array(array)

        def finish(values):
            return get_array_module(array).stack(values)

        return self._post("allgather", array.copy(), (tuple(array.shape), str(array.dtype)), finish)

    def ialltoall(self, array) -> Handle:
        array = check_alltoall(as_array(array), self.size)

        def finish(values):
            return get_array_module(array).stack([v[self.rank] for v in values])

        return self._post("alltoall", array.copy(), (tuple(array.shape), str(array.dtype)), finish)

    def broadcast(self, array, root: int = 0):
        self._check_root(root)
        array = as_array(array)

        def finish(values):
            if self.rank != root:
                array[...] = values[root]
            return array

        value = array.copy() if self.rank == root else None
        return self._post("broadcast", value, (root, tuple(array.shape), str(array.dtype)), finish).wait()

    # ------------------------------------------------------------- objects
    def broadcast_object(self, obj, root: int = 0):
        self._check_root(root)
        # Pickled like MPI would: the other ranks get their own copy.
        value = pickle.dumps(obj) if self.rank == root else None
        return self._post("broadcast_object", value, (root,),
                          lambda values: obj if self.rank == root else pickle.loads(values[root])).wait()

    def allgather_object(self, obj) -> list:
        return self._post("allgather_object", pickle.dumps(obj), (),
                          lambda values: [pickle.loads(v) for v in values]).wait()

    # --------------------------------------------------------------- group
    def barrier(self) -> None:
        self._post("barrier", None, (), lambda values: None).wait()

    def split(self, color, key: int = 0):
        check_color(color)
        pairs = self.allgather_object((color, key))
        split_id = self._seq  # the same on every rank: it follows the allgather
        if color is None:
            return None
        members = sorted((r for r, (c, _) in enumerate(pairs) if c == color), key=lambda r: (pairs[r][1], r))
        g = self._group
        with g.cond:
            sub = g.children.get((split_id, color))
            if sub is None:
                sub = g.children[(split_id, color)] = _Group(
                    len(members), g.timeout, [g.world_ranks[r] for r in members], g, (split_id, color))
        return InProcessCommunicator(sub, members.index(self.rank))

    def _release(self) -> None:
        # A barrier, as MPI's free is collective: a rank that frees while another still makes collectives
        # here is the mismatch it would be under MPI, reported in one process too.
        self.barrier()
        g = self._group
        if g.parent is not None:  # (its parent would keep the group, and a sweep's every group, for good)
            with g.parent.cond:
                g.parent.children.pop(g.key, None)


def _fmt(meta) -> str:
    return "(" + ", ".join(map(str, meta)) + ")"


def simulate(n: int, fn, *args, **kwargs) -> list:
    """Run ``fn(comm, *args, **kwargs)`` on ``n`` simulated ranks (threads); return their results in rank order.

    If any rank raises, the others are released from their collectives and
    the first exception is re-raised here, with a note naming its rank.
    Inside ``fn``, :func:`distnn.distributed.init` returns that rank's ``comm``,
    and distnn's default random generator starts as a copy of the caller's
    (so ``distnn.manual_seed(s)`` before ``simulate`` seeds every rank alike,
    as each process of an MPI run that called it; the caller's own stream is
    not advanced by the ranks' draws).

    ``sys.exit(status)`` in ``fn`` ends that rank as the exit of its process
    would under a launcher: a non-zero ``status`` (an int, or any object but
    None, which Python exits with 1) fails the run like an exception. The
    other ranks are released, a line naming the rank goes to stderr (Python
    prints nothing for an uncaught ``SystemExit``), and the ``SystemExit`` is
    re-raised here, so the process exits with that status. ``sys.exit(0)`` or
    ``sys.exit()`` is not a failure by itself (as for torchrun, and
    ``torch.multiprocessing.spawn``): the rank has ended, its result is None.
    If another rank still waits for it in a collective, the run ends as an
    MPI job's does then: one line on stderr naming the ranks, and
    ``SystemExit(1)``.
    """
    comms = InProcessCommunicator.create_group(n)
    group = comms[0]._group
    results = [None] * n
    clean_exits = {}  # rank: the status of its sys.exit(0) or sys.exit()
    # The generator is per thread: without this a rank would start from the default seed whatever the
    # caller seeded, unlike the same script's processes under mpiexec.
    random_state = _random.get_state()
    # Whether each rank has begun, and whether the caller, interrupted while starting them, stopped waiting
    # for those that had not: decided under one lock, so each rank either runs fn and is waited for, or
    # never runs it. (A thread's ident cannot tell: Ctrl-C in Thread.start can come after the thread
    # exists but before it set its ident, and that rank then ran unwaited for.)
    start_lock = threading.Lock()
    begun = [False] * n
    called_off = False

    def run(rank):
        with start_lock:
            if called_off:  # (its ended event is set: the caller has gone on without it)
                return
            begun[rank] = True
        _current.comm = comms[rank]
        _random.set_state(random_state)
        try:
            results[rank] = fn(comms[rank], *args, **kwargs)
        except SystemExit as exc:
            if exit_status(exc.code) != 0:
                group.fail(rank, exc)
            else:  # a clean exit of this rank alone, as a return of None (finish() below)
                clean_exits[rank] = exc.code
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            group.fail(rank, exc)
        finally:
            _current.comm = None
            group.finish(rank)
            ended[rank].set()

    # (each rank says when it ended: Thread.join interrupted by Ctrl-C marks the thread joined, bpo-45274)
    ended = [threading.Event() for _ in range(n)]
    threads = [threading.Thread(target=run, args=(r,), name=f"distnn-rank-{r}", daemon=True) for r in range(n)]
    # The ranks share this process's cores as n processes share a host's: numpy's BLAS pool, as large as
    # the machine, is cut to each rank's share while they run, as a launcher's ranks have it (uncapped, the
    # rank threads and the pool's spinning threads oversubscribed the cores: up to 10x slower).
    give_back_blas_threads = cap_blas_threads_for_ranks(n)
    try:
        for t in threads:
            t.start()
        stuck = _wait_for_ranks(ended, group)
    except BaseException as exc:
        # Ctrl-C, or an exception a signal handler raises (a preemption during start-up), reaches this
        # thread only: stop the ranks at their next collective, so that they clean up (their checkpoint
        # spares, an empty run directory) as one process or MPI ranks do, then go.
        group.fail(None, exc)
        with start_lock:  # (interrupted while starting the ranks: those not begun never will)
            called_off = True
            for rank, event in enumerate(ended):
                if not begun[rank]:
                    event.set()
        _wait_for_ranks(ended, group)
        raise
    finally:
        if all(event.is_set() for event in ended):  # (an abandoned rank may still be in the BLAS: left capped)
            give_back_blas_threads()
    if group.failure is not None:
        rank, exc = group.failure
        group.forget_failure()  # (the exception goes to the caller; the groups need not keep it)
        gone = getattr(exc, "gone_ranks", None)
        if gone and all(r in clean_exits for r in gone):
            # A rank's process ended (sys.exit(0)) while the others wait for it: under a launcher, the job is
            # aborted with status 1 and one line (distnn.distributed.exit_watch); the same here, no traceback.
            print(f"[distnn] simulated rank(s) {gone} of {n} called sys.exit({clean_exits[gone[0]]!r}), ending "
                  f"as their process would, while rank {rank} still needed them: {exc}; the other simulated ranks "
                  "were stopped. Every rank must run the same collectives: a rank that stops early must make the "
                  "others stop too.", file=sys.stderr, flush=True)
            raise SystemExit(1) from exc
        exc.add_note(f"(raised on simulated rank {rank} of {n})")
        if n > 1:
            exc.simulated_rank = rank  # (the CLI names the rank, as an MPI rank's error does)
        if stuck:
            exc.add_note(f"(simulated rank(s) {stuck} still running outside any collective: abandoned)")
        if isinstance(exc, SystemExit):
            # Uncaught, it ends the process without a word (its notes included): say which rank ended
            # the run, as mpiexec reports a rank's non-zero exit.
            others = "; the other simulated ranks were stopped" if n > 1 else ""
            print(f"[distnn] simulated rank {rank} of {n} called sys.exit({exc.code!r}){others}", file=sys.stderr,
                  flush=True)
        raise exc
    return results


#: once a simulated rank has failed, how long the others may take to end (released from their
#: collectives, they end at once; one busy outside any collective is abandoned after this)
FAILED_RANKS_GRACE_S = 5.0


def _wait_for_ranks(ended, group) -> list:
    """Wait until every rank has ended; the ranks still running FAILED_RANKS_GRACE_S after a failure.

    A rank stuck outside any collective (an endless loop, a deadlock) never sees the failure; under
    MPI the abort ends its process, here the caller must not wait for it forever.
    """
    deadline = None
    for event in ended:
        while not event.wait(0.1):
            if deadline is None and group.failure is not None:
                deadline = time.monotonic() + FAILED_RANKS_GRACE_S
            if deadline is not None and time.monotonic() >= deadline:
                return [r for r, e in enumerate(ended) if not e.is_set()]
    return []


__all__ = ["InProcessCommunicator", "simulate", "current_simulated_comm"]
