"""Fault tolerance under real processes (mpiexec): kill -9 of a rank, a crash while writing, a corrupt newest
checkpoint, a non-finite loss or gradient on one rank, and resuming on another number of ranks, each against
the uninterrupted run."""
import os
import random
import shutil
import time

import numpy as np
import pytest

from distnn.train import checkpoint as ck

from checkpoint_jobs import (MPIEXEC, STEPS, assert_all_checkpoints_valid, assert_same, final, finish, reference,
    root_of, run_job)


pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found (pip install mpich)")


@pytest.mark.parametrize("launcher", ["mpiexec", "outliving-shell"])
def test_kill_9_one_rank_then_resume_matches_uninterrupted(reference, tmp_path, launcher):
    # "outliving-shell": a launcher that does not end the job when a rank dies (srun without
    # --kill-on-bad-exit); the surviving rank sees the dead one's process gone and aborts.
    # The collective timeout (600 s) and the shells' sleep (600 s) are far beyond run_job's deadline
    # (300 s): a job that waited for either fails with TimeoutExpired, or the 30 s bound below.
    step = random.randint(6, STEPS - 2)  # (per-test seeded in conftest: DISTNN_TEST_SEED picks other steps)
    shell = launcher == "outliving-shell"
    markers = tmp_path / "markers"
    markers.mkdir()
    env = {"DISTNN_FAULT_KILL_AT": f"1:{step}", "DISTNN_COLLECTIVE_TIMEOUT": "600",
           "DISTNN_FAULT_MARKER_DIR": str(markers)}
    rc, err, _ = run_job(tmp_path, "--every-n-steps", "4", env=env, outliving_shell=shell, timeout=300)
    ended = time.time()
    assert rc != 0, f"killed at step {step} but the job exited 0"
    # Issue 7 asks for the job to end within 30 s of the kill: timed from the kill (the marker rank 1 writes
    # just before it), not from the job's start. The whole job took 2-6 s on an idle 2-core machine but
    # 15-20 s under a load of 20, close to the bound; the end after the kill takes about a second.
    killed_at = os.path.getmtime(markers / f"killed-rank1-step{step}")
    assert ended - killed_at < 30, f"the job took {ended - killed_at:.1f} s to end after rank 1 died at step {step}"
    if shell:
        assert "rank 1 (" in err and "has died (killed by a signal" in err, err[-3000:]
    cps = assert_all_checkpoints_valid(tmp_path)
    assert cps[-1].step < step and cps[-1].step >= step - 4, (step, [c.step for c in cps])
    res, _ = finish(tmp_path)
    assert_same(reference[1], res)


@pytest.mark.parametrize("fault", ["crash_after:model.npz", "crash_before_rename", "crash_before_latest"])
def test_crash_while_writing_keeps_previous_latest(reference, tmp_path, fault):
    # checkpoints at steps 4, 8, 10 (epoch end), 12: the write of step 12 dies
    # (the first case writes in the background thread: the whole process dies all the same)
    extra = ["--async-save"] if fault.startswith("crash_after") else []
    rc, err, _ = run_job(tmp_path, "--every-n-steps", "4", *extra, env={"DISTNN_CKPT_FAULT": f"{fault}@12"})
    assert rc != 0
    root = root_of(tmp_path)
    assert ck.read_pointer(root) == "step-00000010"
    assert ck.verify_checkpoint(os.path.join(root, "step-00000010")) == []
    names = [c.name for c in ck.list_checkpoints(root)]
    if fault == "crash_before_latest":
        assert names[-1] == "step-00000012"  # complete and renamed: a valid newer checkpoint
    else:
        assert names[-1] == "step-00000010"
        assert any(n.startswith(".tmp-step-00000012") for n in os.listdir(root))  # the abandoned write
    assert_all_checkpoints_valid(tmp_path)
    res, err = finish(tmp_path)
    assert_same(reference[1], res)
    assert not any(n.startswith(".tmp-") for n in os.listdir(root))  # cleaned up by the resumed run


def test_corrupt_newest_checkpoint_is_reported_and_skipped(reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference[0], out)
    os.remove(out / "final.npz")
    newest = out / "checkpoints" / "step-00000030"
    target = newest / "optimizer.npz"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x10
    target.write_bytes(bytes(data))
    # and truncate the one before it
    prev = out / "checkpoints" / "step-00000028" / "model.npz"
    prev.write_bytes(prev.read_bytes()[:100])
    res, err = finish(out)
    assert "step-00000030" in err and "optimizer.npz" in err and "SHA-256" in err
    assert "step-00000028" in err and "model.npz" in err and "truncated" in err
    assert "resumed from" in err and "step-00000024" in err
    assert_same(reference[1], res)


