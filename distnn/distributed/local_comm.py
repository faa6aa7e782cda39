"""``LocalCommunicator``: the size-1 group of a plain ``python`` run.

Every collective is the identity (a reduction over one rank is the array
itself). It never imports mpi4py, so single-process training needs no MPI.
It holds nothing to release, but a freed one refuses collectives as the MPI
communicator does (a program that runs here also runs under mpiexec).
"""
from __future__ import annotations

import copy

from distnn.backend import get_array_module

from .comm_base import CompletedHandle, Communicator, as_array, check_alltoall, check_color, reducible


class LocalCommunicator(Communicator):
    """One rank: rank 0 of 1, local rank 0 of 1."""

    backend = "local"

    def __init__(self):
        self.rank, self.size, self.local_rank, self.local_size = 0, 1, 0, 1

    def iallreduce(self, array, op: str = "sum"):
        self._check_live()
        array = reducible(array, op)
        return CompletedHandle(array)

    def allreduce(self, array, op: str = "sum"):
        self._check_live()
        array = reducible(array, op)
        return array

    def iallgather(self, array):
        self._check_live()
        array = as_array(array)
        return CompletedHandle(get_array_module(array).expand_dims(array, 0).copy())

    def ialltoall(self, array):
        self._check_live()
        return CompletedHandle(check_alltoall(as_array(array), 1).copy())

    def broadcast(self, array, root: int = 0):
        self._check_live()
        self._check_root(root)
        return as_array(array)

    def broadcast_object(self, obj, root: int = 0):
        self._check_live()
        self._check_root(root)
        return obj

    def allgather_object(self, obj) -> list:
        self._check_live()
        # A copy, as MPI would give: callers may mutate the list's items without touching obj.
        return [copy.deepcopy(obj)]

    def barrier(self) -> None:
        self._check_live()

    def split(self, color, key: int = 0):
        self._check_live()
        check_color(color)
        return None if color is None else LocalCommunicator()
