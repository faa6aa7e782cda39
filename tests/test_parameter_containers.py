"""nn.ParameterList and nn.ParameterDict: registration, names, state dicts, moves, repr and the list/dict
operations against PyTorch's (oracle), training with distnn's optimizers, and N ranks == 1 process."""
import re
from collections import OrderedDict

import numpy as np
import pytest

import distnn
import distnn.functional as F
import distnn.nn as nn
from distnn.distributed import DataParallel, simulate
from distnn.optim import SGD, Adam

torch = pytest.importorskip("torch")

D = np.float64


class Net(nn.Module):
    """x -> tanh(x @ W0 + b0) -> tanh(. @ W1 + b1) -> . @ head['out'] + head['bias']; weights in a ParameterList."""

    def __init__(self, seed=0, dtype=D):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.layers = nn.ParameterList()
        for fan_in, fan_out in [(5, 8), (8, 6)]:
            self.layers.append(nn.Parameter(rng.standard_normal((fan_in, fan_out)).astype(dtype) / fan_in ** 0.5))
            self.layers.append(distnn.Tensor(rng.standard_normal(fan_out).astype(dtype) * 0.1))  # wrapped
        self.head = nn.ParameterDict({"out": distnn.Tensor(rng.standard_normal((6, 3)).astype(dtype)),
                                      "bias": nn.Parameter(np.zeros(3, dtype))})

    def forward(self, x):
        for w, b in zip(self.layers[0::2], self.layers[1::2]):
            x = (x @ w + b).tanh()
        return x @ self.head["out"] + self.head["bias"]


class TorchNet(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        t = lambda p: torch.tensor(p.numpy())  # noqa: E731  (plain tensors: ParameterList wraps them)
        self.layers = torch.nn.ParameterList([t(p) for p in net.layers])
        self.head = torch.nn.ParameterDict({k: t(p) for k, p in net.head.items()})

    def forward(self, x):
        for w, b in zip(self.layers[0::2], self.layers[1::2]):
            x = torch.tanh(x @ w + b)
        return x @ self.head["out"] + self.head["bias"]


def _data(n=24, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 5)), rng.integers(0, 3, n)


# ------------------------------------------------------------------- registration and training oracle
def test_names_and_state_dict_keys_are_pytorchs():
    net = Net()
    ref = TorchNet(net)
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in ref.named_parameters()] == \
        ["layers.0", "layers.1", "layers.2", "layers.3", "head.bias", "head.out"]  # (a plain dict: sorted keys)
    assert list(net.state_dict()) == list(ref.state_dict())
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_gradients_and_adam_training_match_pytorch(dtype, tol):
    X, Y = _data()
    net = Net(dtype=dtype)
    ref = TorchNet(net)
    opt = Adam(net.parameters(), lr=0.01)
    topt = torch.optim.Adam(ref.parameters(), lr=0.01)
    for step in range(5):
        opt.zero_grad()
        topt.zero_grad()
        F.cross_entropy(net(distnn.Tensor(X.astype(dtype))), Y).backward()
        torch.nn.functional.cross_entropy(ref(torch.tensor(X.astype(dtype))), torch.tensor(Y)).backward()
        if step == 0:
            for (name, p), (_, tp) in zip(net.named_parameters(), ref.named_parameters()):
                np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=tol, atol=tol, err_msg=name)
        opt.step()
        topt.step()
    for name, value in net.state_dict().items():
        np.testing.assert_allclose(value, ref.state_dict()[name].numpy(), rtol=tol, atol=tol, err_msg=name)


def test_parameter_groups_take_container_parameters():
    net = Net()
    opt = SGD([{"params": net.layers.parameters()}, {"params": net.head.parameters(), "lr": 0.0}], lr=0.1)
    head = {k: v.copy() for k, v in net.head.state_dict().items()}
    before = net.layers[0].numpy().copy()
    X, Y = _data()
    F.cross_entropy(net(distnn.Tensor(X)), Y).backward()
    opt.step()
    assert not np.array_equal(net.layers[0].numpy(), before)
    assert all(np.array_equal(net.head[k].numpy(), v) for k, v in head.items())


def test_state_dict_round_trip_and_torch_state_loads():
    src, dst = Net(seed=0), Net(seed=7)
    dst.load_state_dict(src.state_dict())
    assert all(np.array_equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))
    ref = TorchNet(Net(seed=3))
    dst.load_state_dict(ref.state_dict())  # torch tensors, the same names
    np.testing.assert_array_equal(dst.head["out"].numpy(), ref.head["out"].detach().numpy())
    with pytest.raises(KeyError, match="missing keys: \\['layers.3'\\]"):
        dst.load_state_dict({k: v for k, v in src.state_dict().items() if k != "layers.3"})


def test_to_dtype_casts_container_parameters_and_their_gradients():
    net = Net()
    X, Y = _data()
    F.cross_entropy(net(distnn.Tensor(X)), Y).backward()
    net.to(np.float32)
    assert {p.dtype for p in net.parameters()} == {np.dtype(np.float32)}
    assert {p.grad.dtype for p in net.parameters()} == {np.dtype(np.float32)}
    net.double()
    assert net.layers[3].dtype == np.float64 and net.head["out"].dtype == np.float64


