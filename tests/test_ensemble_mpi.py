"""Ensembles on real MPI ranks equal the same ensemble trained in turns in one process.

Two kinds of tests:

* pytest-mpi (``mpiexec -n 2|3 python -m pytest --with-mpi -m mpi``): the one-collective
  evaluation against a hand computation, and training K = W members at once vs the
  same K members trained one after another by rank 0 alone;
* a plain test that starts ``mpiexec -n 4 python -m distnn train`` (4 members on 4
  oversubscribed ranks) and compares its summary with the in-process run, plus the
  clear start-up error for a member count that does not divide the world.
"""
import json
import os

import numpy as np
import pytest

import distnn
from distnn.train import ensemble as E
from mpi_child import child_env, require_mpiexec, run_under_mpiexec

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# digits_mlp made tiny: 2 epochs of a 16-unit MLP (a few seconds per member)
TINY = ["train.epochs=2", "model.hidden_sizes=[16]"]
KEYS = ("test_accuracy", "test_loss", "val_accuracy", "val_loss", "member_test_accuracy", "member_test_loss",
        "member_val_accuracy", "member_val_loss")


def assert_same_metrics(a: dict, b: dict, tol=1e-6):
    for k in KEYS:
        np.testing.assert_allclose(np.asarray(a[k], float), np.asarray(b[k], float), rtol=tol, atol=tol, err_msg=k)


def _member_models(K):
    from distnn.models import MLP

    out = []
    for m in range(K):
        distnn.manual_seed(40 + m)
        out.append(MLP([5, 7, 4]))
    return out


# ------------------------------------------------------------ under mpiexec
@pytest.fixture(scope="module")
def comm():
    import distnn.distributed as dist

    return dist.init()


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("per_rank", [1, 2])
def test_evaluate_ensemble_mpi_equals_hand_computation(comm, per_rank):
    from distnn.data import Dataset

    K = comm.size * per_rank
    plan = E.plan_groups(comm.size, K)
    gcomm = E.group_communicator(comm, plan)
    try:
        r = np.random.default_rng(7)
        ds = Dataset(r.normal(size=(23, 5)).astype(np.float32), r.integers(0, 4, 23), 4, "toy")
        models = _member_models(K)
        mine = {m: (models[m], None) for m in plan.members_of(plan.group_of(comm.rank))}
        calls = []
        orig = comm.allreduce
        comm.allreduce = lambda *a, **kw: (calls.append(1), orig(*a, **kw))[1]
        try:
            res = E.evaluate_ensemble(comm, gcomm, plan, mine, {"test": ds})["test"]
        finally:
            del comm.allreduce
        assert len(calls) == 1  # one collective for the probabilities and every member's metrics
        probs = [m(distnn.Tensor(ds.x)).softmax(axis=-1).numpy().astype(np.float64) for m in models]
        avg = E.average_probabilities(probs)
        np.testing.assert_allclose(res["probs"], avg, rtol=1e-5, atol=1e-7)
        nll, acc = E.nll_and_accuracy(avg, ds.y)
        assert res["loss"] == pytest.approx(nll, rel=1e-5) and res["accuracy"] == pytest.approx(acc)
        np.testing.assert_allclose(res["member_accuracy"], [float((p.argmax(1) == ds.y).mean()) for p in probs])
    finally:  # (a split is the caller's to free: a pytest process under mpiexec would leak communicator ids)
        if gcomm is not comm:
            gcomm.free()


