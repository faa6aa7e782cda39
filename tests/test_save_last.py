"""``checkpoint.save_last``: the state training ends in is checkpointed, so ``--resume auto`` with more
epochs continues from the end (oracle: the uninterrupted run of the larger length, bitwise).

make_trainer's digits MLP takes 8 steps an epoch; ``every_epochs = 2`` with 3 epochs ends off a save step.
"""
import json
import os

import numpy as np
import pytest

from distnn.distributed import LocalCommunicator, simulate
from distnn.train import checkpoint as ck
from distnn.train import preemption
from distnn.train.callbacks import Callback, EarlyStopping
from distnn.train.callbacks.checkpoint_setup import attach, checkpoint_options
from checkpoint_runs import assert_bitwise, digits, final_state, make_trainer  # noqa: F401 (digits: a fixture)


pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


def _steps(root):
    return [c.step for c in ck.list_checkpoints(str(root))]


def _reason(root, step):
    return ck.read_manifest(os.path.join(str(root), ck.step_name(step)))["reason"]


def _opts(root, **kw):
    return {"dir": str(root), "every_epochs": 2, "keep_last": 0, "keep_best": False, **kw}


def _restoring_es():
    # best val_loss by "max" is epoch 1's: restore_best puts epoch-1 weights back at the end of training,
    # after the epoch loop. The end-of-run checkpoint must hold the state training goes on from (the last
    # step's weights), or the resumed run trains on from epoch-1 weights with the last step's optimizer.
    return EarlyStopping(monitor="val_loss", mode="max", patience=100)


@pytest.mark.parametrize("async_save", [False, True], ids=["sync", "async"])
def test_resume_with_more_epochs_continues_from_the_end_bitwise(digits, tmp_path, async_save):
    full = final_state(_fit(make_trainer(LocalCommunicator(), digits, epochs=5, callbacks=[_restoring_es()])))
    t = make_trainer(LocalCommunicator(), digits, epochs=3, callbacks=[_restoring_es()])
    cb = attach(t, str(tmp_path), _opts(tmp_path, async_save=async_save))
    t.fit()
    assert cb._pending is None and cb.saves == 2  # (async: the last write waited for and agreed)
    assert _steps(tmp_path) == [16, 24] and _reason(tmp_path, 24) == "last"
    assert ck.read_pointer(str(tmp_path)) == "step-00000024" and ck.verify_checkpoint(str(tmp_path / "step-00000024")) == []
    t2 = make_trainer(LocalCommunicator(), digits, epochs=5, callbacks=[_restoring_es()])
    cb2 = attach(t2, str(tmp_path), _opts(tmp_path, async_save=async_save), resume_spec="auto")
    assert cb2.resumed_from[1] == 24
    t2.fit()
    assert t2.start_epoch == 3  # epochs 4 and 5 only
    assert_bitwise(full, final_state(t2))
    assert _steps(tmp_path) == [16, 24, 32, 40]  # (epoch 4's regular save; epoch 5 is the end: "last")
    assert _reason(tmp_path, 40) == "last"


def test_no_second_checkpoint_when_the_last_step_is_saved(digits, tmp_path):
    t = make_trainer(LocalCommunicator(), digits, epochs=4)
    cb = attach(t, str(tmp_path), _opts(tmp_path))
    t.fit()
    assert _steps(tmp_path) == [16, 32] and cb.saves == 2 and _reason(tmp_path, 32) == "epoch"
    # resumed at its end: fit trains nothing and writes nothing
    t2 = make_trainer(LocalCommunicator(), digits, epochs=4)
    cb2 = attach(t2, str(tmp_path), _opts(tmp_path), resume_spec="auto")
    t2.fit()
    assert cb2.saves == 0 and _steps(tmp_path) == [16, 32]


def test_keep_last_applies_to_the_last_checkpoint(digits, tmp_path):
    t = make_trainer(LocalCommunicator(), digits, epochs=3)
    attach(t, str(tmp_path), _opts(tmp_path, keep_last=1))
    t.fit()
    assert _steps(tmp_path) == [24]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no spare left behind


def test_save_last_false_keeps_the_periodic_checkpoints_only(digits, tmp_path):
    assert checkpoint_options({})["save_last"] is True
    t = make_trainer(LocalCommunicator(), digits, epochs=3)
    cb = attach(t, str(tmp_path), _opts(tmp_path, save_last=False))
    assert cb.save_last is False
    t.fit()
    assert _steps(tmp_path) == [16]


