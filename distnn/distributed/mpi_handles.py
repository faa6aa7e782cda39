"""The request handles of :class:`~distnn.distributed.mpi_comm.MPICommunicator`: a started nonblocking
collective, and an MPI-4 persistent allreduce restarted each round."""
from __future__ import annotations

import threading

import numpy as np

from distnn.backend import get_array_module

from .comm_base import Handle, PersistentAllreduce


def _mpi():
    """mpi4py's MPI module (:func:`.mpi_comm._mpi`, looked up there when called: it imports MPI on first use)."""
    from .mpi_comm import _mpi

    return _mpi()


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
