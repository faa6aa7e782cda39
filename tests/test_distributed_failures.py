"""Failures end multi-rank jobs instead of hanging them (mpiexec subprocesses with a deadline)."""
import ast
import os
import re
import pytest

from mpi_child import child_env, require_mpiexec, run_under_mpiexec

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_scripts")

require_mpiexec(whole_module=True)


def _run(script, n, timeout_env, deadline=300):
    # The deadline is the requirement itself: a job that hangs fails with TimeoutExpired. (Generous: a
    # 2-rank job on a busy 2-core machine can take many times its idle few seconds; the collective
    # timeouts that must not be what ends a job are 600 s.)
    return run_under_mpiexec(n, [os.path.join(SCRIPTS, script)], env=child_env(timeout_env), deadline=deadline)


def test_exception_on_one_rank_aborts_the_whole_job():
    out = _run("raise_on_one_rank.py", 2, timeout_env=600)  # the collective timeout cannot be what ends it
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "[distnn] rank 1 of 2: uncaught ValueError; aborting all 2 ranks" in text
    assert "deliberate failure on rank 1" in text
    # MPICH removes its start-up file in /dev/shm only in MPI_Finalize: an aborted job left it behind
    # (host memory lost until reboot) until the communicator took its name away after start-up
    files = ast.literal_eval(re.search(r"\[test\] start-up shared-memory files: (\[.*\])", text).group(1))
    assert all(not os.path.exists(f) for f in files), files


@pytest.mark.parametrize("script,expected", [
    ("skip_collective.py", ["rank 0 of 2: collective #2 allreduce(op='sum', shape=(3,), dtype=float64) did not "
                            "complete", "aborting the MPI job"]),
    ("skip_shared_allreduce.py", ["rank 0 of 2: collective #2 allreduce(op='sum', shape=(3,), dtype=float64) did "
                                  "not complete", "aborting the MPI job"]),
    ("skip_split.py", ["rank 0 of 2: collective #1 split(color=0) did not complete"]),
], ids=["allreduce", "shared-memory-allreduce", "split"])
def test_skipped_collective_times_out_naming_the_missing_rank(script, expected):
    out = _run(script, 2, timeout_env=2)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    for line in expected + ["missing ranks (in no collective: no answer): [1]"]:
        assert line in text
    # MPICH's Abort returns before the launcher kills the rank: the rank must not go on meanwhile
    assert "[test] returned from a timed-out collective" not in text


def test_a_rank_late_into_another_collective_is_reported_as_waiting_not_missing():
    # rank 1 reaches a different collective 1.5 s late and has no timeout of its own: rank 0 times out
    # (20 s), and rank 1, waiting, answers rank 0's report in time. Rank 1 answers once it has waited
    # 1 s in its collective, so it is "waiting" from about 2.5 s on; rank 0 asks at its timeout and
    # takes answers for a grace period of 0.1 x the timeout (at least 1 s). A 2 s timeout left 0.5 s
    # for a busy machine to delay rank 1 before it counted as "missing"; 20 s leaves about 19 s, and
    # 2 s of grace for its answer.
    out = _run("late_other_collective.py", 2, timeout_env=20)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "rank 0 of 2: collective #2 allreduce(op='sum', shape=(3,), dtype=float64) did not complete" in text
    assert "rank 1 of 2" not in text  # the report below is rank 0's
    assert "missing ranks (in no collective: no answer): []" in text
    assert "waits in collective #2 broadcast_object(root=0)" in text
    assert "ranks disagree about the collective" in text