def test_an_early_stop_is_saved_and_resumes_to_the_same_end(digits, tmp_path):
    def es():  # "max" of a falling val_loss: no improvement after epoch 1, a stop at epoch 2's end
        return EarlyStopping(monitor="val_loss", mode="max", patience=1)

    full = final_state(_fit(make_trainer(LocalCommunicator(), digits, epochs=8, callbacks=[es()])))
    assert full["step"] == 16
    t = make_trainer(LocalCommunicator(), digits, epochs=6, callbacks=[es()])
    attach(t, str(tmp_path), _opts(tmp_path, every_epochs=4))
    t.fit()
    assert t.state.stopped_early and _steps(tmp_path) == [16]
    man = ck.read_manifest(str(tmp_path / "step-00000016"))
    assert man["reason"] == "last" and man["stop_agreed"]
    t2 = make_trainer(LocalCommunicator(), digits, epochs=8, callbacks=[es()])
    attach(t2, str(tmp_path), _opts(tmp_path, every_epochs=4), resume_spec="auto")
    t2.fit()
    assert t2.start_epoch == 2 and t2.state.stopped_early
    assert_bitwise(full, final_state(t2))


def test_a_max_steps_end_is_saved(digits, tmp_path):
    t = make_trainer(LocalCommunicator(), digits, epochs=5)
    t.max_steps = 12  # mid-epoch 2 (saved before the run's end validates the cut epoch)
    attach(t, str(tmp_path), _opts(tmp_path, every_epochs=3))
    t.fit()
    assert t.state.global_step == 12 and _steps(tmp_path) == [12] and _reason(tmp_path, 12) == "last"
    t2 = make_trainer(LocalCommunicator(), digits, epochs=5)
    t2.max_steps = 12
    cb2 = attach(t2, str(tmp_path), _opts(tmp_path, every_epochs=3), resume_spec="auto")
    t2.fit()
    assert cb2.resumed_from[1] == 12 and cb2.saves == 0
    assert_bitwise(final_state(t), final_state(t2))


@pytest.mark.parametrize("every_steps,keep_best,async_save", [(0, False, False), (4, False, False), (0, True, False),
                                                             (4, True, False), (0, True, True)],
                         ids=["last", "step-save-there", "last-best", "step-save-there-best", "last-best-async"])
def test_a_larger_max_steps_resumes_the_cut_epoch_as_the_uninterrupted_run(digits, tmp_path, every_steps, keep_best,
                                                                          async_save):
    # max_steps = 12 cuts epoch 2 (8 steps an epoch); the run's end validates that cut epoch and runs its
    # epoch-end callbacks. A resume with max_steps = 20 must go on with epoch 2 from step 12, as a run with
    # max_steps = 20 from the start does: the end checkpoint holds the mid-epoch state, before that end.
    full = make_trainer(LocalCommunicator(), digits, epochs=5)
    full.max_steps = 20
    full.fit()
    t = make_trainer(LocalCommunicator(), digits, epochs=5)
    t.max_steps = 12
    # keep_best: the cut epoch's validation improves val_loss; its end must not rewrite step 12 with the
    # end-of-epoch state (the best-metric save), only make that checkpoint the best one
    opts = _opts(tmp_path, every_epochs=3, every_steps=every_steps, keep_best=keep_best, async_save=async_save)
    cb = attach(t, str(tmp_path), opts)
    t.fit()
    assert 12 in _steps(tmp_path) and not ck.read_manifest(str(tmp_path / ck.step_name(12)))["epoch_end"]
    if keep_best:
        assert cb.best_name == "step-00000012" == ck.read_pointer(str(tmp_path), ck.BEST)
    t2 = make_trainer(LocalCommunicator(), digits, epochs=5)
    t2.max_steps = 20
    cb2 = attach(t2, str(tmp_path), opts, resume_spec="auto")
    t2.fit()
    assert cb2.resumed_from[1] == 12 and t2.state.global_step == 20
    assert_bitwise(final_state(full), final_state(t2))
    assert [h["epoch"] for h in t2.history] == [h["epoch"] for h in full.history] == [1, 2, 3]


