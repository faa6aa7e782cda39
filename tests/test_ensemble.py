"""Ensembles: group planning, member configs, probability averaging (never logits), collective evaluation."""
import os

import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn.data import Dataset, DatasetSplits
from distnn.distributed import simulate
from distnn.models import MLP
from distnn.train import ensemble as E


# ------------------------------------------------------------------ planning
@pytest.mark.parametrize("W", [1, 2, 3, 4])
@pytest.mark.parametrize("K", [1, 2, 4])
def test_plan_groups(W, K):
    if W >= K and W % K:
        with pytest.raises(E.EnsembleError) as info:
            E.plan_groups(W, K)
        msg = str(info.value)
        assert f"ensemble.members={K} does not divide the world size {W}" in msg
        assert "{" + ", ".join(str(d) for d in range(1, W + 1) if W % d == 0) + "}" in msg
        assert f"multiple of {K}" in msg
        return
    plan = E.plan_groups(W, K)
    assert plan.groups * plan.group_size == W
    # every member is trained by exactly one group, groups are consecutive ranks
    owners = sorted(m for g in range(plan.groups) for m in plan.members_of(g))
    assert owners == list(range(K))
    assert all(plan.group_of_member(m) == g for g in range(plan.groups) for m in plan.members_of(g))
    assert [plan.group_of(r) for r in range(W)] == sorted(plan.group_of(r) for r in range(W))
    if W >= K:  # all at once: one member per group, W/K ranks each
        assert plan.groups == K and plan.group_size == W // K and plan.rounds == 1
    else:  # in turns on the ranks there are
        assert plan.rounds == K // plan.groups > 1


def test_plan_error_examples():
    with pytest.raises(E.EnsembleError, match=r"use members in \{1, 2, 4\} or a world size that is a multiple of 3"):
        E.plan_groups(4, 3)
    assert E.plan_groups(2, 4).members_of(0) == [0, 2]  # W < K: 2 groups of 1 rank, 2 members each
    assert E.plan_groups(3, 4).groups == 1              # gcd 1: every member on all 3 ranks in turn


@pytest.mark.parametrize("W,K", [(1, 1), (1, 4), (2, 2), (2, 4), (3, 1), (3, 4), (4, 2), (4, 4)])
def test_group_communicators(W, K):
    plan = E.plan_groups(W, K)

    def fn(comm):
        g = E.group_communicator(comm, plan)
        ranks = g.allgather_object(comm.rank)
        return g.rank, g.size, ranks

    for r, (gr, gs, ranks) in enumerate(simulate(W, fn)):
        grp = plan.group_of(r)
        assert gs == plan.group_size
        assert ranks == [grp * plan.group_size + i for i in range(gs)]
        assert gr == r - grp * plan.group_size


# --------------------------------------------------------------- settings
def _cfg(**ens):
    return {"model": {"name": "mlp", "hidden_sizes": [8]}, "optimizer": {"name": "sgd", "lr": 0.1},
            "run": {"seed": 5}, "train": {"epochs": 2}, "data": {"name": "digits", "batch_size": 16}, "ensemble": ens}


def test_member_configs_seeds_and_overrides():
    cfg = _cfg(members=3, vary=["seed"], overrides=[{"optimizer.lr": 0.3}, {}, {"model": {"hidden_sizes": [4, 4]}}])
    before = repr(cfg)
    subs = [E.member_config(cfg, k) for k in range(3)]
    assert repr(cfg) == before  # the run's config is untouched
    assert [s["run"]["seed"] for s in subs] == [5, 6, 7]
    assert [s["optimizer"]["lr"] for s in subs] == [0.3, 0.1, 0.1]
    assert [s["model"]["hidden_sizes"] for s in subs] == [[8], [8], [4, 4]]
    for k, s in enumerate(subs):
        st = E.ensemble_settings(s)
        assert (st.members, st.member, st.active) == (1, k, False)
    # bootstrap only: the seed stays
    assert E.member_config(_cfg(members=2, vary=["bootstrap"]), 1)["run"]["seed"] == 5
    # fewer override tables than members: the rest use the config as it is
    assert E.member_config(_cfg(members=3, overrides=[{"optimizer.lr": 0.5}]), 2)["optimizer"]["lr"] == 0.1


