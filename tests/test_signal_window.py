"""No preemption signal is lost between the job's start-up and its training (``checkpoint_setup.attach``).

The CLI's start-up handler turns a signal into "exit 75 now" until the training is wired up; then the
training-time handler turns it into a flag every rank agrees on at a step boundary. The old hand-over
ended the start-up phase first and installed the training handler later: a signal in between took
its default action (the rank died: status 15 or -15), and installing the handler cleared a flag a
signal had set in between (the run trained to its end and exited 0, the request forgotten). The
fault hook ``DISTNN_FAULT_SIGNAL_AT=RANK:POINT`` sends the signal exactly there: ``startup-end`` (the
instant the start-up phase ends) and ``handler`` (just before the training handler goes in).
"""
import os
import re
import signal

import pytest

import cli_faults

from distnn.train import checkpoint as ck

def _train(out, n, fault, *extra, simulate=False):
    return cli_faults.train(out, "simulated" if simulate else "process", n,
                            ["--log-all-ranks", "--set", "train.epochs=2", "--set", "run.plots=false", *extra], fault)


@pytest.mark.parametrize("point", ["startup-end", "handler"])
@pytest.mark.parametrize("n,mode", [(1, "process"), (2, "mpi"), (2, "simulated")])
def test_a_signal_at_the_hand_over_preempts_the_first_steps_with_a_checkpoint(tmp_path, point, n, mode):
    run = tmp_path / "run"
    p = _train(run, n, f"{n - 1}:{point}", simulate=mode == "simulated")
    assert p.returncode == 75, p.stderr[-3000:]
    assert "distnn: preempted by SIGTERM: stopped after step" in p.stderr, p.stderr[-3000:]
    # flags are read at the first step (one rank) or the second (across ranks): never a whole epoch
    cps = ck.list_checkpoints(str(run / "checkpoints"))
    assert [c.step for c in cps] in ([1], [2]), [c.step for c in cps]
    assert ck.read_manifest(cps[0].path)["reason"] == "preempt"
    assert ck.verify_checkpoint(cps[0].path) == []


@pytest.mark.parametrize("point", ["startup-end", "handler"])
def test_with_checkpointing_off_the_hand_over_signal_stops_cleanly(tmp_path, point):
    run = tmp_path / "run"
    p = _train(run, 2, f"1:{point}", "--set", "checkpoint.enabled=false")
    assert p.returncode == 128 + signal.SIGTERM, p.stderr[-3000:]
    steps = {int(r): int(s) for r, s in re.findall(r"\[rank (\d+)\].*?stopped after step (\d+); nothing saved",
                                                   p.stderr)}
    assert steps in ({0: 1, 1: 1}, {0: 2, 1: 2}), p.stderr[-3000:]
    # stopped inside the first epoch: the run directory goes, as for any run that never finished one
    assert not run.exists() or not [n for n in os.listdir(run) if n != "config.toml"]


def test_a_flag_set_before_the_training_handler_is_kept_by_its_install():
    # in one process: a request noted by the start-up handler (a guard already watching) survives the
    # install of the training handler; the old install() cleared it
    from distnn.train import preemption

    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}
    try:
        preemption.clear()
        preemption.request(signal.SIGUSR1)
        with preemption.PreemptionHandler():
            assert preemption.requested() == signal.SIGUSR1
    finally:
        preemption.clear()
        for s, h in previous.items():
            signal.signal(s, h)


EARLY = """import os, runpy, signal, sys
for s in (signal.SIGTERM, signal.SIGUSR1):  # (as a launcher starts it: pytest's may be ignored after a job)
    signal.signal(s, signal.SIG_DFL)
sys.argv = ["-m", *sys.argv[1:]]
import distnn  # as `python -m distnn` imports it (argv[0] is "-m" then), before the CLI exists
os.kill(os.getpid(), getattr(signal, os.environ["EARLY_SIGNAL"]))
runpy.run_module("distnn", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGUSR1"])
def test_a_signal_while_python_m_distnn_imports_is_a_start_up_preemption(tmp_path, sig):
    # before the CLI's start-up handler existed, the signal killed the process (143 / 138: the statuses
    # of a stop with checkpointing off, which slurm/train.sbatch does not requeue)
    import subprocess
    import sys

    env = cli_faults.fault_env(EARLY_SIGNAL=sig)
    train = [sys.executable, "-c", EARLY, "train", "--quiet", "--set", "train.epochs=1", "--out", str(tmp_path / "r")]
    p = subprocess.run(train, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 75, p.stderr[-2000:]
    assert f"preempted by {sig} during start-up" in p.stderr
    assert not (tmp_path / "r").exists()
    # another command takes the signal's default action, as before
    p = subprocess.run([sys.executable, "-c", EARLY, "datasets"], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == -getattr(signal, sig), (p.returncode, p.stderr[-2000:])
    # a program importing distnn keeps its handlers
    p = subprocess.run([sys.executable, "-c", "import signal; before = signal.getsignal(signal.SIGTERM); "
                        "import distnn; assert signal.getsignal(signal.SIGTERM) == before"], env=env, timeout=120)
    assert p.returncode == 0
