"""Data parallelism: communicators, gradient averaging, sharded sampling, synced batch norm, metrics.

Every rank runs the same program on its own shard of the data::

    import distnn.distributed as dist

    comm = dist.init()                      # MPI under mpiexec/srun, else a 1-rank LocalCommunicator
    model = dist.DataParallel(model, comm)  # checks replicas match, broadcasts rank 0's weights
    sampler = dist.DistributedSampler(len(data), comm, shuffle=True, seed=0)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for idx in batches(sampler):
            loss = loss_fn(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()                 # gradients are averaged when this returns
            optimizer.step()

``simulate(n, fn)`` runs ``fn(comm)`` on n simulated ranks (threads) in one
process, for tests and debugging. Training code never imports mpi4py; this
package imports it only when an MPI communicator is made.
"""
from __future__ import annotations

import os
import threading

from .comm_base import (
    CollectiveAbortedError, CollectiveError, CollectiveTimeoutError, Communicator, CommunicatorFreedError, Handle,
    REDUCE_OPS,
)
from .inprocess_comm import InProcessCommunicator, current_simulated_comm, simulate
from .local_comm import LocalCommunicator

_lock = threading.Lock()
_world = None

_BACKENDS = ("auto", "mpi", "local")


def init(backend: str = "auto") -> Communicator:
    """The communicator of this process (idempotent: later calls return the same one, until it is freed).

    ``"auto"`` picks MPI when an MPI launcher started more than one process
    (mpiexec/mpirun, srun, ...: detected from their environment variables, or
    from mpi4py being initialized with ``COMM_WORLD.size > 1``), else a
    :class:`LocalCommunicator`, which never imports mpi4py. ``"mpi"`` forces
    MPI, ``"local"`` forces the single-process communicator; ``DISTNN_BACKEND``
    (``auto``/``mpi``/``local``) sets what ``"auto"`` means, e.g. ``local`` for
    independent single-process runs that one launcher starts (a sweep under
    ``srun -n 4``). Inside
    :func:`simulate`, ``init()`` returns the simulated rank's communicator;
    an explicit ``"mpi"`` or ``"local"`` there is a RuntimeError (the rank
    cannot have what it asked for, and handing it the simulated communicator
    instead would hide that), as asking a process for another backend than
    its own is.
    """
    global _world
    if backend not in _BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(_BACKENDS)}")
    sim = current_simulated_comm()
    if sim is not None:
        if backend != "auto":
            raise RuntimeError(_not_in_simulate(backend, sim))
        return sim
    with _lock:
        if _world is None or _world._freed:  # (after its free(), a new one: as PyTorch's init after destroy)
            _world = _create(_backend_from_env() if backend == "auto" else backend)
        elif backend != "auto" and _world.backend != backend:
            raise RuntimeError(f"distnn.distributed.init({backend!r}): this process already uses the "
                               f"{_world.backend!r} communicator; init() is once per process")
        return _world


def _not_in_simulate(backend: str, sim) -> str:
    why = ("its ranks are threads of one process, which talk in-process, not through MPI; run the script "
           "under mpiexec for MPI" if backend == "mpi" else
           "a one-rank communicator there would silently take this rank out of its simulated group")
    return (f"distnn.distributed.init({backend!r}) called inside simulate() (on simulated rank {sim.rank} of "
            f"{sim.size}): {why}; call init() (backend 'auto') to get this rank's communicator")


def _backend_from_env() -> str:
    """``DISTNN_BACKEND`` (default ``auto``): what ``init()`` with no backend means."""
    value = os.environ.get("DISTNN_BACKEND", "auto").strip().lower() or "auto"
    if value not in _BACKENDS:
        raise ValueError(f"DISTNN_BACKEND={os.environ['DISTNN_BACKEND']!r}: expected one of {', '.join(_BACKENDS)}")
    return value


def _create(backend: str) -> Communicator:
    if backend == "local":
        return LocalCommunicator()
    from .mpi_comm import MPICommunicator, check_launcher_wiring, launcher_world_size

    size = launcher_world_size()
    if backend != "mpi" and (size is None or size <= 1):
        return LocalCommunicator()
    comm = MPICommunicator()
    check_launcher_wiring(comm.size)
    return comm


def is_initialized() -> bool:
    """True once :func:`init` has made this process's communicator."""
    return _world is not None


def __getattr__(name):
    # The heavier pieces load on first use, so `import distnn.distributed` stays cheap.
    lazy = {
        "DataParallel": ".data_parallel", "ReplicaMismatchError": ".replicas", "ForwardRanAhead": ".sync_batchnorm_rounds", "PowerSGDState": ".powersgd",
        "DistributedSampler": ".sampler",
        "SyncBatchNorm": ".sync_batchnorm", "valid_rows": ".sync_batchnorm",
        "Metric": ".metrics", "Mean": ".metrics", "Sum": ".metrics", "Accuracy": ".metrics",
        "reduce_sum_count": ".metrics", "ExactSum": ".exact_sum",
        "MPICommunicator": ".mpi_comm",
        "mpiexec_command": ".launch",
        "Join": ".join", "Joinable": ".join", "JoinHook": ".join", "JoinableOptimizer": ".join",
    }
    if name in lazy:
        import importlib

        return getattr(importlib.import_module(lazy[name], __name__), name)
    raise AttributeError(f"module 'distnn.distributed' has no attribute {name!r}")


__all__ = [
    "init", "is_initialized", "simulate", "Communicator", "Handle", "LocalCommunicator", "InProcessCommunicator",
    "MPICommunicator", "DataParallel", "PowerSGDState", "ReplicaMismatchError", "ForwardRanAhead", "DistributedSampler", "SyncBatchNorm", "valid_rows",
    "Metric", "Mean", "Sum", "Accuracy", "ExactSum", "reduce_sum_count", "mpiexec_command", "CollectiveError", "CollectiveTimeoutError", "CollectiveAbortedError",
    "CommunicatorFreedError", "REDUCE_OPS", "Join", "Joinable", "JoinHook", "JoinableOptimizer",
]
