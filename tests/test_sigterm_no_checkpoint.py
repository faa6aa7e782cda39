"""A preemption signal during training with checkpointing off (``checkpoint.enabled = false``).

Every rank stops at the same step boundary (the path a checkpointing run takes), the run's files
are whole (no ``*.tmp`` left), the log says that nothing was saved because checkpointing is off, and
the exit status is 128 + the signal's number (143 for SIGTERM, 138 for SIGUSR1): "ended by that
signal", as a shell reports it, reached after a clean stop. Not 75, which asks a job script to
requeue: with no checkpoint the requeued run would start from zero. The signals come from the fault
hooks (``DISTNN_FAULT_SIGNAL_AT``), so the step, the rank and the moment are exact; the old code
died by the signal (under mpiexec the job ended with 15 or 143 while a rank had no chance to clean
up, and a signal between a metrics file's write and its rename left ``metrics.jsonl.tmp``).
"""
import os
import re
import signal

import pytest

import cli_faults

def _train(out, n, fault, *extra, simulate=False):
    """`distnn train` (digits_mlp, 20 steps an epoch, 3 epochs) with checkpointing off and a fault hook."""
    return cli_faults.train(out, "simulated" if simulate else "process", n,
                            ["--log-all-ranks", "--set", "train.epochs=3", "--set", "run.plots=false",
                             "--set", "checkpoint.enabled=false", *extra], fault)


def _stopped_steps(stderr) -> dict:
    """{rank: the step it says it stopped after} from the ranks' log lines."""
    return {int(r): int(s) for r, s in re.findall(r"\[rank (\d+)\].*?stopped after step (\d+); nothing saved", stderr)}


def _assert_whole(run):
    left = [n for n in os.listdir(run) if ".tmp" in n]
    assert not left, left
    assert not (run / "checkpoints").exists() and not (run / "summary.json").exists()
    assert not (run / "model.npz").exists()  # a stopped run is no finished one


@pytest.mark.parametrize("n,fault,sig", [
    (1, "0:25", signal.SIGTERM),          # one process
    (2, "1:25", signal.SIGTERM),          # rank 1 alone is signalled (a scheduler signalling one node)
    (2, "0:25:SIGUSR1,1:25:SIGUSR1", signal.SIGUSR1),  # every rank (mpiexec forwards a signal to all)
], ids=["1-rank", "2-ranks-one-signalled", "2-ranks-usr1"])
def test_a_signal_with_checkpointing_off_stops_every_rank_cleanly(tmp_path, n, fault, sig):
    run = tmp_path / "run"
    p = _train(run, n, fault)
    assert p.returncode == 128 + sig, p.stderr[-3000:]
    name = signal.Signals(sig).name
    # the same step on every rank: the signal's step, or the next one when the flag crossed ranks
    steps = _stopped_steps(p.stderr)
    assert sorted(steps) == list(range(n)) and len(set(steps.values())) == 1, p.stderr[-3000:]
    assert next(iter(steps.values())) in (25, 26)
    assert f"distnn: preempted by {name}" in p.stderr
    assert "nothing saved: checkpointing is off (checkpoint.enabled = false)" in p.stderr
    assert f"exit status {128 + sig}" in p.stderr
    assert "--resume auto" not in p.stderr  # nothing to resume from
    _assert_whole(run)
    # the first epoch (steps 1-20) was logged whole; the stopped one is not a row
    with open(run / "metrics.csv") as f:
        assert len(f.read().splitlines()) == 2
    with open(run / "metrics.jsonl") as f:
        assert len(f.read().splitlines()) == 1


@pytest.mark.parametrize("n", [1, 2])
def test_a_signal_while_the_metrics_are_written_leaves_them_whole(tmp_path, n):
    # rank 0 signals itself between writing metrics.jsonl.tmp (end of epoch 1) and renaming it: the old
    # code died right there and left the .tmp behind, with no metrics.jsonl at all
    run = tmp_path / "run"
    p = _train(run, n, "0:metrics-write")
    assert p.returncode == 128 + signal.SIGTERM, p.stderr[-3000:]
    steps = _stopped_steps(p.stderr)
    assert sorted(steps) == list(range(n)) and set(steps.values()) <= {21, 22}, p.stderr[-3000:]
    _assert_whole(run)
    with open(run / "metrics.jsonl") as f:
        assert len(f.read().splitlines()) == 1


def test_simulated_ranks_stop_alike(tmp_path):
    run = tmp_path / "run"
    p = _train(run, 2, "1:25", simulate=True)
    assert p.returncode == 128 + signal.SIGTERM, p.stderr[-3000:]
    steps = _stopped_steps(p.stderr)
    assert sorted(steps) == [0, 1] and len(set(steps.values())) == 1, p.stderr[-3000:]
    assert "nothing saved: checkpointing is off" in p.stderr
    _assert_whole(run)


# slurm/train.sbatch, run by bash with a fake srun and scontrol (the fixture of tests/test_launch_scripts.py)
from test_launch_scripts import fake, sbatch  # noqa: E402,F401 - `fake` is a fixture


@pytest.mark.parametrize("status", [128 + signal.SIGTERM, 128 + signal.SIGUSR1])
def test_sbatch_does_not_requeue_a_stop_with_nothing_saved(fake, status):  # noqa: F811
    p = sbatch(fake, FAKE_RC=str(status), FAKE_STATUSES=f"0:{status},1:{status}")  # (distnn's own status)
    assert p.returncode == status
    assert not [c for c in p.calls if c["prog"] == "scontrol"]  # requeued, it would start from zero
    assert f"stopped by signal {status - 128} (exit {status}); not requeued" in p.stderr
