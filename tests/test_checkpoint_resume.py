"""Checkpoints in one process, resumed: --resume auto without checkpoints, bitwise-exact resume mid-epoch and at
an epoch's end (every optimizer, two simulated ranks), preemption requests, resuming on another world size, the
global batch and the model checked, agreed early stop."""
import logging
import os
import threading

import numpy as np
import pytest

import distnn
from distnn.distributed import LocalCommunicator, simulate
from distnn.models import build_model
from distnn import optim
from distnn.optim import Adam
from distnn.train import checkpoint as ck
from distnn.train import preemption, step_guard
from distnn.train.callbacks import Callback
from distnn.train.callbacks.checkpoint_setup import attach, detach
from distnn.train.trainer import Trainer

from checkpoint_runs import write_step, assert_bitwise, digits, final_state, make_trainer, run_with_checkpoints


pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


def resume_run(comm, digits, root, spec, **kw):
    t = make_trainer(comm, digits, **kw)
    attach(t, str(root), {"dir": str(root), "every_steps": 0, "keep_last": 0}, resume_spec=str(spec))
    t.fit()
    return final_state(t)


def test_resume_auto_without_checkpoints_and_errors(tmp_path):
    assert ck.resolve_and_load("auto", str(tmp_path / "none")) is None
    with pytest.raises(ck.CheckpointError, match="--out"):
        ck.resolve_and_load("auto", None)
    with pytest.raises(ck.CheckpointError, match="no such"):
        ck.resolve_and_load(str(tmp_path / "missing"), None)
    write_step(tmp_path / "checkpoints", 3)
    # a run directory resolves to its checkpoints/ root
    path, _, _ = ck.resolve_and_load(str(tmp_path), None)
    assert path.endswith("step-00000003")


@pytest.mark.parametrize("enabled", [True, False])
def test_resume_auto_with_no_checkpoint_says_whether_this_run_writes_any(digits, tmp_path, caplog, enabled):
    # (slurm/train.sbatch always passes --resume auto: with checkpointing off, a stop starts over)
    t = make_trainer(LocalCommunicator(), digits, epochs=1)
    try:
        with caplog.at_level(logging.INFO):
            attach(t, str(tmp_path), {"dir": str(tmp_path), "enabled": enabled}, resume_spec="auto")
    finally:  # (no fit follows: the signal handlers and the step guard given back)
        detach(t)
    said = [r.getMessage() for r in caplog.records if "no checkpoint in" in r.getMessage()]
    assert len(said) == 1 and "starting from the beginning" in said[0]
    assert ("checkpointing is off in this run" in said[0]) is not enabled, said


def test_exact_resume_bitwise_mid_epoch_and_epoch_end(digits, tmp_path):
    # dropout, noise augmentation, Adam, per-step warmup, early-stopping state: everything must continue exactly
    full = run_with_checkpoints(LocalCommunicator(), digits, tmp_path / "a", every=1)
    spe = 8  # 300 samples / batch 40
    assert full["step"] == 3 * spe
    for step in (3, spe, spe + 5, 2 * spe):  # mid-epoch, after an epoch's last step, ...
        resumed = resume_run(LocalCommunicator(), digits, tmp_path / f"r{step}",
                             tmp_path / "a" / ck.step_name(step))
        assert_bitwise(full, resumed)


@pytest.mark.parametrize("optimizer", [
    lambda ps: optim.NAdam(ps, lr=3e-3, decoupled_weight_decay=True, weight_decay=1e-2),  # float state mu_product
    lambda ps: optim.ASGD(ps, lr=3e-2, t0=4),  # float state eta and mu, averaging from step 5
    lambda ps: optim.Rprop(ps, lr=1e-3),
    lambda ps: optim.Adafactor(ps, weight_decay=1e-2),  # row_var/col_var: state of another shape than the params'
], ids=["NAdam", "ASGD", "Rprop", "Adafactor"])
def test_exact_resume_bitwise_with_the_added_optimizers(digits, tmp_path, optimizer):
    full = run_with_checkpoints(LocalCommunicator(), digits, tmp_path / "a", every=5, optimizer=optimizer)
    assert full["optimizer"]["state"]  # (it stepped)
    resumed = resume_run(LocalCommunicator(), digits, tmp_path / "r", tmp_path / "a" / ck.step_name(10),
                         optimizer=optimizer)
    assert_bitwise(full, resumed)


