"""A rank whose process ends while another waits for it in a collective ends the job (MPI only).

A rank that calls ``sys.exit()`` on its own, or returns early from a script
whose other ranks still have collectives to do, does not die: its
``MPI_Finalize`` blocks, so the launcher sees no failure, and the other ranks
would wait in their next collective until the collective timeout (300 s by
default). So at interpreter exit every rank tells the others how many
collectives it started on each of its communicators. A rank that has waited
``SLOW_AFTER_S`` in a collective reads those notices: if a member of the
communicator it waits on has exited having started fewer collectives there
than this rank, that collective can never complete, and the job is aborted
with a report naming the exited rank.

A rank that exits after its last collective (the normal end, ranks finishing
at different times) is never reported: it started as many collectives as the
others.

The exit status: the notice carries the status the exiting rank will exit
with, and the job is aborted with it (``MPI_Abort(COMM_WORLD, status)``;
MPICH's ``mpiexec`` returns an abort's errorcode as its own status, so
``sys.exit(3)`` on one rank ends ``mpiexec`` with 3, as it would have had the
rank's process ended). Python tells an exit handler nothing of the status,
so it is noted where the exit starts: ``sys.exit()`` and the ``exit()`` /
``quit()`` builtins are wrapped (once watching starts), and the ``distnn``
CLI notes any ``SystemExit`` that leaves it (:func:`note_exit_status`). A
bare ``raise SystemExit(3)`` in a user's own script escapes both: that job
ends with 1. So does a rank that exits with status 0 (or one that is 0
modulo 256) while others wait for it: the job could not complete. A noted
status lapses when the process starts another collective: its SystemExit
was caught (user code went on), so it is not the status the process exits
with. (A caught exit followed by the end of the script with no collective
in between still leaves the caught status noted: nothing tells the two
apart from inside the process.) (With Open
MPI's ``mpirun``, which does not return an abort's errorcode, or under
``srun``, the launcher's own rules for a failed job apply.)

A rank killed by a signal (``kill -9``, the kernel's OOM killer) or crashed
sends no notice. MPICH's ``mpiexec`` then ends the job itself, but ``srun``
without ``--kill-on-bad-exit`` does not (seen on a real SLURM cluster: the
others waited out the collective timeout, 5 minutes). So every rank also notes
the process (pid and start time) of each rank that runs on the same kernel in
the same PID namespace, and a rank waiting long in a collective checks that
those processes are still there: one that has gone without a notice ends the
job at once (:func:`died_member`). Ranks on other hosts are left to the
launcher and the timeout.
"""
from __future__ import annotations

import atexit
import builtins
import os
import socket
import sys
import time
import weakref

_EXIT_TAG = 7772
_comm = None  # duplicate of COMM_WORLD the notices travel on (None: not watching)
_watched = weakref.WeakSet()  # this process's communicators that have an exit key
_exited = {}  # world rank -> (host, pid, {communicator key: collectives started})
_world_count = 0  # COMM_WORLD communicators made so far: part of their keys, the same on every rank
_status = None  # the status this process is exiting with, once noted (see note_exit_status)
_noted_at = {}  # {communicator key: collectives started} when _status was noted (see _exiting_status)
_peers = {}  # world rank -> (pid, start time) of the other ranks whose process this one can see (see died_member)


def world_key(world) -> str:
    """Start watching (once per process; collective: every rank builds its world communicators in the same
    order) and return the exit key of a new communicator over COMM_WORLD ``world``."""
    global _comm, _world_count
    if _comm is None:
        _comm = world.Dup()
        atexit.register(_announce_exit)
        _note_exits()
        _note_peers(world)
    _world_count += 1
    return f"world{_world_count}"


def watch(comm) -> None:
    """Count ``comm`` (an MPICommunicator with ``_exit_key``, ``_seq`` and ``_world_ranks``) in this
    process's exit notice."""
    _watched.add(comm)


def exit_status(code) -> int:
    """The status a process ends with after ``sys.exit(code)``: 0 for None, an int modulo 256, else 1."""
    if code is None:
        return 0
    return int(code) & 0xFF if isinstance(code, int) else 1


def note_exit_status(code) -> None:
    """Note that this process is exiting as ``sys.exit(code)`` would (its exit notice carries the status)."""
    global _status, _noted_at
    _status = exit_status(code)
    _noted_at = _collectives_started()


def _collectives_started() -> dict:
    return {c._exit_key: c._seq for c in list(_watched)}


