"""Exact resume of whole config-built jobs, as ``distnn train`` builds them (distnn.train.job.Job).

The oracle: the uninterrupted run against the same run interrupted after step N (an error raised
right after the step's checkpoint, a preemption request, or an epoch end's checkpoint) and resumed
from that checkpoint. Same world size: model, optimizer, LR-schedule and early-stopping state and the
history are bitwise equal. Another world size (float64): equal to summation tolerance.

test_checkpoint_resume.py covers a hand-built trainer (Adam, warmup, dropout, noise); these add what the
config wires in: gradient accumulation, onecycle/plateau/step schedules after a warmup, early stopping
in the middle of a patience streak, SyncBatchNorm with padded batches on 3 ranks, shift/rotate
augmentation, label smoothing, clipping, weight decay, async saves, and interruptions at step 1, at
an epoch's last step and at the run's very last step.
"""
import numpy as np
import pytest

from distnn.distributed import LocalCommunicator, simulate
from distnn.train import preemption
from distnn.train.callbacks import Callback
from distnn.train.callbacks.checkpoint_setup import attach
from distnn.train.job import Job

# 1257 digits: 10 steps an epoch at batch 128 (the last one short), 11 at batch 120 (divisible by 2 and 3 ranks)
BASE = ["model.hidden_sizes=[32]", "train.epochs=3", "data.batch_size=128", "run.plots=false"]


pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


class Interrupted(Exception):
    pass


class InterruptAfter(Callback):
    """Raise after step ``step``'s on_batch_end (or its epoch end): after the checkpoint callback's work (it runs
    last as the checkpoint callbacks do, listed after them)."""

    runs_last = True

    def __init__(self, step, at_epoch_end=False):
        self.step, self.at_epoch_end = step, at_epoch_end

    def on_batch_end(self, trainer, logs):
        if trainer.state.global_step == self.step and not self.at_epoch_end:
            raise Interrupted(self.step)

    def on_epoch_end(self, trainer, logs):
        if trainer.state.global_step == self.step and self.at_epoch_end:
            raise Interrupted(self.step)


class PreemptBefore(Callback):
    """A preemption request at step ``step - 1``: every rank saves and stops after step ``step`` or, by
    timing, the next one. (The flag is the process's, shared by simulated ranks: a rank whose guard of
    step ``step - 1`` runs after another rank's request sends it a step earlier than its own request
    would; the agreement then comes after step ``step``, else after ``step + 1``.)"""

    def __init__(self, step):
        self.step = step

    def on_batch_end(self, trainer, logs):
        if trainer.state.global_step == self.step - 1:
            preemption.request()


def _run(comm, overrides, root, options=None, interrupt=None, resume=None):
    """The job on ``comm``; ``interrupt`` = a callback that stops it (then None is returned)."""
    trainer = Job("digits_mlp", BASE + list(overrides), comm, quiet=True).trainer
    opts = {"dir": str(root), "every_steps": 0, "every_epochs": 0, "keep_last": 0, "keep_best": False,
            **(options or {})}
    attach(trainer, str(root), opts, resume_spec=None if resume is None else str(resume))
    if interrupt is not None:
        trainer.callbacks.append(interrupt)  # after the checkpoint callback: the step's checkpoint is written
    try:
        trainer.fit()
    except (Interrupted, preemption.Preempted):
        assert interrupt is not None
        return None
    assert interrupt is None, f"the interruption at step {interrupt.step} never came"
    return {"model": trainer.model.state_dict(), "optimizer": trainer.optimizer.state_dict(),
            "history": trainer.history, "step": trainer.state.global_step,
            "callbacks": {k: v for k, v in trainer.callbacks.state_dict().items()
                          if k.startswith(("lr_", "early_stopping"))}}


def _on(world, fn):
    """Every rank's result."""
    return [fn(LocalCommunicator())] if world == 1 else simulate(world, fn)


