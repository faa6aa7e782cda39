"""Fault injection for tests: a rank signals itself or raises at a step or a named point, or pauses.

The environment switches (``DISTNN_FAULT_SIGNAL_AT``, ``DISTNN_FAULT_RAISE_AT``, ``DISTNN_FAULT_PAUSE_AT``,
...) are described in :mod:`distnn.train.preemption`; the per-step ones are read by
:class:`~distnn.train.step_guard.StepGuard`. Nothing here acts unless one of them is set.
"""
from __future__ import annotations

import os
import threading
import time

from .preemption_flag import request_count
from .preemption_handlers import _signum


def inject_startup_fault(rank: int) -> None:
    """``DISTNN_FAULT_SIGNAL_AT=RANK:0[:SIG]``: this rank signals itself during start-up (step 0: before any)."""
    for r, s, *rest in _parse_at("DISTNN_FAULT_SIGNAL_AT"):
        if r == rank and s == 0:
            os.kill(os.getpid(), _signum(rest[0] if rest else "SIGTERM"))


_fired_points: set = set()  # (rank, point) of the named fault points already fired in this process


def fault_point(name: str, rank: int) -> None:
    """``DISTNN_FAULT_SIGNAL_AT=RANK:NAME[:SIG]``: this rank signals itself at the named point, once
    (SIGKILL too: a rank killed there); ``DISTNN_FAULT_RAISE_AT=RANK:NAME``: it raises RuntimeError there.

    Named points (for tests of the moments between steps): ``startup-end`` (the instant the start-up
    phase ends, in :func:`~distnn.train.callbacks.checkpoint_setup.attach`), ``handler`` (just before the
    training-time handler is installed there), ``validation`` (the start of the run's first validation,
    at the end of an epoch: the rank's peers are in or on their way to the validation's allreduce),
    ``metrics-write`` (rank 0, between writing a metrics
    file's temporary copy and renaming it into place), ``after-training`` (right after the rank's
    ``Trainer.fit`` returned, before the test evaluation and the results; in an ensemble, after its
    first member's) and ``between-members`` (an ensemble's rank, before its second member).
    """
    _raise_at_point(name, rank)
    spec = os.environ.get("DISTNN_FAULT_SIGNAL_AT")
    if not spec or (rank, name) in _fired_points:
        return
    for item in spec.split(","):
        parts = [p.strip() for p in item.split(":")]
        if len(parts) >= 2 and parts[0].isdigit() and int(parts[0]) == rank and parts[1] == name:
            _fired_points.add((rank, name))
            before = request_count()
            os.kill(os.getpid(), _signum(parts[2] if len(parts) > 2 else "SIGTERM"))
            _await_handler(before)
            return


def _raise_at_point(name: str, rank: int) -> None:
    """``DISTNN_FAULT_RAISE_AT=RANK:NAME``: this rank raises at the named point, once (see :func:`fault_point`)."""
    spec = os.environ.get("DISTNN_FAULT_RAISE_AT")
    if not spec or (rank, "raise:" + name) in _fired_points:
        return
    for item in spec.split(","):
        parts = [p.strip() for p in item.split(":")]
        if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) == rank and parts[1] == name:
            _fired_points.add((rank, "raise:" + name))
            raise RuntimeError(f"test fault: rank {rank} raised at {name} (DISTNN_FAULT_RAISE_AT)")


def _parse_at(env: str) -> list[tuple]:
    out = []
    for item in os.environ.get(env, "").split(","):
        parts = item.strip().split(":")
        if len(parts) >= 2 and parts[0].strip().isdigit() and parts[1].strip().isdigit():
            out.append((int(parts[0]), int(parts[1]), *parts[2:]))
    return out


#: how long a simulated rank that signalled its process waits for the main thread to note it
SIGNAL_NOTE_WAIT_S = 5.0


def _await_handler(before: int) -> None:
    """After signalling its own process: wait, in a simulated rank, until the handler has noted the signal.

    An MPI rank's Python handler runs in the rank's own (main) thread right after ``os.kill`` returns,
    so the rank reads the flag at this very step. A simulated rank is not the main thread: the handler
    runs there once that thread gets the GIL, usually after this rank has read the flag, so the rank saw
    its own signal a step later and the run stopped a step later than under mpiexec (or not, by a race).
    Bounded: a signal whose action is not to set the flag (ignored) must not stop the rank for good.
    """
    if threading.current_thread() is threading.main_thread():
        return
    deadline = time.monotonic() + SIGNAL_NOTE_WAIT_S
    while request_count() == before and time.monotonic() < deadline:
        time.sleep(0.001)  # (releases the GIL: the main thread runs the handler)


def mark_fault(name: str) -> None:
    """Test hook: the empty file ``NAME`` in ``DISTNN_FAULT_MARKER_DIR``, when that is set (nothing otherwise).

    Written just before a fault that leaves no trace of its moment (``DISTNN_FAULT_KILL_AT``'s SIGKILL), so
    a test can time what follows from the fault itself (the file's modification time), not from the job's
    start, which a busy machine delays by any amount."""
    folder = os.environ.get("DISTNN_FAULT_MARKER_DIR")
    if folder:
        with open(os.path.join(folder, name), "w"):
            pass


#: the longest a test's pause (:func:`pause_for_test`) waits for its signal or its release file
PAUSE_LIMIT_S = 120.0


def pause_for_test(name: str, since: int | None = None) -> None:
    """Test hook: say "I am here" with a marker file, then wait for a preemption signal or a release file.

    For tests that must signal a job at a known point of its run, however slow the machine:
    ``DISTNN_FAULT_PAUSE_AT=RANK:STEP`` (at a step, :class:`~distnn.train.step_guard.StepGuard`)
    and ``DISTNN_CKPT_FAULT=pause_after:FILE`` (in a checkpoint write, after FILE) call it.
    Never called unless one of those variables is set.

    Writes the empty file ``NAME`` in ``DISTNN_FAULT_MARKER_DIR`` (default: the current
    directory), then waits until this process notes a new preemption request (the signal the
    test sends once it sees the marker) or the file ``release`` appears in that directory (a
    test that must let the job go on without a signal). The request is counted before the
    marker is written, so a signal sent after the test saw it always ends the wait; ``since``
    (a :func:`request_count` taken earlier) counts from there instead, so a request noted before
    the pause (another simulated rank's signal that came first) ends it at once. The wait
    sleeps (an MPI rank's handler runs in its main thread between two sleeps; a simulated
    rank's in the main thread meanwhile). Bounded by :data:`PAUSE_LIMIT_S`: a signal that
    never sets the flag (a broken handler) makes the job go on and finish, which the test
    then sees, instead of a hang.
    """
    before = request_count() if since is None else since
    folder = os.environ.get("DISTNN_FAULT_MARKER_DIR") or "."
    release = os.path.join(folder, "release")
    with open(os.path.join(folder, name), "w"):
        pass
    deadline = time.monotonic() + PAUSE_LIMIT_S
    while request_count() <= before and not os.path.exists(release):
        if time.monotonic() > deadline:
            import sys

            print(f"distnn: test pause {name!r}: no signal and no release file within {PAUSE_LIMIT_S:.0f} s; "
                  "going on", file=sys.stderr, flush=True)
            return
        time.sleep(0.01)
