"""Child jobs under ``mpiexec`` for single-process tests: the skip when there is no MPI, the child's environment,
the run with a deadline (a job that hangs fails the test with TimeoutExpired), and one job,
tests/mpi_scripts/faults_on_rank_1.py, that runs a function with a fault on rank 1."""
from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_scripts", "faults_on_rank_1.py")


def require_mpiexec(whole_module: bool = False) -> None:
    """Skip the test (``whole_module``: every test of the calling file, called at its import) unless mpiexec
    and mpi4py are installed."""
    from distnn.distributed.launch import mpiexec_path

    try:
        mpiexec_path()
        import mpi4py  # noqa: F401
    except (FileNotFoundError, ImportError) as e:  # pragma: no cover - depends on the install
        pytest.skip(f"needs mpiexec and mpi4py: {e}", allow_module_level=whole_module)


def child_env(collective_timeout=None, **extra) -> dict:
    """This process's environment for a child job: one OpenMP/BLAS thread per rank (the ranks share the cores),
    ``DISTNN_COLLECTIVE_TIMEOUT`` set to ``collective_timeout`` seconds when given, then ``extra``."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    if collective_timeout is not None:
        env["DISTNN_COLLECTIVE_TIMEOUT"] = str(collective_timeout)
    env.update(extra)
    return env


def run_under_mpiexec(n: int, argv, *, env: dict, deadline: float, python: str | None = None, cwd=None):
    """``python *argv`` on ``n`` ranks under mpiexec, output captured as text: the CompletedProcess. Past
    ``deadline`` seconds subprocess raises TimeoutExpired: the requirement that no job hangs, made a failure."""
    from distnn.distributed.launch import mpiexec_command

    return subprocess.run(mpiexec_command(n, [str(a) for a in argv], python=python), env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=deadline)


def faults_on_rank_1(module: str, function: str, faults: str, out_dir, n: int = 2) -> list:
    """Run ``module.function`` for each of ``module.<faults>`` with the fault on rank 1, under ``mpiexec -n n``;
    returns, per rank, {fault: (error or None, grads_none, state)}. Skips the test without mpiexec or mpi4py.

    A rank left waiting in a collective ends the job at the collective timeout (60 s: far beyond any wait of
    ranks that stay in step), failing the test; the deadline only guards against a launcher that hangs."""
    require_mpiexec()
    out = run_under_mpiexec(n, [SCRIPT, module, function, faults, out_dir], env=child_env(60), deadline=240)
    assert out.returncode == 0, out.stdout + out.stderr
    ranks = []
    for r in range(n):
        with open(os.path.join(out_dir, f"rank{r}.json")) as f:
            seen = json.load(f)
        ranks.append({fault: (tuple(s["error"]) if s["error"] else None, s["grads_none"],
                              {k: np.array(v) for k, v in s["state"].items()}) for fault, s in seen.items()})
    return ranks
