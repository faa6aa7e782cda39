"""nn.utils.parametrize against PyTorch's: the same parametrizations on copied weights give the same tensors,
outputs, gradients (float64 tight), state dict keys, right_inverse assignments, removal and refusals, and a
parametrized Linear trains with SGD as PyTorch's does."""
import numpy as np
import pytest

import distnn
from distnn import nn
from distnn.nn.utils import parametrize as P
from torch_twins import copy_torch_weights

TIGHT = dict(rtol=1e-12, atol=1e-12)


class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).mT

    def right_inverse(self, A):
        return A.triu()


class Scale(nn.Module):  # a second parametrization, chained after the first
    def forward(self, X):
        return 2.0 * X

    def right_inverse(self, A):
        return A / 2.0


class SumOfTwo(nn.Module):  # two originals (right_inverse returns a pair)
    def forward(self, A, B):
        return A + B

    def right_inverse(self, W):
        return W * 0.25, W * 0.75


def _torch_mods(torch):
    tnn = torch.nn

    class TSym(tnn.Module):
        def forward(self, X):
            return X.triu() + X.triu(1).mT

        def right_inverse(self, A):
            return A.triu()

    class TScale(tnn.Module):
        def forward(self, X):
            return 2.0 * X

        def right_inverse(self, A):
            return A / 2.0

    class TSum(tnn.Module):
        def forward(self, A, B):
            return A + B

        def right_inverse(self, W):
            return W * 0.25, W * 0.75

    return {"sym": (Symmetric, TSym), "scale": (Scale, TScale), "sum": (SumOfTwo, TSum)}


