"""Fault tolerance under real processes: kill -9 of a rank, crashes mid-write, SIGTERM to mpiexec,
corrupt files, full or read-only checkpoint directories, NaN on one rank, resuming on another world size.

Each case runs tests/mpi_scripts/ckpt_train.py (digits, a small MLP with dropout
and noise augmentation, Adam with warmup: 400 samples, global batch 40, 10
steps per epoch, 3 epochs) under ``mpiexec -n 2`` with a deadline, and
compares with an uninterrupted run of the same job: bitwise for the same
world size, to summation tolerance across world sizes.
"""
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from cli_faults import wait_for_marker

from distnn.train import checkpoint as ck

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "mpi_scripts", "ckpt_train.py")
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found (pip install mpich)")
STEPS = 30


def _env(extra=None):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", DISTNN_COLLECTIVE_TIMEOUT="20")
    for k in ("DISTNN_CKPT_FAULT", "DISTNN_FAULT_KILL_AT", "DISTNN_FAULT_NONFINITE_AT", "DISTNN_FAULT_SIGNAL_AT",
              "DISTNN_FAULT_STEP_DELAY", "DISTNN_FAULT_PAUSE_AT", "DISTNN_FAULT_MARKER_DIR"):
        env.pop(k, None)
    env.update(extra or {})
    return env


def _cmd(out, n, args, outliving_shell=False):
    base = [sys.executable, SCRIPT, "--out", str(out), *args]
    if outliving_shell:  # each rank under a shell that outlives it: mpiexec, like srun, sees no rank die
        base = ["sh", "-c", f"{shlex.join(base)}; sleep 600"]
    return base if n == 1 else [MPIEXEC, "-n", str(n), *base]


