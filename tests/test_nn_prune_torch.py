"""nn.utils.prune against torch.nn.utils.prune with the same weights (distinct values, so that the L1 / Ln
choices have no ties): masks, state dict keys and values, forward and backward (the original's gradient is
masked), repeated pruning (PyTorch's PruningContainer, unstructured after structured and back), global
pruning, importance scores, remove, is_pruned and the refusals (type and gist of PyTorch's message); a seeded
fuzz of pruning sequences. The random methods and data parallelism: test_nn_prune_random.py."""
import math

import numpy as np
import pytest

import distnn
from distnn import nn
from distnn.nn.utils import prune
from torch_twins import copy_torch_weights

TIGHT = dict(rtol=1e-12, atol=1e-12)
LOOSE = dict(rtol=1e-5, atol=1e-6)


def _tprune(torch):
    import torch.nn.utils.prune as tp

    return tp


def _pair(torch, kind, dtype=np.float64, seed=0):
    """A PyTorch and a distnn layer with the same weights: a random permutation of distinct values."""
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    if kind == "linear":
        t, d = torch.nn.Linear(6, 5).to(tdt), nn.Linear(6, 5, dtype=dtype)
    else:
        t, d = torch.nn.Conv2d(3, 4, 3).to(tdt), nn.Conv2d(3, 4, 3, dtype=dtype)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for p in t.parameters():
            vals = rng.permutation(p.numel()) + 1.0
            p.copy_(torch.from_numpy((vals * rng.choice([-1, 1], p.numel()) / p.numel()).reshape(p.shape)))
    return t, copy_torch_weights(t, d)


def _input(kind, dtype=np.float64, seed=1):
    shape = (3, 6) if kind == "linear" else (2, 3, 5, 5)
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _assert_same(torch, t, d, kind, tol=TIGHT, dtype=np.float64):
    """State dicts (keys in order, values), forward and the parameters' gradients equal."""
    t_sd, d_sd = t.state_dict(), d.state_dict()
    assert list(d_sd) == list(t_sd)
    for k, v in t_sd.items():
        np.testing.assert_allclose(np.asarray(d_sd[k]), v.numpy(), **tol, err_msg=k)
    x = _input(kind, dtype)
    t.zero_grad()
    d.zero_grad()
    t_out, d_out = t(torch.from_numpy(x)), d(distnn.Tensor(x))
    np.testing.assert_allclose(d_out.data, t_out.detach().numpy(), **tol)
    (t_out ** 2).sum().backward()
    (d_out ** 2).sum().backward()
    t_p, d_p = dict(t.named_parameters()), dict(d.named_parameters())
    assert list(d_p) == list(t_p)
    for k in t_p:
        np.testing.assert_allclose(d_p[k].grad, t_p[k].grad.numpy(), **tol, err_msg=k)


def _hooks(module):
    return [h for h, _, _ in module.__dict__.get("_forward_pre_hooks", {}).values()]