def test_exact_resume_bitwise_two_simulated_ranks(digits, tmp_path):
    full = simulate(2, lambda c: run_with_checkpoints(c, digits, tmp_path / "a", every=5))
    for k in full[0]["model"]:
        np.testing.assert_array_equal(full[0]["model"][k], full[1]["model"][k])
    man = ck.read_manifest(str(tmp_path / "a" / ck.step_name(10)))
    assert man["world_size"] == 2 and man["batch_in_epoch"] == 2 and man["global_sample_position"] == 80
    state, _ = ck.read_checkpoint(str(tmp_path / "a" / ck.step_name(10)))
    assert len(state["ranks"]) == 2 and state["ranks"][0]["rng"] != state["ranks"][1]["rng"]
    resumed = simulate(2, lambda c: resume_run(c, digits, tmp_path / "b", tmp_path / "a" / ck.step_name(10)))
    assert_bitwise(full[0], resumed[0])
    assert_bitwise(full[1], resumed[1])


def test_preemption_request_stops_saves_and_resumes_exactly(digits, tmp_path):
    full = final_state(_fit(make_trainer(LocalCommunicator(), digits)))

    class Signal(Callback):
        def on_batch_end(self, trainer, logs):
            if trainer.state.global_step == 11:
                preemption.request()  # what the SIGTERM handler does
                preemption.request()  # a second signal changes nothing

    t = make_trainer(LocalCommunicator(), digits, callbacks=[Signal()])
    attach(t, str(tmp_path), {"dir": str(tmp_path), "every_epochs": 1, "keep_last": 1, "keep_best": False})
    with pytest.raises(preemption.Preempted) as info:
        t.fit()
    # the flag is seen at the next step boundary: step 12 is taken, then everyone stops
    assert info.value.step == 12 and info.value.checkpoint.endswith("step-00000012")
    assert info.value.exit_code == preemption.EXIT_PREEMPTED == 75
    assert ck.read_pointer(str(tmp_path)) == "step-00000012"
    # step 8's checkpoint, retired at step 12, is not left behind as a spare by the preempted run
    assert sorted(os.listdir(tmp_path)) == ["latest", "step-00000012"]
    preemption.clear()
    t2 = make_trainer(LocalCommunicator(), digits, callbacks=[Signal()])
    attach(t2, str(tmp_path), {"dir": str(tmp_path), "every_epochs": 1}, resume_spec="auto")
    t2.fit()
    assert_bitwise(full, final_state(t2))


@pytest.mark.parametrize("on_error", ["stop", "continue"])
def test_preemption_whose_checkpoint_fails_exits_74_and_keeps_the_previous_one(digits, tmp_path, monkeypatch,
                                                                               on_error):
    # a full disk at the preemption checkpoint: status 74, not 75 (a job script that requeues on 75 would
    # requeue into the same failure, with no progress); the previous checkpoint stays the latest
    class Signal(Callback):
        def on_batch_end(self, trainer, logs):
            if trainer.state.global_step == 11:
                preemption.request()

    monkeypatch.setenv(ck.FAULT_ENV, "enospc:model.npz@12")
    t = make_trainer(LocalCommunicator(), digits, callbacks=[Signal()])
    attach(t, str(tmp_path), {"dir": str(tmp_path), "every_epochs": 1, "keep_best": False, "on_error": on_error})
    with pytest.raises(preemption.Preempted) as info:
        t.fit()
    e = info.value
    assert e.step == 12 and e.checkpoint is None and "No space left on device" in e.error
    assert e.exit_code == preemption.EXIT_PREEMPTED_UNSAVED == 74 and "NO checkpoint written" in str(e)
    assert ck.read_pointer(str(tmp_path)) == "step-00000008"
    assert [c.step for c in ck.list_checkpoints(str(tmp_path))] == [8]