def _exiting_status():
    """The noted status, unless this process has started a collective since it was noted: then the
    SystemExit was caught (user code went on), and the status it would have had is not the one the
    process exits with (None: not known)."""
    if any(seq > _noted_at.get(key, -1) for key, seq in _collectives_started().items()):  # (-1: made since)
        return None
    return _status


def _note_exits() -> None:
    """Wrap ``sys.exit`` and the ``exit``/``quit`` builtins so that they note their status first."""
    def noting(real):
        def exit(*args):
            note_exit_status(args[0] if args else None)
            return real(*args)

        exit.__wrapped__ = real
        exit.__doc__ = real.__doc__
        return exit

    if not hasattr(sys.exit, "__wrapped__"):
        sys.exit = noting(sys.exit)
    for name in ("exit", "quit"):
        real = getattr(builtins, name, None)  # (site's; absent under python -S)
        if callable(real) and not hasattr(real, "__wrapped__"):
            setattr(builtins, name, noting(real))


def abort_status(world_rank: int) -> int:
    """The status to abort the job with because world rank ``world_rank`` has exited: its own exit
    status when it noted one that is not 0, else 1 (a failure)."""
    notice = _exited.get(world_rank)
    status = notice[3] if notice is not None and len(notice) > 3 else None
    return status if status else 1


def _announce_exit() -> None:
    """At interpreter exit: tell every other rank how many collectives we started on each communicator,
    and the status we exit with (None: not known)."""
    from .mpi_comm import _mpi

    MPI = _mpi()
    if _comm is None or MPI.Is_finalized():
        return
    notice = (socket.gethostname(), os.getpid(), _collectives_started(), _exiting_status())
    me, size = _comm.Get_rank(), _comm.Get_size()
    sends = [_comm.isend(notice, dest=r, tag=_EXIT_TAG) for r in range(size) if r != me]
    deadline = time.monotonic() + 1.0  # a few bytes each: delivered at once unless a peer is gone already
    while not MPI.Request.Testall(sends) and time.monotonic() < deadline:
        time.sleep(0.001)


def _start_time(pid: int):
    """The start time of process ``pid`` (clock ticks after boot), or None once it has ended (gone, or a
    zombie its parent has not reaped yet) or where ``/proc`` cannot say."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()  # (the command name may hold spaces and parentheses)
    if len(fields) < 20 or fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])  # field 22 of proc(5); fields[0] is field 3, the state


def _identity():
    """(kernel boot id, PID namespace, pid, start time) of this process; None where ``/proc`` cannot tell."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    start = _start_time(os.getpid())
    return None if start is None else (boot, namespace, os.getpid(), start)


def _note_peers(world) -> None:
    """Collective over ``world``: note the ranks whose process this one can watch.

    The same kernel (boot id) and PID namespace make a peer's pid mean the
    same process here, and a peer is watched only if it is visible now with
    the start time it reported (not hidden by ``/proc``'s ``hidepid``): a
    peer that cannot be seen is never taken for one that has died.
    """
    me, ids = world.Get_rank(), world.allgather(_identity())
    mine = ids[me]
    _peers.clear()
    for r, other in enumerate(ids):
        if r != me and mine is not None and other is not None and other[:2] == mine[:2] \
                and _start_time(other[2]) == other[3]:
            _peers[r] = (other[2], other[3])


def died_member(comm):
    """``(world rank, pid)`` of a member of ``comm`` on this host whose process has ended without an exit
    notice (killed by a signal, or crashed), or None."""
    if _comm is None:
        return None
    for r in comm._world_ranks:
        peer = _peers.get(r)
        if peer is not None and r not in _exited and _start_time(peer[0]) != peer[1]:
            _receive_notices()  # (a notice it sent just before it ended)
            if r not in _exited:
                return r, peer[0]
    return None


def _receive_notices() -> None:
    from .mpi_comm import _mpi

    MPI = _mpi()
    status = MPI.Status()
    while _comm.iprobe(source=MPI.ANY_SOURCE, tag=_EXIT_TAG, status=status):
        src = status.Get_source()
        _exited[src] = _comm.recv(source=src, tag=_EXIT_TAG)


def exited_member(comm):
    """``(world rank, host, pid, collectives it started)`` of a member of ``comm`` that has exited before
    starting the latest collective ``comm`` started here, or None."""
    if _comm is None:
        return None
    _receive_notices()
    for r in comm._world_ranks:
        if r in _exited:
            host, pid, started = _exited[r][:3]
            seq = started.get(comm._exit_key)
            # (no entry: that process no longer held this communicator; it may have finished with it)
            if seq is not None and seq < comm._seq:
                return r, host, pid, seq
    return None