# ------------------------------------------------------------------------------------ one pruning each
@pytest.mark.parametrize("kind", ["linear", "conv"])
@pytest.mark.parametrize("call", [
    ("l1_unstructured", dict(amount=7)), ("l1_unstructured", dict(amount=0.35)), ("l1_unstructured", dict(amount=0)),
    ("ln_structured", dict(amount=2, n=2, dim=0)), ("ln_structured", dict(amount=0.5, n=1, dim=1)),
    ("ln_structured", dict(amount=1, n=math.inf, dim=-1)), ("ln_structured", dict(amount=1, n=-math.inf, dim=0)),
    ("ln_structured", dict(amount=2, n="fro", dim=0)), ("ln_structured", dict(amount=1, n=0.5, dim=1)),
    ("identity", {}),
], ids=lambda c: f"{c[0]}-{'-'.join(f'{k}={v}' for k, v in c[1].items())}")
def test_a_pruning_matches_torch(torch, kind, call):
    tp = _tprune(torch)
    fn, kwargs = call
    t, d = _pair(torch, kind)
    if kwargs.get("n") == "fro" and kind == "conv":  # (PyTorch's 'fro' over 3 dims is a matrix norm: refused)
        for lib, m in ((tp, t), (prune, d)):
            with pytest.raises(RuntimeError, match="dim must be a 2-tuple"):
                lib.ln_structured(m, "weight", **kwargs)
        assert not prune.is_pruned(d) and "weight" in d._parameters
        return
    assert getattr(prune, fn)(d, "weight", **kwargs) is d
    getattr(tp, fn)(t, "weight", **kwargs)
    assert isinstance(d.weight_orig, nn.Parameter) and "weight" not in d._parameters
    assert "weight_mask" in d._buffers and not d.weight_mask.requires_grad
    np.testing.assert_array_equal(d.weight_mask.data, t.weight_mask.numpy())
    np.testing.assert_allclose(d.weight.data, t.weight.detach().numpy(), **TIGHT)
    assert [type(h).__name__ for h in _hooks(d)] == [type(h).__name__ for h in t._forward_pre_hooks.values()]
    _assert_same(torch, t, d, kind)
    if fn != "identity":  # the gradient of the original is zero where pruned
        assert np.all(d.weight_orig.grad[d.weight_mask.data == 0] == 0)


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_float32_pruning_and_gradients_match_torch(torch, kind):
    tp = _tprune(torch)
    t, d = _pair(torch, kind, dtype=np.float32)
    for m, lib in ((t, tp), (d, prune)):
        lib.l1_unstructured(m, "weight", amount=0.3)
        lib.ln_structured(m, "weight", amount=1, n=2, dim=0)
        lib.l1_unstructured(m, "bias", amount=1)
    assert d.weight_mask.dtype == np.float32
    _assert_same(torch, t, d, kind, tol=LOOSE, dtype=np.float32)


def test_nuclear_norm_channels_of_a_3d_weight_match_torch(torch):
    tp = _tprune(torch)
    t, d = torch.nn.Conv1d(3, 5, 4).double(), nn.Conv1d(3, 5, 4, dtype=np.float64)
    copy_torch_weights(t, d)
    tp.ln_structured(t, "weight", amount=2, n="nuc", dim=0)
    prune.ln_structured(d, "weight", amount=2, n="nuc", dim=0)
    np.testing.assert_array_equal(d.weight_mask.data, t.weight_mask.numpy())


@pytest.mark.parametrize("fn,kwargs", [("l1_unstructured", dict(amount=9)),
                                       ("ln_structured", dict(amount=2, n=1, dim=1))])
def test_importance_scores_choose_as_torch(torch, fn, kwargs):
    tp = _tprune(torch)
    t, d = _pair(torch, "conv")
    scores = np.random.default_rng(5).permutation(t.weight.numel()).reshape(t.weight.shape).astype(np.float64)
    getattr(tp, fn)(t, "weight", importance_scores=torch.from_numpy(scores), **kwargs)
    getattr(prune, fn)(d, "weight", importance_scores=distnn.Tensor(scores), **kwargs)
    np.testing.assert_array_equal(d.weight_mask.data, t.weight_mask.numpy())
    by_weight = nn.Conv2d(3, 4, 3, dtype=np.float64)
    copy_torch_weights(_pair(torch, "conv")[0], by_weight)
    getattr(prune, fn)(by_weight, "weight", **kwargs)
    assert not np.array_equal(by_weight.weight_mask.data, d.weight_mask.data)  # (the scores did choose)