def test_ranks_waiting_on_different_communicators_end_at_the_timeout_naming_both_collectives():
    # rank 0 waits in an allgather on a split communicator, rank 1 in an allreduce on the world's: no rank
    # sees a mismatch on its communicator, so the collective timeout (5 s) ends the job. Each rank must be
    # reported waiting where it waits, not as "in no collective" because it waits on another communicator.
    # (Under simulate() the same is found at once: test_simulate_deadlock.py.)
    out = _run("wait_on_two_communicators.py", 2, timeout_env=5, deadline=120)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "[test] rank 0 finished step 0" in text and "finished step 1" not in text
    gather, reduce = "collective #2 allgather(shape=(7,), dtype=float64)", \
        "collective #2 allreduce(op='sum', shape=(31,), dtype=float64)"
    # (the report gives the time the rank waited: 5.0 s, or a little more where a busy machine let its last poll slip)
    waited = re.findall(rf"rank (?:0 of 2: {re.escape(gather)}|1 of 2: {re.escape(reduce)}) did not complete "
                        rf"within (\d+\.\d) s", text)
    assert waited and all(float(w) >= 5.0 for w in waited), text
    assert f"waits in {gather} of another communicator" in text or f"waits in {reduce} of another communicator" in text
    assert "missing ranks (in no collective: no answer): [" not in text.replace("answer): []", "")
    assert "ranks disagree about the collective" in text and "aborting the MPI job" in text


def test_a_rank_skipping_its_sync_batchnorm_forward_ends_the_job_at_once_naming_the_mismatch():
    # rank 0 is in SyncBatchNorm's forward while rank 1 (no forward this step) begins DataParallel's exchange:
    # the exchange's closing round answers the layer's (sync_batchnorm_rounds), so both ranks raise at once,
    # with no collective timeout (600 s here) in it; before, the job waited out the timeout
    out = _run("skip_sync_batchnorm_forward.py", 2, timeout_env=600, deadline=120)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "[test] rank 0 finished step 0" in text and "finished step 1" not in text
    assert "SyncBatchNorm: rank 1 began DataParallel's gradient exchange while this rank was in a SyncBatchNorm " \
           "forward" in text
    assert "the ranks ran SyncBatchNorm layers a different number of times in this step" in text
    assert "uncaught RuntimeError; aborting all 2 ranks" in text and "did not complete within" not in text


@pytest.mark.parametrize("mode", ["exit", "group"])
def test_a_rank_that_exits_early_ends_the_job_before_the_timeout(mode):
    # the last rank calls sys.exit(3) while the others go on to a barrier: its MPI_Finalize blocks, so
    # without distnn's exit notice they would wait out the collective timeout (600 s here)
    out = run_under_mpiexec(2, [os.path.join(SCRIPTS, "exit_on_one_rank.py"), mode], env=child_env(600),
                            deadline=300)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "[distnn] rank 0 of 2: rank 1 " in text
    assert "has ended its process (sys.exit, or the end of its script) after starting" in text
    assert "barrier" in text and "can never complete; aborting all 2 ranks" in text
    assert "[test] returned from a collective" not in text


def test_ranks_that_exit_after_their_last_collective_end_normally():
    out = _run("exit_at_different_times.py", 3, timeout_env=600)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert all(f"[test] rank {r} done 3" in text for r in range(3)), text
    assert "has ended its process" not in text


def test_a_failed_simulated_job_is_freed_when_it_returns(tmp_path, monkeypatch):
    # its traceback (kept by a group DataParallel's pool caches) and the fault hook on a parameter held the
    # whole job for the life of the process: a sweep grew by the model, optimizer and data of each failure
    import gc

    from distnn.distributed import data_parallel
    from distnn.train.job import run_training
    from distnn.train.trainer import Trainer

    monkeypatch.setenv("DISTNN_FAULT_NONFINITE_AT", "1:3")
    gc.collect()
    pools = len(data_parallel._pools)  # (other tests' live communicators may hold some)
    trainers = sum(type(o) is Trainer for o in gc.get_objects())
    for k in range(2):
        with pytest.raises(ValueError, match="non-finite"):
            run_training("digits_mlp", ["train.epochs=1", "run.plots=false", "train.nonfinite=error"],
                         out=str(tmp_path / f"r{k}"), simulate_ranks=2, quiet=True)
    gc.collect()
    assert sum(type(o) is Trainer for o in gc.get_objects()) == trainers
    assert len(data_parallel._pools) == pools
