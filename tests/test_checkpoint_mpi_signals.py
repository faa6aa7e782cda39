"""Preemption under real processes (mpiexec and the CLI): SIGTERM to mpiexec or to one rank checkpoints at the
same step on every rank and exits 75, a resume is bitwise equal to the uninterrupted run, a failing preemption
checkpoint exits 74, and signals during start-up."""
import os
import random
import signal
import subprocess
import sys

import numpy as np
import pytest

from cli_faults import wait_for_marker

from distnn.train import checkpoint as ck

from checkpoint_jobs import (HERE, MPIEXEC, STEPS, assert_all_checkpoints_valid, assert_same, finish, job_command,
                             job_env, reference, run_job)


pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found (pip install mpich)")


def test_sigterm_twice_to_mpiexec_checkpoints_and_exits_75(reference, tmp_path):
    # Two SIGTERMs to mpiexec (which forwards each to every rank): the first during training, the second
    # in the middle of the preemption checkpoint's write (a single one: the CLI test below). Both come at
    # known points, however slow the machine (a sleep before each used to decide, and a slow job could
    # finish or save before the signal): every rank pauses at `step` until the first comes, and rank 0
    # pauses again right after writing model.npz until the second comes.
    step = random.randint(2, 16)  # somewhere in the first epochs (seeded per test: see conftest)
    markers = tmp_path / "markers"
    markers.mkdir()
    out = tmp_path / "run"
    args = job_command(out, 2, ["--every-n-epochs", "0", "--every-n-steps", "0", "--no-save-best"])
    env = job_env({"DISTNN_FAULT_PAUSE_AT": f"0:{step},1:{step}", "DISTNN_FAULT_MARKER_DIR": str(markers),
                ck.FAULT_ENV: "pause_after:model.npz"})
    p = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)
    try:
        for r in (0, 1):  # (each rank has its handlers in place and is mid-run, held at the step)
            wait_for_marker(p, markers / f"paused-rank{r}-step{step}")
        p.send_signal(signal.SIGTERM)
        wait_for_marker(p, markers / "paused-after-model.npz")  # the preemption checkpoint is half-written
        p.send_signal(signal.SIGTERM)  # a second signal while the checkpoint is written
        _, err = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 75, f"paused at step {step}: {err}"
    assert "preempted by SIGTERM" in err
    cps = assert_all_checkpoints_valid(out)
    assert len(cps) == 1 and 0 < cps[0].step < STEPS  # periodic checkpoints are off: this is the preemption one
    assert ck.read_manifest(cps[0].path)["reason"] == "preempt"
    res, _ = finish(out)
    assert_same(reference[1], res)


def test_signal_to_one_rank_only_stops_every_rank_at_the_same_step(reference, tmp_path):
    # SIGUSR1 reaches rank 1 alone (a scheduler signalling one node); rank 0 must stop at the same step
    rc, err, _ = run_job(tmp_path, "--every-n-epochs", "0", "--no-save-best",
                         env={"DISTNN_FAULT_SIGNAL_AT": "1:7:SIGUSR1"})
    assert rc == 75, err
    cps = assert_all_checkpoints_valid(tmp_path)
    assert [c.step for c in cps] in ([8], [9]), [c.step for c in cps]  # flags are read one step later
    assert "preempted by SIGUSR1" in err
    res, _ = finish(tmp_path)
    assert_same(reference[1], res)


def test_cli_sigterm_exit_75_then_resume_auto_is_bitwise_equal(tmp_path):
    # the real thing: `distnn train` with the digits_mlp config (dropout, shift augmentation, SGD with
    # Nesterov momentum, cosine schedule) on 2 ranks; SIGTERM to mpiexec; rerun with --resume auto
    def cmd(out):
        return [MPIEXEC, "-n", "2", sys.executable, "-m", "distnn", "train", "--out", str(out), "--quiet",
                "--set", "train.epochs=3", "--set", "run.plots=false", "--resume", "auto"]

    full = subprocess.run(cmd(tmp_path / "full"), env=job_env(), capture_output=True, text=True, timeout=120)
    assert full.returncode == 0, full.stderr
    out = tmp_path / "run"
    # Both ranks pause at step 25 (epoch 2 of 3, after the epoch-1 checkpoint) until the signal comes: it
    # reaches the job mid-run however slow the machine (it used to be sent once the epoch-1 checkpoint
    # appeared, about 1.2 s before a slowed-down job would end on its own).
    env = job_env({"DISTNN_FAULT_PAUSE_AT": "0:25,1:25", "DISTNN_FAULT_MARKER_DIR": str(tmp_path)})
    p = subprocess.Popen(cmd(out), env=env, stderr=subprocess.PIPE, text=True)
    try:
        for r in (0, 1):
            wait_for_marker(p, tmp_path / f"paused-rank{r}-step25")
        p.send_signal(signal.SIGTERM)  # to mpiexec, which forwards it to every rank
        _, err = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 75, err
    assert "distnn: preempted by SIGTERM" in err and "--resume auto" in err
    assert not os.path.exists(out / "model.npz")
    again = subprocess.run(cmd(out), env=job_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "resumed from" in again.stderr
    with np.load(tmp_path / "full" / "model.npz") as a, np.load(out / "model.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_cli_preemption_whose_checkpoint_fails_exits_74(tmp_path):
    # every model.npz write fails (a full disk), training goes on (on_error = continue) until a SIGTERM
    # reaches rank 1 at step 5: no checkpoint can be written, so the status is 74, not the requeue's 75
    out = tmp_path / "run"
    cmd = [MPIEXEC, "-n", "2", sys.executable, "-m", "distnn", "train", "--out", str(out), "--quiet",
           "--set", "train.epochs=3", "--set", "run.plots=false", "--set", "checkpoint.on_error=continue"]
    p = subprocess.run(cmd, env=job_env({"DISTNN_CKPT_FAULT": "enospc:model.npz", "DISTNN_FAULT_SIGNAL_AT": "1:5"}),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 74, p.stderr
    assert "NO checkpoint written" in p.stderr and "No space left on device" in p.stderr
    assert not ck.list_checkpoints(str(out / "checkpoints"))


def test_simulated_ranks_take_sigterm_like_mpi_ranks(tmp_path):
    # --simulate-ranks 2: the ranks are threads, and signal handlers only run in the main thread. A SIGTERM
    # used to kill the process with no checkpoint (exit -15); now it preempts the ranks as under mpiexec.
    def cmd(out, *extra):
        return [sys.executable, "-m", "distnn", "train", "--simulate-ranks", "2", "--out", str(out), "--quiet",
                "--set", "train.epochs=3", "--set", "run.plots=false", "--resume", "auto", *extra]

    def interrupted(out, *extra):
        # Both ranks pause at step 25 (epoch 2 of 3) until the signal comes: it reaches the job mid-run
        # however slow the machine (it used to be sent once an epoch was done, about 1.2 s before a
        # slowed-down job would end on its own).
        markers = out.parent / f"{out.name}-markers"
        markers.mkdir()
        env = job_env({"DISTNN_FAULT_PAUSE_AT": "0:25,1:25", "DISTNN_FAULT_MARKER_DIR": str(markers)})
        p = subprocess.Popen(cmd(out, *extra), env=env, stderr=subprocess.PIPE, text=True)
        try:
            for r in (0, 1):  # (the handlers are in place, training is under way)
                wait_for_marker(p, markers / f"paused-rank{r}-step25")
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=300)
        finally:
            if p.poll() is None:
                p.kill()
        return p.returncode, err

    full = subprocess.run(cmd(tmp_path / "full"), env=job_env(), capture_output=True, text=True, timeout=120)
    assert full.returncode == 0, full.stderr
    out = tmp_path / "run"
    code, err = interrupted(out)
    assert code == 75 and "distnn: preempted by SIGTERM" in err, err
    again = subprocess.run(cmd(out), env=job_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "resumed from" in again.stderr, again.stderr
    with np.load(tmp_path / "full" / "model.npz") as a, np.load(out / "model.npz") as b:
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # with nothing to checkpoint the ranks still stop together, cleanly: 128 + SIGTERM, nothing to resume
    # (it used to die by the signal: -15; see tests/test_sigterm_no_checkpoint.py)
    code, err = interrupted(tmp_path / "plain", "--set", "checkpoint.enabled=false")
    assert code == 128 + signal.SIGTERM and "nothing saved: checkpointing is off" in err, err


@pytest.mark.parametrize("n,signalled", [(1, "0:0"), (2, "0:0,1:0"), (2, "1:0")])
def test_a_signal_during_start_up_exits_75_at_once(tmp_path, n, signalled):
    # Before training there is no step to stop at and nothing to save: the job exits with 75 at once, so a
    # scheduler requeues it (a launcher signals every rank). It used to die by the signal (143: not
    # requeued). A signal to one rank alone ends the whole job with 75 at once too (the others used to
    # wait for their collective timeout: 600 s here, beyond the 300 s deadline, so a job that waits for
    # it fails with TimeoutExpired; it was a 30 s wall-clock bound with a 20 s timeout, tight on a busy
    # machine).
    cmd = [sys.executable, "-m", "distnn", "train", "--out", str(tmp_path / "r"), "--quiet", "--set",
           "train.epochs=1", "--set", "run.plots=false"]
    if n > 1:
        cmd = [MPIEXEC, "-n", str(n), *cmd]
    env = job_env({"DISTNN_FAULT_SIGNAL_AT": signalled, "DISTNN_COLLECTIVE_TIMEOUT": "600"})
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert "preempted by SIGTERM during start-up" in p.stderr, p.stderr
    if n > 1:
        for rank in signalled.split(","):
            assert f"distnn: rank {rank[0]}: preempted by SIGTERM during start-up" in p.stderr, p.stderr
        assert "did not complete" not in p.stderr
    assert p.returncode == 75, p.stderr
    if n == 1:
        assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("mode", ["twice", "before-comm"])
def test_start_up_signals_repeated_or_before_the_communicator_still_end_the_job_with_75(tmp_path, mode):
    # twice: a duplicate SIGTERM during the grace before the abort killed the rank by the signal (exit 15);
    # before-comm: rank 1 signalled before its communicator existed returned 75 on its own while rank 0
    # waited in MPI's start-up, where no collective timeout applies: forever.
    script = os.path.join(HERE, "mpi_scripts", "start_up_signals.py")
    out = tmp_path / "r"
    cmd = [MPIEXEC, "-n", "2", sys.executable, script, mode, "train", "--out", str(out), "--quiet", "--set",
           "train.epochs=1", "--set", "run.plots=false"]
    p = subprocess.run(cmd, env=job_env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == 75, p.stderr
    assert "preempted by SIGTERM during start-up" in p.stderr and "ending all 2 ranks" in p.stderr, p.stderr
    # a run that never trained leaves at most its config.toml, and the same command starts again
    again = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "distnn", "train", "--out", str(out),
                            "--quiet", "--set", "train.epochs=1", "--set", "run.plots=false"],
                           env=job_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
