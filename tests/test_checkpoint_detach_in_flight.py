"""``checkpoint_setup.detach`` with a checkpoint still being written in the background (``async_save``): detach
waits for it, so the checkpoint is complete, verifies and is ``latest`` when detach returns; a failed write is
reported by detach as a fit's end reports it (``on_error="stop"``: CheckpointError; ``"continue"``: a warning),
after everything else attach wired in is taken out; a second detach reports nothing again.

The write is held in flight by the checkpoint test hook ``pause_after:model.npz`` (distnn/train/checkpoint/
faults.py), released by a thread only once the test is about to detach: a detach that did not wait returns
before the write went on."""
import logging
import os
import signal
import threading

import pytest

from distnn.distributed import LocalCommunicator, simulate
from distnn.train import checkpoint as ck
from distnn.train import preemption_handlers
from distnn.train.callbacks import Callback
from distnn.train.callbacks.checkpoint_setup import attach, detach

from checkpoint_runs import digits, make_trainer  # noqa: F401 (digits: a fixture)

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")
PAUSED = "paused-after-model.npz"


def _release_when(markers, detaching: threading.Event):
    """A thread that lets the paused write go on once it has paused and the test is detaching."""
    def run():
        detaching.wait(60)
        for _ in range(6000):  # (the write's pause hook writes the marker; bounded, never a hang)
            if os.path.exists(os.path.join(markers, PAUSED)):
                break
            threading.Event().wait(0.01)
        with open(os.path.join(markers, "release"), "w"):
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def paused_write(tmp_path, monkeypatch):
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv(ck.FAULT_ENV, "pause_after:model.npz")
    monkeypatch.setenv("DISTNN_FAULT_MARKER_DIR", str(markers))
    return str(markers)


def _complete(root, step):
    path = os.path.join(root, ck.step_name(step))
    return os.path.isdir(path) and ck.verify_checkpoint(path) == [] and ck.read_pointer(root) == ck.step_name(step)


def test_detach_waits_for_the_write_in_flight(digits, tmp_path, paused_write):
    root = str(tmp_path / "ck")
    t = make_trainer(LocalCommunicator(), digits, epochs=1)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}
    watchers = preemption_handlers._watchers
    cb = attach(t, str(tmp_path), {"dir": root, "async_save": True, "keep_last": 0})
    assert cb.save(t, "manual") is None  # (handed to the background writer: no path yet)
    detaching = threading.Event()
    releaser = _release_when(paused_write, detaching)
    detaching.set()
    detach(t)
    assert _complete(root, t.state.global_step), os.listdir(root)
    assert os.path.exists(os.path.join(paused_write, PAUSED))  # (the write did pause: it was in flight)
    assert cb.saves == 1 and cb.failures == 0 and cb.last_path == os.path.join(root, ck.step_name(0))
    assert {s: signal.getsignal(s) for s in handlers} == handlers and preemption_handlers._watchers == watchers
    assert t.step_guard is None and cb not in list(t.callbacks)
    detach(t)  # idempotent
    assert cb.saves == 1 and _complete(root, 0)
    releaser.join(5)


@pytest.mark.parametrize("on_error", ["stop", "continue"])
def test_a_failed_write_in_flight_is_reported_by_detach(digits, tmp_path, monkeypatch, caplog, on_error):
    monkeypatch.setenv(ck.FAULT_ENV, "enospc:model.npz")
    root = str(tmp_path / "ck")
    t = make_trainer(LocalCommunicator(), digits, epochs=1)
    before = list(t.callbacks)
    watchers = preemption_handlers._watchers
    cb = attach(t, str(tmp_path), {"dir": root, "async_save": True, "on_error": on_error})
    cb.save(t, "manual")
    with caplog.at_level(logging.WARNING, logger="distnn"):
        if on_error == "stop":
            with pytest.raises(ck.CheckpointError, match=r"(?s)No space left on device.*on_error = \"stop\""):
                detach(t)
        else:
            detach(t)
            assert any("No space left on device" in r.getMessage() for r in caplog.records)
    assert cb.failures == 1 and cb.saves == 0 and cb.last_error
    # the rest undone all the same, and nothing pointed at
    assert list(t.callbacks) == before and t.step_guard is None and preemption_handlers._watchers == watchers
    assert not ck.list_checkpoints(root) and not os.path.exists(os.path.join(root, ck.LATEST))
    detach(t)  # idempotent: reported once
    assert cb.failures == 1


def test_detach_on_simulated_ranks_finishes_rank_0s_write(digits, tmp_path, paused_write):
    root = str(tmp_path / "ck")
    detaching = threading.Event()
    releaser = _release_when(paused_write, detaching)

    def rank(comm):
        t = make_trainer(comm, digits, epochs=1)
        cb = attach(t, str(tmp_path), {"dir": root, "async_save": True, "keep_last": 0})
        cb.save(t, "manual")  # (collective: every rank in it; rank 0 writes)
        if comm.rank == 0:
            detaching.set()
        detach(t)
        return comm.rank != 0 or _complete(root, 0), cb.saves, t.step_guard

    assert simulate(2, rank) == [(True, 1, None), (True, 0, None)]
    releaser.join(5)


def test_a_detach_after_a_fit_that_raised_keeps_the_fits_error(digits, tmp_path, monkeypatch, caplog):
    # the step-2 write fails in the background; step 3 raises before the checkpoint callback could agree on it
    # (it runs last): fit's on_exception waited for the write, and `finally: detach` warns of it, raising nothing
    # in place of the fit's error
    monkeypatch.setenv(ck.FAULT_ENV, "enospc:model.npz@2")

    class Boom(Callback):
        def on_batch_end(self, trainer, logs):
            if trainer.state.global_step == 3:
                raise RuntimeError("boom at step 3")

    root = str(tmp_path / "ck")
    t = make_trainer(LocalCommunicator(), digits, epochs=1, callbacks=[Boom()])
    cb = attach(t, str(tmp_path), {"dir": root, "async_save": True, "every_steps": 2, "keep_last": 0})
    with caplog.at_level(logging.WARNING, logger="distnn"), pytest.raises(RuntimeError, match="boom at step 3"):
        try:
            t.fit()
        finally:
            detach(t)
    assert cb.failures == 1 and cb.saves == 0
    assert any("No space left on device" in r.getMessage() for r in caplog.records)
    assert t.step_guard is None and cb not in list(t.callbacks)