@pytest.mark.parametrize("world", [1, 2])
def test_a_signal_a_simulated_rank_sends_stops_the_run_at_the_step_an_mpi_rank_would(digits, tmp_path, monkeypatch,
                                                                                      world):
    # DISTNN_FAULT_SIGNAL_AT=RANK:7 signals the process at step 7. An MPI rank's handler runs in the rank's own
    # thread before it reads the flag: one rank stops after step 7, several after step 8 (the flags ride in
    # step 8's exchange; test_checkpoint_mpi_signals.py). A simulated rank's handler runs in the main thread, later:
    # the rank read the flag a step late, so the run stopped after step 8 (1 rank) or 9 (2 ranks).
    monkeypatch.setenv("DISTNN_FAULT_SIGNAL_AT", f"{world - 1}:7")
    rank0_read_step_7 = threading.Event()
    guard_call = step_guard.StepGuard.__call__

    def call(guard, trainer, loss_sum):
        # 2 ranks: rank 0 reads the flag at step 7 before rank 1 signals (else whether it saw the flag in
        # time would be a race), so only the signalling rank's own reading can stop the run after step 8
        step = trainer.state.global_step + 1
        if guard.world > 1 and guard.rank == 1 and step == 7:
            assert rank0_read_step_7.wait(60)
        skip = guard_call(guard, trainer, loss_sum)
        if guard.rank == 0 and step == 7:
            rank0_read_step_7.set()
        return skip

    monkeypatch.setattr(step_guard.StepGuard, "__call__", call)

    def run(comm):
        t = make_trainer(comm, digits, epochs=2)  # 8 steps an epoch
        attach(t, str(tmp_path), {"dir": str(tmp_path), "every_epochs": 0, "keep_last": 0, "keep_best": False})
        with pytest.raises(preemption.Preempted) as info:
            t.fit()
        return info.value.step, t.state.global_step

    with preemption.PreemptionHandler(only_when_watched=True):  # as `distnn train --simulate-ranks` has it
        res = simulate(world, run)
    stop = 7 if world == 1 else 8
    assert res == [(stop, stop)] * world
    assert [c.step for c in ck.list_checkpoints(str(tmp_path))] == [stop]


def _fit(t):
    t.fit()
    return t


@pytest.mark.parametrize("saved,resumed,augment,dropout", [(2, 1, False, 0.0), (1, 2, False, 0.0), (4, 2, False, 0.0),
                                                            (4, 1, False, 0.0), (2, 1, True, 0.2), (1, 3, True, 0.2),
                                                            (4, 2, True, 0.2)])
def test_resume_on_a_different_world_size(digits, tmp_path, saved, resumed, augment, dropout):
    # only the summation order differs from the uninterrupted run (float64, so that "summation tolerance"
    # is tight): the noise augmentation and the dropout masks of a sample are the same on any number of ranks
    kw = dict(dropout=dropout, augment=augment, batch_size=40 if resumed != 3 else 60, dtype=np.float64)

    def world(n, fn):
        return fn(LocalCommunicator()) if n == 1 else simulate(n, fn)[0]

    full = world(saved, lambda c: run_with_checkpoints(c, digits, tmp_path / "a", every=5, **kw))
    res = world(resumed, lambda c: resume_run(c, digits, tmp_path / "b", tmp_path / "a" / ck.step_name(10), **kw))
    assert res["step"] == full["step"]
    for k in full["model"]:
        assert res["model"][k].dtype == np.float64
        np.testing.assert_allclose(res["model"][k], full["model"][k], rtol=1e-10, atol=1e-12, err_msg=k)
    for a, b in zip(full["history"], res["history"]):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-10)
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-10)


def test_global_batch_must_match_on_resume(digits, tmp_path):
    run_with_checkpoints(LocalCommunicator(), digits, tmp_path, every=0, epochs=1)
    t = make_trainer(LocalCommunicator(), digits, batch_size=20)
    with pytest.raises(ck.CheckpointError, match="global batch of 40"):
        attach(t, str(tmp_path), {"dir": str(tmp_path)}, resume_spec="auto")


def test_checkpoint_of_another_model_is_a_clear_error(digits, tmp_path):
    run_with_checkpoints(LocalCommunicator(), digits, tmp_path, every=0, epochs=1)
    splits = digits[0]
    distnn.manual_seed(0)
    model = build_model("mlp", hidden_sizes=[16], input_shape=splits.input_shape, num_classes=10)
    t = Trainer(model, Adam(model.parameters()), splits.train.subset(np.arange(300)), comm=LocalCommunicator(),
                batch_size=40, epochs=2)
    with pytest.raises(ck.CheckpointError, match="cannot resume from .*step-00000008.*this config's model") as e:
        attach(t, str(tmp_path), {"dir": str(tmp_path)}, resume_spec="auto")
    assert e.value.report is True


def test_epoch_end_checkpoint_with_agreed_early_stop_does_not_train_on(digits, tmp_path):
    class Stop(Callback):
        def on_epoch_end(self, trainer, logs):
            if trainer.state.epoch == 1:
                trainer.request_stop("test stop")

    t = make_trainer(LocalCommunicator(), digits, epochs=5, callbacks=[Stop()])
    attach(t, str(tmp_path), {"dir": str(tmp_path), "keep_last": 0})
    t.fit()
    assert len(t.history) == 2 and t.state.stopped_early
    t2 = make_trainer(LocalCommunicator(), digits, epochs=5)
    attach(t2, str(tmp_path / "x"), {"dir": str(tmp_path / "x")}, resume_spec=str(tmp_path / ck.step_name(16)))
    t2.fit()
    assert len(t2.history) == 2 and t2.state.global_step == 16