def _skipped_once_by_all(tmp_path, fault_var, step):
    """Run with a non-finite value on rank 1 at ``step`` under nonfinite=skip; the final arrays."""
    rc, err, _ = run_job(tmp_path, "--nonfinite", "skip", "--final", str(tmp_path / "final.npz"),
                         env={fault_var: f"1:{step}"})
    assert rc == 0, err
    arrays, info = final(tmp_path)
    assert info["skipped_steps"] == 1 and info["replicas_equal"] and info["global_step"] == STEPS
    assert err.count(f"skipped step {step} (epoch 1, batch {step}) on rank(s) [1]") == 2  # logged by both ranks
    return arrays


def test_nonfinite_loss_with_finite_gradients_on_one_rank_is_skipped_by_all(reference, tmp_path):
    _skipped_once_by_all(tmp_path, "DISTNN_FAULT_NONFINITE_LOSS_AT", 5)


def test_nonfinite_gradient_on_one_rank_is_skipped_by_all(reference, tmp_path):
    arrays = _skipped_once_by_all(tmp_path, "DISTNN_FAULT_NONFINITE_AT", 7)
    assert all(np.isfinite(v).all() for v in arrays.values())
    assert not np.array_equal(arrays["model/0.weight"], reference[1][0]["model/0.weight"])
    rc, err, _ = run_job(tmp_path / "e", "--nonfinite", "error", env={"DISTNN_FAULT_NONFINITE_AT": "1:7"})
    assert rc == 2 and "non-finite loss or gradients at step 7" in err


def test_resume_two_ranks_on_one_and_one_on_two(tmp_path):
    # with dropout and noise augmentation: a sample's draws belong to its place in the global batch
    plain = ["--every-n-steps", "4"]
    two, one = tmp_path / "two", tmp_path / "one"
    assert run_job(two, *plain, "--final", str(two / "final.npz"))[0] == 0
    assert run_job(one, *plain, "--final", str(one / "final.npz"), n=1)[0] == 0
    assert_same(final(two), final(one), exact=False)  # the oracle: 2 ranks with B/2 == 1 rank with B
    for src, n in ((two, 1), (one, 2)):
        out = tmp_path / f"from-{src.name}-on-{n}"
        rc, err, _ = run_job(out, *plain, "--resume", str(src / "checkpoints" / "step-00000012"),
                             "--final", str(out / "final.npz"), n=n)
        assert rc == 0, err
        assert "resumed from" in err and "step-00000012" in err
        assert_same(final(src), final(out), exact=False)


def test_16_mixed_resume_two_ranks_on_one_carries_the_loss_scaler(tmp_path):
    # under "16-mixed" a rank's float16 weight gradient sums its share of the batch, so 1 rank and 2 ranks differ
    # by float16 rounding (measured: 5.0e-5 here; 1e-2 after 80 steps of digits_mlp), far above "32"'s summation
    # tolerance. The resume on 1 rank must add nothing to that: the scaler's scale and growth count go on
    # from the checkpoint (not afresh: the count would restart at 1), and the weights end no further from
    # the 2-rank run than the uninterrupted 1-rank run does (measured: 1.7e-5)
    mixed = ["--every-n-steps", "4", "--precision", "16-mixed"]
    two, one, out = tmp_path / "two", tmp_path / "one", tmp_path / "resumed"
    assert run_job(two, *mixed, "--final", str(two / "final.npz"))[0] == 0
    assert run_job(one, *mixed, "--final", str(one / "final.npz"), n=1)[0] == 0
    rc, err, _ = run_job(out, *mixed, "--resume", str(two / "checkpoints" / "step-00000012"),
                         "--final", str(out / "final.npz"), n=1)
    assert rc == 0, err
    (x2, j2), (x1, _), (xr, jr) = final(two), final(one), final(out)
    assert sorted(jr["scaler"], key=int)[0] == "13" and j2["scaler"]["12"]["_growth_tracker"] == 12
    for step in ("13", "20", str(STEPS)):
        assert jr["scaler"][step] == j2["scaler"][step], step

    def furthest(a, b):
        return max(float(np.abs(a[k] - b[k]).max()) for k in a if k.startswith("model/"))

    assert 0 < furthest(xr, x2) <= furthest(x1, x2)