# ------------------------------------------------------------------------- repeated pruning, container
def test_repeated_pruning_combines_masks_as_torch_container(torch):
    tp = _tprune(torch)
    t, d = _pair(torch, "conv")
    custom = np.ones(t.weight.shape)
    custom[1, :, 0, :] = 0
    steps = [("l1_unstructured", dict(amount=0.2)), ("ln_structured", dict(amount=1, n=2, dim=0)),
             ("l1_unstructured", dict(amount=10)), ("ln_structured", dict(amount=0.5, n=1, dim=1)),
             ("ln_structured", dict(amount=1, n=2, dim=0)), ("custom_from_mask", dict(mask=custom)),
             ("identity", {}), ("l1_unstructured", dict(amount=0.5))]
    container = None
    for i, (fn, kwargs) in enumerate(steps):
        getattr(tp, fn)(t, "weight", **{k: torch.from_numpy(v) if k == "mask" else v for k, v in kwargs.items()})
        getattr(prune, fn)(d, "weight", **{k: distnn.Tensor(v) if k == "mask" else v for k, v in kwargs.items()})
        np.testing.assert_array_equal(d.weight_mask.data, t.weight_mask.numpy(), err_msg=f"step {i}: {fn}")
        (hook,) = _hooks(d)
        if i:
            assert isinstance(hook, prune.PruningContainer) and len(hook) == i + 1
            assert container is None or hook is container  # (one container, extended)
            container = hook
    assert [type(m).__name__ for m in container] == [type(m).__name__ for m in t._forward_pre_hooks[
        next(iter(t._forward_pre_hooks))]]
    assert isinstance(container[0], prune.L1Unstructured) and container[-1] is list(container)[-1]
    _assert_same(torch, t, d, "conv")


@pytest.mark.parametrize("seed", range(6))
def test_fuzz_pruning_sequences_match_torch(torch, seed):
    """Random shapes, dims, norms and amounts: after every step the masks are PyTorch's. The weights are
    continuous draws, so no two entries or channel norms tie (topk's order among ties is unspecified); -inf
    (a channel's smallest |entry|, 0 once any is pruned) only on the first step for that reason, 'fro' only
    where PyTorch takes it (2 other dims at most)."""
    tp = _tprune(torch)
    rng = np.random.default_rng([7, seed])
    shape = tuple(int(s) for s in rng.integers(2, 6, rng.integers(2, 5)))
    w = rng.standard_normal(shape)
    t, d = torch.nn.Module(), nn.Module()
    t.w = torch.nn.Parameter(torch.from_numpy(w.copy()))
    d.w = nn.Parameter(w.copy())
    norms = [1, 2, 3, 0.5, math.inf] + (["fro"] if len(shape) <= 3 else [])
    for step in range(4):
        choice = rng.integers(3)
        if choice == 0:
            kwargs = dict(amount=float(rng.uniform(0, 0.6)) if rng.random() < 0.5 else int(rng.integers(0, 4)))
            fn = "l1_unstructured"
        elif choice == 1:
            options = norms + ([-math.inf] if step == 0 else [])
            n = options[rng.integers(len(options))]
            kwargs = dict(amount=int(rng.integers(0, 2)), n=n, dim=int(rng.integers(-len(shape), len(shape))))
            fn = "ln_structured"
        else:
            kwargs = dict(mask=(rng.random(shape) < 0.8).astype(np.float64))
            fn = "custom_from_mask"
        try:
            getattr(tp, fn)(t, "w", **{k: torch.from_numpy(v) if k == "mask" else v for k, v in kwargs.items()})
        except ValueError:  # (more to prune than is left: refused alike; PyTorch's module is then broken)
            with pytest.raises(ValueError, match="should be smaller than the number of parameters to prune"):
                getattr(prune, fn)(d, "w", **kwargs)
            break
        getattr(prune, fn)(d, "w", **kwargs)
        np.testing.assert_array_equal(d.w_mask.data, t.w_mask.numpy(), err_msg=f"seed {seed} step {step} {fn} "
                                                                                f"{kwargs} shape {shape}")
        np.testing.assert_allclose(d.w.data, t.w.detach().numpy(), **TIGHT)


