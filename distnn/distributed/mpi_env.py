"""What an MPI job of distnn learns from its launcher and its MPI library: how many processes were
started (and whether MPI is wired to them), which optional MPI features to use, and the start-up files
MPICH leaves behind. MPI itself is imported on first use, through :func:`.mpi_comm._mpi`."""
from __future__ import annotations

import os
import sys

from distnn._launcher_env import launcher_env
from distnn._threads import mapped_files


def _mpi():
    """mpi4py's MPI module (:func:`.mpi_comm._mpi`, looked up there when called: it imports MPI on first use)."""
    from .mpi_comm import _mpi

    return _mpi()


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
