"""Persistent allreduces through memory the ranks of one host share (MPI-3 shared-memory windows).

MPI's own allreduce moves a buffer between processes of one host through its
message cells: every rank copies its data in, the peer copies it out and adds,
and the result travels back the same way. When every rank of a communicator
is on one host, :meth:`MPICommunicator.allreduce_buffer
<distnn.distributed.mpi_comm.MPICommunicator.allreduce_buffer>` instead
allocates the buffer itself in an MPI shared-memory window
(``MPI_Win_allocate_shared``), where each rank can load the others' buffers.
A round is then:

1. a barrier: every rank has written its buffer;
2. rank ``r`` reduces its ``1/P`` share of the buffer over all ``P`` buffers,
   in rank order, and stores the result into that share of every buffer;
3. a barrier: every share is in every buffer.

Unlike MPI's nonblocking collectives, step 2 needs this rank's own work: every
wait of every MPI communicator advances every round in flight
(:func:`progress_all`), so a rank waiting in any collective still does its
share of the rounds the others wait for.

MPI provides the memory and the barriers (nonblocking, so the watchdog's
deadline applies as to any collective); the reduction is one numpy pass. Each
share is computed once, by one rank, so every rank ends with the same bits.
On the 2-core test machine, 2 ranks, 2.14 MB of gradients: the sum by hand
takes 0.11 ms, DataParallel's whole exchange 0.16 ms, one ``MPI_Allreduce``
0.40 ms (``benchmarks/bench_allreduce.py``).

Windows are freed collectively, so a buffer whose allreduce is freed (a
DataParallel dropped, perhaps by the garbage collector at a different moment
on each rank) is only marked; a later collective allocation frees, in one
agreed order, the windows every rank has let go of and no array still views
(a ``p.grad`` kept from the last step is such a view: freeing the memory under
it would crash the process). Freeing the communicator frees the windows the
same way, all at once (:meth:`SharedArena.free`).
"""
from __future__ import annotations

import os
import sys

import numpy as np

from .comm_base import reduce_in_order


_ALIGN = 64  # bytes: shares start on cache lines, so two ranks never write one line