# ------------------------------------------------------------------------------------------ global
def test_global_unstructured_matches_torch(torch):
    tp = _tprune(torch)
    (t1, d1), (t2, d2) = _pair(torch, "linear", seed=1), _pair(torch, "conv", seed=2)
    tp.l1_unstructured(t2, "weight", amount=20)  # (one of them pruned already: its mask is respected)
    prune.l1_unstructured(d2, "weight", amount=20)
    scores = np.random.default_rng(3).permutation(30).reshape(5, 6) + 0.5
    tp.global_unstructured([(t1, "weight"), (t2, "weight"), (t2, "bias")], tp.L1Unstructured,
                           importance_scores={(t1, "weight"): torch.from_numpy(scores)}, amount=30)
    out = prune.global_unstructured(((m, n) for m, n in [(d1, "weight"), (d2, "weight"), (d2, "bias")]),
                                    prune.L1Unstructured, importance_scores={(d1, "weight"): distnn.Tensor(scores)},
                                    amount=30)
    assert out is None
    for t, d in ((t1, d1), (t2, d2)):
        for name in ("weight", "bias") if t is t2 else ("weight",):
            np.testing.assert_array_equal(getattr(d, name + "_mask").data, getattr(t, name + "_mask").numpy())
        _assert_same(torch, t, d, "linear" if t is t1 else "conv")
    zeros = sum(int((m.data == 0).sum()) for m in (d1.weight_mask, d2.weight_mask, d2.bias_mask))
    assert zeros == 50
    assert isinstance(_hooks(d2)[0], prune.PruningContainer) and isinstance(_hooks(d1)[0], prune.CustomFromMask)


def test_global_unstructured_refusals_as_torch(torch):
    tp = _tprune(torch)
    t, d = _pair(torch, "linear")
    for lib, m in ((tp, t), (prune, d)):
        with pytest.raises(TypeError, match="Only \"unstructured\" PRUNING_TYPE"):
            lib.global_unstructured([(m, "weight")], lib.LnStructured, amount=1, n=2, dim=0)
        with pytest.raises(TypeError, match="parameters is not an Iterable"):
            lib.global_unstructured(3, lib.L1Unstructured, amount=1)
        with pytest.raises(TypeError, match="importance_scores must be of type dict"):
            lib.global_unstructured([(m, "weight")], lib.L1Unstructured, importance_scores=[1], amount=1)
        with pytest.raises(ValueError, match="should be smaller than the number of parameters"):
            lib.global_unstructured([(m, "weight"), (m, "bias")], lib.L1Unstructured, amount=36)
    assert not prune.is_pruned(d) and list(d.state_dict()) == ["weight", "bias"]


# ---------------------------------------------------------------------------- custom mask, remove
def test_custom_from_mask_takes_an_int_mask_as_torch(torch):
    tp = _tprune(torch)
    t, d = _pair(torch, "linear")
    tp.custom_from_mask(t, "bias", mask=torch.tensor([0, 1, 0, 1, 1]))
    prune.custom_from_mask(d, "bias", mask=distnn.Tensor(np.array([0, 1, 0, 1, 1])))
    assert d.bias_mask.dtype == np.float64
    np.testing.assert_array_equal(d.bias_mask.data, t.bias_mask.numpy())
    _assert_same(torch, t, d, "linear")


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_remove_makes_the_pruning_permanent_as_torch(torch, kind):
    tp = _tprune(torch)
    t, d = _pair(torch, kind)
    for lib, m in ((tp, t), (prune, d)):
        lib.l1_unstructured(m, "weight", amount=0.4)
        lib.ln_structured(m, "weight", amount=1, n=2, dim=0)
        lib.l1_unstructured(m, "bias", amount=1)
    orig = d.weight_orig
    assert prune.is_pruned(d)
    assert prune.remove(d, "weight") is d
    tp.remove(t, "weight")
    assert d.weight is orig and isinstance(d.weight, nn.Parameter)  # (the original's object, holding the pruned)
    assert "weight_orig" not in d._parameters and "weight_mask" not in d._buffers
    assert prune.is_pruned(d) and [h._tensor_name for h in _hooks(d)] == ["bias"]
    _assert_same(torch, t, d, kind)
    prune.remove(d, "bias")
    tp.remove(t, "bias")
    assert not prune.is_pruned(d) and not _hooks(d)
    _assert_same(torch, t, d, kind)
    for lib, m in ((tp, t), (prune, d)):
        with pytest.raises(ValueError, match="has to be pruned before pruning can be removed"):
            lib.remove(m, "weight")


