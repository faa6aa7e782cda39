"""Resume at the edges an audit found: a run that max_steps ended, a non-finite streak across a save,
generators given to layers, a changed config or optimizer, and the time a preempted session took."""
import logging

import numpy as np
import pytest

import distnn
from distnn.distributed import LocalCommunicator
from distnn.models import build_model
from distnn.optim import SGD, Adam
from distnn.train import checkpoint as ck
from distnn.train import preemption, step_guard
from distnn.train.callbacks import Callback
from distnn.train.callbacks.checkpoint_setup import attach, detach
from distnn.train.trainer import Trainer
from checkpoint_runs import assert_bitwise, digits, final_state, make_trainer  # noqa: F401 (digits: a fixture)

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


def _run(root, spec=None, options=None, **kw):
    t = make_trainer(LocalCommunicator(), kw.pop("digits"), **kw)
    attach(t, str(root), {"dir": str(root), "keep_last": 0, **(options or {})}, resume_spec=spec)
    t.fit()
    return t


def test_resuming_a_run_that_max_steps_ended_adds_no_epoch(digits, tmp_path):
    # 8 steps per epoch; max_steps 12 ends the run in epoch 2 (saved, validated). Resuming it again, twice,
    # used to add an empty epoch each time (a NaN train loss, one more scheduler step, a rewritten checkpoint).
    def trainer():
        t = make_trainer(LocalCommunicator(), digits, epochs=4)
        t.max_steps = 12
        return t

    t = trainer()
    attach(t, str(tmp_path), {"dir": str(tmp_path), "every_epochs": 1, "keep_last": 0})
    t.fit()
    done = final_state(t)
    assert len(done["history"]) == 2 and done["step"] == 12
    for _ in range(2):
        t = trainer()
        attach(t, str(tmp_path), {"dir": str(tmp_path), "every_epochs": 1, "keep_last": 0}, resume_spec="auto")
        t.fit()
        assert len(t.history) == 2
        assert_bitwise(done, final_state(t))
    # step 12's checkpoint is the cut epoch's mid-epoch state (save_last, before the run's end validates it:
    # what a larger max_steps resumes from), never rewritten by the resumed runs' ends
    last = str(tmp_path / ck.step_name(12))
    assert len(ck.read_checkpoint(last)[0]["history"]) == 1 and not ck.read_manifest(last)["epoch_end"]


def test_a_streak_of_skipped_steps_goes_on_across_a_resume(digits, tmp_path, monkeypatch):
    # non-finite gradients at steps 5, 6 and 7 with max_nonfinite 3: the third in a row is an error, also
    # when the run was resumed from the checkpoint of step 6 (the count is saved; it restarted at 0).
    monkeypatch.setenv("DISTNN_FAULT_NONFINITE_AT", "0:5,0:6,0:7")
    for spec in (None, str(tmp_path / "a" / ck.step_name(6))):
        t = make_trainer(LocalCommunicator(), digits, epochs=2)
        root = tmp_path / ("a" if spec is None else "b")
        attach(t, str(root), {"dir": str(root), "every_steps": 6, "keep_last": 0}, nonfinite="skip",
               max_nonfinite=3, resume_spec=spec)
        with pytest.raises(step_guard.NonFiniteError, match=r"step 7 .* 3 steps in a row"):
            t.fit()


def test_generators_given_to_layers_continue_exactly(digits, tmp_path):
    # MLP(generator=...) draws its dropout masks from that generator, not from distnn.random's
    splits, (aug_tf, eval_tf), _ = digits

    def trainer():
        distnn.manual_seed(0)
        model = build_model("mlp", hidden_sizes=[32], dropout=0.3, input_shape=splits.input_shape, num_classes=10,
                            generator=np.random.default_rng(123))
        return Trainer(model, Adam(model.parameters(), lr=3e-3), splits.train.subset(np.arange(200)), splits.val,
                       comm=LocalCommunicator(), batch_size=40, epochs=3, transform=aug_tf, eval_transform=eval_tf,
                       seed=3)

    full = trainer()
    attach(full, str(tmp_path / "a"), {"dir": str(tmp_path / "a"), "every_steps": 1, "keep_last": 0})
    full.fit()
    resumed = trainer()
    attach(resumed, str(tmp_path / "b"), {"dir": str(tmp_path / "b")}, resume_spec=str(tmp_path / "a" / ck.step_name(7)))
    resumed.fit()
    assert_bitwise(final_state(full), final_state(resumed))


