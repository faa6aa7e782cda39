"""Ensembles: group planning and communicators, member configs (seeds, overrides, bad settings), bootstrap
splits, and probability averaging (not logits) by hand."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn.distributed import simulate
from distnn.models import MLP
from distnn.train import ensemble as E

from ensemble_cases import ensemble_cfg, toy_splits


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


def test_member_configs_seeds_and_overrides():
    cfg = ensemble_cfg(members=3, vary=["seed"],
                       overrides=[{"optimizer.lr": 0.3}, {}, {"model": {"hidden_sizes": [4, 4]}}])
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
    assert E.member_config(ensemble_cfg(members=2, vary=["bootstrap"]), 1)["run"]["seed"] == 5
    # fewer override tables than members: the rest use the config as it is
    assert E.member_config(ensemble_cfg(members=3, overrides=[{"optimizer.lr": 0.5}]), 2)["optimizer"]["lr"] == 0.1


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
        E.ensemble_settings(ensemble_cfg(**ens))


def test_one_member_with_an_empty_vary_is_fine():
    assert E.ensemble_settings(ensemble_cfg(members=1, vary=[])).members == 1  # changes nothing for one model


def test_a_members_own_config_still_passes():
    # members/member-k/config.toml (members = 1, member = k) keeps the run's vary: retraining it is allowed
    for vary in (["seed"], ["bootstrap"], ["seed", "bootstrap"]):
        own = E.member_config(ensemble_cfg(members=2, vary=vary), 1)
        assert E.ensemble_settings(own).members == 1


def test_member_config_of_a_validated_config_is_validated():
    from distnn.train.config import ConfigError, config_from_dict

    cfg = config_from_dict(ensemble_cfg(members=2, overrides=[{}, {"model.hidden_sizes": [4]}]))
    sub = E.member_config(cfg, 1)
    assert type(sub) is type(cfg) and sub.run.seed == 6 and sub.model.hidden_sizes == [4]
    assert sub.ensemble.member == 1 and sub.ensemble.members == 1
    assert config_from_dict(sub.to_dict()) == sub  # a member's config.toml reloads as the same config
    bad = config_from_dict(ensemble_cfg(members=2))
    bad["ensemble"]["overrides"] = [{}, {"optimizer.lr": -1.0}]
    with pytest.raises(ConfigError, match="optimizer.lr must be > 0"):
        E.member_config(bad, 1)


def test_overrides_alone_may_differentiate_members():
    cfg = ensemble_cfg(members=2, vary=[], overrides=[{"optimizer.lr": 0.1}, {"optimizer.lr": 0.2}])
    assert E.ensemble_settings(cfg).active


def test_bootstrap_deterministic_and_distinct():
    a, b = E.bootstrap_indices(100, 5, 0), E.bootstrap_indices(100, 5, 0)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, E.bootstrap_indices(100, 5, 1))
    assert not np.array_equal(a, E.bootstrap_indices(100, 6, 0))
    assert a.min() >= 0 and a.max() < 100 and len(a) == 100
    assert 50 < len(np.unique(a)) < 80  # ~63% distinct samples


def test_member_splits():
    splits = toy_splits()
    cfg = ensemble_cfg(members=2, vary=["seed", "bootstrap"])
    assert E.member_splits(cfg, splits) is splits  # the ensemble's own config: no member yet
    m0, m1 = (E.member_splits(E.member_config(cfg, k), splits) for k in range(2))
    assert m0.val is splits.val and m0.test is splits.test and len(m0.train) == len(splits.train)
    idx0 = E.bootstrap_indices(50, 5, 0)
    np.testing.assert_array_equal(m0.train.x, splits.train.x[idx0])
    np.testing.assert_array_equal(m0.train.y, splits.train.y[idx0])
    assert not np.array_equal(m0.train.x, m1.train.x)
    assert splits.train.x.shape == (50, 3) and "bootstrap" not in splits.info  # shared splits untouched
    seed_only = E.member_config(ensemble_cfg(members=2, vary=["seed"]), 1)
    assert E.member_splits(seed_only, splits) is splits


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
