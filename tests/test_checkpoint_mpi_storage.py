"""Checkpoint storage failures under real processes (mpiexec): a full directory (stop or continue), a
read-only directory, an asynchronous write failing, each stopping every rank together."""
import os
import shutil
import subprocess

import pytest

from distnn.train import checkpoint as ck

from checkpoint_jobs import MPIEXEC, STEPS, final, root_of, run_job


pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found (pip install mpich)")


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
