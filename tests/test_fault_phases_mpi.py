"""Faults between training steps under real ``mpiexec``: the job ends, leaves a valid newest checkpoint,
and ``--resume auto`` finishes to the same model as an uninterrupted run, byte for byte.

The kill and crash tests elsewhere (tests/test_checkpoint_mpi_crashes.py, test_mpi_exit_status.py) fault a rank at
a training step or in a checkpoint write. Here the fault comes during an epoch's validation, where the
ranks are not in a step's collectives but in the validation's allreduce and the early-stopping and
checkpoint agreements that follow: an exception raised on one rank only (``DISTNN_FAULT_RAISE_AT``), a
rank killed there (``DISTNN_FAULT_SIGNAL_AT=RANK:validation:SIGKILL``), preemption signals reaching
two ranks at different points (one in validation, one twice at the next steps), and an exception in
one member of an ensemble whose members train side by side.

Each job runs the digits MLP for 3 epochs, checkpointing every epoch and validating at epochs 2 and 3
(``train.eval_every = 2``): the fault hits epoch 2's validation, after epoch 1's checkpoint. The
collective timeout is 600 s and each job's deadline 120 s, so a job that only ended because a
collective timed out (a rank left waiting) fails the test by its deadline.
"""
import json
import os
import subprocess
import sys
import time

import pytest

import cli_faults
from distnn.train import checkpoint as ck

pytestmark = pytest.mark.skipif(cli_faults.MPIEXEC is None, reason="mpiexec not found (pip install mpich)")

ARGS = ["--set", "train.epochs=3", "--set", "train.eval_every=2", "--set", "checkpoint.every_epochs=1",
        "--set", "data.batch_size=66"]  # (66: a global batch that 2 and 3 ranks divide)
ENSEMBLE = ["--config", "digits_mlp_ensemble", "--set", "ensemble.members=2"]
DEADLINE_S = 120


def _train(run, n, args, resume=False, **faults):
    cmd = [cli_faults.MPIEXEC, "-n", str(n), sys.executable, "-m", "distnn", "train", "--out", str(run), "--quiet",
           *args, *ARGS, *(["--resume", "auto"] if resume else [])]
    env = cli_faults.fault_env(DISTNN_COLLECTIVE_TIMEOUT="600", **faults)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=DEADLINE_S)


def _models(run) -> dict:
    """The bytes of every model.npz of a run's results (an ensemble: each member's), by relative path."""
    out = {}
    for top, dirs, files in os.walk(run):
        dirs[:] = [d for d in dirs if d != "checkpoints"]
        if "model.npz" in files:
            with open(os.path.join(top, "model.npz"), "rb") as f:
                out[os.path.relpath(os.path.join(top, "model.npz"), run)] = f.read()
    return out


_references = {}


def _reference(tmp_path_factory, n, args):
    key = (n, tuple(args))
    if key not in _references:
        run = tmp_path_factory.mktemp("reference")
        p = _train(run, n, args)
        assert p.returncode == 0, p.stderr[-3000:]
        _references[key] = _models(run)
        assert _references[key]
    return _references[key]


def _assert_no_rank_left(run):
    """Every process of the job is gone (a rank left behind would still name the run directory)."""
    deadline = time.monotonic() + 20
    while True:
        left = subprocess.run(["pgrep", "-f", f"distnn train.*{run}"], capture_output=True, text=True).stdout.split()
        if not left:
            return
        assert time.monotonic() < deadline, f"processes of the job are still running: {left}"
        time.sleep(0.1)