def test_is_pruned_looks_into_submodules(torch):
    tp = _tprune(torch)
    t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    d = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert prune.is_pruned(d) is tp.is_pruned(t) is False
    d.register_forward_pre_hook(lambda m, a: None)  # (a hook of another kind is no pruning)
    assert not prune.is_pruned(d)
    prune.identity(d[2], "bias")
    tp.identity(t[2], "bias")
    assert prune.is_pruned(d) is tp.is_pruned(t) is True
    assert list(d.state_dict()) == list(t.state_dict())


def test_a_pruned_model_saves_and_loads_its_state(torch):
    d = nn.Linear(6, 5, dtype=np.float64)
    prune.l1_unstructured(d, "weight", amount=0.5)
    other = prune.identity(nn.Linear(6, 5, dtype=np.float64), "weight")
    other.load_state_dict(d.state_dict())
    x = distnn.Tensor(_input("linear"))
    np.testing.assert_allclose(other(x).data, d(x).data, **TIGHT)
    np.testing.assert_array_equal(other.weight_mask.data, d.weight_mask.data)


# ------------------------------------------------------------------------------------------ refusals
REFUSALS = [
    ("l1_unstructured", "weight", dict(amount=31), ValueError, "should be smaller than the number of parameters"),
    ("l1_unstructured", "weight", dict(amount=-1), ValueError, "non-negative integer"),
    ("l1_unstructured", "weight", dict(amount=1.5), ValueError, r"float in the range \[0, 1\]"),
    ("random_unstructured", "weight", dict(amount=-0.1), ValueError, r"float in the range \[0, 1\]"),
    ("l1_unstructured", "weight", dict(amount="half"), TypeError, "Invalid type for amount"),
    ("l1_unstructured", "wieght", dict(amount=1), AttributeError, "has no attribute 'wieght'"),
    ("ln_structured", "bias", dict(amount=1, n=2, dim=0), ValueError, "only be applied to multidimensional"),
    ("ln_structured", "weight", dict(amount=1, n=2, dim=2), IndexError, "Invalid index 2"),
    ("ln_structured", "weight", dict(amount=6, n=2, dim=0), ValueError, "should be smaller than the number"),
    ("random_structured", "weight", dict(amount=7, dim=1), ValueError, "should be smaller than the number"),
    ("random_structured", "bias", dict(amount=1, dim=0), ValueError, "only be applied to multidimensional"),
    ("l1_unstructured", "weight", dict(amount=1, importance_scores=np.ones((6, 5))), AssertionError,
     "importance_scores should have the same shape"),
    ("custom_from_mask", "weight", dict(mask=np.ones((6, 5))), AssertionError, "must match self.mask shape"),
]


@pytest.mark.parametrize("fn,name,kwargs,exc,match", REFUSALS, ids=[f"{r[0]}-{r[1]}-{i}" for i, r in
                                                                   enumerate(REFUSALS)])