def _equal(a, b, exact, what):
    if exact:
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg=what)
        else:
            assert a == b or (a != a and b != b), f"{what}: {a!r} != {b!r}"
    elif isinstance(a, (float, np.ndarray)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11, err_msg=what)
    else:
        assert a == b, f"{what}: {a!r} != {b!r}"


def assert_same(full, resumed, exact=True):
    assert resumed["step"] == full["step"]
    for k in full["model"]:
        _equal(full["model"][k], resumed["model"][k], exact, f"model {k}")
    sa, sb = full["optimizer"]["state"], resumed["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for i in sa:
        for k in sa[i]:
            _equal(np.asarray(sa[i][k]), np.asarray(sb[i][k]), exact, f"optimizer {i}.{k}")
    for ga, gb in zip(full["optimizer"]["param_groups"], resumed["optimizer"]["param_groups"]):
        for k in ga:
            _equal(ga[k], gb[k], exact, f"param_group {k}")
    assert len(full["history"]) == len(resumed["history"])
    for ra, rb in zip(full["history"], resumed["history"]):
        for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
            if k in ra or k in rb:
                _equal(ra[k], rb[k], exact, f"epoch {ra['epoch']} {k}")
    assert full["callbacks"].keys() == resumed["callbacks"].keys()
    for name, state in full["callbacks"].items():
        for k, v in state.items():
            w = resumed["callbacks"][name][k]
            if k == "best_weights" and v is not None:
                for p in v:
                    _equal(v[p], w[p], exact, f"{name}.best_weights.{p}")
            elif not isinstance(v, dict):
                _equal(v, w, exact, f"{name}.{k}")


def sweep(tmp_path, overrides, stops, saved=1, resumed=1, how="step", options=None):
    """The uninterrupted run against, for each step in ``stops``, the run stopped there and resumed."""
    exact = saved == resumed
    full = _on(saved, lambda c: _run(c, overrides, tmp_path / "full"))
    for step in stops:
        root = tmp_path / f"stop{step}"
        if how == "step":
            opts, stop = {"every_steps": step}, lambda: InterruptAfter(step)
        elif how == "epoch":
            opts, stop = {"every_epochs": 1}, lambda: InterruptAfter(step, at_epoch_end=True)
        else:  # preemption: its own checkpoint
            opts, stop = {}, lambda: PreemptBefore(step)
        _on(saved, lambda c: _run(c, overrides, root, {**opts, **(options or {})}, interrupt=stop()))
        preemption.clear()
        res = _on(resumed, lambda c: _run(c, overrides, tmp_path / f"resumed{step}", options, resume=root))
        for r in range(min(saved, resumed) if exact else 1):
            assert_same(full[r], res[r], exact)
    return full[0]


# --------------------------------------------------------------------------- same world size: bitwise
def test_accumulation_dropout_augmentation_at_step_1_an_epoch_end_and_the_last_step(tmp_path):
    # 4 micro-batches a step (the epoch's short last step included), dropout, shift + rotate + noise
    full = sweep(tmp_path, ["train.grad_accumulation=4", "model.dropout=0.3", "data.augment.rotate=15",
                            "data.augment.noise=0.2"], [1, 10, 13, 30])
    assert full["step"] == 30


def test_two_ranks_accumulation_onecycle_adam_smoothing_clipping_weight_decay(tmp_path):
    sweep(tmp_path, ["data.batch_size=120", "train.grad_accumulation=2", "model.dropout=0.3",
                     "schedule.name='onecycle'", "optimizer.name='adamw'", "optimizer.nesterov=false",
                     "optimizer.lr=0.003", "optimizer.weight_decay=0.01", "train.label_smoothing=0.1",
                     "train.grad_clip=0.5"], [1, 11, 15, 33], saved=2, resumed=2)


def test_warmup_then_step_schedule_with_sgd_nesterov_preempted(tmp_path):
    # the warmup (start factor 0.1) hands over to a per-step StepLR (epoch counts converted to steps);
    # preemption interrupts. Epoch 1 ends at 0.05 * (0.1 + 0.9 * 10 / 12)
    full = sweep(tmp_path, ["schedule.name='step'", "schedule.step_size=1", "schedule.gamma=0.5",
                            "schedule.warmup_steps=12", "model.dropout=0.2"], [2, 11, 28], saved=2, resumed=2,
                 how="preempt")
    assert [round(h["lr"], 6) for h in full["history"]] == [0.0425, 0.05, 0.025]


ES_PLATEAU = ["early_stopping.enabled=true", "early_stopping.patience=2", "early_stopping.min_delta=0.35",
              "train.epochs=8", "schedule.name='constant'"]


@pytest.mark.parametrize("how", ["step", "epoch"])
def test_early_stopping_resumed_in_the_middle_of_a_patience_streak(tmp_path, how):
    # val_loss falls by less than min_delta from epoch 4 on: epoch 4's end starts a streak, epoch 5 is
    # an improvement again, epochs 6 and 7 stop the run (of 8); resumed before (step) or after (epoch)
    # epoch 4's and epoch 5's ends. (An early-stopping state not restored stops at epoch 6 or 8.) The losses
    # depend on the dropout masks: min_delta 0.35 sits between epoch 4's fall (0.30 to 0.31) and epoch 5's
    # from epoch 3's best (0.42).
    full = sweep(tmp_path, ES_PLATEAU, [40, 50, 70], how=how)
    assert len(full["history"]) == 7 and full["callbacks"]["early_stopping"]["stopped_epoch"] == 6


def test_plateau_with_cooldown_on_val_accuracy_and_early_stopping(tmp_path):
    full = sweep(tmp_path, ["schedule.name='plateau'", "schedule.monitor='val_accuracy'", "schedule.patience=0",
                            "schedule.cooldown=1", "schedule.factor=0.5", "schedule.threshold=0.01",
                            "train.epochs=6", "optimizer.lr=0.3", "early_stopping.enabled=true"], [20, 40, 50],
                 how="epoch")
    assert full["history"][-1]["lr"] < 0.3  # the plateau acted


def test_syncbatchnorm_three_ranks_padded_batches_accumulation(tmp_path):
    # 1257 samples on 3 ranks of 40: the last step has 19 rows a rank, one micro-batch of 20 then none
    sweep(tmp_path, ["data.batch_size=120", "model.norm='batch'", "distributed.sync_batchnorm=true",
                     "train.grad_accumulation=2", "model.dropout=0.2"], [1, 11, 15], saved=3, resumed=3)


def test_async_saves_on_two_ranks(tmp_path):
    sweep(tmp_path, ["data.batch_size=120", "model.dropout=0.3"], [7, 11], saved=2, resumed=2,
          options={"async_save": True})


# --------------------------------------------------------------------------- another world size: tolerance
@pytest.mark.parametrize("saved,resumed", [(3, 2), (1, 3)])
def test_another_world_size_with_accumulation_syncbatchnorm_and_augmentation(tmp_path, saved, resumed):
    sweep(tmp_path, ["data.batch_size=120", "run.dtype='float64'", "train.grad_accumulation=2",
                     "model.norm='batch'", "distributed.sync_batchnorm=true", "model.dropout=0.3",
                     "data.augment.rotate=15", "data.augment.noise=0.2"], [6, 11], saved=saved, resumed=resumed)


def test_another_world_size_plateau_and_early_stopping_state(tmp_path):
    sweep(tmp_path, ["data.batch_size=120", "run.dtype='float64'", "schedule.name='plateau'", "schedule.patience=0",
                     "schedule.factor=0.5", "train.epochs=5", "optimizer.lr=0.5", "early_stopping.enabled=true"],
          [11, 23, 44], saved=2, resumed=1)

