"""Hooks and Module conveniences as PyTorch's: Tensor.register_hook / retain_grad, Module forward (pre-)hooks,
``float()``/``double()``, ``get_submodule``, ``state_dict(keep_vars=True)``; DataParallel still overlaps its
allreduces with backward when parameters carry gradient hooks."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
import distnn.nn as nn
from distnn import Tensor


def _pair(torch, a):
    return Tensor(a.copy(), requires_grad=True), torch.tensor(a.copy(), requires_grad=True)


X = np.random.default_rng(0).standard_normal((3, 4))
W = np.random.default_rng(1).standard_normal((4, 2))


def _graph(lib_tensor, x, w, hook_y=None, hook_x=None, retain=False):
    """loss = sum(tanh(x @ w) * x[:, :2]) + sum(x): x used three times, y = x @ w a non-leaf."""
    y = x @ w
    if hook_y is not None:
        for h in hook_y:
            y.register_hook(h)
    if retain:
        y.retain_grad()
    if hook_x is not None:
        x.register_hook(hook_x)
    return y, (y.tanh() * x[:, :2]).sum() + x.sum()


# ---------------------------------------------------------------- Tensor.register_hook
def test_non_leaf_hooks_see_the_gradient_in_order_and_replace_it(torch):
    seen = {"d": [], "t": []}

    def hooks(key):
        def first(g):
            seen[key].append(("first", g.numpy().copy()))
            return g * 3

        def second(g):
            seen[key].append(("second", g.numpy().copy()))  # sees the first one's replacement

        return [first, second]

    xd, xt = _pair(torch, X)
    wd, wt = _pair(torch, W)
    _, ld = _graph(Tensor, xd, wd, hook_y=hooks("d"))
    _, lt = _graph(torch, xt, wt, hook_y=hooks("t"))
    ld.backward()
    lt.backward()
    assert [n for n, _ in seen["d"]] == ["first", "second"] == [n for n, _ in seen["t"]]
    for (_, a), (_, b) in zip(seen["d"], seen["t"]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(seen["d"][1][1], 3 * seen["d"][0][1], rtol=1e-12)
    np.testing.assert_allclose(wd.grad, wt.grad.numpy(), rtol=1e-12)  # the replacement flowed on
    np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=1e-12)


def test_leaf_hook_sees_the_summed_gradient_once_before_it_accumulates(torch):
    calls = {"d": [], "t": []}
    order = []

    def hook(key):
        def h(g):
            calls[key].append(g.numpy().copy())
            order.append("hook") if key == "d" else None
            return g * 0.5
        return h

    xd, xt = _pair(torch, X)
    wd, wt = _pair(torch, W)
    xd.register_post_accumulate_grad_hook(lambda t: order.append(("post", t.grad.copy())))
    _, ld = _graph(Tensor, xd, wd, hook_x=hook("d"))
    _, lt = _graph(torch, xt, wt, hook_x=hook("t"))
    ld.backward()
    lt.backward()
    assert len(calls["d"]) == 1 == len(calls["t"])  # x is used three times: one call, with the sum
    np.testing.assert_allclose(calls["d"][0], calls["t"][0], rtol=1e-12)
    np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=1e-12)
    assert order[0] == "hook" and order[1][0] == "post"
    np.testing.assert_allclose(order[1][1], xd.grad)  # post-accumulate hooks see the replaced gradient


def test_hooks_on_the_root_and_on_a_leaf_root(torch):
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.register_hook(lambda g: g * 10)
    y.backward()
    np.testing.assert_allclose(x.grad, [20.0, 40.0])
    leaf = Tensor(np.array(2.0), requires_grad=True)
    leaf.register_hook(lambda g: g + 1)
    leaf.backward()
    assert leaf.grad == 2.0


def test_removed_hooks_are_not_called():
    calls = []
    x = Tensor(X.copy(), requires_grad=True)
    h1 = x.register_hook(lambda g: calls.append("leaf"))
    y = x * 2
    h2 = y.register_hook(lambda g: calls.append("non-leaf"))
    h1.remove()
    h2.remove()
    h2.remove()  # (twice: nothing)
    y.sum().backward()
    assert calls == []
    np.testing.assert_allclose(x.grad, np.full(X.shape, 2.0))


def test_a_hook_may_remove_itself():
    calls = []
    x = Tensor(X.copy(), requires_grad=True)

    def once(g):
        calls.append(1)
        handle.remove()

    handle = x.register_hook(once)
    for _ in range(2):
        (x * 2).sum().backward()
    assert calls == [1]


def test_hook_errors():
    with pytest.raises(RuntimeError, match="does not require gradient"):
        Tensor(X).register_hook(lambda g: None)
    with pytest.raises(RuntimeError, match="does not require gradient"):
        Tensor(X).retain_grad()
    x = Tensor(X.copy(), requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: g[0])
    with pytest.raises(RuntimeError, match="keep the shape"):
        y.sum().backward()
    z = x * 2
    z.register_hook(lambda g: g.astype(np.float32))
    with pytest.raises(RuntimeError, match="dtype"):
        z.sum().backward()
    with pytest.raises(TypeError, match="callable"):
        x.register_hook(3)


# ---------------------------------------------------------------- retain_grad
def test_retain_grad_on_a_non_leaf_matches_torch_and_accumulates(torch):
    xd, xt = _pair(torch, X)
    wd, wt = _pair(torch, W)
    yd, ld = _graph(Tensor, xd, wd, retain=True)
    yt, lt = _graph(torch, xt, wt, retain=True)
    assert yd.retains_grad and yt.retains_grad and not xd.retains_grad
    ld.backward(retain_graph=True)
    lt.backward(retain_graph=True)
    np.testing.assert_allclose(yd.grad, yt.grad.numpy(), rtol=1e-12)
    ld.backward()
    lt.backward()
    np.testing.assert_allclose(yd.grad, yt.grad.numpy(), rtol=1e-12)  # accumulated over the two passes


def test_retain_grad_runs_after_the_tensors_hooks(torch):
    xd, xt = _pair(torch, X)
    wd, wt = _pair(torch, W)
    yd, ld = _graph(Tensor, xd, wd, retain=True)
    yt, lt = _graph(torch, xt, wt, retain=True)
    yd.register_hook(lambda g: g * 2)  # registered after retain_grad, run before it, as in PyTorch
    yt.register_hook(lambda g: g * 2)
    ld.backward()
    lt.backward()
    np.testing.assert_allclose(yd.grad, yt.grad.numpy(), rtol=1e-12)


def test_retain_grad_on_a_leaf_does_nothing_and_follows_an_in_place_change(torch):
    x = Tensor(X.copy(), requires_grad=True)
    x.retain_grad()
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad, np.full(X.shape, 2.0))
    xd, xt = _pair(torch, X)
    yd, yt = xd * 2, xt * 2
    yd.retain_grad()
    yt.retain_grad()
    yd *= 2.0  # (recording: y takes the new node; its retained gradient is its new value's, as PyTorch's)
    yt *= 2.0
    (yd * 3).sum().backward()
    (yt * 3).sum().backward()
    np.testing.assert_allclose(yd.grad, yt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=1e-12)


# ---------------------------------------------------------------- data parallelism keeps its overlap
def test_data_parallel_with_gradient_hooks_still_overlaps_and_averages_the_hooked_gradients():
    from test_data_parallel import _AllreduceSpy, make_data, make_mlp

    from distnn.distributed import DataParallel, simulate

    events = []

    def double(g):
        return g * 2

    def fn(comm):
        X, Y = make_data()
        model = make_mlp(1)
        model[0].weight.register_hook(double)
        if comm.rank == 0:
            model[0].weight.register_post_accumulate_grad_hook(lambda t: events.append("first layer ready"))
        spy = _AllreduceSpy(comm, lambda array: events.append("allreduce"))
        dp = DataParallel(model, spy, bucket_mb=0.0005, weight_by_samples=False)
        mine = np.arange(comm.rank, 8, comm.size)
        h = dp(distnn.Tensor(X[mine]))
        h.register_hook(lambda g: g * 1.0)  # (a non-leaf hook on the output: no effect on the values)
        F.cross_entropy(h, Y[mine]).backward()
        return {n: p.grad.copy() for n, p in model.named_parameters()}

    g0, g1 = simulate(2, fn)
    assert events.index("allreduce") < events.index("first layer ready")
    X, Y = make_data()
    model = make_mlp(1)
    F.cross_entropy(model(distnn.Tensor(X[:8])), Y[:8]).backward()
    for n, p in model.named_parameters():
        expected = p.grad * (2 if n == "0.weight" else 1)
        np.testing.assert_allclose(g0[n], expected, rtol=1e-12, atol=1e-15)
        assert np.array_equal(g0[n], g1[n])


# ---------------------------------------------------------------- Module forward hooks
def test_forward_hooks_change_inputs_and_outputs_like_torch(torch):
    def pre(module, args):
        return args[0] * 2  # (not a tuple: taken as the only argument)

    def post(module, args, output):
        return output + 1

    def post2(module, args, output):
        assert isinstance(args, tuple)
        return output * 10  # sees post's result

    lin = nn.Linear(4, 2, dtype=np.float64)
    ref = torch.nn.Linear(4, 2).double()
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(lin.weight.numpy()))
        ref.bias.copy_(torch.tensor(lin.bias.numpy()))
    handles = []
    for m in (lin, ref):
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
        handles.append(m.register_forward_hook(post2))
    out = lin(Tensor(X))
    expected = ref(torch.tensor(X)).detach().numpy()
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(out.numpy(), ((X * 2) @ lin.weight.numpy().T + lin.bias.numpy() + 1) * 10, rtol=1e-12)
    for h in handles:
        h.remove()
    np.testing.assert_allclose(lin(Tensor(X)).numpy(), X @ lin.weight.numpy().T + lin.bias.numpy(), rtol=1e-12)


def test_forward_hook_order_prepend_kwargs_and_none():
    calls = []

    class Add(nn.Module):
        def forward(self, x, y=0.0):
            calls.append("forward")
            return x + y

    m = Add()
    m.register_forward_hook(lambda mod, args, out: calls.append("post"))  # None: the output stays
    m.register_forward_hook(lambda mod, args, out: calls.append("post first"), prepend=True)
    m.register_forward_pre_hook(lambda mod, args: calls.append("pre"))
    m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"y": 5.0}), with_kwargs=True)
    m.register_forward_hook(lambda mod, args, kwargs, out: out * 2 if kwargs == {"y": 5.0} else None,
                            with_kwargs=True)
    out = m(Tensor(np.array(1.0)), y=1.0)
    assert calls == ["pre", "forward", "post first", "post"]
    assert out.item() == 12.0


def test_forward_hook_always_call_and_the_hooks_of_children():
    seen = []

    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    b = Boom()
    b.register_forward_hook(lambda m, a, out: seen.append(("always", out)), always_call=True)
    b.register_forward_hook(lambda m, a, out: seen.append("never"))
    with pytest.raises(ValueError, match="boom"):
        b(Tensor(X))
    assert seen == [("always", None)]
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    acts = {}
    model[1].register_forward_hook(lambda m, a, out: acts.setdefault("relu", out))  # feature extraction
    model(Tensor(X.astype(np.float32)))
    assert acts["relu"].shape == (3, 3) and (acts["relu"].numpy() >= 0).all()


# ---------------------------------------------------------------- Module conveniences
def test_double_then_a_float64_forward_and_back(torch):
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert model.double() is model
    assert all(t.dtype == np.float64 for t in list(model.parameters()) + list(model.buffers())
               if t.dtype.kind == "f")
    out = model(Tensor(X))
    assert out.dtype == np.float64
    out.sum().backward()
    assert all(p.grad.dtype == np.float64 for p in model.parameters())
    model.float()
    assert all(p.dtype == np.float32 and p.grad.dtype == np.float32 for p in model.parameters())
    assert model[1].num_batches_tracked.dtype == np.int64  # (integer buffers are left alone, as in PyTorch)


def test_get_submodule():
    model = nn.Sequential(nn.Linear(4, 3), nn.Sequential(nn.ReLU(), nn.Linear(3, 2)))
    assert model.get_submodule("") is model
    assert model.get_submodule("1.1") is model[1][1]
    assert model.get_submodule("0") is model[0]
    with pytest.raises(AttributeError, match="no submodule '7'"):
        model.get_submodule("1.7")
    with pytest.raises(AttributeError, match="'weight' of Linear .* is not an nn.Module"):
        model.get_submodule("0.weight")


def test_state_dict_keep_vars():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    kept = model.state_dict(keep_vars=True)
    plain = model.state_dict()
    assert list(kept) == list(plain)
    assert kept["0.weight"] is model[0].weight and kept["1.running_mean"] is model[1].running_mean
    assert all(isinstance(v, np.ndarray) for v in plain.values())


@pytest.mark.parametrize("case", ["base_through_view", "base_retained_twice", "view_through_base"])
def test_retain_grad_follows_a_change_through_a_view_or_base_as_in_pytorch(torch, case):
    # retain_grad() stayed on the old node when the tensor changed through a view (or a view through its base):
    # the retained gradient was the old value's ([2, 4, 3, 4] for y[:2] *= 2), counted twice after a second
    # retain_grad(), or lost (None) for the view
    def run(lib):
        tensor = lib.tensor
        x = tensor(np.arange(4.0), requires_grad=True)
        y = x * 1
        if case == "view_through_base":
            kept = y[1:3]
            kept.retain_grad()
            y *= 2
            (kept * tensor(np.array([5.0, 7.0]))).sum().backward()
        else:
            y.retain_grad()
            u = y[0:2]
            u *= 2
            if case == "base_retained_twice":
                y.retain_grad()
            kept = y
            (y * tensor(np.array([1.0, 2.0, 3.0, 4.0]))).sum().backward()
        grad = kept.grad
        return None if grad is None else np.array(grad.numpy() if lib is torch else grad), np.array(
            x.grad.numpy() if lib is torch else x.grad)

    (rg, rx), (og, ox) = run(torch), run(distnn)
    assert og is not None
    np.testing.assert_allclose(og, rg)
    np.testing.assert_allclose(ox, rx)
