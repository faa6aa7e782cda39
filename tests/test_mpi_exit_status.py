"""A rank that ends its process with a status ends the whole MPI job with that status.

A rank that calls ``sys.exit(3)`` while the others still have collectives to run does not end by
itself: its ``MPI_Finalize`` waits for the others. Its exit notice (distnn.distributed.exit_watch)
lets a rank waiting for it abort the job, and that rank used to abort with ``MPI_Abort(..., 1)``:
``mpiexec`` (MPICH's hydra returns the errorcode of ``MPI_Abort`` as its own status) said 1,
whatever the rank's status was. The notice now carries the status the exiting rank will exit with,
and the job is aborted with it.

What Python lets distnn see: a status given to ``sys.exit()`` or the ``exit()``/``quit()`` builtins,
and any ``SystemExit`` leaving the ``distnn`` CLI. A bare ``raise SystemExit(3)`` at the top of a
user's own script is handled inside the interpreter's shutdown with no hook for the status, so that
job ends with 1 (a failure, unnamed), pinned here; a status of 0 (or one that is 0 mod 256) on a rank
whose peers wait for it is a failure of the job too: 1.
"""
import os
import subprocess
import sys

import pytest

from distnn.distributed.launch import mpiexec_command
from mpi_child import child_env, require_mpiexec, run_under_mpiexec

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_scripts", "exit_status.py")

require_mpiexec(whole_module=True)


def _env(**extra):
    # a collective timeout far beyond the deadline: only the exit notice can end these jobs in time
    env = child_env(600)
    for k in [k for k in env if k.startswith("DISTNN_FAULT_")]:
        del env[k]
    env.update(extra)
    return env


def _script(n, *args):
    return run_under_mpiexec(n, [SCRIPT, *args], env=_env(), deadline=300)


@pytest.mark.parametrize("how,code,group,status", [
    ("sys-exit", 3, "", 3),
    ("sys-exit", 3, "group", 3),        # inside a sub-communicator (an ensemble member's ranks)
    ("builtin-exit", 42, "", 42),
    ("sys-exit", 0, "", 1),             # a rank "finishing" while others wait for it: the job failed
    ("sys-exit", 256, "", 1),           # (the process would exit 0: 256 mod 256)
    ("raise", 3, "", 1),                # the status of a bare SystemExit in a script is out of reach: 1
], ids=["sys.exit", "sys.exit-group", "exit()", "sys.exit(0)", "sys.exit(256)", "raise-SystemExit"])
def test_a_script_rank_that_exits_early_ends_the_job_with_its_status(how, code, group, status):
    p = _script(2, how, code, *([group] if group else []))
    text = p.stdout + p.stderr
    assert p.returncode == status, text
    assert "[distnn] rank 0 of 2: rank 1 " in text and "has ended its process" in text, text
    assert "[test] returned from a collective" not in text
    if status != 1:
        assert f"aborting all 2 ranks with its exit status {status}" in text, text


def test_three_ranks_every_waiting_rank_aborts_with_the_same_status():
    p = _script(3, "sys-exit", 5)
    assert p.returncode == 5, p.stdout + p.stderr


@pytest.mark.parametrize("n", [2, 3])
def test_a_rank_killed_by_a_signal_ends_the_job_also_when_the_launcher_would_not(n):
    # MPICH's mpiexec ends a job whose rank was killed, but srun (without --kill-on-bad-exit) does
    # not: the other ranks used to wait out the collective timeout (here 600 s: beyond the deadline).
    # Each rank runs under a shell that outlives it, so mpiexec, like srun, sees no rank die. The
    # last rank SIGKILLs itself (no exit notice); a rank waiting for it sees its process gone and
    # aborts the job (which ends the shells too: they sleep 600 s, beyond the deadline, so a job
    # that waited for them fails with TimeoutExpired).
    python = " ".join(f"'{a}'" for a in (sys.executable, SCRIPT))
    p = run_under_mpiexec(n, ["-c", f"{python} kill; sleep 600"], env=_env(), python="sh", deadline=300)
    text = p.stdout + p.stderr
    assert p.returncode != 0, text
    assert f"rank {n - 1} (" in text and "has died (killed by a signal" in text, text
    assert "[test] returned from a collective" not in text


