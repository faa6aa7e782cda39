"""``MPICommunicator``: the communicator of real multi-process runs, over mpi4py.

Arrays move through mpi4py's buffer (uppercase) methods, never pickling.
Every collective is started nonblocking and completed by polling with a
deadline (:func:`.watchdog.wait_until`), so a collective some rank never joins
becomes a report naming the missing ranks and an abort instead of a hang.
cupy arrays are passed to MPI directly when it is CUDA-aware
(``DISTNN_MPI_CUDA_AWARE=1``, or mpi4py reports it), else staged through host
memory.

The communicator works on duplicates of the given MPI communicator, so its
traffic never matches the user's own MPI calls (pytest-mpi's, say).

The array collectives (and the host staging they share) are in :mod:`.mpi_collectives`, a base
class of the communicator; what it does when a collective waits too long in :mod:`.mpi_watchdog`.
"""
from __future__ import annotations

import faulthandler
import os
import pickle
import sys
import time
import warnings

import numpy as np

from distnn._launcher_env import LOCAL_RANK_VARS, LOCAL_SIZE_VARS, env_int
from distnn._threads import usable_cores

from .comm_base import CollectiveError, check_color
from . import exit_watch
# (the communicator's parts; what was importable from here still is)
from .mpi_collectives import MPIArrayCollectives
from .mpi_env import (
    LauncherMismatchError, _cuda_aware, _persistent_ok, _shared_memory_ok, _within_world, _world_ranks,
    check_launcher_wiring, launcher_world_size, unlink_start_up_segments,
)
from .mpi_handles import _MPIHandle, _MPIPersistentAllreduce
from .mpi_watchdog import MPIWatchdog, _live
from .shared_memory import SharedArena, _busy, progress_all
from .watchdog import FORWARD_GRACE_S, SPIN_S, collective_timeout, install_excepthook, wait_until

__all__ = ["ABORT_WAIT_S", "LauncherMismatchError", "MPICommunicator", "abort_job", "check_launcher_wiring",
           "launcher_world_size", "unlink_start_up_segments"]

_MPI = None
_OPS = None


def _mpi():
    """mpi4py's MPI module, imported on first use (a plain ``python`` run never needs it)."""
    global _MPI, _OPS
    if _MPI is None:
        try:
            from mpi4py import MPI
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ImportError("the MPI backend needs mpi4py (pip install 'distnn[mpi]')") from e
        _MPI = MPI
        _OPS = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}
    return _MPI


def abort_job(code: int) -> None:
    """End every process of this MPI job with ``code``, from a process that has no communicator yet
    (MPI is initialized if need be; MPICH's start-up file is removed first, as a communicator would)."""
    _leave_if_abort_hangs()  # (MPI_Init waits for every rank: forever if one has died)
    world = _mpi().COMM_WORLD
    unlink_start_up_segments()  # (every local rank maps it once MPI_Init has returned here)
    _abort_world(world, code)


#: seconds an abort (with the MPI_Init before it, in a rank that had not started MPI yet) may take
#: before this rank exits on its own, with status 1 (see _leave_if_abort_hangs)
ABORT_WAIT_S = 10.0
_abort_bounded = None  # the file the bound's traceback goes to, once armed (faulthandler keeps using it)


def _leave_if_abort_hangs() -> None:
    """Make this process exit with status 1 if it is still alive ``ABORT_WAIT_S`` from now.

    An abort can hang when a rank has already died. Seen under ``srun`` (real cluster): a rank killed
    during start-up makes SLURM send SIGTERM to the others; one whose communicator did not exist yet
    ends the job through :func:`abort_job`, and the MPI_Init there waits for the dead rank forever,
    until SLURM's KillWait (30 s) SIGKILLs it and the job reports that rank as killed (137). srun ends
    the job step anyway once this rank exits, so leaving loses nothing; under mpiexec an abort acts
    in well under a second and the bound never fires. (MPI_Init of a job on many hosts can take
    longer: hence seconds, not a fraction of one.)

    faulthandler's timer, not a Python thread: it is a C thread that exits without the GIL, and
    mpi4py holds the GIL through MPI_Init (a Python thread never ran there). Its traceback goes
    nowhere: the caller has already said why the job ends. It exits with status 1 (faulthandler's):
    where the CLI ends the job it has first recorded the status the rank meant to exit with, for the
    batch script (DISTNN_STATUS_DIR).
    """
    global _abort_bounded
    if _abort_bounded is None:  # (once: abort_job arms it before MPI_Init, _abort_world must not extend it)
        _abort_bounded = open(os.devnull, "w")
        faulthandler.dump_traceback_later(ABORT_WAIT_S, exit=True, file=_abort_bounded)


