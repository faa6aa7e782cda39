"""A distnn job run from Python (``distnn.cli.main(argv)``, ``run_training``) gives the caller's signal
handlers back, and a signal it only noted after training reaches the caller once the results are written.

Before, the start-up and training handlers stayed installed: a sweep calling jobs in a loop ignored SIGTERM
(and SIGUSR1) between jobs and after the last one, only noting it.
"""
import json
import os
import signal

import pytest

from distnn.cli import main
from distnn.train import preemption
from distnn.train.job import run_training

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")

XOR = ["--config", "xor", "--quiet", "--set", "train.epochs=3", "--set", "run.plots=false"]


def _handlers():
    return signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGUSR1)


def test_cli_main_from_python_gives_the_callers_handlers_back(tmp_path, own_signal_handlers):
    got, record = own_signal_handlers
    assert main(["train", *XOR, "--out", str(tmp_path / "r")]) == 0
    assert _handlers() == (record, record)
    os.kill(os.getpid(), signal.SIGUSR1)  # the caller's handler takes it, as before the job
    assert got == [signal.SIGUSR1]


def test_a_signal_after_training_reaches_the_caller_once_the_results_are_written(tmp_path, own_signal_handlers,
                                                                                  monkeypatch,
                                                                                  capsys):
    got, record = own_signal_handlers
    monkeypatch.setenv("DISTNN_FAULT_SIGNAL_AT", "0:after-training")
    assert main(["train", *XOR, "--out", str(tmp_path / "r")]) == 0
    assert got == [signal.SIGTERM]  # noted during the job, given to the caller at its end
    assert json.load(open(tmp_path / "r" / "summary.json"))["epochs_run"] == 3  # the results were written first
    assert "SIGTERM came after training had ended" in capsys.readouterr().err
    assert _handlers() == (record, record)


def test_run_training_from_python_alike(tmp_path, own_signal_handlers, monkeypatch):
    got, record = own_signal_handlers
    monkeypatch.setenv("DISTNN_FAULT_SIGNAL_AT", "0:after-training")
    summary = run_training("xor", ["train.epochs=3", "run.plots=false"], out=str(tmp_path / "r"), quiet=True)
    assert summary["epochs_run"] == 3
    assert got == [signal.SIGTERM] and _handlers() == (record, record)


def test_a_preemption_acted_on_is_not_sent_again_and_the_signals_stay_ignored(tmp_path, own_signal_handlers,
                                                                              monkeypatch):
    # (the process is to exit with the preemption's status: a launcher's duplicate SIGTERM must not kill it
    # with 143 meanwhile; test_job_wiring checks the same for simulated ranks)
    got, record = own_signal_handlers
    monkeypatch.setenv("DISTNN_FAULT_SIGNAL_AT", "0:2")  # during training: the job stops (checkpoint off: 143)
    with pytest.raises(preemption.Preempted) as e:
        run_training("xor", ["train.epochs=3", "run.plots=false"], out=str(tmp_path / "r"), quiet=True)
    assert e.value.exit_code == 128 + signal.SIGTERM
    assert got == [] and _handlers() == (signal.SIG_IGN, signal.SIG_IGN)


def test_the_command_line_entry_still_exits_0_on_a_late_signal(tmp_path):
    # `python -m distnn` (argv None): nothing to give back, the process exits 0 as documented
    import subprocess
    import sys

    env = dict(os.environ, DISTNN_FAULT_SIGNAL_AT="0:after-training", OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-m", "distnn", "train", *XOR, "--out", str(tmp_path / "r")], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "(exit status 0)" in p.stderr
