"""``checkpoint_setup.detach``: a caller who attached checkpointing and then does not fit gives the SIGTERM/SIGUSR1
handlers and the step guard back: the handlers are the ones from before ``attach``, no guard watches the
preemption flag (the ``clean_preemption_flags`` fixture also fails a test that leaves one), the callbacks attach
added are gone; idempotent, and harmless after a fit."""
import os
import signal

import pytest

from distnn.distributed import LocalCommunicator, simulate
from distnn.train import preemption, preemption_handlers
from distnn.train.callbacks import Callback
from distnn.train.callbacks.checkpoint import ModelCheckpoint
from distnn.train.callbacks.checkpoint_setup import attach, detach
from distnn.train.step_guard import StepGuard, StopWithoutCheckpoint

from checkpoint_runs import digits, make_trainer  # noqa: F401 (digits: a fixture)

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


def _mine(signum, frame):  # the program's own handlers, from before attach
    _mine.got.append(signum)


_mine.got = []


@pytest.fixture
def own_handlers():
    """SIGTERM and SIGUSR1 with handlers of the program's own (the fixture above puts pytest's back after)."""
    _mine.got = []
    for s in SIGNALS:
        signal.signal(s, _mine)
    return {s: signal.getsignal(s) for s in SIGNALS}


def _attached_parts(t):
    return [cb for cb in t.callbacks if isinstance(cb, (ModelCheckpoint, StepGuard, StopWithoutCheckpoint))]


@pytest.mark.parametrize("enabled", [True, False], ids=["checkpointing", "checkpointing-off"])
def test_detach_without_fit_gives_back_the_handlers_and_the_guard(digits, tmp_path, own_handlers, enabled):
    t = make_trainer(LocalCommunicator(), digits, epochs=1)
    before = list(t.callbacks)
    watchers = preemption_handlers._watchers
    cb = attach(t, str(tmp_path), {"dir": str(tmp_path), "enabled": enabled})
    assert (cb is not None) is enabled
    assert all(signal.getsignal(s) is not _mine for s in SIGNALS)  # (attach's training handler is in)
    assert preemption_handlers._watchers == watchers + 1 and t.step_guard is not None
    assert len(_attached_parts(t)) == 2
    detach(t)
    assert {s: signal.getsignal(s) for s in SIGNALS} == own_handlers
    assert preemption_handlers._watchers == watchers and t.step_guard is None
    assert list(t.callbacks) == before
    detach(t)  # idempotent
    assert {s: signal.getsignal(s) for s in SIGNALS} == own_handlers
    assert preemption_handlers._watchers == watchers and list(t.callbacks) == before


def test_a_signal_noted_before_detach_takes_the_handlers_action_then(digits, tmp_path, own_handlers):
    # as at a fit's end: nothing acted on the signal the training handler noted, so the handler from before
    # attach gets it now (a program without one would end by it, as if no attach had been made)
    t = make_trainer(LocalCommunicator(), digits, epochs=1)
    attach(t, str(tmp_path), {"dir": str(tmp_path)})
    os.kill(os.getpid(), signal.SIGUSR1)
    assert _mine.got == [] and preemption.requested() == signal.SIGUSR1  # (only noted, while attached)
    detach(t)
    assert _mine.got == [signal.SIGUSR1]
    assert {s: signal.getsignal(s) for s in SIGNALS} == own_handlers


def test_detach_after_fit_is_harmless_and_a_later_fit_installs_nothing(digits, tmp_path, own_handlers):
    t = make_trainer(LocalCommunicator(), digits, epochs=1)
    attach(t, str(tmp_path), {"dir": str(tmp_path), "every_steps": 0, "keep_last": 0})
    watchers = preemption_handlers._watchers
    t.fit()
    assert {s: signal.getsignal(s) for s in SIGNALS} == own_handlers  # (the fit gave them back)
    assert preemption_handlers._watchers == watchers - 1
    detach(t)
    assert {s: signal.getsignal(s) for s in SIGNALS} == own_handlers
    assert preemption_handlers._watchers == watchers - 1 and not _attached_parts(t)
    written = sorted(os.listdir(tmp_path))
    assert any(name.startswith("step-") for name in written)
    seen = []

    class Watch(Callback):  # what a second fit runs with: no handler of attach's, no guard
        def on_train_begin(self, trainer):
            self.on_batch_end(trainer, {})

        def on_batch_end(self, trainer, logs):
            seen.append((signal.getsignal(signal.SIGTERM) is _mine, trainer.step_guard,
                         preemption_handlers._watchers))

    t.callbacks.append(Watch())
    t.epochs = 2
    t.fit()
    assert len(seen) > 1 and all(s == (True, None, watchers - 1) for s in seen)
    assert sorted(os.listdir(tmp_path)) == written  # (no checkpoint callback left either)


def test_detach_on_simulated_ranks_releases_every_ranks_guard(digits, tmp_path):
    watchers = preemption_handlers._watchers

    def rank(comm):
        t = make_trainer(comm, digits, epochs=1)
        attach(t, str(tmp_path), {"dir": str(tmp_path)})
        detach(t)
        return t.step_guard, len(_attached_parts(t))

    assert simulate(2, rank) == [(None, 0), (None, 0)]
    assert preemption_handlers._watchers == watchers