class SharedAllreduce:
    """A persistent allreduce of one shared-memory buffer (``.array``): its own handle, restarted each round."""

    def __init__(self, comm, arena, segment, op: str):
        self.comm, self.arena, self.op, self.segment = comm, arena, op, segment
        self.array = segment.array
        self.done, self.what = True, None
        self._req = None
        self._phase = 0
        size, rank = comm.size, comm.rank
        n, itemsize = self.array.size, self.array.itemsize
        step = max(1, _ALIGN // itemsize)
        bounds = [min(n, (n * k // size) // step * step) for k in range(size)] + [n]
        share = slice(bounds[rank], bounds[rank + 1])
        views = [b[share] for b in segment.buffers]
        self._mine = views[rank]
        # Rank r >= 2 overwrites its share with the sum of ranks 0 and 1 before it adds its own:
        # it reads its own values from a copy taken first.
        self._scratch = np.empty_like(self._mine) if rank >= 2 else None
        self._inputs = [self._scratch if k == rank and rank >= 2 else v for k, v in enumerate(views)]
        self._others = [v for k, v in enumerate(views) if k != rank]

    def start(self):
        """Begin a round: announce that this rank's buffer is written (the array is off limits until done)."""
        comm = self.comm
        comm._check_live()
        comm._seq += 1
        self.what = (comm._seq, self.op, self.array.shape, self.array.dtype)
        self.done = False
        self.segment.win.Sync()
        self._req, self._phase = self.segment.comm.Ibarrier(), 1
        arena = self.arena
        if not arena.in_flight:
            _busy.append(arena)
        arena.in_flight.append(self)
        return self

    def test(self) -> bool:
        """Advance every round in flight as far as it can go without waiting; True when this one is complete."""
        if not self.done:
            progress_all()
        return self.done

    def _advance(self) -> bool:
        """Advance this round without waiting; True when it is complete."""
        if not self._req.Test():
            return False
        win = self.segment.win
        win.Sync()
        if self._phase == 1:  # everyone has written: reduce our share into every buffer
            self._reduce_share()
            win.Sync()
            self._req, self._phase = self.segment.comm.Ibarrier(), 2
            if not self._req.Test():
                return False
            win.Sync()
        self.done, self._req, self._phase = True, None, 0
        return True

    def wait(self):
        if not self.done:
            self.comm._wait_until(lambda: self.done, lambda: self.what)  # (its polls advance this round)
        return self.array

    def _reduce_share(self) -> None:
        mine = self._mine
        if mine.size == 0:
            return
        if self._scratch is not None:
            self._scratch[...] = mine
        with np.errstate(over="ignore", invalid="ignore"):  # as MPI: an overflow is a value, not a warning
            reduce_in_order(self._inputs, self.op, out=mine)
        for other in self._others:
            other[...] = mine

    def free(self) -> None:
        """Let go of the buffer: its window is freed at a later collective allocation, once no array views it."""
        if self.done and self.segment is not None:
            self.segment.released = True
            self.segment = self.array = self._mine = self._scratch = self._inputs = self._others = None


class _Segment:
    """One window: its communicator, every rank's buffer (this rank's is ``array``)."""

    __slots__ = ("id", "win", "comm", "buffers", "array", "released", "_own_references")

    def __init__(self, id_, win, comm, buffers, rank):
        self.id, self.win, self.comm, self.buffers = id_, win, comm, buffers
        self.array = buffers[rank]
        self.released = False
        # What the reference count reads with only our own references (measured, not assumed: how
        # getrefcount counts its argument differs between Python versions); each view adds one.
        self._own_references = sys.getrefcount(self.array)

    def unused(self) -> bool:
        """Released, and no array views this rank's buffer any more (a gradient kept from the last step would)."""
        return self.released and sys.getrefcount(self.array) <= self._own_references

    def free(self) -> None:  # collective over the segment's communicator
        self.buffers = self.array = None
        self.win.Unlock_all()
        self.win.Free()
        self.comm.Free()


#: every arena with rounds in flight: any communicator's wait advances them all (see progress_all)
_busy = []

#: live windows an arena keeps at most; more buffers take MPI's allreduce (each window holds two of
#: the process's 2048-odd MPI communicator ids: its own and the one MPICH makes for it)
MAX_WINDOWS = 256


def progress_all() -> None:
    """Advance the shared-memory rounds in flight of every communicator of this process.

    Called from every wait of every MPI communicator: two communicators' rounds
    waited in opposite orders on two ranks (legal with MPI's own nonblocking
    collectives) would otherwise wait for each other forever. A blocking MPI
    call made outside distnn does not advance them.
    """
    for arena in list(_busy):
        arena.progress()


class SharedArena:
    """The shared-memory windows of one :class:`MPICommunicator` whose ranks all share a host."""

    def __init__(self, owner, MPI):
        self.owner, self.MPI = owner, MPI
        self.segments = {}
        self.in_flight = []  # started rounds, in start order
        self._next_id = 0

    def progress(self) -> None:
        """Advance every round in flight (a rank must do its part of each: MPI's own progress does not).

        Called from every wait of the communicator, so a rank waiting in any
        collective still does its share of the rounds the others wait for.
        """
        in_flight = self.in_flight
        if in_flight:
            in_flight[:] = [h for h in in_flight if not h._advance()]
            if not in_flight:
                _busy.remove(self)

    def _released(self) -> list:
        """The ids of this rank's windows that it has let go of and no array still views, sorted."""
        return sorted(i for i, s in self.segments.items() if s.unused())

    def _free_released(self, released, every_released) -> None:
        """Free the windows of ``released`` that every rank released too (``every_released``: each rank's
        list, as gathered): the same windows, in the same order, on every rank."""
        for i in sorted(set(released).intersection(*map(set, every_released))):
            self.segments.pop(i).free()

    def free(self) -> int:
        """Free the windows (collective: the owner's ``free()``); returns how many stay allocated.

        Rounds still in flight are completed first. A window that some rank still uses (its allreduce
        not freed, or an array viewing its buffer) is left allocated for the rest of the process, as
        a window is never freed under a live array; the others are freed, in one agreed order.
        """
        owner = self.owner
        if self.in_flight:  # (each poll advances them: see progress_all)
            owner._wait_until(lambda: not self.in_flight, lambda: "free: shared-memory allreduces in flight")
        released = self._released()
        self._free_released(released, owner.allgather_object(released))
        kept = len(self.segments)
        self.segments = {}
        return kept

    def allreduce_buffer(self, size: int, dtype, op: str):
        """A zeroed shared buffer of ``size`` elements and its persistent allreduce, or why not (a str).

        Collective. Every rank must pass the same size and dtype (else a
        ValueError on every rank). Not when /dev/shm has too little room for
        the window (a container's default 64 MB, say: touching memory beyond a
        full tmpfs would kill the process with SIGBUS), or when MAX_WINDOWS
        windows are alive.
        """
        owner, MPI = self.owner, self.MPI
        dtype = np.dtype(dtype)
        # Whole cache lines per rank: MPICH lays the ranks' buffers out back to back, and the
        # shares two ranks write must not meet in one line.
        nbytes = -(-max(1, size) * dtype.itemsize // _ALIGN) * _ALIGN
        # One exchange (deadline-guarded, so also the meeting point before the blocking window
        # calls): what each rank released, the room it sees, what it asks for.
        released = self._released()
        every = owner.allgather_object((released, shm_free_bytes(), size, dtype.str))
        self._free_released(released, [r for r, _, _, _ in every])
        asks = [(n, np.dtype(d)) for _, _, n, d in every]
        if any(a != asks[0] for a in asks):
            raise ValueError("allreduce_buffer: every rank must ask for the same size and dtype; got "
                             + ", ".join(f"rank {r}: {n} x {d}" for r, (n, d) in enumerate(asks)))
        rooms = [free for _, free, _, _ in every if free is not None]
        if rooms and min(rooms) < owner.size * nbytes + SHM_HEADROOM:
            return (f"/dev/shm has {min(rooms) / 2**20:.0f} MiB free, too little for a {owner.size} x "
                    f"{nbytes / 2**20:.1f} MiB shared-memory buffer (enlarge it, e.g. docker run --shm-size=...)")
        if len(self.segments) >= MAX_WINDOWS:  # (the same on every rank: windows come and go in agreement)
            return f"{MAX_WINDOWS} shared-memory buffers are alive (each holds two MPI communicator ids)"
        # A window per buffer, on a communicator of its own: the barriers of buckets in flight
        # together can then never be matched across buckets.
        comm = owner._comm.Dup()
        win = MPI.Win.Allocate_shared(nbytes, dtype.itemsize, comm=comm)
        buffers = [np.frombuffer(win.Shared_query(k)[0], dtype=dtype, count=size) for k in range(owner.size)]
        win.Lock_all(MPI.MODE_NOCHECK)
        segment = _Segment(self._next_id, win, comm, buffers, owner.rank)
        self._next_id += 1
        segment.array[...] = 0
        self.segments[segment.id] = segment
        return SharedAllreduce(owner, self, segment, op)


#: room left free in /dev/shm beside a window (MPI's own segments, other jobs' files)
SHM_HEADROOM = 16 << 20


def shm_free_bytes():
    """Free bytes in /dev/shm, where MPICH places shared-memory windows (None when unknown)."""
    try:
        st = os.statvfs("/dev/shm")
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize
