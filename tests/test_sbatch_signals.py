"""Signals under slurm/train.sbatch: the ones that reach the batch script alone, and what distnn says.

``--signal=B:USR1@N`` and ``scancel --batch --signal=USR1`` signal the batch shell only: it died by
SIGUSR1 while the ranks trained on, and the job failed unrequeued. The script now passes a USR1 or
TERM it gets itself on to the ranks (``scancel --signal=SIG JOBID``: every rank of the steps) and
waits for srun again. A plain ``scancel`` (SIGTERM to the script and the ranks, the job cancelled)
made distnn say that "this job requeues itself": false. distnn's resume hint now follows the
signal (``DISTNN_RESUME_HINT_<SIGNAL>``, set by the script), and the script does not requeue a
preemption when it got the SIGTERM itself (a requeue would undo the cancel).

The script runs with the fake srun, scontrol and scancel of tests/test_launch_scripts.py; the
hints it exports are then given to a real ``distnn train`` stopped by each signal.
"""
import json
import os
import signal
import subprocess
import sys

import pytest

import cli_faults
from test_launch_scripts import BASH, fake, launched, sbatch  # noqa: F401 - `fake` is a fixture


def _signalled_sbatch(fake, tmp_path, sig, statuses):  # noqa: F811
    """Run the script with a fake srun that waits until the script calls scancel; send ``sig`` to the
    script once srun runs. The fake srun then ends with 75 and the rank records ``statuses``."""
    marker = str(tmp_path / "srun-started")
    env = {**fake.env, "SLURM_SUBMIT_DIR": fake.root, "SLURM_JOB_ID": "7", "SLURM_NTASKS": "2",
           "FAKE_SRUN_WAIT": marker, "FAKE_RC": "75", "FAKE_STATUSES": statuses}
    proc = subprocess.Popen([BASH, os.path.join(fake.root, "slurm", "train.sbatch")], cwd=fake.root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cli_faults.wait_for_marker(proc, marker, deadline_s=60)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    proc.calls = [json.loads(ln) for ln in open(fake.env["FAKE_LOG"]).read().splitlines()]
    os.unlink(fake.env["FAKE_LOG"])
    proc.stdout_text, proc.stderr_text = out, err
    return proc


def test_sbatch_passes_a_usr1_it_gets_itself_to_the_ranks_and_requeues(fake, tmp_path):  # noqa: F811
    # --signal=B:USR1@N, scancel --batch --signal=USR1: the script died by SIGUSR1, not requeued
    p = _signalled_sbatch(fake, tmp_path, signal.SIGUSR1, "0:75:10,1:75:10")
    assert launched(p, "scancel")["argv"] == ["--signal=USR1", "7"], p.stderr_text
    assert p.returncode == 0, p.stderr_text
    assert launched(p, "scontrol")["argv"] == ["requeue", "7"]
    assert "requeued job 7" in p.stderr_text


def test_sbatch_does_not_requeue_when_it_got_sigterm_itself(fake, tmp_path):  # noqa: F811
    # scancel, the time limit: SIGTERM to the script and to the ranks, which write a checkpoint (75)
    p = _signalled_sbatch(fake, tmp_path, signal.SIGTERM, "0:75:15,1:75:15")
    assert launched(p, "scancel")["argv"] == ["--signal=TERM", "7"], p.stderr_text
    assert p.returncode == 75, p.stderr_text
    assert not [c for c in p.calls if c["prog"] == "scontrol"]  # (a requeue would undo a cancel)
    assert "not requeued" in p.stderr_text and "resubmit with DISTNN_OUT=runs/slurm-7" in p.stderr_text


def _hints(fake):  # noqa: F811
    """The resume hints the script gives the ranks."""
    p = sbatch(fake)
    assert p.returncode == 0, p.stderr
    env = launched(p, "srun")["env"]
    return {k: v for k, v in env.items() if k.startswith("DISTNN_RESUME_HINT")}


@pytest.mark.parametrize("sig,says,not_says", [
    ("SIGUSR1", "this job requeues itself", "not requeued"),
    ("SIGTERM", "if this is scancel or the time limit, the job ends here, not requeued: resubmit with "
                "DISTNN_OUT=runs/slurm-7", "this job requeues itself"),
])
def test_distnn_under_sbatch_says_what_the_signal_leads_to(fake, tmp_path, sig, says, not_says):  # noqa: F811
    # a plain scancel (SIGTERM) said "this job requeues itself; if it does not, resubmit ...": it is not requeued
    hints = _hints(fake)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "distnn", "train", "--out", str(run), "--quiet", "--config", "xor",
           "--set", "train.epochs=4", "--set", "checkpoint.enabled=true", "--set", "run.plots=false"]
    env = cli_faults.fault_env(DISTNN_FAULT_SIGNAL_AT=f"0:2:{sig}", **hints)
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 75, p.stderr[-3000:]
    assert f"preempted by {sig}" in p.stderr and "checkpoint" in p.stderr, p.stderr[-3000:]
    assert says in p.stderr and not_says not in p.stderr, p.stderr[-3000:]
