"""A single-process test's child job under ``mpiexec``: tests/mpi_scripts/faults_on_rank_1.py, with a deadline."""
from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_scripts", "faults_on_rank_1.py")


def faults_on_rank_1(module: str, function: str, faults: str, out_dir, n: int = 2) -> list:
    """Run ``module.function`` for each of ``module.<faults>`` with the fault on rank 1, under ``mpiexec -n n``;
    returns, per rank, {fault: (error or None, grads_none, state)}. Skips the test without mpiexec or mpi4py.

    A rank left waiting in a collective ends the job at the collective timeout (60 s: far beyond any wait of
    ranks that stay in step), failing the test; the deadline only guards against a launcher that hangs."""
    from distnn.distributed.launch import mpiexec_command, mpiexec_path

    try:
        mpiexec_path()
        import mpi4py  # noqa: F401
    except (FileNotFoundError, ImportError) as e:  # pragma: no cover - depends on the install
        pytest.skip(f"needs mpiexec and mpi4py: {e}")
    env = dict(os.environ, DISTNN_COLLECTIVE_TIMEOUT="60", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run(mpiexec_command(n, [SCRIPT, module, function, faults, str(out_dir)]), env=env,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    ranks = []
    for r in range(n):
        with open(os.path.join(out_dir, f"rank{r}.json")) as f:
            seen = json.load(f)
        ranks.append({fault: (tuple(s["error"]) if s["error"] else None, s["grads_none"],
                              {k: np.array(v) for k, v in s["state"].items()}) for fault, s in seen.items()})
    return ranks
