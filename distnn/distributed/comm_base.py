"""The ``Communicator`` protocol every backend implements, and what they share.

A communicator is one rank's view of a group of ``size`` processes (or
simulated ranks). All collectives must be called by every rank of the group,
in the same order, with matching arguments; nothing is ever sent by one rank
alone. Arrays are numpy or cupy; reductions are elementwise.

===============================  =============================================
``rank``, ``size``               this rank's index and the group size
``local_rank``, ``local_size``   index and count of the ranks on this host
``allreduce(a, op)``             ``op`` in sum/mean/max/min; in place, returns ``a``
``iallreduce(a, op)``            nonblocking allreduce; ``handle.wait()`` returns ``a``
``allreduce_init(a, op)``        persistent allreduce of ``a``: ``start()`` each round
``allreduce_buffer(n, dtype)``   the same, of a buffer the communicator allocates
``iallgather(a)``                nonblocking allgather; ``wait()`` returns (size, *a.shape)
``broadcast(a, root)``           in place, returns ``a``
``allgather(a)``                 (size, *a.shape) array; every rank passes the same shape
``broadcast_object(o, root)``    any picklable object
``allgather_object(o)``          list of every rank's object, in rank order
``barrier()``                    wait for everyone
``split(color, key)``            sub-communicator of the ranks with the same color
``free()``                       release a communicator (a split) when done with it
===============================  =============================================

A collective that does not complete within the collective timeout (env
``DISTNN_COLLECTIVE_TIMEOUT``, seconds, default 300; ``0`` disables it) is
reported with the ranks that never arrived (see :mod:`.watchdog`).

While :mod:`distnn.profiler` records, every collective of a backend is a range named
``<backend>:<collective>`` (``mpi:allreduce``, ``inprocess:barrier``), as torch's ``nccl:all_reduce``;
a nonblocking one's range covers its start only (what follows is in ``wait_all`` or the caller's wait).
"""
from __future__ import annotations

import functools

import numpy as np

from distnn.autograd import profiler_record as _profiler
from distnn.backend import get_array_module, unwrap

REDUCE_OPS = ("sum", "mean", "max", "min")


class CollectiveError(RuntimeError):
    """A collective could not complete (mismatched calls, a failed or vanished rank)."""


class CollectiveTimeoutError(CollectiveError):
    """A collective did not complete in time; the message names the ranks that never arrived."""


class CollectiveAbortedError(CollectiveError):
    """Raised on the ranks of a group that another rank's failure aborted."""


class CommunicatorFreedError(CollectiveError):
    """A collective on a communicator after its ``free()``."""


def check_alltoall(array, size: int):
    """``array`` if its leading dimension is ``size`` (one row per destination rank), else a clear error."""
    if tuple(array.shape[:1]) != (size,):
        raise ValueError(f"alltoall: expected an array of shape ({size}, ...) on {size} rank(s), got "
                         f"{tuple(array.shape)}")
    return array


def check_op(op: str, array) -> None:
    """Raise a clear error for an unknown reduction, or one the array's dtype does not have.

    The rules are MPI's, enforced on every backend alike (so what runs in one
    process also runs under mpiexec): ``sum`` and ``mean`` for numbers,
    ``max``/``min`` for integers and reals; none for booleans.
    """
    if op not in REDUCE_OPS:
        raise ValueError(f"unknown reduction op {op!r}; expected one of {', '.join(REDUCE_OPS)}")
    kind = array.dtype.kind
    if kind == "b":
        raise TypeError(f"allreduce(op={op!r}) of a bool array: MPI has no such reduction; cast it to an "
                        "integer dtype first (sum counts the True values, max is 'any', min is 'all')")
    if op == "mean" and kind not in "fc":
        raise TypeError(f"allreduce(op='mean') needs a floating-point array, got dtype {array.dtype} "
                        "(reduce with op='sum' and divide instead)")
    if op in ("max", "min") and kind == "c":
        raise TypeError(f"allreduce(op={op!r}) is not defined for complex arrays (dtype {array.dtype})")


def check_color(color) -> None:
    """``split``'s color: an int (or None to take part in no group), as MPI requires."""
    if color is not None and not isinstance(color, (int, np.integer)):
        raise TypeError(f"split: color must be an int or None, got {color!r}")


def as_array(x):
    """``x`` as a numpy/cupy array (Tensors are looked through; scalars become 0-d arrays).

    Only what MPI can send: numbers or booleans in the machine's byte order, refused alike on every
    backend (so what runs in one process also runs under mpiexec; the ``*_object`` collectives take
    anything picklable).
    """
    if isinstance(x, np.generic):  # (before .data: a numpy scalar's .data is a read-only memoryview)
        x = np.asarray(x)
    else:
        x = unwrap(x)  # (not getattr(x, "data"): a cupy array's .data is its memory pointer)
        if isinstance(x, (int, float, bool, list, tuple)) or np.isscalar(x):
            x = np.asarray(x)
    dtype = getattr(x, "dtype", None)
    if dtype is not None and dtype.kind not in "biufc":
        raise TypeError(f"collectives take arrays of numbers or booleans; MPI has no datatype for dtype {dtype} "
                        "(use the *_object collectives for other Python values)")
    if dtype is not None and not dtype.isnative:
        raise TypeError(f"collectives take arrays in this machine's byte order; got dtype {dtype.str} "
                        f"(convert with .astype({dtype.newbyteorder('=').str!r}))")
    return x