@pytest.mark.parametrize("ens,match", [
    ({"members": 0}, "ensemble.members must be an integer >= 1"),
    ({"members": 2, "vary": ["sed"]}, "unknown choice"),
    ({"members": 2, "vary": []}, "identical members"),
    ({"members": 2, "overrides": [{}, {}, {}]}, "has 3 entries but ensemble.members is 2"),
    ({"members": 2, "overrides": [{"data.name": "iris"}, {}]}, "'data.name' cannot differ between members"),
    ({"members": 2, "overrides": [{}, {"ensemble.members": 3}]}, "cannot differ between members"),
    # no vary: members whose overrides are alike are one model counted twice (members 1 and 2 here)
    ({"members": 3, "vary": [], "overrides": [{"optimizer.lr": 0.1}]}, "members 1 and 2 have the same overrides"),
    # one member is no ensemble: its overrides or vary were silently ignored
    ({"members": 1, "overrides": [{"optimizer.lr": 0.5}]}, "ensemble.members = 1 trains one model"),
    ({"members": 1, "vary": ["bootstrap"]}, "ensemble.members = 1 trains one model"),
])
def test_bad_settings(ens, match):
    with pytest.raises(E.EnsembleError, match=match):
        E.ensemble_settings(_cfg(**ens))


def test_one_member_with_an_empty_vary_is_fine():
    assert E.ensemble_settings(_cfg(members=1, vary=[])).members == 1  # changes nothing for one model


def test_a_members_own_config_still_passes():
    # members/member-k/config.toml (members = 1, member = k) keeps the run's vary: retraining it is allowed
    for vary in (["seed"], ["bootstrap"], ["seed", "bootstrap"]):
        own = E.member_config(_cfg(members=2, vary=vary), 1)
        assert E.ensemble_settings(own).members == 1


def test_member_config_of_a_validated_config_is_validated():
    from distnn.train.config import ConfigError, config_from_dict

    cfg = config_from_dict(_cfg(members=2, overrides=[{}, {"model.hidden_sizes": [4]}]))
    sub = E.member_config(cfg, 1)
    assert type(sub) is type(cfg) and sub.run.seed == 6 and sub.model.hidden_sizes == [4]
    assert sub.ensemble.member == 1 and sub.ensemble.members == 1
    assert config_from_dict(sub.to_dict()) == sub  # a member's config.toml reloads as the same config
    bad = config_from_dict(_cfg(members=2))
    bad["ensemble"]["overrides"] = [{}, {"optimizer.lr": -1.0}]
    with pytest.raises(ConfigError, match="optimizer.lr must be > 0"):
        E.member_config(bad, 1)


def test_overrides_alone_may_differentiate_members():
    cfg = _cfg(members=2, vary=[], overrides=[{"optimizer.lr": 0.1}, {"optimizer.lr": 0.2}])
    assert E.ensemble_settings(cfg).active


def _splits(n=50, d=3, k=3, seed=0):
    r = np.random.default_rng(seed)
    mk = lambda m: Dataset(r.normal(size=(m, d)).astype(np.float32), r.integers(0, k, m), k, "toy")  # noqa: E731
    return DatasetSplits(mk(n), mk(11), mk(13))


def test_bootstrap_deterministic_and_distinct():
    a, b = E.bootstrap_indices(100, 5, 0), E.bootstrap_indices(100, 5, 0)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, E.bootstrap_indices(100, 5, 1))
    assert not np.array_equal(a, E.bootstrap_indices(100, 6, 0))
    assert a.min() >= 0 and a.max() < 100 and len(a) == 100
    assert 50 < len(np.unique(a)) < 80  # ~63% distinct samples


def test_member_splits():
    splits = _splits()
    cfg = _cfg(members=2, vary=["seed", "bootstrap"])
    assert E.member_splits(cfg, splits) is splits  # the ensemble's own config: no member yet
    m0, m1 = (E.member_splits(E.member_config(cfg, k), splits) for k in range(2))
    assert m0.val is splits.val and m0.test is splits.test and len(m0.train) == len(splits.train)
    idx0 = E.bootstrap_indices(50, 5, 0)
    np.testing.assert_array_equal(m0.train.x, splits.train.x[idx0])
    np.testing.assert_array_equal(m0.train.y, splits.train.y[idx0])
    assert not np.array_equal(m0.train.x, m1.train.x)
    assert splits.train.x.shape == (50, 3) and "bootstrap" not in splits.info  # shared splits untouched
    seed_only = E.member_config(_cfg(members=2, vary=["seed"]), 1)
    assert E.member_splits(seed_only, splits) is splits