def _assert_resumes_to_reference(run, n, args, reference):
    """The newest checkpoint of every checkpoint directory verifies, ``distnn evaluate`` reads the run, and
    ``--resume auto`` ends with the uninterrupted run's model.npz."""
    roots = [os.path.join(top, d) for top, dirs, _ in os.walk(run) for d in dirs if d == "checkpoints"]
    newest = [ck.list_checkpoints(r)[-1] for r in roots if ck.list_checkpoints(r)]
    assert newest, f"no checkpoint in {run}"
    for c in newest:
        assert ck.verify_checkpoint(c.path) == [], c.path
    ev = subprocess.run([sys.executable, "-m", "distnn", "evaluate", str(run)], env=cli_faults.fault_env(),
                        capture_output=True, text=True, timeout=DEADLINE_S)
    assert ev.returncode == 0 and "accuracy" in ev.stdout, ev.stderr[-3000:]
    p = _train(run, n, args, resume=True)
    assert p.returncode == 0, p.stderr[-3000:]
    resumed = _models(run)
    assert sorted(resumed) == sorted(reference)
    for name in reference:
        assert resumed[name] == reference[name], f"{name} differs from the uninterrupted run's"


@pytest.mark.parametrize("n,rank", [(2, 1), (3, 0)])
def test_an_exception_on_one_rank_during_validation_ends_the_job(tmp_path_factory, tmp_path, n, rank):
    reference = _reference(tmp_path_factory, n, [])
    run = tmp_path / "run"
    p = _train(run, n, [], DISTNN_FAULT_RAISE_AT=f"{rank}:validation")
    assert p.returncode not in (0, 74, 75), p.stderr[-3000:]
    assert f"test fault: rank {rank} raised at validation" in p.stderr, p.stderr[-3000:]
    _assert_no_rank_left(run)
    _assert_resumes_to_reference(run, n, [], reference)


@pytest.mark.parametrize("n,rank", [(3, 2), (2, 0)])
def test_a_rank_killed_during_validation_ends_the_job(tmp_path_factory, tmp_path, n, rank):
    reference = _reference(tmp_path_factory, n, [])
    run = tmp_path / "run"
    p = _train(run, n, [], DISTNN_FAULT_SIGNAL_AT=f"{rank}:validation:SIGKILL")
    assert p.returncode not in (0, 74, 75), p.stderr[-3000:]
    _assert_no_rank_left(run)
    _assert_resumes_to_reference(run, n, [], reference)


def test_signals_to_two_ranks_in_two_phases_stop_the_job_once_with_75(tmp_path_factory, tmp_path):
    # rank 1: SIGTERM in epoch 2's validation; rank 2: SIGUSR1, then SIGTERM, at the first two steps of
    # epoch 3 (20 steps an epoch), while the ranks are agreeing on rank 1's request
    reference = _reference(tmp_path_factory, 3, [])
    run = tmp_path / "run"
    p = _train(run, 3, [], DISTNN_FAULT_SIGNAL_AT="1:validation:SIGTERM,2:41:SIGUSR1,2:42:SIGTERM")
    assert p.returncode == 75, p.stderr[-3000:]
    assert p.stderr.count("distnn: preempted by SIGTERM") == 1, p.stderr[-3000:]  # (one report, from rank 0)
    _assert_no_rank_left(run)
    newest = ck.list_checkpoints(run / "checkpoints")[-1]
    with open(os.path.join(newest.path, "manifest.json")) as f:
        assert json.load(f)["reason"] == "preempt"
    _assert_resumes_to_reference(run, 3, [], reference)


def test_an_exception_in_one_of_two_ensemble_members_side_by_side_ends_the_job(tmp_path_factory, tmp_path):
    # 2 ranks, 2 members: each rank trains its own member; rank 1's raises in its validation
    reference = _reference(tmp_path_factory, 2, ENSEMBLE)
    run = tmp_path / "run"
    p = _train(run, 2, ENSEMBLE, DISTNN_FAULT_RAISE_AT="1:validation")
    assert p.returncode not in (0, 74, 75), p.stderr[-3000:]
    assert "test fault: rank 1 raised at validation" in p.stderr, p.stderr[-3000:]
    _assert_no_rank_left(run)
    _assert_resumes_to_reference(run, 2, ENSEMBLE, reference)