def _pair(torch, names, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    w, b = rng.standard_normal((4, 4)).astype(dtype), rng.standard_normal(4).astype(dtype)
    t = torch.nn.Linear(4, 4).to(torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(w))
        t.bias.copy_(torch.from_numpy(b))
    d = nn.Linear(4, 4, dtype=dtype)
    d.load_state_dict({"weight": w, "bias": b})
    mods = _torch_mods(torch)
    for n in names:
        ours, theirs = mods[n]
        torch.nn.utils.parametrize.register_parametrization(t, "weight", theirs())
        P.register_parametrization(d, "weight", ours())
    return t, d


@pytest.mark.parametrize("names", [["sym"], ["sym", "scale"], ["sum"], ["sum", "sym"]])
def test_outputs_gradients_and_keys_match_torch(torch, names):
    t, d = _pair(torch, names)
    assert type(d).__name__ == type(t).__name__ == "ParametrizedLinear"
    assert list(d.state_dict()) == list(t.state_dict())
    assert [n for n, _ in d.named_parameters()] == [n for n, _ in t.named_parameters()]
    for k, v in t.state_dict().items():
        np.testing.assert_allclose(d.state_dict()[k], v.numpy(), **TIGHT, err_msg=k)
    np.testing.assert_allclose(d.weight.data, t.weight.detach().numpy(), **TIGHT)
    x = np.random.default_rng(1).standard_normal((3, 4))
    (t(torch.from_numpy(x)) ** 3).sum().backward()
    (d(distnn.Tensor(x)) ** 3).sum().backward()
    tp, dp = dict(t.named_parameters()), dict(d.named_parameters())
    for k in tp:
        np.testing.assert_allclose(dp[k].grad, tp[k].grad.numpy(), **TIGHT, err_msg=k)


def test_float32_matches_torch_loosely(torch):
    t, d = _pair(torch, ["sym", "scale"], dtype=np.float32)
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    (t(torch.from_numpy(x)) ** 2).sum().backward()
    (d(distnn.Tensor(x)) ** 2).sum().backward()
    orig_t, orig_d = t.parametrizations.weight.original, d.parametrizations.weight.original
    assert orig_d.grad.dtype == np.float32
    np.testing.assert_allclose(orig_d.grad, orig_t.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("names", [["sym"], ["sym", "scale"], ["sum"]])
def test_assignment_goes_through_right_inverse_as_torch(torch, names):
    t, d = _pair(torch, names)
    keep = [p for p in d.parameters()]
    a = np.random.default_rng(3).standard_normal((4, 4))
    a = a + a.T
    t.weight = torch.from_numpy(a)
    d.weight = distnn.Tensor(a)
    for k, v in t.state_dict().items():
        np.testing.assert_allclose(d.state_dict()[k], v.numpy(), **TIGHT, err_msg=k)
    np.testing.assert_allclose(d.weight.data, a, **TIGHT)
    assert all(p is q for p, q in zip(keep, d.parameters()))  # the optimizer's Parameters stay


@pytest.mark.parametrize("leave", [True, False])
def test_remove_parametrizations_as_torch(torch, leave):
    t, d = _pair(torch, ["sym", "scale"])
    original = d.parametrizations.weight.original
    torch.nn.utils.parametrize.remove_parametrizations(t, "weight", leave_parametrized=leave)
    P.remove_parametrizations(d, "weight", leave_parametrized=leave)
    assert type(d) is nn.Linear and not P.is_parametrized(d) and "parametrizations" not in d._modules
    assert list(d.state_dict()) == list(t.state_dict())
    assert d.weight is original  # the same Parameter object, as PyTorch's set_
    np.testing.assert_allclose(d.weight.data, t.weight.detach().numpy(), **TIGHT)


def test_remove_one_of_several_tensors_keeps_the_class(torch):
    d = nn.Linear(3, 3, dtype=np.float64)
    P.register_parametrization(d, "weight", Symmetric())
    P.register_parametrization(d, "bias", Scale())
    P.remove_parametrizations(d, "weight")
    assert type(d).__name__ == "ParametrizedLinear" and P.is_parametrized(d, "bias")
    assert not P.is_parametrized(d, "weight") and P.is_parametrized(d)
    assert list(d.state_dict()) == ["weight", "parametrizations.bias.original"]


def test_remove_with_several_originals_refuses_leave_false(torch):
    d = nn.Linear(3, 3, dtype=np.float64)
    P.register_parametrization(d, "weight", SumOfTwo())
    with pytest.raises(ValueError, match="Cannot leave unparametrized"):
        P.remove_parametrizations(d, "weight", leave_parametrized=False)
    w = d.weight.data.copy()
    P.remove_parametrizations(d, "weight")
    assert isinstance(d.weight, nn.Parameter)
    np.testing.assert_allclose(d.weight.data, w, **TIGHT)


def test_each_access_recomputes_and_cached_computes_once():
    calls = []

    class Counting(nn.Module):
        def forward(self, X):
            calls.append(1)
            return X * 1.0

    d = nn.Linear(3, 3)
    P.register_parametrization(d, "weight", Counting())
    calls.clear()
    a, b = d.weight, d.weight
    assert len(calls) == 2 and a is not b
    with P.cached():
        a, b = d.weight, d.weight
        with P.cached():  # nested: the same cache
            c = d.weight
    assert len(calls) == 3 and a is b is c
    d.weight
    assert len(calls) == 4  # dropped when the outermost block ended


def test_parametrization_follows_train_eval_and_is_a_submodule():
    d = nn.Linear(3, 3).eval()
    s = Symmetric()
    P.register_parametrization(d, "weight", s)
    assert s.training is False
    d.train()
    assert s.training is True and d.parametrizations.weight[0] is s
    assert P.type_before_parametrizations(d) is nn.Linear


def test_buffers_can_be_parametrized(torch):
    d = nn.BatchNorm1d(3)
    P.register_parametrization(d, "running_var", Scale())
    t = torch.nn.BatchNorm1d(3)
    torch.nn.utils.parametrize.register_parametrization(t, "running_var", _torch_mods(torch)["scale"][1]())
    assert list(d.state_dict()) == list(t.state_dict())
    np.testing.assert_allclose(d.running_var.data, 1.0)


def test_refusals_as_torch(torch):
    tnn = torch.nn
    d, t = nn.Linear(3, 3), tnn.Linear(3, 3)
    for ours, theirs in [
        (lambda: P.register_parametrization(d, "nope", Symmetric()),
         lambda: torch.nn.utils.parametrize.register_parametrization(t, "nope", tnn.Identity())),
        (lambda: P.remove_parametrizations(d, "weight"),
         lambda: torch.nn.utils.parametrize.remove_parametrizations(t, "weight")),
    ]:
        with pytest.raises(Exception) as theirs_e:
            theirs()
        with pytest.raises(type(theirs_e.value)) as ours_e:
            ours()
        assert str(theirs_e.value).split("'")[0].split(" Linear")[0] in str(ours_e.value)

    class Shrink(nn.Module):
        def forward(self, X):
            return X[:2]

    with pytest.raises(ValueError, match="may not change the shape"):
        P.register_parametrization(nn.Linear(3, 3), "weight", Shrink())
    with pytest.raises(ValueError, match="may not change the dtype"):
        P.register_parametrization(nn.Linear(3, 3), "weight", _Cast())
    d = nn.Linear(3, 3)
    P.register_parametrization(d, "weight", Symmetric())
    with pytest.raises(ValueError, match="may not change the shape"):
        P.register_parametrization(d, "weight", Shrink())
    P.register_parametrization(d, "weight", Shrink(), unsafe=True)
    assert tuple(d.weight.shape) == (2, 3)
    with pytest.raises(KeyError, match="attribute 'weight' already exists"):
        d.weight = nn.Parameter(np.zeros((3, 3), np.float32))

    class NoInverse(nn.Module):
        def forward(self, X):
            return X

    e = nn.Linear(3, 3)
    P.register_parametrization(e, "weight", NoInverse())
    with pytest.raises(RuntimeError, match="does not implement right_inverse"):
        e.weight = distnn.zeros(3, 3)
    with pytest.raises(RuntimeError, match="only supported through state_dict"):
        import pickle
        pickle.dumps(e)


class _Cast(nn.Module):
    def forward(self, X):
        return X.double()


def test_parametrized_linear_trains_with_sgd_as_torch(torch):
    t, d = _pair(torch, ["sym", "scale"])
    opt_t = torch.optim.SGD(t.parameters(), lr=0.05, momentum=0.9)
    opt_d = distnn.optim.SGD(d.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(4)
    for _ in range(4):
        x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
        opt_t.zero_grad()
        opt_d.zero_grad()
        ((t(torch.from_numpy(x)) - torch.from_numpy(y)) ** 2).mean().backward()
        ((d(distnn.Tensor(x)) - distnn.Tensor(y)) ** 2).mean().backward()
        opt_t.step()
        opt_d.step()
    for k, v in t.state_dict().items():
        np.testing.assert_allclose(d.state_dict()[k], v.numpy(), rtol=1e-11, atol=1e-12, err_msg=k)


def test_state_dict_round_trip_from_torch(torch):
    t, d = _pair(torch, ["sum", "sym"], seed=5)
    fresh = nn.Linear(4, 4, dtype=np.float64)
    P.register_parametrization(fresh, "weight", SumOfTwo())
    P.register_parametrization(fresh, "weight", Symmetric())
    copy_torch_weights(t, fresh)
    np.testing.assert_allclose(fresh.weight.data, t.weight.detach().numpy(), **TIGHT)


def test_deepcopy_copies_the_parametrized_state():
    import copy

    d = nn.Linear(3, 3, dtype=np.float64)
    P.register_parametrization(d, "weight", Symmetric())
    e = copy.deepcopy(d)
    assert type(e) is type(d) and e.parametrizations.weight.original is not d.parametrizations.weight.original
    np.testing.assert_array_equal(e.weight.data, d.weight.data)
    e.weight = distnn.Tensor(np.eye(3))
    np.testing.assert_array_equal(e.weight.data, np.eye(3))
    assert not np.array_equal(d.weight.data, np.eye(3))