@pytest.mark.mpi(min_size=2)
@pytest.mark.usefixtures("clean_preemption_flags")  # (train_rank: the handlers it installs put back)
def test_ensemble_training_mpi_equals_one_process(comm, mpi_tmp_path):
    from distnn.distributed import LocalCommunicator
    from distnn.train.job import train_rank

    K = comm.size  # one member per rank, all at once
    ov = [f"ensemble.members={K}", *TINY]
    par = train_rank(comm, "digits_mlp", ov, out=str(mpi_tmp_path / "ranks"), quiet=True)
    ok = None
    if comm.rank == 0:  # the oracle: the same K members one after another on one rank
        seq = train_rank(LocalCommunicator(), "digits_mlp", ov, out=str(mpi_tmp_path / "one"), quiet=True)
        assert par["ensemble"]["groups"] == K and seq["ensemble"]["groups"] == 1
        try:
            assert_same_metrics(par, seq)
            ok = "ok"
        except AssertionError as e:
            ok = str(e)
    assert comm.broadcast_object(ok, root=0) == "ok"


@pytest.mark.mpi(min_size=3)
def test_members_not_dividing_the_world_stop_every_rank(comm, mpi_tmp_path):
    from distnn.train.job import JobError, train_rank

    K = comm.size - 1
    with pytest.raises(JobError, match=f"ensemble.members={K} does not divide the world size {comm.size}") as info:
        train_rank(comm, "digits_mlp", [f"ensemble.members={K}", *TINY], out=str(mpi_tmp_path / "bad"), quiet=True)
    assert info.value.report == (comm.rank == 0)
    assert not os.path.exists(mpi_tmp_path / "bad")


@pytest.mark.mpi(min_size=2)
def test_members_at_once_take_the_gpu_of_their_world_local_rank(comm, mpi_tmp_path, monkeypatch):
    # One member per rank: each group's own local rank is 0, so every member took GPU 0 (the host's
    # GPUs follow the world's local ranks). No GPU here: the device choice is recorded, then stopped.
    import distnn.backend as backend
    from distnn.train.job import train_rank

    chosen = []

    class Chosen(Exception):
        pass

    def select_gpu(index):
        chosen.append(index)
        raise Chosen

    monkeypatch.setattr(backend, "gpu_available", lambda: True)
    monkeypatch.setattr(backend, "select_gpu", select_gpu)
    with pytest.raises(Chosen):
        train_rank(comm, "digits_mlp", [f"ensemble.members={comm.size}", "run.device=gpu", *TINY],
                   out=str(mpi_tmp_path / "gpu"), quiet=True)
    assert chosen == [comm.local_rank]
    assert sorted(comm.allgather_object(chosen[0])) == list(range(comm.size))  # one host here: distinct GPUs


# ------------------------------------------------------ a 4-rank subprocess
def _mpiexec(n, args, timeout=300):
    require_mpiexec()
    return run_under_mpiexec(n, ["-m", "distnn", *args], env=child_env(), deadline=timeout, cwd=REPO)


@pytest.mark.skipif(os.environ.get("OMPI_COMM_WORLD_SIZE") or os.environ.get("PMI_SIZE"),
                    reason="starts its own mpiexec")
def test_four_ranks_equal_one_process_and_bad_member_count(tmp_path):
    from distnn.train.job import run_training

    ov = ["ensemble.members=4", *TINY]
    r = _mpiexec(4, ["train", "--config", "digits_mlp", *sum((["--set", o] for o in ov), []), "--quiet",
                     "--out", str(tmp_path / "four")])
    assert r.returncode == 0, r.stderr[-3000:]
    with open(tmp_path / "four" / "summary.json") as f:
        four = json.load(f)
    assert four["world_size"] == 4 and four["ensemble"]["groups"] == 4
    one = run_training("digits_mlp", ov, out=str(tmp_path / "one"), quiet=True)
    assert one["ensemble"]["groups"] == 1 and one["ensemble"]["members_per_group"] == 4
    assert_same_metrics(four, one)

    bad = _mpiexec(4, ["train", "--config", "digits_mlp", "--set", "ensemble.members=3", *TINY[:0], "--quiet",
                       "--out", str(tmp_path / "bad")], timeout=120)
    assert bad.returncode == 2
    lines = [ln for ln in bad.stderr.splitlines() if ln.startswith("distnn: error:")]
    assert lines == ["distnn: error: ensemble.members=3 does not divide the world size 4: use members in {1, 2, 4} "
                     "or a world size that is a multiple of 3 (more members than ranks also works: they train in "
                     "turns) (set by --set)"], bad.stderr
    assert not os.path.exists(tmp_path / "bad")


