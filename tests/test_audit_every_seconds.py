"""Audit of ``checkpoint.every_seconds`` (rank 0's "due" riding in the step flags).

Clocks are driven by the global step as in tests/test_checkpoint_every_seconds.py (rank 0: one "second" a
step; the other ranks' clocks never move), so every save is deterministic. make_trainer's digits MLP on 360
samples in global batches of 60 takes 6 steps an epoch, on 1, 2 or 3 ranks.
"""
import pytest

from distnn.distributed import LocalCommunicator, simulate
from distnn.train import checkpoint as ck
from distnn.train.callbacks.checkpoint import ModelCheckpoint
from distnn.train.callbacks.checkpoint_setup import attach
from checkpoint_runs import assert_bitwise, digits, final_state  # noqa: F401 (digits: a fixture)
from test_checkpoint_every_seconds import _opts, _saved, _step_clock, _trainer

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


def _run(world, fn):
    return simulate(world, fn) if world > 1 else [fn(LocalCommunicator())]


@pytest.mark.parametrize("world", [1, 2])
def test_a_second_checkpoint_callback_saves_by_its_own_clock_not_by_the_others(digits, tmp_path, world):
    # Two ModelCheckpoint callbacks (CallbackList keys them "checkpoint" and "checkpoint#2"): one every 4
    # "seconds", one every 100. On one process each goes by its own clock: the second saves only the end.
    # On several ranks both read the one SAVE_DUE_FLAG slot, so the second saved whenever the first was due
    # (steps 5, 10, 15): its saves depend on the number of ranks.
    def run(comm):
        t = _trainer(comm, digits)
        first = attach(t, str(tmp_path / "first"), _opts(tmp_path / "first"))
        first.clock = _step_clock(t)
        second = ModelCheckpoint(str(tmp_path / "second"), every_n_epochs=0, every_n_seconds=100, keep_last=0,
                                 save_best=False)
        second.clock = _step_clock(t)
        t.callbacks.append(second)
        t.fit()
        return first.saves, second.saves

    res = _run(world, run)
    assert _saved(tmp_path / "second") == [(18, "last")]
    assert [saves for _, saves in res] == [1] * world
    assert [saves for saves, _ in res] == [5 if world == 1 else 4] * world


@pytest.mark.parametrize("world", [2, 3])
def test_a_time_checkpoint_resumes_bitwise_on_the_same_ranks_with_accumulation_and_a_skipped_step(
        digits, tmp_path, world, monkeypatch):
    # Coverage: resumed on the SAME number of ranks (the feature's tests resume on one process), with
    # gradient accumulation and a non-finite step skipped on rank 1 at step 5, the step that carries rank 0's
    # "due" (its clock said so at step 4): the save still comes at step 5 on every rank, and every mid-epoch
    # time checkpoint resumes to the uninterrupted run's bits on every rank.
    monkeypatch.setenv("DISTNN_FAULT_NONFINITE_AT", "1:5")

    def run(comm):
        t = _trainer(comm, digits, accumulation_steps=2)
        cb = attach(t, str(tmp_path / "a"), _opts(tmp_path / "a"))
        cb.clock = _step_clock(t)
        t.fit()
        return cb.saves, t.state.skipped_steps, final_state(t)

    res = simulate(world, run)
    assert [r[:2] for r in res] == [(4, 1)] * world
    assert _saved(tmp_path / "a") == [(5, "time"), (10, "time"), (15, "time"), (18, "last")]
    for step in (5, 10, 15):
        out = tmp_path / f"resumed-{step}"

        def resumed(comm):
            t = _trainer(comm, digits, accumulation_steps=2)
            attach(t, str(out), _opts(out, every_seconds=0), resume_spec=str(tmp_path / "a" / ck.step_name(step)))
            t.fit()
            return final_state(t)

        for (_, _, want), got in zip(res, simulate(world, resumed)):
            assert_bitwise(want, got)


def test_a_second_async_checkpoint_callback_is_agreed_on_the_step_after_its_write(digits, tmp_path, monkeypatch):
    # Two async_save callbacks shared the one WRITE_DONE flag, each writing its own write count into it: the
    # one every epoch (first) had its "done" overwritten at every step by the one every step (second), and its
    # writes were agreed only at its next save or at the end. Each now has its own bit. The writes run at once
    # here (a writer that runs the job when it is handed over), so when each is agreed is deterministic.
    from distnn.train.callbacks import background_writer
    from distnn.train.callbacks import checkpoint as checkpoint_module

    class AtOnce:
        def submit(self, fn, *args):
            job = background_writer.Job(fn, args)
            job.run()
            return job

    monkeypatch.setattr(checkpoint_module, "writer", AtOnce)

    def run(comm):
        t = _trainer(comm, digits)
        epochs = attach(t, str(tmp_path / "epochs"), _opts(tmp_path / "epochs", every_seconds=0, every_epochs=1,
                                                              async_save=True))
        steps = ModelCheckpoint(str(tmp_path / "steps"), every_n_steps=1, every_n_epochs=0, keep_last=2,
                                save_best=False, async_save=True)
        t.callbacks.append(steps)
        agreed = []

        def noting(agree):  # (a success is agreed through the step flags, a failure or a save by a collective)
            def noted(trainer):
                if epochs._pending is not None:
                    agreed.append(trainer.state.global_step)
                return agree(trainer)
            return noted

        epochs.settle, epochs._settle_written = noting(epochs.settle), noting(epochs._settle_written)
        t.fit()
        return agreed, epochs.saves, steps.saves

    # saved at each epoch's end (steps 6, 12, 18); "done" sent with step 7's exchange... read at step 8
    assert simulate(2, run) == [([8, 14, 18], 3, 18)] * 2
