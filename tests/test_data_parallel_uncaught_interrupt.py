"""An uncaught KeyboardInterrupt on one rank ends the run, not leaving the other ranks waiting.

Rank 1's DataParallel forward raises KeyboardInterrupt, not caught, while rank 0 goes into backward and waits
in the step's exchange: DataParallel makes no collective for it (no exchange while the user interrupts), so
the rank's process ends, and the job with it: simulate re-raises it, and under ``mpiexec`` the excepthook
of distnn.distributed.watchdog aborts every rank at once, long before the collective timeout. (A caught one:
tests/test_data_parallel_forward_errors.py.) These guard behaviour the abandoned-step watch must keep.
"""
import os
import subprocess

import pytest

import distnn.functional as F
from distnn.distributed import DataParallel, simulate
from test_data_parallel_forward_errors import _batch, _Net


def test_an_uncaught_keyboard_interrupt_on_one_simulated_rank_ends_the_run():
    def run(comm):
        model = _Net()
        dp = DataParallel(model, comm)
        model.fault = "interrupt-forward" if comm.rank == 1 else None
        x, y = _batch(comm, 0)
        F.cross_entropy(dp(x), y).backward()

    with pytest.raises(KeyboardInterrupt):
        simulate(2, run)


INTERRUPT_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_scripts",
                                "interrupt_on_rank_1.py")


def test_under_mpiexec_an_uncaught_keyboard_interrupt_on_one_rank_ends_the_job():
    """Rank 1's forward raises KeyboardInterrupt, uncaught, while rank 0 waits in backward: the job ends
    with a failure naming rank 1 and the interrupt before the collective timeout (600 s, beyond the deadline)."""
    from distnn.distributed.launch import mpiexec_command, mpiexec_path

    try:
        mpiexec_path()
        import mpi4py  # noqa: F401
    except (FileNotFoundError, ImportError) as e:  # pragma: no cover - depends on the install
        pytest.skip(f"needs mpiexec and mpi4py: {e}")
    env = dict(os.environ, DISTNN_COLLECTIVE_TIMEOUT="600", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run(mpiexec_command(2, [INTERRUPT_SCRIPT]), env=env, capture_output=True, text=True,
                         timeout=240)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    assert "[distnn] rank 1 of 2: uncaught KeyboardInterrupt; aborting all 2 ranks" in text, text
    assert "[test] rank 0 returned from backward" not in text, text
