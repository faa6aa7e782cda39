"""Starting multi-rank runs: the ``mpiexec`` command line for this environment.

``mpiexec_command(2, ["train.py"])`` gives ``[<mpiexec>, "-n", "2", <python>, "train.py"]``
using the ``mpiexec`` installed next to the running Python (a virtual
environment with the ``mpich`` wheel has one), else the first on ``PATH``.
"""
from __future__ import annotations

import os
import shutil
import sys


def mpiexec_path() -> str:
    """Path of the MPI launcher to use; raises FileNotFoundError naming where it looked."""
    here = os.path.dirname(sys.executable)
    for name in ("mpiexec", "mpirun"):
        candidate = os.path.join(here, name)
        if os.access(candidate, os.X_OK):
            return candidate
    for name in ("mpiexec", "mpirun"):
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError(f"no mpiexec/mpirun next to {sys.executable} or on PATH; "
                            "install the MPI extra (pip install 'distnn[mpi]')")


def mpiexec_command(nprocs: int, args, python: str | None = None, launcher_args=()) -> list:
    """The command that runs ``python *args`` on ``nprocs`` MPI ranks."""
    if nprocs < 1:
        raise ValueError(f"nprocs must be >= 1, got {nprocs}")
    return [mpiexec_path(), "-n", str(int(nprocs)), *launcher_args, python or sys.executable, *args]