def _abort_world(world, code: int) -> None:
    """``MPI_Abort`` on COMM_WORLD, then leave at once. Does not return.

    MPICH's Abort returns before the launcher has killed this process: the caller went on for a
    moment (after a collective timeout, with the collective's un-reduced data) and could write
    files meanwhile. And it may not return at all (a rank already dead): then the process exits
    after ``ABORT_WAIT_S``.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    _leave_if_abort_hangs()
    world.Abort(code)
    os._exit(code)


def _report_and_abort(text: str, status: int) -> None:
    """Write a rank's report of why the job ends on stderr, give the launcher a moment to forward it,
    then abort every rank with ``status``. Does not return."""
    sys.stderr.write(text)
    sys.stderr.flush()
    time.sleep(FORWARD_GRACE_S)
    _abort_world(_mpi().COMM_WORLD, status)


class MPICommunicator(MPIWatchdog, MPIArrayCollectives):
    """A group of MPI processes (default: ``COMM_WORLD``).

    Construction is collective. ``timeout`` (seconds, None = wait forever)
    defaults to ``DISTNN_COLLECTIVE_TIMEOUT``. For ``COMM_WORLD`` with more
    than one rank, an uncaught exception on any rank aborts the job
    (``abort_on_exception=False`` turns that off). When every rank is on one
    host, :meth:`allreduce_buffer` reduces in shared memory
    (:mod:`.shared_memory`) unless ``shared_memory=False`` (default:
    ``DISTNN_MPI_SHARED_MEMORY``, on). What it does when a collective waits too long is in
    :class:`.mpi_watchdog.MPIWatchdog`.
    """

    backend = "mpi"

    def __init__(self, comm=None, timeout="env", abort_on_exception: bool = True, shared_memory=None):
        MPI = _mpi()
        base = MPI.COMM_WORLD if comm is None else comm
        is_world = base == MPI.COMM_WORLD or MPI.Comm.Compare(base, MPI.COMM_WORLD) in (MPI.IDENT, MPI.CONGRUENT)
        self._comm = base.Dup()   # our collectives
        self._diag = base.Dup()   # timeout reports only
        self.rank, self.size = self._comm.Get_rank(), self._comm.Get_size()
        self._world_rank = MPI.COMM_WORLD.Get_rank()
        self._is_world = is_world
        node = self._comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
        if node.Get_rank() == 0:
            unlink_start_up_segments()
        # (ranks of a communicator merged with spawned processes may share a host but not MPI's
        # shared-memory domain: windows then need every rank in COMM_WORLD)
        one_host = node.Get_size() == self.size and _within_world(self._comm, MPI)
        # More ranks on this host than the cores they may run on (the union of their affinity masks):
        # a rank spinning in a wait takes the core a peer needs (3 ranks on 2 cores: DataParallel's
        # exchange took 2.7 ms spinning, 0.7 ms yielding at once).
        cores = set().union(*node.allgather(usable_cores()))
        self._spin_s = 0.0 if node.Get_size() > len(cores) else SPIN_S
        node.Free()
        self._shared_memory = _shared_memory_ok() if shared_memory is None else bool(shared_memory)
        self._arena = SharedArena(self, MPI) if one_host and self.size > 1 and self._shared_memory else None
        if is_world:  # launchers publish the host-local rank they bound devices with: respect it
            env_rank, env_size = env_int(LOCAL_RANK_VARS), env_int(LOCAL_SIZE_VARS)
            if env_rank is not None:
                self.local_rank = env_rank
                self.local_size = env_size if env_size is not None else max(self.local_size, env_rank + 1)
        self.timeout = collective_timeout() if timeout == "env" else timeout
        # DISTNN_CHECK_COLLECTIVES=1: compare every rank's call before each collective (see _check_call)
        self.check_calls = os.environ.get("DISTNN_CHECK_COLLECTIVES", "0") == "1"
        self.cuda_aware = _cuda_aware()
        self._seq = 0
        self._warned_shm = False
        self._heard = {}     # timeout reports other ranks sent us while we waited: rank -> where it waits
        self._answered = []  # our answers to them (nonblocking sends, kept alive)
        self._exit_key, self._world_ranks = None, ()  # see exit_watch
        _live.add(self)  # (answers timeout reports while waiting in another communicator: mpi_watchdog)
        if is_world and self.size > 1 and abort_on_exception:
            install_excepthook(self.rank, self.size, lambda code: _abort_world(MPI.COMM_WORLD, code))
            self._watch_exits(exit_watch.world_key(MPI.COMM_WORLD), range(self.size))

    # ------------------------------------------------------------ plumbing
    def _next(self, what: str) -> str:
        self._seq += 1
        return f"collective #{self._seq} {what}"

    def _begin(self, call: str) -> str:
        """``_next`` for a collective whose call ``check_calls`` compares across the ranks first."""
        if self.check_calls:
            self._check_call(call)
        return self._next(call)

    def _wait(self, req, what) -> None:
        self._wait_until(req.Test, lambda: what)

    def _wait_until(self, done, what) -> None:
        """Poll ``done()`` under the collective deadline; ``what()`` names the collective waited for.

        Every poll first does this rank's part of the shared-memory rounds in
        flight (of any communicator): a peer may be waiting for it.
        """
        def test():
            if _busy:
                progress_all()
            return done()

        wait_until(test, self.timeout, lambda waited: self._timed_out(what(), waited),
                   lambda: self._waiting_long(what()), self._spin_s)

    def _check_call(self, call: str) -> None:
        """With ``check_calls``: one allgather of every rank's call; a mismatch raises on every rank.

        MPI does not compare the ranks' arguments: a different shape, op, dtype or root on one rank
        gives silently wrong results (or an MPI internal error). Simulated ranks always check; here
        it costs a collective more per call, so it is a debugging switch (as PyTorch's
        TORCH_DISTRIBUTED_DEBUG=DETAIL).
        """
        calls = self.allgather_object(call)
        other = next((r for r, c in enumerate(calls) if c != call), None)
        if other is not None:
            raise CollectiveError(f"collective #{self._seq + 1}: rank {self.rank} called {call} but rank {other} "
                                  f"called {calls[other]}; every rank must make the same collective calls in the "
                                  "same order")

    # ------------------------------------------------------------- objects
    def broadcast_object(self, obj, root: int = 0):
        self._check_live()
        self._check_root(root)
        what = self._begin(f"broadcast_object(root={root})")
        payload = np.frombuffer(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), dtype=np.uint8) \
            if self.rank == root else None
        n = np.array([payload.size if payload is not None else 0], dtype=np.int64)
        self._wait(self._comm.Ibcast(n, root=root), what)
        data = payload.copy() if payload is not None else np.empty(int(n[0]), dtype=np.uint8)
        self._wait(self._comm.Ibcast(data, root=root), what)
        return obj if self.rank == root else pickle.loads(data.tobytes())

    def allgather_object(self, obj) -> list:
        self._check_live()
        what = self._next("allgather_object")
        payload = np.frombuffer(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), dtype=np.uint8)
        sizes = np.empty(self.size, dtype=np.int64)
        self._wait(self._comm.Iallgather(np.array([payload.size], dtype=np.int64), sizes), what)
        displs = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        data = np.empty(int(sizes.sum()), dtype=np.uint8)
        self._wait(self._comm.Iallgatherv(payload, [data, sizes, displs, _mpi().BYTE]), what)
        return [pickle.loads(data[d:d + s].tobytes()) for d, s in zip(displs, sizes)]

    # --------------------------------------------------------------- group
    def barrier(self) -> None:
        self._check_live()
        what = self._begin("barrier")  # (check_calls compares only the kind: a barrier against another call)
        self._wait(self._comm.Ibarrier(), what)

    def split(self, color, key: int = 0):
        self._check_live()
        check_color(color)
        MPI = _mpi()
        # MPI_Comm_split blocks with no deadline: first meet in a barrier that has one, so a rank
        # that never calls split is reported instead of hanging the others.
        self._wait(self._comm.Ibarrier(), self._next(f"split(color={color!r})"))
        sub = self._comm.Split(MPI.UNDEFINED if color is None else int(color), int(key))
        if sub == MPI.COMM_NULL:
            return None
        try:
            child = MPICommunicator(sub, timeout=self.timeout, shared_memory=self._shared_memory)
            child._spin_s = min(child._spin_s, self._spin_s)  # (ranks outside the group still share the cores)
            ranks = _world_ranks(sub, MPI) if self._exit_key is not None else [MPI.UNDEFINED]
            if MPI.UNDEFINED not in ranks:
                # (the split's number is the same on every rank of the parent: so is the key)
                child._watch_exits(f"{self._exit_key}/{self._seq}", ranks)
            return child
        finally:
            sub.Free()

    def _release(self) -> None:
        # Meet first, under the deadline: freeing windows blocks with none, and a rank that never calls
        # free() is then reported instead of hanging the others.
        self._wait(self._comm.Ibarrier(), self._begin("free"))
        if self._arena is not None:
            kept = self._arena.free()
            self._arena = None
            if kept:  # (the same count on every rank: which windows to free is agreed)
                warnings.warn(f"distnn: {kept} shared-memory buffer(s) of {self!r} were still in use when it was "
                              "freed (a DataParallel not yet dropped, or gradients still viewing them): they stay "
                              "allocated until the process ends", RuntimeWarning, stacklevel=3)
        _live.discard(self)
        self._comm.Free()
        self._diag.Free()
        self._answered = []  # (MPI completes sends still pending on a freed communicator)

    def abort(self, code: int = 1) -> None:
        """End every process of the job now (does not return)."""
        _abort_world(_mpi().COMM_WORLD, code)
