"""Edge cases of save_last, resume and evaluate's newest-state choice found in an adversarial review.

make_trainer's digits MLP takes 8 steps an epoch; ``every_epochs = 2`` with 3 epochs ends off a save step.
"""
import os

import pytest

from distnn.distributed import LocalCommunicator
from distnn.train import checkpoint as ck
from distnn.train.callbacks.checkpoint_setup import attach
from checkpoint_runs import assert_bitwise, digits, final_state, make_trainer  # noqa: F401 (digits: a fixture)
from test_save_last import _opts, _steps

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


def test_a_run_resumed_at_its_end_from_another_root_saves_its_end_in_its_own_root(digits, tmp_path):
    # A finished run's end resumed into a new run directory (--resume OLD_RUN --out NEW) with the same
    # epochs trains nothing; the end state has a checkpoint in the OLD root only. The new run's root must get
    # one too, else --resume auto --out NEW with more epochs finds none there and starts from scratch.
    old, new = tmp_path / "old", tmp_path / "new"
    t = make_trainer(LocalCommunicator(), digits, epochs=3)
    attach(t, str(old), _opts(old))
    t.fit()
    assert _steps(old) == [16, 24]
    t2 = make_trainer(LocalCommunicator(), digits, epochs=3)
    cb2 = attach(t2, str(new), _opts(new), resume_spec=str(old / ck.step_name(24)))
    t2.fit()
    assert cb2.resumed_from[1] == 24 and _steps(new) == [24]
    assert ck.verify_checkpoint(str(new / ck.step_name(24))) == []
    # ... and from there, more epochs continue the run (oracle: the uninterrupted 5-epoch run)
    full = make_trainer(LocalCommunicator(), digits, epochs=5)
    full.fit()
    t3 = make_trainer(LocalCommunicator(), digits, epochs=5)
    cb3 = attach(t3, str(new), _opts(new), resume_spec="auto")
    assert cb3.resumed_from[1] == 24
    t3.fit()
    assert_bitwise(final_state(full), final_state(t3))


def test_a_max_steps_cut_resumed_into_another_root_keeps_its_mid_epoch_end_there(digits, tmp_path):
    # max_steps 12 cuts epoch 2 in OLD; resumed into NEW with the same max_steps (nothing to train, but the
    # cut epoch's end runs again), NEW's end checkpoint must still be the mid-epoch state, so that a larger
    # max_steps resumed from NEW goes on with epoch 2 as the uninterrupted run does.
    old, new = tmp_path / "old", tmp_path / "new"

    def trainer(max_steps):
        t = make_trainer(LocalCommunicator(), digits, epochs=5)
        t.max_steps = max_steps
        return t

    full = trainer(20)
    full.fit()
    t = trainer(12)
    attach(t, str(old), _opts(old, keep_best=True))
    t.fit()
    t2 = trainer(12)
    attach(t2, str(new), _opts(new, keep_best=True), resume_spec=str(old / ck.step_name(12)))
    t2.fit()
    assert _steps(new) == [12] and not ck.read_manifest(str(new / ck.step_name(12)))["epoch_end"]
    t3 = trainer(20)
    cb3 = attach(t3, str(new), _opts(new, keep_best=True), resume_spec="auto")
    t3.fit()
    assert cb3.resumed_from[1] == 12
    assert_bitwise(final_state(full), final_state(t3))


def test_a_crash_while_retention_deletes_a_checkpoint_does_not_bring_it_back(tmp_path, monkeypatch):
    # Retention renames a retired checkpoint to a hidden name, then deletes its files. Killed in between, the
    # next run's start-up clean-up took the half-deleted directory for a same-step rewrite's old copy (the
    # same hidden name) and renamed it back: a step-N that fails verification, one more than keep_last.
    import numpy as np

    from distnn.train.checkpoint import retention

    for step in (10, 20, 30):
        ck.write_checkpoint(str(tmp_path), step, ck.serialize({"model": {"w": np.full(4, step, np.float32)}}))

    class Killed(BaseException):
        pass

    def killed_mid_delete(path):
        os.unlink(os.path.join(path, ck.MANIFEST))
        raise Killed

    monkeypatch.setattr(retention, "remove_tree", killed_mid_delete)
    with pytest.raises(Killed):
        ck.apply_retention(str(tmp_path), keep_last=1)
    monkeypatch.undo()
    ck.cleanup_temporaries(str(tmp_path))  # (what the next run's start does)
    assert _steps(tmp_path) == [20, 30]  # (step 20's turn had not come)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_the_end_saved_on_resuming_from_another_root_is_collective(digits, tmp_path):
    # the same on 2 simulated ranks: every rank takes the save (no rank left waiting in its gather)
    from distnn.distributed import simulate

    old, new = tmp_path / "old", tmp_path / "new"

    def run(comm, root, spec=None):
        t = make_trainer(comm, digits, epochs=3, subset=360, batch_size=60)
        cb = attach(t, str(root), _opts(root), resume_spec=spec)
        t.fit()
        return t.state.global_step, cb.saves

    assert simulate(2, run, old) == [(18, 2)] * 2
    assert simulate(2, run, new, str(old)) == [(18, 1)] * 2
    assert _steps(new) == [18] and ck.read_manifest(str(new / ck.step_name(18)))["world_size"] == 2


def test_retention_without_keep_best_never_leaves_a_dangling_best_pointer(tmp_path):
    # a session with keep_best pointed `best` at step 10; resumed with keep_best off, retention deletes
    # step 10: the pointer goes first (it used to stay, naming a missing checkpoint)
    import numpy as np

    for step in (10, 20, 30):
        ck.write_checkpoint(str(tmp_path), step, ck.serialize({"model": {"w": np.full(4, step, np.float32)}}),
                            update_best=step == 10)
    assert ck.read_pointer(str(tmp_path), ck.BEST) == "step-00000010"
    assert ck.apply_retention(str(tmp_path), 2) == ["step-00000010"]
    assert not os.path.lexists(tmp_path / ck.BEST) and _steps(tmp_path) == [20, 30]
    # protected (keep_best on), the best stays and so does its pointer
    ck.write_checkpoint(str(tmp_path), 40, ck.serialize({"model": {"w": np.zeros(4, np.float32)}}), update_best=True)
    ck.write_checkpoint(str(tmp_path), 50, ck.serialize({"model": {"w": np.zeros(4, np.float32)}}))
    ck.apply_retention(str(tmp_path), 1, protect=["step-00000040"])
    assert ck.read_pointer(str(tmp_path), ck.BEST) == "step-00000040" and _steps(tmp_path) == [40, 50]


def test_a_run_resumed_at_its_end_into_a_new_directory_writes_its_metrics_there(tmp_path):
    # --resume OLD --out NEW with nothing left to train ends no epoch in NEW: its metrics files (the
    # history from the checkpoint) used to be missing there
    import subprocess
    import sys

    from distnn.train.callbacks import read_metrics_csv

    def train(*args):
        r = subprocess.run([sys.executable, "-m", "distnn", "train", "--config", "xor", "--quiet", "--set",
                            "train.epochs=3", "--set", "run.plots=false", "--set", "checkpoint.enabled=true",
                            *args], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1"))
        assert r.returncode == 0, r.stderr[-2000:]

    train("--out", "old")
    train("--out", "new", "--resume", str(tmp_path / "old"))
    old, new = (read_metrics_csv(tmp_path / d / "metrics.csv") for d in ("old", "new"))
    assert [r["epoch"] for r in new] == [1, 2, 3] and new == old
    assert (tmp_path / "new" / "metrics.jsonl").read_text() == (tmp_path / "old" / "metrics.jsonl").read_text()