def test_resuming_with_a_changed_config_names_every_change(digits, tmp_path, caplog):
    first = '[optimizer]\nlr = 0.1\nname = "adam"\n[train]\nepochs = 2\n[checkpoint]\nresume = ""\n'
    changed = '[optimizer]\nlr = 0.5\nname = "adam"\n[train]\nepochs = 3\n[checkpoint]\nresume = "auto"\n'
    t = make_trainer(LocalCommunicator(), digits, epochs=1)
    attach(t, str(tmp_path), {"dir": str(tmp_path)}, extra_files={"config.toml": first})
    t.fit()
    t = make_trainer(LocalCommunicator(), digits, epochs=1)
    try:
        with caplog.at_level(logging.WARNING, logger="distnn"):
            attach(t, str(tmp_path), {"dir": str(tmp_path)}, extra_files={"config.toml": changed},
                   resume_spec="auto")
    finally:  # (no fit follows: the signal handlers and the step guard given back)
        detach(t)
    [warning] = [r.getMessage() for r in caplog.records if "differs from the checkpoint" in r.getMessage()]
    assert "optimizer.lr: 0.1 -> 0.5" in warning and "train.epochs: 2 -> 3" in warning
    assert "checkpoint.resume" not in warning and "optimizer.name" not in warning


def test_resuming_with_another_optimizer_is_a_clear_error(digits, tmp_path):
    t = make_trainer(LocalCommunicator(), digits, epochs=1)  # Adam
    attach(t, str(tmp_path), {"dir": str(tmp_path)})
    t.fit()
    t = make_trainer(LocalCommunicator(), digits, epochs=2)
    t.optimizer = SGD(t.model.parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(ck.CheckpointError, match=r"cannot resume .*has no 'momentum'.*another optimizer than SGD"):
        attach(t, str(tmp_path), {"dir": str(tmp_path)}, resume_spec="auto")


def test_a_preempted_session_counts_in_the_saved_training_time(digits, tmp_path):
    class SlowThenSignal(Callback):
        def on_batch_end(self, trainer, logs):
            import time

            time.sleep(0.02)
            if trainer.state.global_step == 11:
                preemption.request()

    t = make_trainer(LocalCommunicator(), digits, callbacks=[SlowThenSignal()])
    attach(t, str(tmp_path), {"dir": str(tmp_path), "every_epochs": 1, "keep_best": False})
    with pytest.raises(preemption.Preempted):
        t.fit()
    state, _ = ck.read_checkpoint(str(tmp_path / ck.step_name(12)))
    assert state["state"]["elapsed"] >= 12 * 0.02  # was 0: only a finished fit() added its time
    # the epoch's running time so far is saved with its samples (the resumed epoch's samples/s stays right)
    assert state["ranks"][0]["epoch_sums"]["time"] >= 3 * 0.02  # (steps 10-12; each includes the previous sleep)


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_a_run_resumed_with_a_larger_max_steps_follows_its_new_length(tmp_path, schedule):
    # Schedules spanning the run are sized by train.max_steps; the checkpoint of a 40-step run restored that
    # size into an 80-step resume: onecycle stopped with "tried to step 41 times", cosine spent an epoch at lr 0
    from distnn.cli import main
    from distnn.train.callbacks.metrics_logger import read_metrics_csv

    out = str(tmp_path / "run")
    args = ["train", "--config", "digits_mlp", "--quiet", "--out", out, "--set", "train.epochs=4", "--set",
            "run.plots=false", "--set", f"schedule.name={schedule}", "--set", "data.augment.shift=0"]
    assert main([*args, "--set", "train.max_steps=40"]) == 0  # 2 of 4 epochs (20 steps each)
    assert main([*args, "--set", "train.max_steps=80", "--resume", "auto"]) == 0
    lrs = [row["lr"] for row in read_metrics_csv(f"{out}/metrics.csv")]
    assert len(lrs) == 4 and all(lr > 1e-4 for lr in lrs[:3])  # no epoch spent at (or near) lr 0