@pytest.mark.skipif(os.environ.get("OMPI_COMM_WORLD_SIZE") or os.environ.get("PMI_SIZE"),
                    reason="starts its own mpiexec")
def test_groups_ending_apart_or_stopping_end_the_job_together(tmp_path, monkeypatch):
    # Two groups of one rank: member 1 trains far longer than member 0. Rank 0 then waits for it
    # longer than the collective timeout (10 s): that wait has no deadline. Before, the healthy job was
    # aborted (status 1); a preemption or an agreed error in group 1 left group 0 waiting until the
    # timeout, then status 1, not 75 or 2.
    # The timeout also bounds every other collective of the two ranks (start-up, the final barrier while
    # rank 0 writes the results): 3 s could be tripped by a busy machine delaying one rank's start-up.
    # 10 s is far beyond that (the longest of those waits measured 0.32 s at a load of 17 on the 2-core
    # machine); the step delay makes member 1's 12 extra epochs last at least 14.4 s (18 s at that load).
    delay = 0.06
    monkeypatch.setenv("DISTNN_COLLECTIVE_TIMEOUT", "10")
    monkeypatch.setenv("DISTNN_FAULT_STEP_DELAY", str(delay))  # >= 1.2 s an epoch of 20 steps
    base = ["train", "--config", "digits_mlp", "--quiet", "--set", "ensemble.members=2", "--set",
            "model.hidden_sizes=[16]", "--set", "train.epochs=2", "--set", "run.plots=false"]
    long_member = ["--set", 'ensemble.overrides=[{}, {"train.epochs"=14}]']

    r = _mpiexec(2, [*base, *long_member, "--out", str(tmp_path / "apart")], timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    with open(tmp_path / "apart" / "summary.json") as f:
        s = json.load(f)
    assert s["epochs_run"] == [2, 14] and s["wall_time"] > 14 * 20 * delay
    assert not os.path.exists(tmp_path / "apart" / "curves.png")  # run.plots = false: no plot at the top either

    # (world rank 1, member 1's group, at member 1's step 200: only member 1 runs that long)
    # (group 0 left waiting for the stopped group would end with the timeout's status 1, or, were that wait
    # without a deadline, hang: the deadline, generous for a busy 2-core machine, fails it)
    monkeypatch.setenv("DISTNN_FAULT_SIGNAL_AT", "1:200")
    monkeypatch.setenv("DISTNN_FAULT_STEP_DELAY", "0.02")  # (here rank 0 need not wait past the timeout)
    r = _mpiexec(2, [*base, *long_member, "--out", str(tmp_path / "preempted")], timeout=300)
    assert r.returncode == 75, r.stderr[-3000:]
    assert "ensemble group 1 (world rank(s) 1, member(s) 1): preempted by SIGTERM: stopped after step 200" in r.stderr
    assert "did not complete" not in r.stderr
    monkeypatch.delenv("DISTNN_FAULT_SIGNAL_AT")

    r = _mpiexec(2, [*base, "--set", "train.nonfinite=error", "--set",
                     'ensemble.overrides=[{}, {"optimizer.lr"=1e30, "train.epochs"=14}]',
                     "--out", str(tmp_path / "error")], timeout=120)
    assert r.returncode == 2, r.stderr[-3000:]
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("distnn: error:")]
    assert len(lines) == 1 and "ensemble group 1 (world rank(s) 1, member(s) 1)" in lines[0], r.stderr[-3000:]
    assert "did not complete" not in r.stderr


@pytest.mark.skipif(os.environ.get("OMPI_COMM_WORLD_SIZE") or os.environ.get("PMI_SIZE"),
                    reason="starts its own mpiexec")