def reducible(array, op: str):
    """``array`` checked for an allreduce with ``op``; a read-only one is copied (the result cannot go
    into it in place), on every backend alike."""
    array = as_array(array)
    check_op(op, array)
    if not getattr(array.flags, "writeable", True):
        array = array.copy()
    return array


_UFUNC_NAMES = {"sum": "add", "mean": "add", "max": "maximum", "min": "minimum"}


def reduce_in_order(arrays, op: str, out=None):
    """Reduce a list of same-shape arrays in list (rank) order: same result on every rank, every run.

    Into ``out`` when given (a new array otherwise); ``out`` may be the first
    or second array, never a later one (it is overwritten by the first step).
    """
    xp = get_array_module(arrays[0])
    ufunc = getattr(xp, _UFUNC_NAMES[op])
    if out is None:
        out = arrays[0].copy()
        rest = arrays[1:]
    elif len(arrays) > 1:
        ufunc(arrays[0], arrays[1], out=out)
        rest = arrays[2:]
    else:
        out[...] = arrays[0]
        rest = ()
    for a in rest:
        ufunc(out, a, out=out)
    if op == "mean":
        out /= len(arrays)
    return out


class Handle:
    """A pending nonblocking collective: ``wait()`` returns its result, ``test()`` says if it is done."""

    def wait(self):  # pragma: no cover - interface
        raise NotImplementedError

    def test(self) -> bool:  # pragma: no cover - interface
        raise NotImplementedError


class CompletedHandle(Handle):
    """A collective that finished when it was started (size-1 groups)."""

    __slots__ = ("result",)

    def __init__(self, result):
        self.result = result

    def wait(self):
        return self.result

    def test(self) -> bool:
        return True


class PersistentAllreduce:
    """An allreduce of one fixed array, set up once and started many times (e.g. every training step).

    ``start()`` begins the next round and returns a :class:`Handle`; the
    array must not be touched until that handle completes. This generic
    version starts an ordinary ``iallreduce`` each time; the MPI backend
    uses MPI-4 persistent collectives where the library has them (setup
    paid once, each start is cheap). Creating one is collective, like any
    collective call. ``free()`` releases it (when no round is running).
    """

    def __init__(self, comm, array, op: str = "sum"):
        self.comm, self.array, self.op = comm, array, op

    def start(self) -> Handle:
        return self.comm.iallreduce(self.array, self.op)

    def free(self) -> None:
        pass


# the collectives a profiler sees (module docstring): each backend's own definitions are wrapped
_PROFILED = ("allreduce", "iallreduce", "allgather", "iallgather", "ialltoall", "broadcast", "broadcast_object",
             "allgather_object", "barrier", "wait_all")


def _profiled(name: str, method):
    """``method`` recorded as the range ``<backend>:<name>`` while a profiler records (one flag test if not)."""
    @functools.wraps(method)
    def collective(self, *args, **kwargs):
        if not _profiler.recording:
            return method(self, *args, **kwargs)
        shapes = [list(getattr(args[0], "shape", ()))] if args and name not in ("wait_all", "barrier") else None
        with _profiler.Range(f"{self.backend}:{name}", shapes=shapes):
            return method(self, *args, **kwargs)
    return collective


