"""Checkpoints in one process, policies and failures during fit: every epoch/keep last/best, errors during fit
leaving a whole newest checkpoint, callbacks cleaning up, asynchronous saves (same checkpoints, failures agreed a
step later), valid CRCs, on_error stop/continue, non-finite steps skipped on every rank, attach's options."""
import logging
import math
import os

import numpy as np
import pytest

from distnn.distributed import LocalCommunicator, simulate
from distnn.optim import Adam
from distnn.train import checkpoint as ck
from distnn.train.checkpoint import hashing
from distnn.train import step_guard
from distnn.train.callbacks import Callback, background_writer
from distnn.train.callbacks.checkpoint_setup import attach

from checkpoint_runs import digits, make_trainer


pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


def test_policies_every_epoch_keep_last_and_best(digits, tmp_path):
    t = make_trainer(LocalCommunicator(), digits, epochs=4)
    cb = attach(t, str(tmp_path), {"dir": str(tmp_path), "every_epochs": 1, "keep_last": 2, "monitor": "val_loss"})
    t.fit()
    names = [c.name for c in ck.list_checkpoints(str(tmp_path))]
    assert all(ck.verify_checkpoint(str(tmp_path / n)) == [] for n in names)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no spare left after training
    best = ck.read_pointer(str(tmp_path), ck.BEST)
    assert best == cb.best_name and best in names
    assert names[-2:] == ["step-00000024", "step-00000032"] and len(names) <= 3
    best_epoch = min(range(4), key=lambda e: t.history[e]["val_loss"])
    assert best == ck.step_name(8 * (best_epoch + 1))
    man = ck.read_manifest(str(tmp_path / best))
    assert man["metrics"]["val_loss"] == pytest.approx(t.history[best_epoch]["val_loss"])


