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
"""
from __future__ import annotations

import faulthandler
import os
import pickle
import socket
import sys
import threading
import time
import traceback
import warnings

import numpy as np

from distnn._launcher_env import LOCAL_RANK_VARS, LOCAL_SIZE_VARS, env_int, launcher_env
from distnn._threads import mapped_files, usable_cores
from distnn.backend import get_array_module

from .comm_base import (
    CollectiveError, Communicator, Handle, PersistentAllreduce, as_array, check_alltoall, check_color, check_op,
    reducible,
)
from . import exit_watch
from .shared_memory import SharedArena, _busy, progress_all
from .watchdog import FORWARD_GRACE_S, SPIN_S, collective_timeout, install_excepthook, report_grace, wait_until

_MPI = None
_DIAG_TAG = 7771

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


class LauncherMismatchError(ValueError):
    """A launcher started several processes, but MPI in this one sees only itself (``report``: this
    process is the launcher's rank 0, the one to say so: every process raises it alone)."""

    def __init__(self, message: str, report: bool):
        super().__init__(message)
        self.report = report


def check_launcher_wiring(mpi_size: int) -> None:
    """Raise :class:`LauncherMismatchError` when the launcher's environment says several processes
    were started but ``COMM_WORLD`` has one rank: every process would train alone, each as rank 0
    of 1, and they would overwrite one another's run directory."""
    found = launcher_env()
    if found is None or found[2] <= 1 or mpi_size != 1:
        return
    rank, var, size = found
    raise LauncherMismatchError(
        f"the launcher started {size} processes ({var}={size}), but MPI in this one sees only itself "
        "(COMM_WORLD has 1 rank), so each would train alone as rank 0 of 1 and overwrite the others' "
        "run directory: mpi4py's MPI is not wired to this launcher. Under SLURM use `srun --mpi=pmi2` "
        "(slurm/train.sbatch does); otherwise the mpiexec of the MPI mpi4py uses (.venv/bin/mpiexec). "
        "For independent single-process runs under one launcher (a sweep, each with its own --out), "
        "set DISTNN_BACKEND=local", report=rank == 0)


def launcher_world_size():
    """The number of processes an MPI launcher started, from its environment; None if not launched."""
    env = os.environ
    found = launcher_env()
    if found is not None:
        return found[2]
    if "PMIX_RANK" in env or "PMI_RANK" in env:  # rank known, size not published: ask MPI
        return _mpi().COMM_WORLD.Get_size()
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        return mpi.COMM_WORLD.Get_size()
    return None


def _cuda_aware() -> bool:
    flag = os.environ.get("DISTNN_MPI_CUDA_AWARE")
    if flag is not None:
        return flag.strip().lower() in ("1", "true", "yes", "on")
    query = getattr(_mpi(), "Query_cuda_support", None)
    try:
        return bool(query()) if query is not None else False
    except Exception:  # noqa: BLE001 - an MPI without the extension
        return False


def _persistent_ok() -> bool:
    """Whether to use MPI-4 persistent collectives (``DISTNN_MPI_PERSISTENT=0`` turns them off)."""
    if os.environ.get("DISTNN_MPI_PERSISTENT", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return _mpi().Get_version() >= (4, 0)


_SEGMENT_PREFIX = "/dev/shm/mpich_shm_"


def unlink_start_up_segments() -> None:
    """Remove the names of the shared-memory files MPICH maps at start-up (the memory stays while mapped).

    MPICH removes its start-up file only in ``MPI_Finalize``: every job that
    aborts (as distnn's do on a failure) or is killed left one in /dev/shm,
    host memory lost until reboot. Every local process maps it in
    ``MPI_Init``, so once a collective over the whole group has returned
    here the name is no longer needed. Linux only; anything else is left alone.
    """
    for path in mapped_files():
        if path.startswith(_SEGMENT_PREFIX) and not path.endswith("(deleted)"):
            try:
                os.unlink(path)
            except OSError:
                pass


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


def _world_ranks(comm, MPI) -> list:
    """The COMM_WORLD ranks of ``comm``'s ranks, in order."""
    group, world = comm.Get_group(), MPI.COMM_WORLD.Get_group()
    try:
        return list(MPI.Group.Translate_ranks(group, list(range(group.Get_size())), world))
    finally:
        group.Free()
        world.Free()


def _within_world(comm, MPI) -> bool:
    """Whether every rank of ``comm`` belongs to this job's ``COMM_WORLD``."""
    return MPI.UNDEFINED not in _world_ranks(comm, MPI)


def _shared_memory_ok() -> bool:
    """Whether ``allreduce_buffer`` may use shared-memory windows (``DISTNN_MPI_SHARED_MEMORY=0`` turns them off)."""
    return os.environ.get("DISTNN_MPI_SHARED_MEMORY", "1").strip().lower() not in ("0", "false", "no", "off")


class _MPIHandle(Handle):
    """A started MPI request; ``finish`` turns the completed buffers into the result."""

    __slots__ = ("comm", "req", "what", "finish", "done", "result")

    def __init__(self, comm, req, what, finish):
        self.comm, self.req, self.what, self.finish = comm, req, what, finish
        self.done, self.result = False, None

    def test(self) -> bool:
        if not self.done and self.req.Test():
            self._complete()
        return self.done

    def wait(self):
        if not self.done:
            self.comm._wait(self.req, self.what)
            self._complete()
        return self.result

    def _complete(self):
        self.done = True
        self.result = self.finish()
        self.finish = None


class _MPIPersistentAllreduce(_MPIHandle, PersistentAllreduce):
    """An MPI-4 persistent allreduce (``MPI_Allreduce_init``): the object is its own handle, restarted each round."""

    def __init__(self, comm, array, op, req):
        PersistentAllreduce.__init__(self, comm, array, op)
        _MPIHandle.__init__(self, comm, req, None, None)
        self.done, self.result = True, array
        self._device = get_array_module(array) is not np

    def start(self):
        comm = self.comm
        comm._check_live()  # (the request itself would still run: MPI frees its communicator only after it)
        if self._device:  # MPI reads the device buffer outside any stream: finish writing it first
            get_array_module(self.array).cuda.get_current_stream().synchronize()
        comm._seq += 1
        self.what = (comm._seq, self.op, self.array.shape, self.array.dtype)
        self.done, self.finish = False, self._finish
        self.req.Start()
        return self

    def _finish(self):
        if self.op == "mean":
            self.array /= self.comm.size
        return self.array

    def free(self) -> None:
        if self.req is not None and self.done:
            # A garbage-collected DataParallel frees its requests late, perhaps after MPI_Finalize or
            # from another thread (the collector runs where it runs): then only with THREAD_MULTIPLE.
            mpi = _mpi()
            if not mpi.Is_finalized() and (threading.current_thread() is threading.main_thread()
                                           or mpi.Query_thread() == mpi.THREAD_MULTIPLE):
                self.req.Free()
            self.req = None


class MPICommunicator(Communicator):
    """A group of MPI processes (default: ``COMM_WORLD``).

    Construction is collective. ``timeout`` (seconds, None = wait forever)
    defaults to ``DISTNN_COLLECTIVE_TIMEOUT``. For ``COMM_WORLD`` with more
    than one rank, an uncaught exception on any rank aborts the job
    (``abort_on_exception=False`` turns that off). When every rank is on one
    host, :meth:`allreduce_buffer` reduces in shared memory
    (:mod:`.shared_memory`) unless ``shared_memory=False`` (default:
    ``DISTNN_MPI_SHARED_MEMORY``, on).
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

    def _host_buffer(self, array, send_only: bool = False):
        """(buffer MPI can use, function that copies it back into ``array``); ``send_only``: nothing comes
        back (a broadcast's root), so a read-only ``array`` is fine."""
        xp = get_array_module(array)
        if xp is not np:
            xp.cuda.get_current_stream().synchronize()
            if self.cuda_aware and array.flags.c_contiguous:
                return array, lambda: None
            host = xp.asnumpy(array)
            return host, (lambda: None) if send_only else (lambda: array.__setitem__(Ellipsis, xp.asarray(host)))
        if array.flags.c_contiguous and array.flags.writeable:
            return array, lambda: None
        if send_only:
            return np.array(array, order="C"), lambda: None  # (a writable copy: MPI's bcast takes one on every rank)
        host = np.ascontiguousarray(array)
        return host, lambda: array.__setitem__(Ellipsis, host)

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

    # -------------------------------------------------------------- arrays
    def iallreduce(self, array, op: str = "sum") -> Handle:
        self._check_live()
        array = reducible(array, op)
        if self.check_calls:
            self._check_call(f"allreduce(op={op!r}, shape={tuple(array.shape)}, dtype={array.dtype})")
        self._seq += 1  # (the hot path: the description is formatted only if it is ever reported)
        what = (self._seq, op, array.shape, array.dtype)
        buf, writeback = self._host_buffer(array)
        req = self._comm.Iallreduce(_mpi().IN_PLACE, buf, _OPS[op])
        size = self.size

        def finish():
            if op == "mean":
                buf[...] /= size
            writeback()
            return array

        return _MPIHandle(self, req, what, finish)

    def allreduce_init(self, array, op: str = "sum") -> PersistentAllreduce:
        self._check_live()
        array = reducible(array, op)
        if self.check_calls:  # (once, at setup: each start of the persistent allreduce is not compared)
            self._check_call(f"allreduce_init(op={op!r}, shape={tuple(array.shape)}, dtype={array.dtype})")
        # MPI needs the very buffer every round: host arrays it can use directly, or device
        # arrays with a CUDA-aware MPI. Anything else falls back to an iallreduce per start.
        if get_array_module(array) is np:
            direct = array.flags.c_contiguous and array.flags.writeable
        else:
            direct = self.cuda_aware and array.flags.c_contiguous
        init = getattr(self._comm, "Allreduce_init", None)
        if direct and init is not None and _persistent_ok():
            # Setting up may synchronize (no deadline): meet in a barrier that has one first.
            self._wait(self._comm.Ibarrier(), self._next(f"allreduce_init(shape={tuple(array.shape)})"))
            return _MPIPersistentAllreduce(self, array, op, init(_mpi().IN_PLACE, array, _OPS[op]))
        return PersistentAllreduce(self, array, op)

    def allreduce_buffer(self, size: int, dtype, op: str = "sum", xp=np) -> PersistentAllreduce:
        self._check_live()
        if self.check_calls:
            self._check_call(f"allreduce_buffer(op={op!r}, size={int(size)}, dtype={np.dtype(dtype)})")
        if self._arena is None or xp is not np or int(size) == 0:
            return super().allreduce_buffer(size, dtype, op, xp)
        check_op(op, np.zeros(0, dtype=dtype))
        shared = self._arena.allreduce_buffer(int(size), dtype, op)
        if not isinstance(shared, str):
            return shared
        if not self._warned_shm:  # (the reason is agreed: every rank warns alike)
            self._warned_shm = True
            warnings.warn(f"distnn: {shared}: this buffer and others like it are reduced with MPI_Allreduce "
                          "(slower on one host)", RuntimeWarning, stacklevel=3)
        return super().allreduce_buffer(size, dtype, op, xp)

    def iallgather(self, array) -> Handle:
        self._check_live()
        array = as_array(array)
        out = get_array_module(array).empty((self.size,) + tuple(array.shape), dtype=array.dtype)
        return self._exchange("allgather", self._comm.Iallgather, array, out)

    def ialltoall(self, array) -> Handle:
        self._check_live()
        array = check_alltoall(as_array(array), self.size)
        return self._exchange("alltoall", self._comm.Ialltoall, array, get_array_module(array).empty_like(array))

    def _exchange(self, name, start, array, out) -> Handle:
        """Start ``start(send, recv)`` (Iallgather, Ialltoall) from ``array`` into ``out``; wait() returns ``out``."""
        what = self._begin(f"{name}(shape={tuple(array.shape)}, dtype={array.dtype})")
        send, _ = self._host_buffer(array)
        recv, writeback = self._host_buffer(out)
        req = start(send, recv)

        def finish():
            writeback()
            return out

        return _MPIHandle(self, req, what, finish)

    def wait_all(self, handles) -> None:
        pending = [h for h in handles if h is not None and not h.done]
        if not pending:
            return
        if len(pending) == 1:
            pending[0].wait()
            return
        pending.reverse()  # complete in start order; popping from the end is cheap

        def all_done():
            # Each Test lets MPI progress every started collective. (Not Testall: MPICH 5.0
            # fails it with MPI_ERR_IN_STATUS when the list holds persistent requests.)
            while pending and pending[-1].test():
                pending.pop()
            return not pending

        self._wait_until(all_done, lambda: pending[-1].what)

    def broadcast(self, array, root: int = 0):
        self._check_live()
        self._check_root(root)
        array = as_array(array)
        what = self._begin(f"broadcast(root={root}, shape={tuple(array.shape)}, dtype={array.dtype})")
        buf, writeback = self._host_buffer(array, send_only=self.rank == root)
        self._wait(self._comm.Ibcast(buf, root=root), what)
        writeback()
        return array

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
        self._comm.Free()
        self._diag.Free()
        self._answered = []  # (MPI completes sends still pending on a freed communicator)

    def abort(self, code: int = 1) -> None:
        """End every process of the job now (does not return)."""
        _abort_world(_mpi().COMM_WORLD, code)

    # -------------------------------------------------------- the watchdog
    def _where(self, what) -> tuple:
        """(rank, collectives started, the one we wait in, host, pid): what a timeout report says of a rank."""
        if isinstance(what, tuple):  # an allreduce's (seq, op, shape, dtype)
            what = f"collective #{what[0]} allreduce(op={what[1]!r}, shape={tuple(what[2])}, dtype={what[3]})"
        return (self.rank, self._seq, what, socket.gethostname(), os.getpid())

    def _watch_exits(self, key: str, world_ranks) -> None:
        self._exit_key, self._world_ranks = key, tuple(world_ranks)
        exit_watch.watch(self)

    def _waiting_long(self, what) -> None:
        """Called now and then while a collective waits long: a peer that has exited ends the job,
        and timeout reports of other ranks get their answer."""
        if self._exit_key is not None:
            gone = exit_watch.exited_member(self)
            if gone is not None:
                self._peer_exited(self._where(what)[2], *gone)
            died = exit_watch.died_member(self)
            if died is not None:
                self._peer_died(self._where(what)[2], *died)
        self._answer_reports(what)

    def _peer_exited(self, what, world_rank, host, pid, started) -> None:
        """Report that world rank ``world_rank`` ended its process and will never join ``what``; abort."""
        MPI = _mpi()
        me = MPI.COMM_WORLD.Get_rank()
        size = MPI.COMM_WORLD.Get_size()
        status = exit_watch.abort_status(world_rank)  # the job ends with the rank's own status (else 1)
        _report_and_abort(
            f"[distnn] rank {me} of {size}: rank {world_rank} ({host} pid {pid}) has ended its process "
            f"(sys.exit, or the end of its script) after starting {started} collective(s) here, so {what} "
            f"can never complete; aborting all {size} ranks"
            + (f" with its exit status {status}" if status != 1 else "") + ". Every rank must run the same "
            "collectives: a rank that stops early must make the others stop too.\n", status)

    def _peer_died(self, what, world_rank, pid) -> None:
        """Report that world rank ``world_rank``'s process (on this host) ended without an exit notice; abort."""
        MPI = _mpi()
        me, size = MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()
        _report_and_abort(
            f"[distnn] rank {me} of {size}: rank {world_rank} ({socket.gethostname()} pid {pid}) has died "
            f"(killed by a signal, such as kill -9 or the out-of-memory killer, or crashed) without a word, so "
            f"{what} can never complete; aborting all {size} ranks.\n", 1)

    def _answer_reports(self, what) -> None:
        """While waiting long: tell each rank whose collective timed out where we wait.

        Its report then lists this rank as waiting in a collective (perhaps a
        different one) rather than as missing, even when our own timeout has
        not come yet.
        """
        MPI = _mpi()
        status = MPI.Status()
        while self._diag.iprobe(source=MPI.ANY_SOURCE, tag=_DIAG_TAG, status=status):
            src = status.Get_source()
            self._heard[src] = self._diag.recv(source=src, tag=_DIAG_TAG)
            self._answered.append(self._diag.isend(self._where(what), dest=src, tag=_DIAG_TAG))

    def _timed_out(self, what, waited: float) -> None:
        """Learn which ranks are missing, print a report, abort the job. Does not return."""
        MPI = _mpi()
        me = self._where(what)
        what = me[2]
        # Every rank that times out tells all others where it waits, and ranks waiting long answer
        # (_answer_reports); ranks that never answer within the grace period are in no collective.
        sends = [self._diag.isend(me, dest=r, tag=_DIAG_TAG) for r in range(self.size) if r != self.rank]
        answers = {**self._heard, self.rank: me}
        end = time.monotonic() + report_grace(self.timeout)
        status = MPI.Status()
        while len(answers) < self.size and time.monotonic() < end:
            if self._diag.iprobe(source=MPI.ANY_SOURCE, tag=_DIAG_TAG, status=status):
                msg = self._diag.recv(source=status.Get_source(), tag=_DIAG_TAG)
                answers[msg[0]] = msg
            else:
                time.sleep(0.01)
        missing = [r for r in range(self.size) if r not in answers]
        where = "" if self._is_world else f" (world rank {self.world_rank})"  # a sub-communicator's ranks differ
        lines = [f"[distnn] rank {self.rank} of {self.size}{where}: {what} did not complete within {waited:.1f} s "
                 f"(DISTNN_COLLECTIVE_TIMEOUT={self.timeout}).",
                 f"[distnn] missing ranks (in no collective: no answer): {missing}"]
        for r in sorted(answers):
            _, seq, w, host, pid = answers[r]
            lines.append(f"[distnn]   rank {r} ({host} pid {pid}) waits in {w}")
        if len({answers[r][2] for r in answers}) > 1:
            lines.append("[distnn] ranks disagree about the collective: a collective was skipped or reordered "
                         "(e.g. called inside `if rank == 0`)")
        here = os.path.dirname(os.path.abspath(__file__))
        user_frames = [f for f in traceback.extract_stack()[-16:] if not f.filename.startswith(here)]
        lines.append("[distnn] waiting here:\n" + "".join(traceback.format_list(user_frames)))
        lines.append("[distnn] aborting the MPI job")
        sys.stderr.write("\n".join(lines) + "\n")
        sys.stderr.flush()
        time.sleep(FORWARD_GRACE_S)  # let the launcher forward the report before the abort
        del sends
        _abort_world(MPI.COMM_WORLD, 1)
