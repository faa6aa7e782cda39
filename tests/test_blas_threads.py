"""Ranks sharing a host share its cores: numpy's BLAS pool is capped before numpy loads.

Without the cap, `mpiexec -n 2 python -m distnn train` (digits_mlp, 20 epochs) trained in
27.4 s on a 2-core machine instead of 0.7 s: each rank's OpenBLAS ran a pool as large as the
machine, and their threads spin while they wait.
"""
import os
import shutil
import subprocess
import sys

import pytest

from distnn import _threads

VARS = _threads.THREAD_VARIABLES
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("env,usable,total,want", [
    ({}, 8, 8, None),                                            # no launcher: numpy's defaults
    ({"MPI_LOCALNRANKS": "1", "PMI_SIZE": "4"}, 8, 8, None),     # one rank on this host of four
    ({"MPI_LOCALNRANKS": "2"}, 2, 2, 1),                         # mpiexec -n 2 on 2 cores
    ({"MPI_LOCALNRANKS": "4"}, 64, 64, 16),
    ({"OMPI_COMM_WORLD_LOCAL_SIZE": "3"}, 8, 8, 2),              # Open MPI
    ({"PMI_RANK": "0", "PMI_SIZE": "4"}, 8, 8, 2),               # only the job's size: all of it here, at most
    ({"MPI_LOCALNRANKS": "8"}, 2, 2, 1),                         # more ranks than cores: one each
    ({"MPI_LOCALNRANKS": "2"}, 3, 16, 3),                        # bound to 3 cores by the launcher: its own
    ({"SLURM_STEP_ID": "0", "SLURM_STEP_TASKS_PER_NODE": "2(x3),1", "SLURM_NODEID": "3"}, 16, 16, None),
    ({"SLURM_STEP_ID": "0", "SLURM_STEP_TASKS_PER_NODE": "2(x3),1", "SLURM_NODEID": "1"}, 16, 16, 8),
    ({"SLURM_STEP_ID": "0", "SLURM_STEP_TASKS_PER_NODE": "4", "SLURM_CPUS_PER_TASK": "3"}, 16, 16, 3),
    ({"MPI_LOCALNRANKS": "two"}, 8, 8, None),                    # unreadable: left alone
])
def test_threads_per_rank(env, usable, total, want):
    assert _threads.blas_threads(env, usable, total) == want


def _threads_of(env, code="import distnn, os; print(os.environ.get('OPENBLAS_NUM_THREADS'))", launcher=()):
    out = subprocess.run([*launcher, sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def _usable():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def test_import_under_a_launcher_sets_every_variable_and_numpy_runs_that_many_threads():
    base = {k: v for k, v in os.environ.items()
            if k not in VARS and not k.startswith(("MPI_", "PMI_", "OMPI_", "SLURM_"))}
    code = ("import distnn, os, numpy as np; np.ones((256, 256)) @ np.ones((256, 256)); "
            f"print(*[os.environ.get(v) for v in {VARS!r}], len(os.listdir('/proc/self/task')))")
    cpus = _usable()
    want = max(1, (os.cpu_count() or 1) // 2) if cpus == (os.cpu_count() or 1) else cpus
    *values, threads = _threads_of({**base, "MPI_LOCALNRANKS": "2"}, code)
    assert values == [str(want)] * 3
    if want == 1 and os.path.isdir("/proc/self/task"):
        assert int(threads) == 1  # (numpy's BLAS started no pool)
    assert _threads_of(base, code)[:3] == ["None"] * 3  # not under a launcher: numpy's defaults
    # what a user sets wins, and numpy imported first is left as it is
    assert _threads_of({**base, "MPI_LOCALNRANKS": "2", "OMP_NUM_THREADS": "2"},
                       "import distnn, os; print(os.environ.get('OMP_NUM_THREADS'), "
                       "os.environ.get('OPENBLAS_NUM_THREADS'))") == ["2", "None"]
    assert _threads_of({**base, "MPI_LOCALNRANKS": "2"},
                       "import numpy, distnn, os; print(os.environ.get('OPENBLAS_NUM_THREADS'))") == ["None"]


def test_under_mpiexec_each_rank_gets_its_share():
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("no mpiexec")
    env = {k: v for k, v in os.environ.items() if k not in VARS}
    got = _threads_of(env, "import distnn, os, sys; sys.stdout.write(os.environ.get('OPENBLAS_NUM_THREADS') + '\\n')",
                      launcher=(mpiexec, "-n", "2"))
    cpus = _usable()
    want = max(1, (os.cpu_count() or 1) // 2) if cpus == (os.cpu_count() or 1) else cpus
    assert got == [str(want)] * 2