class _Boom(Callback):
    """Raises at the start of epoch ``epoch`` (index): right after the previous epoch's save was handed over."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, trainer):
        if trainer.state.epoch == self.epoch:
            raise RuntimeError("boom in a user callback")


@pytest.mark.parametrize("async_save", [False, True])
def test_an_error_during_fit_leaves_no_spare_and_a_whole_newest_checkpoint(digits, tmp_path, async_save):
    # keep_last 1: the epoch-2 save retires step 8 as the spare; the error comes before the next save uses it
    t = make_trainer(LocalCommunicator(), digits, epochs=5, callbacks=[_Boom(2)])
    cb = attach(t, str(tmp_path), {"dir": str(tmp_path), "keep_last": 1, "keep_best": False,
                                   "async_save": async_save})
    with pytest.raises(RuntimeError, match="boom in a user callback"):
        t.fit()
    assert cb._pending is None or cb._pending is True or cb._pending.done()  # the write in flight was finished
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")], os.listdir(tmp_path)
    assert [c.name for c in ck.list_checkpoints(str(tmp_path))] == ["step-00000016"]
    assert ck.verify_checkpoint(str(tmp_path / "step-00000016")) == []


def test_every_callback_cleans_up_after_an_error_even_when_one_clean_up_fails(digits):
    from distnn.train.callbacks import ProgressBar

    class BadCleanUp(Callback):
        def on_exception(self, trainer, exception):
            raise OSError("clean-up failed too")

    class Seen(Callback):
        def __init__(self):
            self.seen = None

        def on_exception(self, trainer, exception):
            self.seen = exception

    bar, seen = ProgressBar(use_bar=True), Seen()
    t = make_trainer(LocalCommunicator(), digits, epochs=3, callbacks=[bar, BadCleanUp(), _Boom(1), seen])
    with pytest.raises(RuntimeError, match="boom") as e:
        t.fit()
    assert seen.seen is e.value  # the original error, not the failed clean-up's
    assert any("BadCleanUp.on_exception failed: OSError: clean-up failed too" in n for n in e.value.__notes__)
    assert bar.bar is None  # the progress bar was closed before the traceback


def test_async_save_writes_the_same_checkpoints(digits, tmp_path):
    def run(root, async_save):
        t = make_trainer(LocalCommunicator(), digits, epochs=2)
        cb = attach(t, str(root), {"dir": str(root), "every_steps": 3, "keep_last": 0, "async_save": async_save})
        t.fit()
        return cb

    run(tmp_path / "sync", False)
    cb = run(tmp_path / "async", True)
    assert cb._pending is None and cb.saves == len(ck.list_checkpoints(str(tmp_path / "async")))
    for c in ck.list_checkpoints(str(tmp_path / "sync")):
        a, _ = ck.read_checkpoint(c.path)
        b, _ = ck.read_checkpoint(str(tmp_path / "async" / c.name))
        for k in a["model"]:
            np.testing.assert_array_equal(a["model"][k], b["model"][k])
        for i, s in a["optimizer"]["state"].items():  # (written from the live arrays' copies at the save)
            for k, v in s.items():
                np.testing.assert_array_equal(v, b["optimizer"]["state"][i][k])
        assert [r["rng"] for r in a["ranks"]] == [r["rng"] for r in b["ranks"]]


def test_a_model_and_optimizer_whose_state_dict_takes_no_copy_argument_are_checkpointed(digits, tmp_path):
    """A user's override of ``state_dict()`` (without distnn's ``copy=``) is called as written."""
    t = make_trainer(LocalCommunicator(), digits, epochs=1)
    calls = []

    class OwnModel(type(t.model)):
        def state_dict(self):
            calls.append("model")
            return super().state_dict()

    class OwnAdam(Adam):
        def state_dict(self):
            calls.append("optimizer")
            return super().state_dict()

    t.model.__class__, t.optimizer.__class__ = OwnModel, OwnAdam
    attach(t, str(tmp_path), {"dir": str(tmp_path), "every_epochs": 1, "keep_last": 0})
    t.fit()
    assert {"model", "optimizer"} <= set(calls)
    state, _ = ck.read_checkpoint(ck.list_checkpoints(str(tmp_path))[-1].path)
    for k, v in t.model.state_dict().items():
        np.testing.assert_array_equal(state["model"][k], v)
    assert state["optimizer"]["state"].keys() == t.optimizer.state_dict()["state"].keys()


@pytest.mark.parametrize("async_save", [False, True])
def test_checkpoint_npz_files_have_valid_crcs_and_checksums(digits, tmp_path, monkeypatch, async_save):
    import zipfile

    # every npz file on the hashing threads (the digits MLP's files are smaller than the default threshold)
    monkeypatch.setattr(hashing, "PARALLEL_HASH_BYTES", 1)
    t = make_trainer(LocalCommunicator(), digits, epochs=2)
    attach(t, str(tmp_path), {"dir": str(tmp_path), "every_steps": 3, "keep_last": 0, "async_save": async_save})
    t.fit()
    cps = ck.list_checkpoints(str(tmp_path))
    assert len(cps) >= 5
    for c in cps:
        assert ck.verify_checkpoint(c.path) == []
        for name in ("model.npz", "optimizer.npz"):
            with zipfile.ZipFile(os.path.join(c.path, name)) as z:
                assert z.testzip() is None, (c.name, name)  # the CRC-32s were filled before the write


def test_a_failed_write_returns_only_after_the_hashing_threads(tmp_path, monkeypatch):
    monkeypatch.setattr(hashing, "PARALLEL_HASH_BYTES", 1)
    monkeypatch.setenv(ck.FAULT_ENV, "enospc:b.npz")
    done = []

    def slow_prepare():
        import time

        time.sleep(0.2)
        done.append(True)

    files = {"a.npz": b"x" * 1000, "b.npz": b"y" * 1000, "c.npz": b"z" * 1000}
    with pytest.raises(ck.CheckpointError, match=r"b\.npz.*No space left"):
        ck.write_checkpoint(str(tmp_path), 5, files, prepare={"c.npz": slow_prepare})
    assert done == [True]  # c.npz's preparation (it writes into the caller's buffer) had finished
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("async_save", [False, True])
def test_on_error_stop_and_continue(digits, tmp_path, monkeypatch, caplog, async_save):
    monkeypatch.setenv(ck.FAULT_ENV, "enospc:optimizer.npz@16")

    def run(policy):
        t = make_trainer(LocalCommunicator(), digits, epochs=3)
        root = tmp_path / policy
        attach(t, str(root), {"dir": str(root), "on_error": policy, "async_save": async_save})
        return t, root

    t, root = run("stop")
    with pytest.raises(ck.CheckpointError, match=r"optimizer\.npz.*No space left.*on_error"):
        t.fit()
    assert ck.read_pointer(str(root)) == "step-00000008"
    assert [c.name for c in ck.list_checkpoints(str(root))] == ["step-00000008"]
    assert not [n for n in os.listdir(root) if n.startswith(".tmp")]
    t, root = run("continue")
    with caplog.at_level(logging.WARNING, logger="distnn"):
        t.fit()
    assert len(t.history) == 3
    assert [c.name for c in ck.list_checkpoints(str(root))] == ["step-00000008", "step-00000024"]
    assert any("No space left" in r.getMessage() for r in caplog.records)


def _done_when_ended(job):
    """``Job.done`` for tests: waits for the write to end, so "ended by the next step" needs no timing."""
    job.result()
    return True


@pytest.mark.parametrize("world,data_parallel", [(1, True), (2, True), (2, False)])
def test_async_failure_is_agreed_a_step_after_the_write_ends(digits, tmp_path, monkeypatch, world, data_parallel):
    # 8 steps per epoch: the epoch-2 save (step 16) fails in the background, and the write has ended by
    # the next step's end: rank 0's look at it waits for its end (a 10 ms sleep a step used to stand for
    # that, and a write slowed by a busy machine was agreed a step or two later). Agreed at step 17
    # (1 rank) or 18 (2 ranks: rank 0 says so at step 17's end, in step 18's gradient exchange, or
    # without DataParallel in the step guard's allgather), on every rank alike; before, at the next save (24).
    monkeypatch.setenv(ck.FAULT_ENV, "enospc:optimizer.npz@16")
    monkeypatch.setattr(background_writer.Job, "done", _done_when_ended)

    def run(comm):
        t = make_trainer(comm, digits, epochs=3, subset=320, data_parallel=data_parallel)
        root = tmp_path / f"w{world}{data_parallel}"
        attach(t, str(root), {"dir": str(root), "async_save": True, "keep_last": 0})
        with pytest.raises(ck.CheckpointError, match=r"optimizer\.npz.*No space left.*background from global step 16"
                                                      r"; agreed at step (\d+)\)") as e:
            t.fit()
        if comm.rank == 0:
            assert [c.name for c in ck.list_checkpoints(str(root))] == ["step-00000008"]
        return t.state.global_step, str(e.value)

    res = simulate(world, run) if world > 1 else [run(LocalCommunicator())]
    assert len({step for step, _ in res}) == 1  # the same step on every rank
    assert res[0][0] == 16 + world, res
    assert f"agreed at step {16 + world})" in res[0][1]


class _Score(Callback):
    """Puts a scripted ``score`` into the epoch metrics (before the checkpoint callback reads them)."""

    def __init__(self, values):
        self.values = values

    def on_epoch_end(self, trainer, logs):
        logs["score"] = self.values[trainer.state.epoch]


@pytest.mark.parametrize("async_save", [False, True])
def test_a_failed_save_of_an_improvement_does_not_become_the_best(digits, tmp_path, monkeypatch, async_save):
    monkeypatch.setenv(ck.FAULT_ENV, "enospc:model.npz@16")  # epoch 2, the new best score, is not written
    t = make_trainer(LocalCommunicator(), digits, epochs=4, callbacks=[_Score([3.0, 1.0, 2.0, 2.5])])
    cb = attach(t, str(tmp_path), {"dir": str(tmp_path), "every_epochs": 1, "keep_last": 1, "monitor": "score",
                                   "mode": "min", "on_error": "continue", "async_save": async_save})
    t.fit()
    # epoch 3 (score 2) is the best that was written: it is kept and pointed at, not the failed step 16
    assert (cb.best, cb.best_name) == (2.0, "step-00000024")
    assert ck.read_pointer(str(tmp_path), ck.BEST) == "step-00000024"
    assert [c.name for c in ck.list_checkpoints(str(tmp_path))] == ["step-00000024", "step-00000032"]


def test_nonfinite_on_one_rank_is_skipped_on_every_rank(digits, monkeypatch):
    monkeypatch.setenv("DISTNN_FAULT_NONFINITE_AT", "1:4")

    def run(comm, policy):
        t = make_trainer(comm, digits, epochs=1)
        attach(t, "unused", {"enabled": False}, nonfinite=policy)
        t.fit()
        return t.state.skipped_steps, t.model.state_dict(), t.step_guard.last_bad_ranks

    res = simulate(2, run, "skip")
    assert res[0][0] == res[1][0] == 1
    for k in res[0][1]:
        assert np.isfinite(res[0][1][k]).all()
        np.testing.assert_array_equal(res[0][1][k], res[1][1][k])  # replicas stay equal
    with pytest.raises(step_guard.NonFiniteError, match=r"step 4 \(epoch 1, batch 4\) on rank\(s\) \[1\]"):
        simulate(2, run, "error")


def test_fault_switches_name_the_jobs_ranks_inside_a_group(digits, monkeypatch):
    # an ensemble member trains on its group's communicator: RANK in DISTNN_FAULT_*_AT is still the job's rank
    monkeypatch.setenv("DISTNN_FAULT_NONFINITE_AT", "1:4")

    def run(comm):
        group = comm.split(comm.rank)  # one rank per group: rank 0 of its group on both
        t = make_trainer(group, digits, epochs=1)
        attach(t, "unused", {"enabled": False}, nonfinite="skip")
        t.fit()
        return group.rank, group.world_rank, t.state.skipped_steps

    assert simulate(2, run) == [(0, 0, 0), (0, 1, 1)]


@pytest.mark.parametrize("accumulation_steps", [1, 2])
def test_nonfinite_loss_with_finite_gradients_on_one_rank_is_skipped_on_every_rank(digits, monkeypatch,
                                                                                      accumulation_steps):
    monkeypatch.setenv("DISTNN_FAULT_NONFINITE_LOSS_AT", "1:3")  # rank 1's loss is NaN, its gradients are not

    def run(comm, policy):
        t = make_trainer(comm, digits, epochs=1, accumulation_steps=accumulation_steps)
        attach(t, "unused", {"enabled": False}, nonfinite=policy)
        t.fit()
        return t.state.skipped_steps, t.model.state_dict(), t.step_guard.last_bad_ranks, t.history[-1]

    res = simulate(2, run, "skip")
    assert res[0][0] == res[1][0] == 1 and res[0][2] == res[1][2] == [1]
    assert math.isfinite(res[0][3]["train_loss"])  # the skipped step's loss is not counted
    for k in res[0][1]:
        np.testing.assert_array_equal(res[0][1][k], res[1][1][k])  # replicas stay equal
    with pytest.raises(step_guard.NonFiniteError, match=r"step 3 \(epoch 1, batch 3\) on rank\(s\) \[1\]"):
        simulate(2, run, "error")


def test_too_many_consecutive_nonfinite_steps_is_an_error(digits, monkeypatch):
    monkeypatch.setenv("DISTNN_FAULT_NONFINITE_AT", "0:2,0:3,0:5,0:6,0:7")
    t = make_trainer(LocalCommunicator(), digits, epochs=1)
    attach(t, "unused", {"enabled": False}, nonfinite="skip", max_nonfinite=3)
    with pytest.raises(step_guard.NonFiniteError, match=r"step 7 .* 3 steps in a row \(train.max_nonfinite = 3\)"):
        t.fit()
    assert t.state.skipped_steps == 4


def test_attach_rejects_unknown_options(digits):
    t = make_trainer(LocalCommunicator(), digits)
    with pytest.raises(ValueError, match="every_step\\b.*known keys"):
        attach(t, "x", {"every_step": 3})
    with pytest.raises(ValueError, match="on_error"):
        attach(t, "x", {"on_error": "ignore"})
    with pytest.raises(ValueError, match="nonfinite"):
        attach(t, "x", {"enabled": False}, nonfinite="maybe")