# ------------------------------------------------------------------- list and dict operations vs torch
def _torch_names(module):
    return [n for n, _ in module.named_parameters()]


def test_list_operations_match_pytorch():
    a, b, c = (np.full(k, float(k)) for k in (1, 2, 3))
    pl = nn.ParameterList([distnn.Tensor(a)])
    tl = torch.nn.ParameterList([torch.tensor(a)])
    for lst, wrap in ((pl, distnn.Tensor), (tl, torch.tensor)):
        lst.append(wrap(b))
        lst.extend([wrap(c)])
        lst += [wrap(a)]
        lst[1] = wrap(c)  # replaced in place: stays at index 1
    assert len(pl) == len(tl) == 4
    assert _torch_names(pl) == _torch_names(tl) == ["0", "1", "2", "3"]
    assert [p.shape for p in pl] == [tuple(p.shape) for p in tl]
    assert pl[-1].shape == (1,) and pl[-4] is pl[0]
    part = pl[1:4:2]
    assert isinstance(part, nn.ParameterList) and list(part) == [pl[1], pl[3]]
    assert _torch_names(part) == _torch_names(tl[1:4:2]) == ["0", "1"]


def test_a_wrapped_tensor_shares_its_memory_and_requires_grad():
    t = distnn.Tensor(np.zeros(3))
    pl = nn.ParameterList([t])
    pd = nn.ParameterDict({"t": t})
    assert isinstance(pl[0], nn.Parameter) and pl[0].requires_grad and isinstance(pd["t"], nn.Parameter)
    pl[0].data[0] = 5.0
    assert t.numpy()[0] == 5.0 and pd["t"].numpy()[0] == 5.0
    p = nn.Parameter(np.ones(2))
    assert nn.ParameterList([p])[0] is p  # a Parameter stays itself


def test_dict_operations_match_pytorch():
    v = {k: np.full(i + 1, float(i)) for i, k in enumerate("cab")}
    pd = nn.ParameterDict({k: distnn.Tensor(x) for k, x in v.items()})
    td = torch.nn.ParameterDict({k: torch.tensor(x) for k, x in v.items()})
    assert list(pd.keys()) == list(td.keys()) == ["a", "b", "c"]  # a plain dict is sorted
    for d, wrap in ((pd, distnn.Tensor), (td, torch.tensor)):
        d.update(OrderedDict([("z", wrap(np.ones(1))), ("y", wrap(np.ones(2)))]))  # in order
        d.update([("x", wrap(np.ones(3))), ("a", wrap(np.ones(4)))])  # pairs; "a" replaced in place
        d["w"] = wrap(np.ones(5))
        d.setdefault("w", wrap(np.ones(9)))
        d.setdefault("v", wrap(np.ones(6)))
        del d["b"]
    assert list(pd.keys()) == list(td.keys()) == ["a", "c", "z", "y", "x", "w", "v"]
    assert _torch_names(pd) == _torch_names(td)
    assert [p.shape for p in pd.values()] == [tuple(p.shape) for p in td.values()]
    assert "z" in pd and "b" not in pd and 3 not in pd
    assert pd.get("b") is None and pd.get("a") is pd["a"]
    assert pd.pop("z").shape == (1,) and "z" not in pd and "z" not in dict(pd.named_parameters())
    key, p = pd.popitem()
    assert key == "v" and p.shape == (6,)
    assert [k for k, _ in pd.items()] == ["a", "c", "y", "x", "w"]
    copy = pd.copy()
    assert list(copy.keys()) == list(pd.keys()) and all(copy[k] is pd[k] for k in pd)
    merged = pd | nn.ParameterDict({"n": distnn.Tensor(np.ones(1))})
    assert list(merged) == ["a", "c", "y", "x", "w", "n"] and "n" not in pd
    pd |= {"m": distnn.Tensor(np.ones(1))}
    assert list(pd)[-1] == "m"
    assert list(pd.fromkeys(["q", "r"]).keys()) == ["q", "r"]
    pd.clear()
    assert len(pd) == 0 and list(pd.parameters()) == []


def test_none_entries_hold_a_slot_and_no_parameter():
    pd = nn.ParameterDict.fromkeys(nn.ParameterDict(), ["a", "b"])
    assert list(pd.keys()) == ["a", "b"] and list(pd.parameters()) == [] and pd.state_dict() == OrderedDict()
    pd["a"] = distnn.Tensor(np.ones(2))
    assert [n for n, _ in pd.named_parameters()] == ["a"]


# ------------------------------------------------------------------- refusals (PyTorch's errors)
def _raises_like_torch(fn_ours, fn_torch, exc, match):
    with pytest.raises(exc, match=match):
        fn_ours()
    with pytest.raises(exc, match=match):
        fn_torch()