def test_no_last_checkpoint_after_an_error_or_a_preemption(digits, tmp_path):
    class Boom(Callback):
        def on_epoch_end(self, trainer, logs):
            if trainer.state.epoch == 2:
                raise RuntimeError("boom")

    t = make_trainer(LocalCommunicator(), digits, epochs=3, callbacks=[Boom()])
    attach(t, str(tmp_path / "a"), _opts(tmp_path / "a"))
    with pytest.raises(RuntimeError, match="boom"):
        t.fit()
    assert _steps(tmp_path / "a") == [16]

    class Signal(Callback):
        def on_batch_end(self, trainer, logs):
            if trainer.state.global_step == 19:
                preemption.request()

    t = make_trainer(LocalCommunicator(), digits, epochs=3, callbacks=[Signal()])
    cb = attach(t, str(tmp_path / "b"), _opts(tmp_path / "b"))
    with pytest.raises(preemption.Preempted):
        t.fit()
    assert _steps(tmp_path / "b") == [16, 20] and _reason(tmp_path / "b", 20) == "preempt" and cb.saves == 2


@pytest.mark.parametrize("world", [2, 3])
def test_a_stop_requested_on_one_rank_is_agreed_and_saved(digits, tmp_path, world):
    # one rank alone asks to stop at epoch 2's end: every rank takes the end-of-run save together (no rank
    # left waiting in a collective), as every rank stops together
    class StopOnLastRank(Callback):
        def on_epoch_end(self, trainer, logs):
            if trainer.rank == world - 1 and trainer.state.epoch == 1:
                trainer.request_stop("asked by one rank")

    def run(comm):
        t = make_trainer(comm, digits, epochs=6, subset=360, batch_size=60, callbacks=[StopOnLastRank()])
        cb = attach(t, str(tmp_path), _opts(tmp_path, every_epochs=4))
        t.fit()
        return t.state.global_step, t.state.stopped_early, cb.saves

    res = simulate(world, run)
    assert res == [(12, True, 1)] * world
    assert _steps(tmp_path) == [12] and _reason(tmp_path, 12) == "last"


@pytest.mark.mpi(min_size=2)
def test_mpi_end_of_run_checkpoint_and_resume_match_the_uninterrupted_run(digits, mpi_tmp_path):
    # under mpiexec: the stop asked by the last rank alone is agreed; the resumed run (more epochs, from the
    # end-of-run checkpoint) equals the uninterrupted one on every rank
    import distnn.distributed as dist

    comm = dist.init()
    root = str(mpi_tmp_path / "ck")

    class StopOnLastRank(Callback):
        def on_epoch_end(self, trainer, logs):
            if trainer.rank == comm.size - 1 and trainer.state.epoch == 2 and trainer.epochs == 4:
                trainer.request_stop("asked by one rank")

    kw = dict(subset=360, batch_size=60)
    full = final_state(_fit(make_trainer(comm, digits, epochs=5, **kw)))
    t = make_trainer(comm, digits, epochs=3, **kw)
    attach(t, root, _opts(root))
    t.fit()
    t2 = make_trainer(comm, digits, epochs=5, **kw)
    cb2 = attach(t2, root, _opts(root), resume_spec="auto")
    t2.fit()
    assert cb2.resumed_from[1] == 18 and t2.start_epoch == 3
    assert_bitwise(full, final_state(t2))
    t3 = make_trainer(comm, digits, epochs=4, callbacks=[StopOnLastRank()], **kw)
    cb3 = attach(t3, root + "-stop", _opts(root + "-stop"))
    t3.fit()
    assert t3.state.stopped_early and t3.state.global_step == 18 and cb3.saves == 2
    if comm.rank == 0:
        assert _steps(root) == [12, 18, 24, 30] and _steps(root + "-stop") == [12, 18]


