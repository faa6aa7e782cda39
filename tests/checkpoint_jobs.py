"""Checkpointed training jobs (tests/mpi_scripts/ckpt_train.py) under mpiexec for the tests/test_checkpoint_mpi_*.py
files: run one, finish one, compare two runs' final weights, and the uninterrupted reference run."""
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from distnn.train import checkpoint as ck
from mpi_child import child_env


HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "mpi_scripts", "ckpt_train.py")
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
STEPS = 30


def job_env(extra=None):
    # A rank left waiting ends the job at the 20 s collective timeout with the watchdog's report, well inside
    # run_job's deadline. A healthy job's longest wait (rank 1 for rank 0's start-up or a checkpoint write)
    # measured 0.46 s at a load of 21 on the 2-core machine, sync and async saves: a wide margin.
    env = child_env(20)
    for k in ("DISTNN_CKPT_FAULT", "DISTNN_FAULT_KILL_AT", "DISTNN_FAULT_NONFINITE_AT", "DISTNN_FAULT_SIGNAL_AT",
              "DISTNN_FAULT_STEP_DELAY", "DISTNN_FAULT_PAUSE_AT", "DISTNN_FAULT_MARKER_DIR"):
        env.pop(k, None)
    env.update(extra or {})
    return env


def job_command(out, n, args, outliving_shell=False):
    base = [sys.executable, SCRIPT, "--out", str(out), *args]
    if outliving_shell:  # each rank under a shell that outlives it: mpiexec, like srun, sees no rank die
        base = ["sh", "-c", f"{shlex.join(base)}; sleep 600"]
    return base if n == 1 else [MPIEXEC, "-n", str(n), *base]


def run_job(out, *args, n=2, env=None, timeout=90, outliving_shell=False):
    """Run the job to completion; returns (returncode, stderr, seconds)."""
    t0 = time.monotonic()
    p = subprocess.run(job_command(out, n, args, outliving_shell), env=job_env(env), capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stderr, time.monotonic() - t0


def final(out):
    path = os.path.join(str(out), "final.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    with open(path + ".json") as f:
        return arrays, json.load(f)


def assert_same(a, b, exact=True):
    (xa, ja), (xb, jb) = a, b
    assert ja["global_step"] == jb["global_step"] == STEPS
    assert sorted(xa) == sorted(xb)
    for k in xa:
        if exact:
            np.testing.assert_array_equal(xa[k], xb[k], err_msg=k)
        else:
            np.testing.assert_allclose(xa[k], xb[k], rtol=1e-4, atol=1e-5, err_msg=k)


def finish(out, *extra, n=2, env=None):
    """Resume ``out`` with --resume auto to the end and return its final state."""
    rc, err, _ = run_job(out, "--resume", "auto", "--every-n-steps", "4", "--final", os.path.join(out, "final.npz"),
                         *extra, n=n, env=env)
    assert rc == 0, err
    return final(out), err


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    rc, err, _ = run_job(out, "--every-n-steps", "4", "--final", os.path.join(out, "final.npz"))
    assert rc == 0, err
    res = final(out)
    assert res[1]["replicas_equal"] and res[1]["skipped_steps"] == 0
    return str(out), res


def root_of(out):
    return os.path.join(str(out), "checkpoints")


def assert_all_checkpoints_valid(out):
    cps = ck.list_checkpoints(root_of(out))
    assert cps, "no checkpoint was written"
    for c in cps:
        assert ck.verify_checkpoint(c.path) == [], c.path
    return cps
