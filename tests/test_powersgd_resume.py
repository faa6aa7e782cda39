"""PowerSGD's state in checkpoints, under real processes (tests/mpi_scripts/ckpt_train.py, mpiexec -n 2).

Its iteration, warm-start Q's and each rank's error feedback are saved: a run
resumed on 2 ranks from a checkpoint of a 2-rank run ends bitwise equal to the
uninterrupted one; on 1 rank (rank 0 takes the sum of the errors) it ends
equal to summation tolerance, as a plain resume across world sizes does.
"""
import os

import pytest
from checkpoint_jobs import MPIEXEC, assert_same, final, run_job

pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found (pip install mpich)")
# compression from step 3; checkpoints every 4 steps; the resume starts at step 12 (the second epoch)
ARGS = ["--every-n-steps", "4", "--powersgd-start", "3"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("powersgd")
    rc, err, _ = run_job(out, *ARGS, "--final", os.path.join(out, "final.npz"))
    assert rc == 0, err
    return out, final(out)


def _resume(src, out, n):
    rc, err, _ = run_job(out, *ARGS, "--resume", str(src / "checkpoints" / "step-00000012"),
                         "--final", str(out / "final.npz"), n=n)
    assert rc == 0, err
    assert "resumed from" in err and "step-00000012" in err
    return final(out)


def test_resume_on_two_ranks_is_bitwise_equal(uninterrupted, tmp_path):
    src, full = uninterrupted
    assert full[1]["replicas_equal"]
    assert_same(full, _resume(src, tmp_path, 2))


def test_resume_on_one_rank_keeps_the_summed_errors(uninterrupted, tmp_path):
    src, full = uninterrupted
    resumed = _resume(src, tmp_path, 1)
    assert_same(full, resumed, exact=False)
    # (PowerSGD was on, on 1 rank too: 18 compressed steps since the resume at 12; each compresses the
    # (64, 32) and (32, 10) weights of the MLP 64-32-10 to (64 + 32) + (32 + 10) values, the biases stay)
    rate, before, after = resumed[1]["powersgd"]
    assert (before, after) == (18 * (2048 + 32 + 320 + 10), 18 * (96 + 32 + 42 + 10)), resumed[1]["powersgd"]
    assert full[1]["powersgd"][1] == 27 * (2048 + 32 + 320 + 10)