def test_refusals_match_pytorch():
    pl, tl = nn.ParameterList([distnn.Tensor(np.ones(2))]), torch.nn.ParameterList([torch.ones(2)])
    pd, td = nn.ParameterDict({"a": distnn.Tensor(np.ones(2))}), torch.nn.ParameterDict({"a": torch.ones(2)})
    one = distnn.Tensor(np.ones(1))
    cases = [
        (lambda: pl[1], lambda: tl[1], IndexError, "index 1 is out of range"),
        (lambda: pl[-2], lambda: tl[-2], IndexError, "index -2 is out of range"),
        (lambda: pl.__setitem__(3, one), lambda: tl.__setitem__(3, torch.ones(1)), IndexError, "out of range"),
        (lambda: pl["a"], lambda: tl["a"], TypeError, "cannot be interpreted as an integer"),
        (lambda: pl.extend(one), lambda: tl.extend(torch.ones(1)), TypeError,
         "ParameterList.extend should be called with an iterable, but got Tensor"),
        (lambda: pl(one), lambda: tl(torch.ones(1)), RuntimeError, "ParameterList should not be called"),
        (lambda: pd(one), lambda: td(torch.ones(1)), RuntimeError, "ParameterDict should not be called"),
        (lambda: pd["zz"], lambda: td["zz"], AttributeError, "object has no attribute 'zz'"),
        (lambda: pd.pop("zz"), lambda: td.pop("zz"), AttributeError, "no attribute 'zz'"),
        (lambda: pd.__setitem__(3, one), lambda: td.__setitem__(3, torch.ones(1)), TypeError,
         "cannot be used as a key as it is not a string \\(type is 'int'\\)"),
        (lambda: pd.__setitem__("a.b", one), lambda: td.__setitem__("a.b", torch.ones(1)), KeyError,
         'contain "\\."'),
        (lambda: pd.__setitem__("", one), lambda: td.__setitem__("", torch.ones(1)), KeyError, "empty string"),
        (lambda: pd.__setitem__("keys", one), lambda: td.__setitem__("keys", torch.ones(1)), KeyError,
         "attribute 'keys' already exists"),
        (lambda: pd.update(5), lambda: td.update(5), TypeError, "iterable of key/value pairs, but got int"),
        (lambda: pd.update([3]), lambda: td.update([3]), TypeError, "element #0 should be Iterable"),
        (lambda: pd.update([("a",)]), lambda: td.update([("a",)]), ValueError, "element #0 has length 1; 2 is"),
    ]
    for ours, theirs, exc, match in cases:
        _raises_like_torch(ours, theirs, exc, match)
    # PyTorch takes this key and breaks the module (its train() then fails); refused here like "keys"
    with pytest.raises(KeyError, match="attribute 'training' already exists"):
        pd["training"] = one
    assert list(pd.keys()) == ["a"] and len(pl) == 1 and pd.training  # nothing half-added


def test_non_tensor_entries_are_refused_naming_the_type():
    # (PyTorch keeps any object as a plain attribute, outside every state dict; here it is an error)
    with pytest.raises(TypeError, match="ParameterList holds Parameters or Tensors .* got ndarray"):
        nn.ParameterList([np.ones(2)])
    with pytest.raises(TypeError, match="ParameterDict holds Parameters or Tensors .* got int"):
        nn.ParameterDict({"a": 3})


def test_repr_matches_pytorchs_layout():
    net = Net(dtype=np.float32)
    ref = TorchNet(net)
    theirs = repr(ref).replace("TorchNet", "Net").replace("torch.float32", "float32")
    theirs = theirs.replace("torch.FloatTensor", "float32")  # (ParameterDict shows the legacy type name)
    assert repr(net) == theirs
    assert repr(nn.ParameterList([distnn.Tensor(np.ones((2, 3)))])) == \
        "ParameterList(  (0): Parameter containing: [float64 of size 2x3])"
    assert re.fullmatch(r"ParameterDict\(\)", repr(nn.ParameterDict()))


# ------------------------------------------------------------------- data parallel: N ranks == 1 process
BATCHES = [np.arange(a, min(a + 7, 24)) for a in range(0, 24, 7)] * 3  # 7,7,7,3: uneven shards


def _train(model, comm=None, steps=12):
    X, Y = _data()
    dp = DataParallel(model, comm, bucket_mb=0.0001) if comm is not None else model
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    for idx in BATCHES[:steps]:
        mine = idx if comm is None else idx[comm.rank::comm.size]
        opt.zero_grad()
        F.cross_entropy(dp(distnn.Tensor(X[mine])), Y[mine]).backward()
        opt.step()
    return model.state_dict()


@pytest.mark.parametrize("n", [2, 3])
def test_n_ranks_with_container_parameters_match_one_process(n):
    ref = _train(Net(seed=0))
    states = simulate(n, lambda comm: _train(Net(seed=comm.rank), comm))  # rank 0's weights are broadcast
    for k in ref:
        err = np.abs(states[0][k] - ref[k]).max() / np.abs(ref[k]).max()
        assert err <= 1e-6, f"{k}: relative error {err:.3g}"
    assert all(np.array_equal(s[k], states[0][k]) for s in states[1:] for k in ref)