def test_cli_resume_auto_with_more_epochs_matches_the_uninterrupted_run(tmp_path):
    from distnn.cli import main

    base = ["train", "--config", "digits_mlp", "--quiet", "--set", "run.plots=false", "--set",
            "checkpoint.every_epochs=2", "--set", "checkpoint.keep_best=false",
            # (digits_mlp's cosine schedule is sized by train.epochs, so a longer run differs from the start;
            # a fixed T_max is the same schedule in both)
            "--set", "schedule.T_max=8"]
    assert main([*base, "--set", "train.epochs=5", "--out", str(tmp_path / "five")]) == 0  # the oracle
    run = str(tmp_path / "r")
    assert main([*base, "--set", "train.epochs=3", "--out", run]) == 0
    steps = json.load(open(os.path.join(run, "summary.json")))["global_steps"]
    assert _steps(os.path.join(run, "checkpoints"))[-1] == steps  # the end of the 3 epochs
    assert main([*base, "--set", "train.epochs=5", "--out", run, "--resume", "auto"]) == 0
    with np.load(os.path.join(run, "model.npz")) as a, np.load(str(tmp_path / "five" / "model.npz")) as b:
        assert a.files == b.files
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    rows = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl"))]
    oracle = [json.loads(line) for line in open(str(tmp_path / "five" / "metrics.jsonl"))]
    keys = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr")
    assert [[r.get(k) for k in keys] for r in rows] == [[r.get(k) for k in keys] for r in oracle]


def _fit(t):
    t.fit()
    return t


def _plateau_every_2(digits, epochs):
    """make_trainer's run validated every 2nd epoch, with the metric-driven parts that count validations:
    a plateau schedule that halves the rate at every evaluation whose val_loss is not the highest so far
    (val_loss falls, so every evaluation after the first), early stopping and the best checkpoint."""
    from distnn.optim.lr_scheduler import ReduceLROnPlateau
    from distnn.train.callbacks.lr_callback import LRSchedulerCallback

    es = EarlyStopping(monitor="val_loss", mode="max", patience=100, restore_best_weights=False)
    t = make_trainer(LocalCommunicator(), digits, epochs=epochs, callbacks=[es])
    t.callbacks.callbacks.insert(0, LRSchedulerCallback(ReduceLROnPlateau(t.optimizer, mode="max", factor=0.5,
                                                                          patience=0), monitor="val_loss"))
    t.eval_every = 2
    return t


@pytest.mark.parametrize("async_save", [False, True], ids=["sync", "async"])
def test_with_eval_every_the_last_epochs_extra_validation_is_reported_not_counted(digits, tmp_path, async_save):
    """3 epochs validated every 2nd: epochs 2 and 3 are validated (the last always is, so the final weights
    get a score), but epoch 3's validation is not one of the every-2nd ones. Counted by the plateau schedule,
    early stopping and the best checkpoint, it made the run resumed to 5 epochs differ from the 5-epoch run
    (which validates epochs 2 and 4, then 5): the rate was halved once more."""
    full = _plateau_every_2(digits, 5)
    full.fit()
    t = _plateau_every_2(digits, 3)
    cb = attach(t, str(tmp_path), _opts(tmp_path, async_save=async_save, keep_best=True))
    t.fit()
    assert [("val_loss" in r) for r in t.history] == [False, True, True]  # epoch 3: reported
    # not a candidate for the best while training (the checkpoints' state holds epoch 2's), but at the end it
    # scores the final weights: better, it is the run's best and the best checkpoint (tests/test_final_report.py)
    assert t.state.best_epoch == 2 and cb.best_name == "step-00000024"
    t2 = _plateau_every_2(digits, 5)
    attach(t2, str(tmp_path), _opts(tmp_path, async_save=async_save, keep_best=True), resume_spec="auto")
    t2.fit()
    assert t2.start_epoch == 3
    assert_bitwise({**final_state(full), "history": []}, {**final_state(t2), "history": []})
    keys = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr")
    assert [[r.get(k) for k in keys] for r in full.history][3:] == [[r.get(k) for k in keys] for r in t2.history][3:]
    assert [r["lr"] for r in t2.history] == [r["lr"] for r in full.history]
    assert "val_loss" in t2.history[2] and "val_loss" not in full.history[2]  # the 3-epoch run's report, kept
    ours, oracle = t2.callbacks.state_dict(), full.callbacks.state_dict()  # (ours also has the checkpoint's)
    for key in ("lr_scheduler.ReduceLROnPlateau", "early_stopping", "early_stopping#2"):  # (make_trainer's, ours)
        mine, theirs = ours[key].pop("best_weights", None), oracle[key].pop("best_weights", None)
        assert ours[key] == oracle[key], key
        assert (mine is None) == (theirs is None)
        for name in mine or {}:
            np.testing.assert_array_equal(mine[name], theirs[name], err_msg=f"{key} {name}")
    assert (t2.state.best_metric, t2.state.best_epoch) == (full.state.best_metric, full.state.best_epoch)
