"""A program that trains through the library (``attach`` then ``Trainer.fit``, or ``train_rank``) gets its
SIGTERM/SIGUSR1 handlers back when the training returns or raises, and a signal the training only noted
(it came after the last step) reaches the program's handler then.

Before, distnn's flag-only training handler stayed installed: the program ignored SIGTERM after training,
only setting a flag nobody read.
"""
import json
import os
import signal

import pytest

from distnn.distributed import LocalCommunicator
from distnn.train import preemption
from distnn.train.callbacks import Callback
from distnn.train.callbacks.checkpoint_setup import attach
from distnn.train.checkpoint import CheckpointError
from distnn.train.job import train_rank
from checkpoint_runs import digits, make_trainer  # noqa: F401 (digits: a fixture)

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
XOR = ["train.epochs=3", "run.plots=false"]


def _handlers():
    return tuple(signal.getsignal(s) for s in SIGNALS)


def _blocked():
    return signal.pthread_sigmask(signal.SIG_BLOCK, [])


class SignalAt(Callback):
    """Sends this process ``signum`` at the end of global step ``step``, or at the end of training (``step`` None);
    records which signals had reached the program by then."""

    def __init__(self, got, step=None, signum=signal.SIGTERM):
        self.got, self.step, self.signum, self.seen_then = got, step, signum, None

    def _send(self):
        os.kill(os.getpid(), self.signum)
        self.seen_then = list(self.got)

    def on_batch_end(self, trainer, logs):
        if trainer.state.global_step == self.step:
            self._send()

    def on_train_end(self, trainer, logs):
        if self.step is None:
            self._send()


def _options(root):
    return {"dir": str(root), "every_epochs": 1, "keep_last": 0, "keep_best": False}


# ---------------------------------------------------------------- attach + fit
def test_fit_gives_the_handlers_back_and_a_later_sigterm_reaches_the_program(digits, tmp_path,
                                                                              own_signal_handlers):
    got, record = own_signal_handlers
    mask = _blocked()
    t = make_trainer(LocalCommunicator(), digits, epochs=2)
    attach(t, str(tmp_path), _options(tmp_path))
    assert _handlers() != (record, record)  # distnn's training handler while the training runs
    assert len(t.fit()) == 2
    assert _handlers() == (record, record)
    assert _blocked() == mask
    os.kill(os.getpid(), signal.SIGTERM)
    assert got == [signal.SIGTERM]


def test_a_fit_that_raises_gives_the_handlers_back(digits, tmp_path, own_signal_handlers):
    got, record = own_signal_handlers

    class Boom(Callback):
        def on_epoch_end(self, trainer, logs):
            raise RuntimeError("a bug in the program's callback")

    t = make_trainer(LocalCommunicator(), digits, epochs=2, callbacks=[Boom()])
    attach(t, str(tmp_path), _options(tmp_path))
    with pytest.raises(RuntimeError, match="program's callback"):
        t.fit()
    assert _handlers() == (record, record)
    os.kill(os.getpid(), signal.SIGUSR1)
    assert got == [signal.SIGUSR1]


def test_a_signal_after_the_last_step_reaches_the_program_once_fit_returns(digits, tmp_path, own_signal_handlers):
    got, record = own_signal_handlers
    late = SignalAt(got, step=None)  # during on_train_end: no step is left to stop at
    t = make_trainer(LocalCommunicator(), digits, epochs=2, callbacks=[late])
    attach(t, str(tmp_path), _options(tmp_path))
    assert len(t.fit()) == 2  # the training finished (noted, not acted on)
    assert late.seen_then == []  # only noted while the training ended
    assert got == [signal.SIGTERM]  # then given to the program's handler, not lost
    assert _handlers() == (record, record)


def test_a_signal_during_fit_still_stops_it_with_a_checkpoint(digits, tmp_path, own_signal_handlers):
    got, record = own_signal_handlers
    t = make_trainer(LocalCommunicator(), digits, epochs=3, callbacks=[SignalAt(got, step=4)])
    attach(t, str(tmp_path), _options(tmp_path))
    with pytest.raises(preemption.Preempted) as e:
        t.fit()
    assert e.value.exit_code == preemption.EXIT_PREEMPTED and e.value.checkpoint is not None
    assert os.path.isdir(e.value.checkpoint)
    assert got == []  # acted on by distnn: never the program's
    # documented: the process is to exit with the status, so a duplicate signal is ignored meanwhile
    assert _handlers() == (signal.SIG_IGN, signal.SIG_IGN)


def test_a_second_fit_of_the_trainer_handles_signals_again(digits, tmp_path, own_signal_handlers):
    got, record = own_signal_handlers
    t = make_trainer(LocalCommunicator(), digits, epochs=1, callbacks=[SignalAt(got, step=12)])
    attach(t, str(tmp_path), _options(tmp_path))
    t.fit()  # 8 steps: no signal yet
    assert _handlers() == (record, record)
    t.epochs = 3
    with pytest.raises(preemption.Preempted):
        t.fit()
    assert got == []


def test_an_attach_that_fails_gives_the_handlers_back(digits, tmp_path, own_signal_handlers):
    got, record = own_signal_handlers
    t = make_trainer(LocalCommunicator(), digits, epochs=1)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        attach(t, str(tmp_path), _options(tmp_path), resume_spec=str(tmp_path / "missing"))
    assert _handlers() == (record, record)


# ---------------------------------------------------------------- train_rank
def test_train_rank_gives_the_handlers_back(tmp_path, own_signal_handlers):
    got, record = own_signal_handlers
    mask = _blocked()
    summary = train_rank(LocalCommunicator(), "xor", XOR, out=str(tmp_path / "r"), quiet=True)
    assert summary["epochs_run"] == 3
    assert _handlers() == (record, record) and _blocked() == mask
    os.kill(os.getpid(), signal.SIGTERM)
    assert got == [signal.SIGTERM]


def test_train_rank_that_raises_gives_the_handlers_back(tmp_path, own_signal_handlers, monkeypatch):
    got, record = own_signal_handlers
    monkeypatch.setenv("DISTNN_FAULT_RAISE_AT", "0:validation")  # a bug on the rank, during fit
    with pytest.raises(RuntimeError, match="test fault"):
        train_rank(LocalCommunicator(), "xor", XOR, out=str(tmp_path / "r"), quiet=True)
    assert _handlers() == (record, record)


def test_train_rank_passes_a_signal_after_training_on_once_the_results_are_written(tmp_path, own_signal_handlers,
                                                                                   monkeypatch):
    got, record = own_signal_handlers
    monkeypatch.setenv("DISTNN_FAULT_SIGNAL_AT", "0:after-training")
    summary = train_rank(LocalCommunicator(), "xor", XOR, out=str(tmp_path / "r"), quiet=True)
    assert summary["epochs_run"] == 3
    assert json.load(open(tmp_path / "r" / "summary.json"))["epochs_run"] == 3  # written before
    assert got == [signal.SIGTERM]
    assert _handlers() == (record, record)
