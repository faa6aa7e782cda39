"""Ensemble runs stopped and resumed: a preempted ensemble resumes every member, refusals of the other kind of
run directory or one member's checkpoint, an unfinished ensemble evaluated, size errors naming the ranks,
signals at start-up, a group preempted without its checkpoint."""
import os

import numpy as np
import pytest

from distnn.distributed import simulate
from distnn.train import ensemble as E

from ensemble_cases import TINY, train_ensemble, member_weights


@pytest.mark.usefixtures("clean_preemption_flags")  # (a preempted run_training leaves the signals ignored)
def test_preempted_ensemble_resumes_every_member(tmp_path, monkeypatch):
    """Preempted while member 1 trains (members in turns): --resume auto keeps finished member 0, resumes
    member 1 from its checkpoint, and ends exactly like the uninterrupted ensemble."""
    from distnn.train import job as J
    from distnn.train.job import run_training
    from distnn.train.preemption import Preempted

    ov = [*TINY[:2], "train.epochs=3", "checkpoint.every_epochs=1", "run.plots=false", "ensemble.members=2"]
    ref = run_training("digits_mlp", ov, out=str(tmp_path / "ref"), quiet=True)

    trained, real_train = [], J._train

    def train_with_fault(job, path):  # SIGTERM this process at member 1's step 30 (epoch 2 of 3)
        trained.append(job.cfg.ensemble.member)
        if job.cfg.ensemble.member == 1:
            monkeypatch.setenv("DISTNN_FAULT_SIGNAL_AT", "0:30")
        try:
            return real_train(job, path)
        finally:
            monkeypatch.delenv("DISTNN_FAULT_SIGNAL_AT", raising=False)

    monkeypatch.setattr(J, "_train", train_with_fault)
    with pytest.raises(Preempted):
        run_training("digits_mlp", ov, out=str(tmp_path / "cut"), quiet=True)
    assert trained == [0, 1] and not (tmp_path / "cut" / "summary.json").exists()
    assert (tmp_path / "cut" / "members" / "member-0" / "summary.json").exists()
    trained.clear()
    again = run_training("digits_mlp", [*ov, "checkpoint.resume=auto"], out=str(tmp_path / "cut"), quiet=True)
    assert trained == [1]  # member 0 was finished: not trained again
    for k in ("test_accuracy", "test_loss", "member_test_accuracy", "member_test_loss", "val_loss"):
        np.testing.assert_allclose(again[k], ref[k], rtol=1e-6, atol=1e-9, err_msg=k)
    for m in range(2):
        w_ref, w = member_weights(tmp_path / "ref", m), member_weights(tmp_path / "cut", m)
        assert all(np.allclose(w_ref[k], w[k], rtol=1e-6, atol=1e-7) for k in w_ref)


def test_resume_auto_refuses_a_run_directory_of_the_other_kind(tmp_path):
    # --resume auto with the other kind of config found "no checkpoint", started from the beginning and
    # overwrote the finished run's model, summary and metrics (an ensemble's evaluate then saw none).
    from distnn.train.job import JobError, run_training

    plain = [*TINY[:2], "train.epochs=1", "run.plots=false"]
    ens, single = tmp_path / "ens", tmp_path / "single"
    run_training("digits_mlp", [*plain, "ensemble.members=2"], out=str(ens), quiet=True)
    run_training("digits_mlp", plain, out=str(single), quiet=True)
    before = {p: (p / "summary.json").read_bytes() for p in (ens, single)}
    with pytest.raises(JobError, match=r"holds an ensemble run, and this config trains a single model"):
        run_training("digits_mlp", [*plain, "checkpoint.resume=auto"], out=str(ens), quiet=True)
    with pytest.raises(JobError, match=r"holds a single-model run, and this config trains an ensemble"):
        run_training("digits_mlp", [*plain, "ensemble.members=2", "checkpoint.resume=auto"], out=str(single),
                     quiet=True)
    assert {p: (p / "summary.json").read_bytes() for p in (ens, single)} == before
    # the same kind still resumes (a finished run: nothing left to train)
    run_training("digits_mlp", [*plain, "ensemble.members=2", "checkpoint.resume=auto"], out=str(ens), quiet=True)


def test_resuming_an_ensemble_from_one_members_checkpoint_is_refused(tmp_path):
    # Every member resumed from member 0's weights: the ensemble averaged near-copies of one model.
    from distnn.train.job import JobError, run_training

    plain = [*TINY[:2], "train.epochs=2", "run.plots=false", "ensemble.members=2", "checkpoint.every_epochs=1"]
    run = tmp_path / "ens"
    run_training("digits_mlp", plain, out=str(run), quiet=True)
    step = sorted(os.listdir(run / "members" / "member-0" / "checkpoints"))[0]
    one = run / "members" / "member-0" / "checkpoints" / step
    with pytest.raises(JobError, match=r"is member 0's; an ensemble resumes every member from its own"):
        run_training("digits_mlp", [*plain, "train.epochs=3", f"checkpoint.resume={one}"], out=str(tmp_path / "b"),
                     quiet=True)
    assert E.member_resume_path(str(run), 1) == str(run / "members" / "member-1")  # the run directory: fine
    # with checkpoint.dir the members' checkpoints live in DIR/member-k/step-N: told apart by their config
    run_training("digits_mlp", [*plain, f"checkpoint.dir={tmp_path / 'ck'}"], out=str(tmp_path / "c"), quiet=True)
    step = min(n for n in os.listdir(tmp_path / "ck" / "member-0") if n.startswith("step-"))
    for target in (step, "latest"):  # a checkpoint, or its root's pointer
        with pytest.raises(JobError, match=r"is member 0's"):
            run_training("digits_mlp", [*plain, "train.epochs=3",
                                        f"checkpoint.resume={tmp_path / 'ck' / 'member-0' / target}"],
                         out=str(tmp_path / "d"), quiet=True)