# -------------------------------------------------------------- averaging
def test_average_probabilities_by_hand():
    p1 = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    p2 = np.array([[0.2, 0.5, 0.3], [0.3, 0.3, 0.4]])
    np.testing.assert_allclose(E.average_probabilities([p1, p2]), [[0.45, 0.35, 0.2], [0.2, 0.2, 0.6]])
    np.testing.assert_allclose(E.average_probabilities([p1, p2], [0.25, 0.75]),
                               [[0.325, 0.425, 0.25], [0.25, 0.25, 0.5]])
    with pytest.raises(ValueError, match="summing to 1"):
        E.average_probabilities([p1, p2], [0.5, 0.6])
    nll, acc = E.nll_and_accuracy([[0.45, 0.35, 0.2], [0.2, 0.2, 0.6]], [1, 2])
    assert nll == pytest.approx(-(np.log(0.35) + np.log(0.6)) / 2) and acc == 0.5


def _fixed_linear(W, b):
    m = MLP([W.shape[1], W.shape[0]])
    m.load_state_dict({"0.weight": np.asarray(W, np.float32), "0.bias": np.asarray(b, np.float32)})
    return m


def test_ensemble_model_averages_probabilities_not_logits():
    # Two members whose PROBABILITY average picks class 0 while their LOGIT average picks class 1.
    m1 = _fixed_linear(np.zeros((3, 1)), [10.0, 0.0, 0.0])    # sure of class 0
    m2 = _fixed_linear(np.zeros((3, 1)), [-20.0, 1.0, 0.99])  # split between 1 and 2, never 0
    x = distnn.Tensor(np.ones((1, 1), np.float32))
    probs = [m(x).softmax(axis=-1).numpy().astype(np.float64) for m in (m1, m2)]
    by_hand = (probs[0] + probs[1]) / 2
    logit_avg = ((m1(x) + m2(x)) / 2).numpy()
    assert logit_avg.argmax() == 1 and by_hand.argmax() == 0
    ens = E.EnsembleModel([m1, m2])
    out = ens(x)
    np.testing.assert_allclose(out.softmax(axis=-1).numpy(), by_hand, rtol=1e-5)
    np.testing.assert_allclose(out.numpy(), np.log(by_hand), rtol=1e-5)  # log of the average: valid logits
    assert out.numpy().argmax() == 0
    loss = F.cross_entropy(out, np.array([1]))
    assert float(loss.item()) == pytest.approx(-np.log(by_hand[0, 1]), rel=1e-5)


def test_ensemble_model_is_stable_and_differentiable():
    m1 = _fixed_linear(np.zeros((2, 1)), [200.0, -200.0])
    m2 = _fixed_linear(np.zeros((2, 1)), [-200.0, 200.0])
    x = distnn.Tensor(np.ones((1, 1), np.float32), requires_grad=True)
    out = E.EnsembleModel([m1, m2])(x)
    np.testing.assert_allclose(out.numpy(), np.log([[0.5, 0.5]]), atol=1e-6)
    F.cross_entropy(out, np.array([0])).backward()
    assert all(np.isfinite(p.grad).all() for p in m1.parameters())


# ----------------------------------------------------- collective evaluation
def _members(K, d=3, k=3):
    out = []
    for m in range(K):
        distnn.manual_seed(100 + m)
        out.append(MLP([d, 6, k]))
    return out


def _by_hand(models, ds, tf=None):
    x = ds.x if tf is None else tf(ds.x, None)
    probs = [m(distnn.Tensor(x)).softmax(axis=-1).numpy().astype(np.float64) for m in models]
    avg = E.average_probabilities(probs)
    member_acc = [float((p.argmax(1) == ds.y).mean()) for p in probs]
    member_nll = [float(-np.log(p[np.arange(len(ds.y)), ds.y]).mean()) for p in probs]
    return avg, member_acc, member_nll


def _check(res, models, ds, name, tf=None):
    avg, acc, nll = _by_hand(models, ds, tf)
    r = res[name]
    np.testing.assert_allclose(r["probs"], avg, rtol=1e-5, atol=1e-7)
    e_nll, e_acc = E.nll_and_accuracy(avg, ds.y)
    assert r["accuracy"] == pytest.approx(e_acc) and r["loss"] == pytest.approx(e_nll, rel=1e-5)
    np.testing.assert_allclose(r["member_accuracy"], acc)
    np.testing.assert_allclose(r["member_loss"], nll, rtol=1e-5)
    assert r["count"] == len(ds)


