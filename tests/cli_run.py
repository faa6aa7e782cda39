"""Shared by the command-line audit tests: ``python -m distnn`` in a subprocess, as a user runs it."""
import os
import subprocess
import sys


def distnn(args, cwd, launcher=()):
    """``python -m distnn ARGS`` in ``cwd`` (``launcher``: a command prefix, e.g. ``mpiexec -n 2`` or one
    that runs it as another user), one thread, matplotlib's cache in ``cwd``, rank 0's output only."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLCONFIGDIR=str(cwd))
    env.pop("DISTNN_LOG_ALL_RANKS", None)
    return subprocess.run([*launcher, sys.executable, "-m", "distnn", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def ok(r):
    """``r`` (a finished run) after checking it exited 0; its stderr's end otherwise."""
    assert r.returncode == 0, r.stderr[-3000:]
    return r
