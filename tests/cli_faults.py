"""`distnn train` in a subprocess with a fault hook: what the signal tests share.

Each test file keeps its own small ``_train`` (its config and settings); this
module builds the command for one process, simulated ranks or ``mpiexec``,
and the environment: fault variables of the caller's shell removed, a short
collective timeout, and the hook asked for. :func:`wait_for_marker` waits for the
marker file of a pause hook (``DISTNN_FAULT_PAUSE_AT``, ``DISTNN_CKPT_FAULT=pause_after:FILE``):
the job is then held at a known point until the test signals it (or releases it).
"""
import os
import shutil
import subprocess
import sys
import time

import pytest

MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")


def fault_env(**extra) -> dict:
    """The environment of a faulted run: one thread, a 30 s collective timeout, no inherited faults."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", DISTNN_COLLECTIVE_TIMEOUT="30")
    for k in [k for k in env if k.startswith("DISTNN_FAULT_") or k == "DISTNN_CKPT_FAULT"]:
        del env[k]
    env.update(extra)
    return env


def train(out, mode: str, n: int, args, fault: str | None = None, timeout: float = 120):
    """Run ``distnn train --out OUT --quiet ARGS`` as ``mode`` ("process", "simulated" or "mpi")
    on ``n`` ranks with ``DISTNN_FAULT_SIGNAL_AT=fault``; the deadline fails a run that hangs."""
    cmd = [sys.executable, "-m", "distnn", "train", "--out", str(out), "--quiet", *args]
    if mode == "simulated":
        cmd += ["--simulate-ranks", str(n)]
    elif mode == "mpi" or n > 1:
        if MPIEXEC is None:
            pytest.skip("mpiexec not found (pip install mpich)")
        cmd = [MPIEXEC, "-n", str(n), *cmd]
    env = fault_env(**({"DISTNN_FAULT_SIGNAL_AT": fault} if fault else {}))
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def wait_for_marker(proc, path, deadline_s: float = 300):
    """Wait until the job ``proc`` (a Popen) writes the marker file ``path`` of a pause hook.

    The job waits at that point for the test's signal, so whatever follows is at a known point of the
    run however slow the machine. Fails if the job ends first; the deadline fails a job that hangs.
    """
    deadline = time.monotonic() + deadline_s
    while not os.path.exists(path):
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"the job ended with status {proc.returncode} before {path} appeared:\n{err[-3000:]}")
        assert time.monotonic() < deadline, f"{path} did not appear within {deadline_s:.0f} s (a hang?)"
        time.sleep(0.02)