def test_refusals_as_torch_and_the_module_is_left_as_it_was(torch, fn, name, kwargs, exc, match):
    tp = _tprune(torch)
    t, d = _pair(torch, "linear")
    convert = {"importance_scores": (torch.from_numpy, distnn.Tensor), "mask": (torch.from_numpy, distnn.Tensor)}
    with pytest.raises(exc, match=match):
        getattr(tp, fn)(t, name, **{k: convert[k][0](v) if k in convert else v for k, v in kwargs.items()})
    before = {k: np.array(v) for k, v in d.state_dict().items()}
    with pytest.raises(exc, match=match):
        getattr(prune, fn)(d, name, **{k: convert[k][1](v) if k in convert else v for k, v in kwargs.items()})
    assert list(d.state_dict()) == list(before) and not _hooks(d) and "weight" in d._parameters


def test_a_refused_second_pruning_keeps_the_first():
    """(PyTorch drops the first pruning's hook when the second is refused; distnn refuses before changing.)"""
    d = nn.Linear(6, 5, dtype=np.float64)
    prune.l1_unstructured(d, "weight", amount=10)
    prune.ln_structured(d, "weight", amount=1, n=2, dim=0)
    (container,) = _hooks(d)
    mask = d.weight_mask.data.copy()
    for kwargs in (dict(amount=-1), dict(amount=21)):  # (20 entries are left to prune)
        with pytest.raises(ValueError):
            prune.l1_unstructured(d, "weight", **kwargs)
        assert _hooks(d) == [container] and len(container) == 2
        np.testing.assert_array_equal(d.weight_mask.data, mask)
    with pytest.raises(TypeError, match="a Parameter is expected"):
        prune.identity(nn.BatchNorm1d(3), "running_mean")


def test_container_and_method_api_as_torch(torch):
    tp = _tprune(torch)
    for lib in (tp, prune):
        a, b = lib.L1Unstructured(amount=2), lib.LnStructured(amount=1, n=2, dim=0)
        a._tensor_name = b._tensor_name = "weight"
        c = lib.PruningContainer(a)
        c.add_pruning_method(b)
        assert len(c) == 2 and c[1] is b and list(c) == [a, b]
        with pytest.raises(TypeError, match="is not a BasePruningMethod subclass"):
            c.add_pruning_method("l1")
        other = lib.Identity()
        other._tensor_name = "bias"
        with pytest.raises(ValueError, match="Can only add pruning methods acting on the parameter named 'weight'"):
            c.add_pruning_method(other)
        with pytest.raises(TypeError):
            lib.BasePruningMethod()  # (abstract)
    # prune(): the tensor times the method's mask, in the graph
    w = np.arange(1.0, 13.0).reshape(3, 4) * np.array([1, -1, 1, -1])
    t_out = tp.L1Unstructured(amount=5).prune(torch.from_numpy(w))
    x = distnn.Tensor(w, requires_grad=True)
    out = prune.L1Unstructured(amount=5).prune(x)
    np.testing.assert_array_equal(out.data, t_out.numpy())
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, (t_out != 0).double().numpy())
    np.testing.assert_array_equal(prune.LnStructured(1, 1, dim=1).prune(x, importance_scores=distnn.Tensor(-w)).data,
                                  tp.LnStructured(1, 1, dim=1).prune(torch.from_numpy(w),
                                                                     importance_scores=torch.from_numpy(-w)).numpy())


class _EveryOther(prune.BasePruningMethod):
    """A user's method, as in PyTorch's tutorial: prune every other unpruned entry."""

    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t, default_mask):
        mask = default_mask.data.copy()
        mask.reshape(-1)[::2] = 0
        return distnn.Tensor(mask)


def test_a_user_pruning_method_composes_with_the_builtin_ones():
    d = nn.Linear(4, 2, dtype=np.float64)
    _EveryOther.apply(d, "weight")
    np.testing.assert_array_equal(d.weight_mask.data.reshape(-1), [0, 1] * 4)
    _EveryOther.apply(d, "weight")  # (on the 4 left: every other of them)
    np.testing.assert_array_equal(d.weight_mask.data.reshape(-1), [0, 0, 0, 1] * 2)
    with pytest.raises(AssertionError, match="has to be pruned"):
        _EveryOther().apply_mask(d)
