"""Ensembles' collective evaluation over W ranks and K members against the hand computation, with sequence
targets."""
import numpy as np
import pytest

import distnn
from distnn.data import Dataset
from distnn.distributed import simulate
from distnn.models import MLP
from distnn.train import ensemble as E

from ensemble_cases import toy_splits


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
    splits = toy_splits()
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