def test_a_members_non_finite_loss_names_the_world_rank(tmp_path):
    # Member 1 trains on world rank 1, rank 0 of its group's communicator: the error said "on rank(s) [0]"
    # under a log prefix naming world rank 1.
    r = _mpiexec(2, ["train", "--config", "digits_mlp", "--quiet", "--set", "ensemble.members=2", "--set",
                     "model.hidden_sizes=[16]", "--set", "train.epochs=2", "--set", "run.plots=false", "--set",
                     "train.nonfinite=error", "--set", 'ensemble.overrides=[{}, {"optimizer.lr"=1e30}]',
                     "--out", str(tmp_path / "error")], timeout=120)
    assert r.returncode == 2, r.stderr[-3000:]
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("distnn: error:")]
    assert len(lines) == 1 and "world rank(s) 1, member(s) 1" in lines[0], r.stderr[-3000:]
    assert "non-finite loss or gradients at step" in lines[0] and "on rank(s) [1]" in lines[0], lines[0]


def _model_weights(path):
    with np.load(os.path.join(path, "model.npz")) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.skipif(os.environ.get("OMPI_COMM_WORLD_SIZE") or os.environ.get("PMI_SIZE"),
                    reason="starts its own mpiexec")
def test_ensemble_preempted_at_a_step_resumes_to_the_uninterrupted_weights(tmp_path, monkeypatch):
    # DISTNN_FAULT_SIGNAL_AT=R:S names world rank R, as in a plain run. A member's step guard counted the
    # ranks of its group: rank 1 of 2 ranks training 2 members at once was never signalled (exit 0).
    from distnn.train import checkpoint as ck

    monkeypatch.setenv("DISTNN_COLLECTIVE_TIMEOUT", "20")
    monkeypatch.delenv("DISTNN_FAULT_SIGNAL_AT", raising=False)
    base = ["train", "--config", "digits_mlp", "--quiet", "--set", "ensemble.members=2", "--set",
            "model.hidden_sizes=[16]", "--set", "train.epochs=3", "--set", "run.plots=false"]
    full = _mpiexec(2, [*base, "--out", str(tmp_path / "full")], timeout=120)
    assert full.returncode == 0, full.stderr[-3000:]

    cut = tmp_path / "cut"
    monkeypatch.setenv("DISTNN_FAULT_SIGNAL_AT", "1:25")  # mid-epoch 2 of member 1 (20 steps an epoch)
    r = _mpiexec(2, [*base, "--out", str(cut)], timeout=120)
    monkeypatch.delenv("DISTNN_FAULT_SIGNAL_AT")
    assert r.returncode == 75, r.stderr[-3000:]  # preemption.EXIT_PREEMPTED
    assert ("ensemble group 1 (world rank(s) 1, member(s) 1): preempted by SIGTERM: stopped after step 25; "
            "checkpoint") in r.stderr, r.stderr[-3000:]
    assert "--resume auto" in r.stderr and not (cut / "summary.json").exists()
    member1 = E.member_dir(cut, 1)
    cps = ck.list_checkpoints(os.path.join(member1, "checkpoints"))
    assert cps and cps[-1].step == 25 and ck.verify_checkpoint(cps[-1].path) == [], [c.name for c in cps]
    assert not os.path.exists(os.path.join(member1, "model.npz"))
    assert os.path.exists(os.path.join(E.member_dir(cut, 0), "model.npz"))  # member 0 (rank 0) finished

    again = _mpiexec(2, [*base, "--resume", "auto", "--out", str(cut)], timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    for m in range(2):
        a, b = _model_weights(E.member_dir(tmp_path / "full", m)), _model_weights(E.member_dir(cut, m))
        assert sorted(a) == sorted(b)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"member {m}: {k}")
    with open(tmp_path / "full" / "summary.json") as f, open(cut / "summary.json") as g:
        assert_same_metrics(json.load(f), json.load(g), tol=0)