def _cli(n, *extra, simulate=False, env=None):
    cmd = [sys.executable, "-m", "distnn", "train", "--quiet", "--set", "train.epochs=2", "--set",
           "run.plots=false", "--set", "checkpoint.enabled=false", *extra]
    if simulate:
        cmd += ["--simulate-ranks", str(n)]
    else:
        cmd = mpiexec_command(n, ["-m", "distnn", *cmd[3:]])
    return subprocess.run(cmd, env=_env(**(env or {})), capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("simulate", [False, True], ids=["mpiexec", "simulated"])
def test_a_cli_rank_that_exits_0_while_the_others_train_fails_the_job_in_one_line(tmp_path, simulate):
    # simulated, this was a 65-line traceback (status 1); under mpiexec one line
    p = _cli(3, "--out", str(tmp_path / "run"), "--set", "data.batch_size=63", simulate=simulate,
             env={"DISTNN_FAULT_EXIT_AT": "2:5:0"})
    assert p.returncode == 1, p.stderr[-3000:]
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    if simulate:
        assert "simulated rank(s) [2] of 3 called sys.exit(0)" in p.stderr, p.stderr[-3000:]
    else:
        assert "rank 2 " in p.stderr and "has ended its process" in p.stderr, p.stderr[-3000:]


@pytest.mark.parametrize("simulate", [False, True], ids=["mpiexec", "simulated"])
def test_the_cli_rank_that_raises_system_exit_sets_the_jobs_status(tmp_path, simulate):
    # DISTNN_FAULT_EXIT_AT=1:5:3: rank 1 raises SystemExit(3) at step 5 of `distnn train`, as a user's
    # model or callback code might; rank 0 waits for it in the step's gradient exchange
    p = _cli(2, "--out", str(tmp_path / "run"), simulate=simulate, env={"DISTNN_FAULT_EXIT_AT": "1:5:3"})
    assert p.returncode == 3, p.stderr[-3000:]
    if simulate:
        assert "simulated rank 1 of 2 called sys.exit(3)" in p.stderr
        assert "Traceback" not in p.stderr
    else:
        assert "rank 1 " in p.stderr and "has ended its process" in p.stderr, p.stderr[-3000:]
        assert "aborting all 2 ranks with its exit status 3" in p.stderr


def test_each_rank_records_the_status_it_exits_with_for_a_batch_script(tmp_path):
    # slurm/train.sbatch reads them: srun --kill-on-bad-exit reports 137 for every rank once one exits
    status_dir = tmp_path / "status"
    status_dir.mkdir()
    p = _cli(2, "--out", str(tmp_path / "run"), env={"DISTNN_FAULT_EXIT_AT": "1:5:3",
                                                      "DISTNN_STATUS_DIR": str(status_dir)})
    assert p.returncode == 3, p.stderr[-3000:]
    assert (status_dir / "rank-1").read_text() == "3 0\n"  # (rank 0 was aborted by the exit watch: no record)
    p = _cli(2, "--out", str(tmp_path / "run2"), env={"DISTNN_FAULT_SIGNAL_AT": "0:0:SIGUSR1",
                                                       "DISTNN_STATUS_DIR": str(status_dir)})
    assert p.returncode == 75, p.stderr[-3000:]
    assert (status_dir / "rank-0").read_text() == "75 10\n"  # (preempted at start-up by SIGUSR1)
    for f in status_dir.iterdir():
        f.unlink()
    p = _cli(1, "--out", str(tmp_path / "run3"), simulate=True, env={"DISTNN_STATUS_DIR": str(status_dir)})
    assert p.returncode == 0 and (status_dir / "rank-0").read_text() == "0 0\n", p.stderr[-3000:]