@pytest.mark.parametrize("W,K", [(1, 4), (2, 4), (4, 4), (4, 2), (3, 3), (3, 1)])
def test_evaluate_ensemble_ranks_equal_hand_computation(W, K):
    splits = _splits()
    models = _members(K)
    tf = lambda x, rng: x * 0.5 + 1.0  # noqa: E731 - an eval transform is applied per member
    plan = E.plan_groups(W, K)
    calls = []

    def fn(comm):
        g = E.group_communicator(comm, plan)
        mine = {m: (models[m], tf) for m in plan.members_of(plan.group_of(comm.rank))}
        orig = comm.allreduce
        comm.allreduce = lambda *a, **kw: (calls.append(comm.rank), orig(*a, **kw))[1]
        return E.evaluate_ensemble(comm, g, plan, mine, {"val": splits.val, "test": splits.test, "none": None})

    results = simulate(W, fn)
    for r in results:
        _check(r, models, splits.val, "val", tf)
        _check(r, models, splits.test, "test", tf)
        assert "none" not in r
        np.testing.assert_array_equal(r["test"]["probs"], results[0]["test"]["probs"])
    assert sorted(calls) == (list(range(W)) if W > 1 else [])  # ONE collective per rank
    gain = E.ensemble_gain(results[0]["test"])
    assert gain["accuracy_gain"] == pytest.approx(results[0]["test"]["accuracy"] - np.mean(
        results[0]["test"]["member_accuracy"]))


def test_evaluate_ensemble_sequence_targets():
    # (N, T) targets with (N, T, C) outputs (language models); -100 marks ignored positions.
    class Seq(distnn.nn.Module):
        def __init__(self, seed):
            super().__init__()
            distnn.manual_seed(seed)
            self.lin = distnn.nn.Linear(2, 4)

        def forward(self, x):
            return self.lin(x)

    r = np.random.default_rng(3)
    y = r.integers(0, 4, (7, 5))
    y[0, :2] = -100
    ds = Dataset(r.normal(size=(7, 5, 2)).astype(np.float32), y, 4, "seq")
    models = [Seq(1), Seq(2)]
    plan = E.plan_groups(1, 2)
    res = E.evaluate_ensemble(None, None, plan, {0: (models[0], None), 1: (models[1], None)}, {"test": ds})["test"]
    probs = [m(distnn.Tensor(ds.x)).softmax(axis=-1).numpy().astype(np.float64) for m in models]
    avg = (probs[0] + probs[1]) / 2
    keep = y >= 0
    yy = np.where(keep, y, 0)
    p_true = np.take_along_axis(avg, yy[..., None], -1)[..., 0]
    assert res["count"] == keep.sum()
    assert res["loss"] == pytest.approx(-np.log(p_true[keep]).mean(), rel=1e-6)
    assert res["accuracy"] == pytest.approx(((avg.argmax(-1) == y) & keep).sum() / keep.sum())


# ------------------------------------------------------------ whole runs
TINY = ["train.epochs=2", "model.hidden_sizes=[16]", "checkpoint.enabled=false", "run.plots=false"]


def _train(out, *overrides, simulate_ranks=None):
    from distnn.train.job import run_training

    return run_training("digits_mlp", [*TINY, *overrides], out=str(out), quiet=True, simulate_ranks=simulate_ranks)


