"""``async_save`` on 2 real ranks: every rank takes rank 0's outcome of each background write alike.

A write's success is agreed through the step flags alone (no collective of its own), a failure's message by a
collective every rank makes at the same step: whichever way, every rank must end with the same count of saves
and failures, the same newest checkpoint and the same best, and a failed write must never become ``latest``.
Runs tests/mpi_scripts/ckpt_train.py under ``mpiexec -n 2`` (see checkpoint_jobs.py).
"""
import os

import pytest
from checkpoint_jobs import MPIEXEC, STEPS, final, root_of, run_job

from distnn.train import checkpoint as ck

pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found (pip install mpich)")


def _job(tmp_path, *extra, env=None):
    # --await-writes: a step that looks whether the write has ended waits for it, so every write is
    # agreed a step or two after it (through the step flags), not left to the next save
    rc, err, _ = run_job(tmp_path, "--every-n-steps", "4", "--async-save", "--await-writes", "--keep-last", "0",
                         "--final", str(tmp_path / "final.npz"), *extra, env=env)
    return rc, err


def test_successful_background_writes_are_counted_alike_on_every_rank(tmp_path):
    rc, err = _job(tmp_path)
    assert rc == 0, err
    _, info = final(tmp_path)
    written = [c.name for c in ck.list_checkpoints(root_of(tmp_path))]
    assert info["global_step"] == STEPS and info["replicas_equal"]
    outcomes = info["checkpoint_outcomes"]
    assert len(outcomes) == 2 and outcomes[0] == outcomes[1], outcomes
    # steps 4, 8, 10 (an epoch's end), 12, 16, 20 (an epoch's end), 24, 28, 30 (the last epoch's end)
    assert written == [ck.step_name(s) for s in (4, 8, 10, 12, 16, 20, 24, 28, 30)]
    assert outcomes[0]["saves"] == len(written) and outcomes[0]["failures"] == 0
    assert outcomes[0]["last"] == written[-1] == ck.read_pointer(root_of(tmp_path))


def test_failed_background_write_on_continue_is_agreed_by_every_rank(tmp_path):
    rc, err = _job(tmp_path, "--on-error", "continue", env={"DISTNN_CKPT_FAULT": "enospc:model.npz@12"})
    assert rc == 0, err
    assert "No space left on device" in err and "background from global step 12; agreed at step 14)" in err, err
    _, info = final(tmp_path)
    root = root_of(tmp_path)
    written = [c.name for c in ck.list_checkpoints(root)]
    assert ck.step_name(12) not in written and not [n for n in os.listdir(root) if n.startswith(".tmp")]
    outcomes = info["checkpoint_outcomes"]
    assert outcomes[0] == outcomes[1], outcomes
    assert outcomes[0]["failures"] == 1 and outcomes[0]["saves"] == len(written) == 8
    assert outcomes[0]["last"] == written[-1] == ck.read_pointer(root) == ck.step_name(STEPS)
    assert outcomes[0]["best"] in written
    for c in ck.list_checkpoints(root):
        assert ck.verify_checkpoint(c.path) == [], c.path
