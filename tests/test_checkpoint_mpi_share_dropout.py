"""Under real processes (mpiexec): a dropout layer given a counter-based BatchShareGenerator of its own (this rank's
places in each global batch, ``ckpt_train.py --share-dropout``) resumes on 1 process from a 2-rank checkpoint,
and on 2 from a 1-process one, matching the uninterrupted run (assert_same's tolerance: float32 summation order),
without the warning that layers draw per rank (400 samples: full batches of 40 only)."""
import pytest

from checkpoint_jobs import MPIEXEC, assert_same, final, run_job

pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found (pip install mpich)")


def test_share_dropout_resumes_two_ranks_on_one_and_one_on_two(tmp_path):
    plain = ["--every-n-steps", "4", "--share-dropout"]
    two, one = tmp_path / "two", tmp_path / "one"
    for out, n in ((two, 2), (one, 1)):
        rc, err, _ = run_job(out, *plain, "--final", str(out / "final.npz"), n=n)
        assert rc == 0, err
    assert_same(final(two), final(one), exact=False)  # the oracle: a sample's masks on any number of ranks
    for src, n in ((two, 1), (one, 2)):
        out = tmp_path / f"from-{src.name}-on-{n}"
        rc, err, _ = run_job(out, *plain, "--resume", str(src / "checkpoints" / "step-00000012"),
                             "--final", str(out / "final.npz"), n=n)
        assert rc == 0, err
        assert "resumed from" in err and "step-00000012" in err and "resuming a" in err
        assert "draw per rank" not in err
        assert_same(final(src), final(out), exact=False)