def run_job(out, *args, n=2, env=None, timeout=90, outliving_shell=False):
    """Run the job to completion; returns (returncode, stderr, seconds)."""
    t0 = time.monotonic()
    p = subprocess.run(_cmd(out, n, args, outliving_shell), env=_env(env), capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stderr, time.monotonic() - t0


def final(out):
    path = os.path.join(str(out), "final.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    with open(path + ".json") as f:
        return arrays, json.load(f)


def assert_same(a, b, exact=True):
    (xa, ja), (xb, jb) = a, b
    assert ja["global_step"] == jb["global_step"] == STEPS
    assert sorted(xa) == sorted(xb)
    for k in xa:
        if exact:
            np.testing.assert_array_equal(xa[k], xb[k], err_msg=k)
        else:
            np.testing.assert_allclose(xa[k], xb[k], rtol=1e-4, atol=1e-5, err_msg=k)


def finish(out, *extra, n=2, env=None):
    """Resume ``out`` with --resume auto to the end and return its final state."""
    rc, err, _ = run_job(out, "--resume", "auto", "--every-n-steps", "4", "--final", os.path.join(out, "final.npz"),
                         *extra, n=n, env=env)
    assert rc == 0, err
    return final(out), err


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    rc, err, _ = run_job(out, "--every-n-steps", "4", "--final", os.path.join(out, "final.npz"))
    assert rc == 0, err
    res = final(out)
    assert res[1]["replicas_equal"] and res[1]["skipped_steps"] == 0
    return str(out), res


def root_of(out):
    return os.path.join(str(out), "checkpoints")


def assert_all_checkpoints_valid(out):
    cps = ck.list_checkpoints(root_of(out))
    assert cps, "no checkpoint was written"
    for c in cps:
        assert ck.verify_checkpoint(c.path) == [], c.path
    return cps


# ------------------------------------------------------------------ node loss
@pytest.mark.parametrize("launcher", ["mpiexec", "outliving-shell"])
def test_kill_9_one_rank_then_resume_matches_uninterrupted(reference, tmp_path, launcher):
    # "outliving-shell": a launcher that does not end the job when a rank dies (srun without
    # --kill-on-bad-exit); the surviving rank sees the dead one's process gone and aborts.
    # The collective timeout (600 s) and the shells' sleep (600 s) are far beyond run_job's deadline
    # (300 s): a job that waited for either fails with TimeoutExpired, or the 30 s bound below.
    step = random.randint(6, STEPS - 2)  # (per-test seeded in conftest: DISTNN_TEST_SEED picks other steps)
    shell = launcher == "outliving-shell"
    env = {"DISTNN_FAULT_KILL_AT": f"1:{step}", "DISTNN_COLLECTIVE_TIMEOUT": "600"}
    rc, err, secs = run_job(tmp_path, "--every-n-steps", "4", env=env, outliving_shell=shell, timeout=300)
    assert rc != 0, f"killed at step {step} but the job exited 0"
    # Issue 7 asks for the job to end within 30 s of the kill; the whole job (start-up and training
    # included) takes 2-6 s on an idle 2-core machine, so this bound has a wide margin.
    assert secs < 30, f"the job took {secs:.1f} s to end after rank 1 died at step {step}"
    if shell:
        assert "rank 1 (" in err and "has died (killed by a signal" in err, err[-3000:]
    cps = assert_all_checkpoints_valid(tmp_path)
    assert cps[-1].step < step and cps[-1].step >= step - 4, (step, [c.step for c in cps])
    res, _ = finish(tmp_path)
    assert_same(reference[1], res)


# ------------------------------------------------------------------ crash while writing
@pytest.mark.parametrize("fault", ["crash_after:model.npz", "crash_before_rename", "crash_before_latest"])
def test_crash_while_writing_keeps_previous_latest(reference, tmp_path, fault):
    # checkpoints at steps 4, 8, 10 (epoch end), 12: the write of step 12 dies
    # (the first case writes in the background thread: the whole process dies all the same)
    extra = ["--async-save"] if fault.startswith("crash_after") else []
    rc, err, _ = run_job(tmp_path, "--every-n-steps", "4", *extra, env={"DISTNN_CKPT_FAULT": f"{fault}@12"})
    assert rc != 0
    root = root_of(tmp_path)
    assert ck.read_pointer(root) == "step-00000010"
    assert ck.verify_checkpoint(os.path.join(root, "step-00000010")) == []
    names = [c.name for c in ck.list_checkpoints(root)]
    if fault == "crash_before_latest":
        assert names[-1] == "step-00000012"  # complete and renamed: a valid newer checkpoint
    else:
        assert names[-1] == "step-00000010"
        assert any(n.startswith(".tmp-step-00000012") for n in os.listdir(root))  # the abandoned write
    assert_all_checkpoints_valid(tmp_path)
    res, err = finish(tmp_path)
    assert_same(reference[1], res)
    assert not any(n.startswith(".tmp-") for n in os.listdir(root))  # cleaned up by the resumed run


def test_corrupt_newest_checkpoint_is_reported_and_skipped(reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference[0], out)
    os.remove(out / "final.npz")
    newest = out / "checkpoints" / "step-00000030"
    target = newest / "optimizer.npz"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x10
    target.write_bytes(bytes(data))
    # and truncate the one before it
    prev = out / "checkpoints" / "step-00000028" / "model.npz"
    prev.write_bytes(prev.read_bytes()[:100])
    res, err = finish(out)
    assert "step-00000030" in err and "optimizer.npz" in err and "SHA-256" in err
    assert "step-00000028" in err and "model.npz" in err and "truncated" in err
    assert "resumed from" in err and "step-00000024" in err
    assert_same(reference[1], res)


# ------------------------------------------------------------------ preemption
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
    args = _cmd(out, 2, ["--every-n-epochs", "0", "--every-n-steps", "0", "--no-save-best"])
    env = _env({"DISTNN_FAULT_PAUSE_AT": f"0:{step},1:{step}", "DISTNN_FAULT_MARKER_DIR": str(markers),
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

    full = subprocess.run(cmd(tmp_path / "full"), env=_env(), capture_output=True, text=True, timeout=120)
    assert full.returncode == 0, full.stderr
    out = tmp_path / "run"
    # Both ranks pause at step 25 (epoch 2 of 3, after the epoch-1 checkpoint) until the signal comes: it
    # reaches the job mid-run however slow the machine (it used to be sent once the epoch-1 checkpoint
    # appeared, about 1.2 s before a slowed-down job would end on its own).
    env = _env({"DISTNN_FAULT_PAUSE_AT": "0:25,1:25", "DISTNN_FAULT_MARKER_DIR": str(tmp_path)})
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
    again = subprocess.run(cmd(out), env=_env(), capture_output=True, text=True, timeout=120)
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
    p = subprocess.run(cmd, env=_env({"DISTNN_CKPT_FAULT": "enospc:model.npz", "DISTNN_FAULT_SIGNAL_AT": "1:5"}),
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
        env = _env({"DISTNN_FAULT_PAUSE_AT": "0:25,1:25", "DISTNN_FAULT_MARKER_DIR": str(markers)})
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

    full = subprocess.run(cmd(tmp_path / "full"), env=_env(), capture_output=True, text=True, timeout=120)
    assert full.returncode == 0, full.stderr
    out = tmp_path / "run"
    code, err = interrupted(out)
    assert code == 75 and "distnn: preempted by SIGTERM" in err, err
    again = subprocess.run(cmd(out), env=_env(), capture_output=True, text=True, timeout=120)
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
    env = _env({"DISTNN_FAULT_SIGNAL_AT": signalled, "DISTNN_COLLECTIVE_TIMEOUT": "600"})
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
    p = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == 75, p.stderr
    assert "preempted by SIGTERM during start-up" in p.stderr and "ending all 2 ranks" in p.stderr, p.stderr
    # a run that never trained leaves at most its config.toml, and the same command starts again
    again = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "distnn", "train", "--out", str(out),
                            "--quiet", "--set", "train.epochs=1", "--set", "run.plots=false"],
                           env=_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr


# ------------------------------------------------------------------ storage failures
def _mount_tmpfs(path, opts):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True)
    return r.returncode == 0


def _umount(path):
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.mark.parametrize("policy", ["stop", "continue"])
def test_full_checkpoint_directory(tmp_path, policy):
    mnt = tmp_path / "small"
    # room for about three checkpoints (each ~40 KB); else ENOSPC from the fault-injection hook
    mounted = _mount_tmpfs(mnt, "size=128k")
    env = {} if mounted else {"DISTNN_CKPT_FAULT": "enospc:model.npz@12,enospc:model.npz@16,enospc:model.npz@20,"
                                                   "enospc:model.npz@24,enospc:model.npz@28,enospc:model.npz@30"}
    try:
        rc, err, _ = run_job(tmp_path, "--every-n-steps", "4", "--ckpt-dir", str(mnt), "--on-error", policy,
                             "--final", str(tmp_path / "final.npz"), env=env)
        assert "No space left on device" in err
        latest = ck.read_pointer(str(mnt))
        assert latest is not None and ck.verify_checkpoint(str(mnt / latest)) == []
        for c in ck.list_checkpoints(str(mnt)):
            assert ck.verify_checkpoint(c.path) == []
        assert not [n for n in os.listdir(mnt) if n.startswith(".tmp")]
        if policy == "stop":
            assert rc == 2 and "on_error" in err
            assert not os.path.exists(tmp_path / "final.npz")
        else:
            assert rc == 0, err
            assert final(tmp_path)[1]["global_step"] == STEPS
    finally:
        if mounted:
            _umount(mnt)


def test_read_only_checkpoint_directory(tmp_path):
    mnt = tmp_path / "ro"
    if _mount_tmpfs(mnt, "ro,size=64k"):
        cleanup = lambda: _umount(mnt)  # noqa: E731
    elif os.geteuid() != 0:
        mnt.mkdir()
        mnt.chmod(0o555)
        cleanup = lambda: mnt.chmod(0o755)  # noqa: E731
    else:
        pytest.skip("running as root without mount: no way to make a read-only directory here")
    try:
        rc, err, _ = run_job(tmp_path, "--every-n-steps", "4", "--ckpt-dir", str(mnt / "checkpoints"))
        assert rc == 2 and ("Read-only file system" in err or "Permission denied" in err), err
        assert "cannot write checkpoint" in err
    finally:
        cleanup()


def test_async_write_failure_stops_every_rank_a_step_after_the_write(tmp_path):
    # checkpoints at steps 4, 8, 10 (epoch end), 12: the background write of step 12 fails at once. Rank 0
    # sees it ended at step 13's end (--await-writes: its look waits for the end; a 50 ms sleep a step used
    # to stand for that, and a write slowed by a busy machine was agreed at step 16), says so in step 14's
    # gradient exchange, and both ranks stop there together, before the next save (16), which used to be
    # where it was noticed.
    rc, err, _ = run_job(tmp_path, "--every-n-steps", "4", "--async-save", "--await-writes",
                         "--final", str(tmp_path / "final.npz"), env={"DISTNN_CKPT_FAULT": "enospc:model.npz@12"})
    assert rc == 2, err
    assert "No space left on device" in err and "background from global step 12; agreed at step 14)" in err, err
    root = root_of(tmp_path)
    assert ck.read_pointer(root) == "step-00000010"
    assert [c.name for c in ck.list_checkpoints(root)][-1] == "step-00000010"
    assert not [n for n in os.listdir(root) if n.startswith(".tmp")]
    assert not os.path.exists(tmp_path / "final.npz")


# ------------------------------------------------------------------ non-finite values
def _skipped_once_by_all(tmp_path, fault_var, step):
    """Run with a non-finite value on rank 1 at ``step`` under nonfinite=skip; the final arrays."""
    rc, err, _ = run_job(tmp_path, "--nonfinite", "skip", "--final", str(tmp_path / "final.npz"),
                         env={fault_var: f"1:{step}"})
    assert rc == 0, err
    arrays, info = final(tmp_path)
    assert info["skipped_steps"] == 1 and info["replicas_equal"] and info["global_step"] == STEPS
    assert err.count(f"skipped step {step} (epoch 1, batch {step}) on rank(s) [1]") == 2  # logged by both ranks
    return arrays


def test_nonfinite_loss_with_finite_gradients_on_one_rank_is_skipped_by_all(reference, tmp_path):
    _skipped_once_by_all(tmp_path, "DISTNN_FAULT_NONFINITE_LOSS_AT", 5)


def test_nonfinite_gradient_on_one_rank_is_skipped_by_all(reference, tmp_path):
    arrays = _skipped_once_by_all(tmp_path, "DISTNN_FAULT_NONFINITE_AT", 7)
    assert all(np.isfinite(v).all() for v in arrays.values())
    assert not np.array_equal(arrays["model/0.weight"], reference[1][0]["model/0.weight"])
    rc, err, _ = run_job(tmp_path / "e", "--nonfinite", "error", env={"DISTNN_FAULT_NONFINITE_AT": "1:7"})
    assert rc == 2 and "non-finite loss or gradients at step 7" in err


# ------------------------------------------------------------------ another world size
def test_resume_two_ranks_on_one_and_one_on_two(tmp_path):
    # with dropout and noise augmentation: a sample's draws belong to its place in the global batch
    plain = ["--every-n-steps", "4"]
    two, one = tmp_path / "two", tmp_path / "one"
    assert run_job(two, *plain, "--final", str(two / "final.npz"))[0] == 0
    assert run_job(one, *plain, "--final", str(one / "final.npz"), n=1)[0] == 0
    assert_same(final(two), final(one), exact=False)  # the oracle: 2 ranks with B/2 == 1 rank with B
    for src, n in ((two, 1), (one, 2)):
        out = tmp_path / f"from-{src.name}-on-{n}"
        rc, err, _ = run_job(out, *plain, "--resume", str(src / "checkpoints" / "step-00000012"),
                             "--final", str(out / "final.npz"), n=n)
        assert rc == 0, err
        assert "resumed from" in err and "step-00000012" in err
        assert_same(final(src), final(out), exact=False)


def test_16_mixed_resume_two_ranks_on_one_carries_the_loss_scaler(tmp_path):
    # under "16-mixed" a rank's float16 weight gradient sums its share of the batch, so 1 rank and 2 ranks differ
    # by float16 rounding (measured: 5.0e-5 here; 1e-2 after 80 steps of digits_mlp), far above "32"'s summation
    # tolerance. The resume on 1 rank must add nothing to that: the scaler's scale and growth count go on
    # from the checkpoint (not afresh: the count would restart at 1), and the weights end no further from
    # the 2-rank run than the uninterrupted 1-rank run does (measured: 1.7e-5)
    mixed = ["--every-n-steps", "4", "--precision", "16-mixed"]
    two, one, out = tmp_path / "two", tmp_path / "one", tmp_path / "resumed"
    assert run_job(two, *mixed, "--final", str(two / "final.npz"))[0] == 0
    assert run_job(one, *mixed, "--final", str(one / "final.npz"), n=1)[0] == 0
    rc, err, _ = run_job(out, *mixed, "--resume", str(two / "checkpoints" / "step-00000012"),
                         "--final", str(out / "final.npz"), n=1)
    assert rc == 0, err
    (x2, j2), (x1, _), (xr, jr) = final(two), final(one), final(out)
    assert sorted(jr["scaler"], key=int)[0] == "13" and j2["scaler"]["12"]["_growth_tracker"] == 12
    for step in ("13", "20", str(STEPS)):
        assert jr["scaler"][step] == j2["scaler"][step], step

    def furthest(a, b):
        return max(float(np.abs(a[k] - b[k]).max()) for k in a if k.startswith("model/"))

    assert 0 < furthest(xr, x2) <= furthest(x1, x2)
