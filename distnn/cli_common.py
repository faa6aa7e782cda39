"""What the ``distnn`` command's parts share: the usage-error exit status, which rank this process is, and
an error message in one line.

Kept apart from :mod:`distnn.cli` so that the parser and the commands can use it without importing the
driver (which imports them).
"""
from __future__ import annotations

import sys

EXIT_USAGE = 2


def _one_process_only() -> bool:
    """evaluate, predict, datasets and config-keys run in one process: under an MPI launcher, ranks other
    than 0 do nothing (they would repeat the report, or race rank 0 writing the same output file)."""
    return _launcher_rank() != 0


def _launcher_rank() -> int:
    """This process's rank as the MPI launcher announced it (0 when not under a launcher)."""
    from distnn._launcher_env import launcher_rank

    return launcher_rank()


def _running_mpi_comm():
    """This process's communicator if it is an MPI job of several ranks, else None."""
    dist = sys.modules.get("distnn.distributed")
    if dist is None or not dist.is_initialized():
        return None
    comm = dist.init()
    return comm if comm.size > 1 and hasattr(comm, "abort") else None


def one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    if isinstance(exc, KeyError) and msg.startswith("'") and msg.endswith("'"):
        msg = msg[1:-1]
    return msg or type(exc).__name__