def _weights(run, member):
    from distnn.train import run_dir as rd

    model, _, _ = rd.load_model(E.member_dir(run, member))
    return model.state_dict()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 3-member ensemble trained in turns in one process, and the same on 3 simulated ranks at once."""
    root = tmp_path_factory.mktemp("ens")
    one = _train(root / "one", "ensemble.members=3")
    sim = _train(root / "sim", "ensemble.members=3", simulate_ranks=3)
    return {"one": (root / "one", one), "sim": (root / "sim", sim)}


def test_run_layout_and_summary(runs):
    path, s = runs["one"]
    for f in ("config.toml", "model.json", "summary.json", "metrics.jsonl", "metrics.csv"):
        assert (path / f).is_file(), f
    for m in range(3):
        for f in ("config.toml", "model.npz", "model.json", "summary.json", "metrics.jsonl"):
            assert (path / "members" / f"member-{m}" / f).is_file(), (m, f)
    assert s["ensemble"]["members"] == 3 and [r["seed"] for r in s["members"]] == [0, 1, 2]
    assert s["device"] == "cpu" and s["dtype"] in ("float32", "float64")
    accs = s["member_test_accuracy"]
    assert s["ensemble_gain_accuracy"] == pytest.approx(s["test_accuracy"] - np.mean(accs))
    assert s["ensemble_nll_reduction"] == pytest.approx(np.mean(s["member_test_loss"]) - s["test_loss"])
    # each member's own summary (float32 cross-entropy) agrees with the ensemble's float64 scoring
    import json

    for m in range(3):
        with open(path / "members" / f"member-{m}" / "summary.json") as f:
            ms = json.load(f)
        assert ms["test_accuracy"] == pytest.approx(accs[m], abs=1e-12)
        assert ms["test_loss"] == pytest.approx(s["member_test_loss"][m], rel=1e-5)
    rows = (path / "metrics.csv").read_text().splitlines()
    from distnn.train.ensemble_run import ENSEMBLE_CSV_COLUMNS

    assert rows[0].split(",") == ENSEMBLE_CSV_COLUMNS
    assert [r.split(",")[0] for r in rows[1:]] == ["member-0", "member-1", "member-2", "ensemble"]


def test_members_differ_and_simulated_ranks_equal_one_process(runs):
    (p1, s1), (p3, s3) = runs["one"], runs["sim"]
    assert s3["ensemble"]["groups"] == 3 and s1["ensemble"]["groups"] == 1
    for m in range(3):  # deterministic: the same member whichever schedule trained it
        w1, w3 = _weights(p1, m), _weights(p3, m)
        assert all(np.array_equal(w1[k], w3[k]) for k in w1)
    w0, w1 = _weights(p1, 0), _weights(p1, 1)
    assert not np.allclose(w0["0.weight"], w1["0.weight"])  # seeds differ
    for k in ("test_accuracy", "test_loss", "member_test_accuracy", "member_test_loss", "val_loss"):
        np.testing.assert_allclose(s1[k], s3[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_evaluate_and_predict_use_every_member(runs, tmp_path):
    from distnn.train import run_dir as rd
    from distnn.train.job import evaluate_run, predict_run

    path, s = runs["one"]
    text = evaluate_run(str(path))
    assert f"accuracy {s['test_accuracy']:.4f}" in text and f"loss     {s['test_loss']:.4f}" in text
    model, meta, tf = rd.load_model(str(path))
    assert isinstance(model, E.EnsembleModel) and len(model.members) == 3
    x = np.random.default_rng(0).uniform(0, 16, size=(9, 64)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    assert predict_run(str(path), str(tmp_path / "in.npz"), str(tmp_path / "out.csv")) == 9
    lines = (tmp_path / "out.csv").read_text().splitlines()
    got = np.array([[float(v) for v in ln.split(",")[2:]] for ln in lines[1:]])
    members = []
    for m in range(3):
        mm, _, mtf = rd.load_model(E.member_dir(path, m))
        members.append(mm(distnn.Tensor(mtf(x, None))).softmax(axis=-1).numpy().astype(np.float64))
    by_hand = E.average_probabilities(members)
    np.testing.assert_allclose(got, by_hand, rtol=1e-4, atol=1e-6)
    assert [int(ln.split(",")[0]) for ln in lines[1:]] == by_hand.argmax(1).tolist()


def test_member_config_retrains_that_member_bootstrap_and_overrides(tmp_path):
    s = _train(tmp_path / "ens", "ensemble.members=3", 'ensemble.vary=["bootstrap"]',
               'ensemble.overrides=[{}, {}, {"model.hidden_sizes" = [8], "optimizer.lr" = 0.02}]')
    assert s["ensemble"]["vary"] == ["bootstrap"] and [r["seed"] for r in s["members"]] == [0, 0, 0]
    w0, w1, w2 = (_weights(tmp_path / "ens", m) for m in range(3))
    # same seed, same initial weights: members 0 and 1 differ only by their bootstrap resamples
    assert w0["0.weight"].shape == w1["0.weight"].shape == (16, 64)
    assert not np.allclose(w0["0.weight"], w1["0.weight"])
    assert w2["0.weight"].shape == (8, 64)  # the override
    from distnn.train.config import load_config

    c2 = load_config(E.member_dir(tmp_path / "ens", 2) + "/config.toml")
    assert c2.ensemble.member == 2 and c2.ensemble.members == 1 and c2.optimizer.lr == 0.02
    # member-2's config.toml alone retrains member 2 exactly (same bootstrap resample, same seed)
    from distnn.train.job import run_training

    run_training(E.member_dir(tmp_path / "ens", 2) + "/config.toml", [], out=str(tmp_path / "again"), quiet=True)
    from distnn.train import run_dir as rd

    again, _, _ = rd.load_model(str(tmp_path / "again"))
    assert all(np.array_equal(again.state_dict()[k], w2[k]) for k in w2)


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
        w_ref, w = _weights(tmp_path / "ref", m), _weights(tmp_path / "cut", m)
        assert all(np.allclose(w_ref[k], w[k], rtol=1e-6, atol=1e-7) for k in w_ref)


def test_member_checkpoint_paths(tmp_path):
    cfg = _cfg(members=2)
    cfg["checkpoint"] = {"dir": "/ck/root", "resume": "auto"}
    sub = E.member_config(cfg, 1)
    assert sub["checkpoint"] == {"dir": "/ck/root/member-1", "resume": "auto"}
    # --resume RUN_DIR of an ensemble: each member resumes from its own run directory / checkpoint root
    os.makedirs(E.member_dir(tmp_path / "run", 1))
    os.makedirs(tmp_path / "root" / "member-1")
    cfg["checkpoint"] = {"resume": str(tmp_path / "run")}
    assert E.member_config(cfg, 1)["checkpoint"]["resume"] == E.member_dir(tmp_path / "run", 1)
    cfg["checkpoint"] = {"resume": str(tmp_path / "root")}
    assert E.member_config(cfg, 1)["checkpoint"]["resume"] == str(tmp_path / "root" / "member-1")
    cfg["checkpoint"] = {"resume": str(tmp_path / "elsewhere")}
    assert E.member_config(cfg, 1)["checkpoint"]["resume"] == str(tmp_path / "elsewhere")


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
        _train(tmp_path / "a", "ensemble.members=2", "data.batch_size=33", simulate_ranks=4)
    msg = str(info.value)
    assert "ensemble member 0:" in msg and "must be divisible by the number of ranks 2" in msg, msg
    assert "ranks per member: 4 ranks / 2 members at once" in msg and "world ranks 0-1" in msg, msg
    # members in turns on groups of one rank: said "(global 64 / 1 ranks)" to a user who launched 2
    with pytest.raises(JobError) as info:
        _train(tmp_path / "b", "ensemble.members=4", "train.grad_accumulation=3", simulate_ranks=2)
    msg = str(info.value)
    assert "2 ranks / 2 groups, each training 2 members in turn" in msg and "world rank 0" in msg, msg
    # one group (3 ranks, 4 members: every member on all 3 ranks in turn): the job's count, nothing added
    with pytest.raises(JobError) as info:
        _train(tmp_path / "c", "ensemble.members=4", simulate_ranks=3)
    msg = str(info.value)
    assert "must be divisible by the number of ranks 3" in msg and "per member" not in msg, msg
    assert not any(p.exists() for p in (tmp_path / "a", tmp_path / "b", tmp_path / "c"))


def test_summary_counts_each_members_epochs(tmp_path):
    # Members may have their own train.epochs and stop early at different epochs: the top-level "epochs"
    # was member 0's alone (1 here), whatever the others ran.
    es = '"early_stopping.enabled"=true, "early_stopping.patience"=1, "early_stopping.min_delta"=1e9'
    s = _train(tmp_path / "ens", "ensemble.members=2", "train.epochs=1",
               f'ensemble.overrides=[{{}}, {{"train.epochs"=3, {es}}}]')  # member 1 stops after epoch 2 of 3
    assert s["epochs"] == [1, 3] and s["epochs_run"] == [1, 2]
    assert [(r["epochs"], r["epochs_run"], r["stopped_early"]) for r in s["members"]] == [(1, 1, False),
                                                                                          (3, 2, True)]
    import json

    with open(tmp_path / "ens" / "summary.json") as f:
        assert json.load(f)["epochs"] == [1, 3]
    lines = E.summary_lines(s)  # what `distnn train` prints
    assert "(seed 0, 1 of 1 epochs)" in lines[1] and "(seed 1, 2 of 3 epochs, stopped early)" in lines[2], lines



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
