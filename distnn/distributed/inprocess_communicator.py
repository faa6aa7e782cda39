"""``InProcessCommunicator``: one simulated rank's communicator (collectives on arrays and objects, splits).

Its collectives go through the shared table of :mod:`distnn.distributed.inprocess_group`; reductions
run in rank order on every rank, so the result is identical on all ranks and reproducible run to run.
:func:`~distnn.distributed.inprocess_comm.simulate` runs the ranks; the overview is
:mod:`distnn.distributed.inprocess_comm`'s.
"""
from __future__ import annotations

import pickle

from distnn.backend import get_array_module

from .comm_base import Communicator, Handle, as_array, check_alltoall, check_color, reduce_in_order, reducible
from .inprocess_group import _Group, _Rendezvous
from .watchdog import collective_timeout


class InProcessCommunicator(_Rendezvous, Communicator):
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

