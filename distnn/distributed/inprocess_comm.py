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

What lives where: this module runs the ranks (:func:`simulate`); the
communicator is :mod:`distnn.distributed.inprocess_communicator`'s and the
shared table its collectives meet in :mod:`distnn.distributed.inprocess_group`'s.
``InProcessCommunicator`` is importable from here too.
"""
from __future__ import annotations

import sys
import threading
import time

from distnn import random as _random
from distnn._threads import cap_blas_threads_for_ranks

from .exit_watch import exit_status
from .inprocess_communicator import InProcessCommunicator

_current = threading.local()


def current_simulated_comm():
    """The communicator of the simulated rank running in this thread (None outside ``simulate``)."""
    return getattr(_current, "comm", None)


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