class Communicator:
    """Base class of the MPI, local and in-process communicators (see the module docstring).

    Subclasses set ``rank``, ``size``, ``local_rank``, ``local_size`` and
    ``backend`` and implement the collectives. ``allreduce`` has a default
    implementation on top of ``iallreduce``.
    """

    backend = "abstract"
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    _world_rank = None
    _freed = False
    _owned_splits = ()  # splits made of this communicator for distnn's own use, freed with it

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in _PROFILED:  # (a backend's own definitions only: an inherited one is wrapped already)
            method = cls.__dict__.get(name)
            if method is not None:
                setattr(cls, name, _profiled(name, method))

    @property
    def world_rank(self) -> int:
        """This process's rank in the whole job: ``rank``, except in a group made by :meth:`split`."""
        return self.rank if self._world_rank is None else self._world_rank

    # --------------------------------------------------------------- arrays
    def allreduce(self, array, op: str = "sum"):
        """Reduce ``array`` elementwise over all ranks, in place where possible; returns the result."""
        return self.iallreduce(array, op).wait()

    def iallreduce(self, array, op: str = "sum") -> Handle:  # pragma: no cover - interface
        """Start an allreduce; ``handle.wait()`` completes it and returns the reduced array."""
        raise NotImplementedError

    def allreduce_init(self, array, op: str = "sum") -> PersistentAllreduce:
        """Prepare an allreduce of ``array`` (fixed buffer, in place) to be started repeatedly. Collective."""
        self._check_live()
        array = as_array(array)
        check_op(op, array)
        return PersistentAllreduce(self, array, op)

    def allreduce_buffer(self, size: int, dtype, op: str = "sum", xp=np) -> PersistentAllreduce:
        """A persistent allreduce of a zeroed 1-D buffer it allocates itself (its ``.array``). Collective.

        Every rank passes the same size and dtype. Where a backend can place
        the buffer so that it reduces faster, it does: the MPI communicator,
        when all its ranks share a host, allocates it in shared memory
        (:mod:`.shared_memory`). ``free()`` releases it.
        """
        return self.allreduce_init(xp.zeros(int(size), dtype=dtype), op)

    def iallgather(self, array) -> Handle:  # pragma: no cover - interface
        """Start an allgather of same-shape arrays; ``wait()`` returns a (size, *shape) array."""
        raise NotImplementedError

    def ialltoall(self, array) -> Handle:  # pragma: no cover - interface
        """Start an all-to-all of ``array`` (shape (size, ...)): row ``j`` goes to rank ``j``;
        ``wait()`` returns a (size, ...) array whose row ``i`` came from rank ``i``."""
        raise NotImplementedError

    def wait_all(self, handles) -> None:
        """Complete every handle in ``handles`` (None entries are skipped); their ``wait()`` then returns at once."""
        for h in handles:
            if h is not None:
                h.wait()

    def allgather(self, array):
        """Every rank's ``array`` (same shape and dtype everywhere) stacked in rank order."""
        return self.iallgather(array).wait()

    def broadcast(self, array, root: int = 0):  # pragma: no cover - interface
        """Copy ``root``'s ``array`` into ``array`` on every rank (in place); returns it."""
        raise NotImplementedError

    # -------------------------------------------------------------- objects
    def broadcast_object(self, obj, root: int = 0):  # pragma: no cover - interface
        """``root``'s object on every rank (pickled; other ranks' ``obj`` is ignored)."""
        raise NotImplementedError

    def allgather_object(self, obj) -> list:  # pragma: no cover - interface
        """List of every rank's object, in rank order."""
        raise NotImplementedError

    # ---------------------------------------------------------------- group
    def barrier(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def split(self, color, key: int = 0):  # pragma: no cover - interface
        """A communicator of the ranks that passed the same ``color``, ordered by (key, rank).

        ``color=None`` means "in no group" and returns None. Collective.
        Call :meth:`free` on the result when done with it.
        """
        raise NotImplementedError

    def free(self) -> None:
        """Release this communicator: collective, every rank of the group calls it, with no collective of
        it still running.

        What is released depends on the backend: under MPI, the communicator's own MPI communicators and
        its shared-memory windows, which are scarce (MPICH has room for about 2000 communicators in a
        process, and each split holds two: a loop of splits that are never freed fails after about a
        thousand). The splits distnn made of this communicator for its own use (DataParallel's,
        SyncBatchNorm's) are freed with it: a wrapper still on it can take no more steps. A
        shared-memory buffer some rank still uses (a DataParallel not dropped, a gradient still viewing
        it) stays allocated for the rest of the process, with a warning: freeing memory under a live
        array would crash the process.

        Afterwards every collective raises :class:`CommunicatorFreedError`; calling ``free()`` again
        does nothing. Nothing frees a communicator by itself (no finalizer): the garbage collector runs
        at different moments on different ranks, and freeing is collective.
        """
        if self._freed:
            return
        for split in self._owned_splits:  # (made collectively: the same order on every rank)
            split.free()
        self._owned_splits = ()
        self._release()
        self._freed = True

    def _release(self) -> None:
        """The backend's part of :meth:`free` (collective): release what this communicator holds."""

    def _own_split(self, split) -> None:
        """Free ``split``, made of this communicator for distnn's own use, when this communicator is freed
        (nothing else frees it: it serves whatever wrapper needs it next)."""
        self._owned_splits = (*self._owned_splits, split)

    def _check_live(self) -> None:
        """Raise :class:`CommunicatorFreedError` once this communicator has been freed."""
        if self._freed:
            raise CommunicatorFreedError(f"{self!r} was freed (free() was called on it): it can make no more "
                                         "collectives")

    # -------------------------------------------------------------- helpers
    @property
    def is_root(self) -> bool:
        """True on rank 0 (the rank that writes files and prints)."""
        return self.rank == 0

    def _check_root(self, root: int) -> None:
        if not 0 <= root < self.size:
            raise ValueError(f"root {root} is not a rank of this communicator of size {self.size}")

    def __repr__(self):
        return (f"<{type(self).__name__} rank {self.rank}/{self.size} "
                f"(local {self.local_rank}/{self.local_size})>")


for _name in ("allreduce", "wait_all"):  # the base class's own defaults, which a backend may inherit
    setattr(Communicator, _name, _profiled(_name, Communicator.__dict__[_name]))