def test_evaluate_an_ensemble_that_did_not_finish(tmp_path, capsys):
    # An interrupted ensemble had no top-level model.json yet: 'distnn evaluate' said it held no trained
    # model, while a single-model run falls back to its newest checkpoint. Now every member as far as it got.
    import shutil

    from distnn.cli import main
    from distnn.train.job import run_training

    ov = [*TINY[:2], "train.epochs=2", "run.plots=false", "ensemble.members=2", "checkpoint.every_epochs=1"]
    run = tmp_path / "ens"
    run_training("digits_mlp", ov, out=str(run), quiet=True)
    for name in ("model.json", "summary.json", "metrics.jsonl", "metrics.csv"):  # as before the end
        (run / name).unlink()
    for name in ("model.npz", "model.json", "summary.json"):  # member 1: still training
        (run / "members" / "member-1" / name).unlink()
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    out, err = capsys.readouterr()
    assert "did not finish: averaging its 2 members as far as each got" in err
    assert "accuracy" in out
    shutil.rmtree(run / "members" / "member-1" / "checkpoints")  # no weights at all yet: a clear error
    assert main(["evaluate", str(run)]) == 2
    assert "member 1 has no weights to load yet" in capsys.readouterr().err


def test_a_members_size_error_names_its_ranks_not_only_the_groups_count(tmp_path):
    # Each member trains on its group's communicator, so the Trainer's checks count the group's ranks:
    # 4 ranks and 2 members said "divisible by the number of ranks 2" to a user who launched 4.
    from distnn.train.job import JobError

    with pytest.raises(JobError) as info:
        train_ensemble(tmp_path / "a", "ensemble.members=2", "data.batch_size=33", simulate_ranks=4)
    msg = str(info.value)
    assert "ensemble member 0:" in msg and "must be divisible by the number of ranks 2" in msg, msg
    assert "ranks per member: 4 ranks / 2 members at once" in msg and "world ranks 0-1" in msg, msg
    # members in turns on groups of one rank: said "(global 64 / 1 ranks)" to a user who launched 2
    with pytest.raises(JobError) as info:
        train_ensemble(tmp_path / "b", "ensemble.members=4", "train.grad_accumulation=3", simulate_ranks=2)
    msg = str(info.value)
    assert "2 ranks / 2 groups, each training 2 members in turn" in msg and "world rank 0" in msg, msg
    # one group (3 ranks, 4 members: every member on all 3 ranks in turn): the job's count, nothing added
    with pytest.raises(JobError) as info:
        train_ensemble(tmp_path / "c", "ensemble.members=4", simulate_ranks=3)
    msg = str(info.value)
    assert "must be divisible by the number of ranks 3" in msg and "per member" not in msg, msg
    assert not any(p.exists() for p in (tmp_path / "a", tmp_path / "b", tmp_path / "c"))


def test_a_signal_at_start_up_preempts_an_ensemble(tmp_path):
    # DISTNN_FAULT_SIGNAL_AT=0:0 (rank 0 signalled during start-up) did nothing on the ensemble path: the
    # ensemble trained to the end (exit 0) where a plain run exits 75 before training.
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTNN_FAULT_")}
    env.update(DISTNN_FAULT_SIGNAL_AT="0:0", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "distnn", "train", "--out", str(tmp_path / "r"), "--quiet", "--set",
           "ensemble.members=2", *[a for o in TINY for a in ("--set", o)]]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 75, p.stderr[-3000:]
    assert "preempted by SIGTERM during start-up" in p.stderr, p.stderr[-3000:]
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("saved", [True, False])
def test_a_group_preempted_without_its_checkpoint_ends_every_rank_with_74(saved):
    # two groups of one rank; group 0 is preempted, group 1 finished: every rank raises the same
    # preemption, with 75 when group 0's checkpoint was written and 74 when it was not
    from distnn.train import preemption
    from distnn.train.ensemble_run import EnsemblePreempted, _agree_on_group_endings

    plan = E.plan_groups(2, 2)

    def rank(comm):
        gcomm = E.group_communicator(comm, plan)
        ending = None
        if comm.rank == 0:
            ending = preemption.Preempted(12, 15, "ck/step-00000012" if saved else None,
                                          None if saved else "[Errno 28] No space left on device")
        try:
            _agree_on_group_endings(comm, gcomm, plan, ending, 30.0)
        except EnsemblePreempted as e:
            return e.exit_code, str(e)

    results = simulate(2, rank)
    assert results[0] == results[1]
    code, message = results[0]
    assert code == (75 if saved else 74)
    assert "ensemble group 0" in message and ("written" if saved else "NO checkpoint written") in message
