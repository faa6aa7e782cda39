"""The array collectives of :class:`~distnn.distributed.mpi_comm.MPICommunicator`: allreduce (nonblocking,
persistent, and into a buffer reduced in shared memory on one host), allgather, alltoall, broadcast, and
waiting on several at once, with the host buffers they stage device or non-contiguous arrays through.

Apart from :mod:`.mpi_comm` (construction, the waits and call checks every collective uses, the object
collectives, groups and the abort) because these are what moves arrays. A
:class:`~.comm_base.Communicator` subclass the communicator derives from, so comm_base's profiling
wraps these methods as it wraps any backend's own. MPI and its reduction ops are looked up in
:mod:`.mpi_comm` when called, where MPI is imported on first use.
"""
from __future__ import annotations

import warnings

import numpy as np

from distnn.backend import get_array_module

from .comm_base import (
    Communicator, Handle, PersistentAllreduce, as_array, check_alltoall, check_op, reducible,
)
from .mpi_env import _persistent_ok
from .mpi_handles import _MPIHandle, _MPIPersistentAllreduce


def _mpi():
    """mpi4py's MPI module (:func:`.mpi_comm._mpi`, looked up there when called: it imports MPI on first use)."""
    from .mpi_comm import _mpi

    return _mpi()


def _op(op: str):
    """MPI's reduction for ``op`` (``mpi_comm._OPS``, filled in when MPI is imported: by now it is)."""
    from .mpi_comm import _OPS

    return _OPS[op]


class MPIArrayCollectives(Communicator):
    """:class:`~.mpi_comm.MPICommunicator`'s array collectives (it derives from this class; they use its
    ``_comm``, ``_wait``/``_wait_until``, ``_begin``/``_next``, ``_check_call``, ``_arena`` and ``cuda_aware``)."""

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

    def iallreduce(self, array, op: str = "sum") -> Handle:
        self._check_live()
        array = reducible(array, op)
        if self.check_calls:
            self._check_call(f"allreduce(op={op!r}, shape={tuple(array.shape)}, dtype={array.dtype})")
        self._seq += 1  # (the hot path: the description is formatted only if it is ever reported)
        what = (self._seq, op, array.shape, array.dtype)
        buf, writeback = self._host_buffer(array)
        req = self._comm.Iallreduce(_mpi().IN_PLACE, buf, _op(op))
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
            return _MPIPersistentAllreduce(self, array, op, init(_mpi().IN_PLACE, array, _op(op)))
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
