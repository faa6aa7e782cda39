"""Module.register_full_backward_hook / register_full_backward_pre_hook against PyTorch: the same model
(copied weights, float64) with the same hooks recording what they receive; replacement by returned tuples;
firing order on nested modules; several and non-grad inputs, tuple outputs; refusals; DataParallel."""
import warnings

import numpy as np
import pytest

import distnn
import distnn.functional as F
import distnn.nn as nn
from distnn import Tensor

from oracle_checks import close
from torch_twins import copy_torch_weights

RNG = np.random.default_rng(7)
X = RNG.standard_normal((5, 4))
Y = RNG.standard_normal((5, 4))


def _arr(g):
    return None if g is None else (g.detach().numpy() if hasattr(g, "detach") else g.numpy()).copy()


def _recorder(log, name):
    def pre(module, grad_output):
        log.append((name, "pre", [_arr(g) for g in grad_output]))

    def full(module, grad_input, grad_output):
        log.append((name, "full", [_arr(g) for g in grad_input], [_arr(g) for g in grad_output]))

    return pre, full


def _same_logs(ours, theirs):
    assert [e[:2] for e in ours] == [e[:2] for e in theirs]
    for a, b in zip(ours, theirs):
        for xs, ys in zip(a[2:], b[2:]):
            assert len(xs) == len(ys), (a[:2], len(xs), len(ys))
            for x, y in zip(xs, ys):
                assert (x is None) == (y is None), (a[:2], x, y)
                if x is not None:
                    close(x, y, f"{a[:2]}")


def _block(lib):
    """Two inputs (the second needs no gradient), a non-Tensor argument, a tuple output with an unused
    Tensor, a Tensor that needs no gradient and an int: PyTorch's None / zeros rules all show."""
    base = lib.Module

    class Block(base):
        def __init__(self):
            super().__init__()
            self.lin = lib.Linear(4, 4).double()

        def forward(self, x, y, scale, z):
            a = self.lin(x) * scale
            return a.tanh() + y, (a * z).sum(1), (y * 2).sum(), 5

    return Block()


def _twins(torch):
    """(distnn model, torch model) with the same weights: Linear -> Tanh -> Block."""
    def build(lib):
        return lib.Linear(4, 4).double(), lib.Tanh(), _block(lib)
    ours, theirs = build(nn), build(torch.nn)
    for mo, mt in zip(ours, theirs):
        copy_torch_weights(mt, mo)
    return ours, theirs


def _run(mods, lib_tensor, x, y, z):
    lin, act, block = mods
    h = act(lin(x))
    out, unused, nograd, five = block(h, y, 2.0, z)
    assert five == 5
    return (out * out).sum()


def _hook_all(mods, log):
    names = ["lin", "act", "block", "block.lin"]
    handles = []
    for name, m in zip(names, (*mods, mods[2].lin)):
        pre, full = _recorder(log, name)
        handles += [m.register_full_backward_pre_hook(pre), m.register_full_backward_hook(full)]
    return handles


def _inputs(torch):
    ours = (Tensor(X.copy(), requires_grad=True), Tensor(Y.copy()), Tensor(X[0].copy(), requires_grad=True))
    theirs = (torch.tensor(X, requires_grad=True), torch.tensor(Y), torch.tensor(X[0], requires_grad=True))
    return ours, theirs


def test_hooks_receive_what_torch_hooks_receive_in_the_same_order(torch):
    ours, theirs = _twins(torch)
    log_d, log_t = [], []
    _hook_all(ours, log_d)
    _hook_all(theirs, log_t)
    (xd, yd, zd), (xt, yt, zt) = _inputs(torch)
    _run(ours, Tensor, xd, yd, zd).backward()
    _run(theirs, torch.tensor, xt, yt, zt).backward()
    # nested: the block's pre-hook, then its inner Linear's hooks, then the block's full hook, ...
    assert [e[:2] for e in log_t][:4] == [("block", "pre"), ("block.lin", "pre"), ("block.lin", "full"),
                                           ("block", "full")]
    _same_logs(log_d, log_t)
    close(xd.grad, xt.grad.numpy(), "x.grad")
    close(zd.grad, zt.grad.numpy(), "z.grad (unused by the loss: zeros, as PyTorch's)")


def test_returned_tuples_replace_the_gradients_as_in_torch(torch):
    ours, theirs = _twins(torch)
    for mods in (ours, theirs):
        mods[0].register_full_backward_pre_hook(lambda m, go: (go[0] * 3,))
        mods[2].register_full_backward_hook(lambda m, gi, go: (gi[0] * -2, None, None, gi[3] + 1))
        mods[2].lin.register_full_backward_pre_hook(lambda m, go: (go[0] * 0.5,))
    (xd, yd, zd), (xt, yt, zt) = _inputs(torch)
    _run(ours, Tensor, xd, yd, zd).backward()
    _run(theirs, torch.tensor, xt, yt, zt).backward()
    for mo, mt in zip(ours, theirs):
        for (n, p), (_, q) in zip(mo.named_parameters(), mt.named_parameters()):
            close(p.grad, q.grad.numpy(), n)
    close(xd.grad, xt.grad.numpy(), "x.grad")
    close(zd.grad, zt.grad.numpy(), "z.grad")


def test_module_called_twice_fires_twice_and_remove_and_prepend(torch):
    def run(lib, tensor):
        lin = lib.Linear(3, 3).double()
        with_weights = np.arange(9.0).reshape(3, 3) / 10
        log = []
        if lib is nn:
            lin.weight.data[...] = with_weights
            lin.bias.data[...] = 0.1
        else:
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(with_weights))
                lin.bias.fill_(0.1)
        lin.register_full_backward_hook(lambda m, gi, go: log.append(("a", _arr(gi[0]), _arr(go[0]))))
        lin.register_full_backward_hook(lambda m, gi, go: log.append(("first", _arr(gi[0]), _arr(go[0]))),
                                        prepend=True)
        gone = lin.register_full_backward_hook(lambda m, gi, go: log.append(("removed",)))
        lin.register_full_backward_pre_hook(lambda m, go: log.append(("pre2", _arr(go[0]))))
        lin.register_full_backward_pre_hook(lambda m, go: log.append(("pre1", _arr(go[0]))), prepend=True)
        gone.remove()
        gone.remove()  # (again: nothing happens)
        x = tensor(X[:, :3].copy(), requires_grad=True)
        (lin(lin(x)) ** 2).sum().backward()
        return log

    ours, theirs = run(nn, Tensor), run(torch.nn, torch.tensor)
    assert [e[0] for e in ours] == [e[0] for e in theirs] == ["pre1", "pre2", "first", "a"] * 2
    for a, b in zip(ours, theirs):
        for x, y in zip(a[1:], b[1:]):
            close(x, y, a[0])


def test_inputs_without_grad_fire_with_the_output_gradients_and_all_none(torch):
    for lib, tensor in ((nn, Tensor), (torch.nn, torch.tensor)):
        seen = []
        lin = lib.Linear(4, 2).double()
        lin.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go[0].shape)))
        with pytest.warns(UserWarning, match="no inputs require gradients"):
            lin(tensor(X.copy())).sum().backward()
        assert seen == [((None,), tuple(seen[0][1]))] and tuple(seen[0][1]) == (5, 2)
        lin.register_full_backward_hook(lambda m, gi, go: (gi[0],))  # (None: fine)
        lin.register_full_backward_hook(lambda m, gi, go: (Tensor(np.ones((5, 4))),))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(RuntimeError, match="no input requires gradient should always return None"):
                lin(tensor(X.copy())).sum().backward()


def test_outputs_without_grad_fire_nothing_and_a_list_output_warns(torch):
    class Detached(nn.Module):
        def forward(self, x):
            return x.detach() * 2, [x * 2]

    seen = []
    m = Detached()
    m.register_full_backward_hook(lambda *a: seen.append(a))
    x = Tensor(X.copy(), requires_grad=True)
    with pytest.warns(UserWarning, match="should be a Tensor or a tuple of Tensors"):
        m.forward = lambda x: [x * 2]
        m(x)[0].sum().backward()
    del m.forward
    out, _ = m(x)
    assert not out.requires_grad and seen == []
    with distnn.no_grad():
        assert not m(x)[1][0].requires_grad


def test_refusals_match_torch(torch):
    lin_d, lin_t = nn.Linear(4, 2).double(), torch.nn.Linear(4, 2).double()
    with pytest.raises(TypeError, match="must be callable"):
        lin_d.register_full_backward_hook(3)
    with pytest.raises(TypeError, match="must be callable"):
        lin_d.register_full_backward_pre_hook("nope")
    lin_t.register_full_backward_hook(3)  # (PyTorch: TypeError only at backward)
    with pytest.raises(TypeError):
        lin_t(torch.tensor(X, requires_grad=True)).sum().backward()
    for lib, tensor in ((nn, Tensor), (torch.nn, torch.tensor)):
        for register, hook, msg in (
                ("register_full_backward_hook", lambda m, gi, go: (gi[0], gi[0]),
                 "Backward hook returned an invalid number of grad_input, got 2, but expected 1"),
                ("register_full_backward_pre_hook", lambda m, go: (go[0], go[0]),
                 "Backward pre hook returned an invalid number of grad_output, got 2, but expected 1"),
                ("register_full_backward_hook", lambda m, gi, go: (gi[0][:2],), "has changed the size of value")):
            lin = lib.Linear(4, 2).double()
            getattr(lin, register)(hook)
            with pytest.raises(RuntimeError, match=msg):
                lin(tensor(X.copy(), requires_grad=True)).sum().backward()
        lin = lib.Linear(4, 2).double()
        lin.register_full_backward_hook(lambda *a: None)
        with pytest.raises(RuntimeError, match="modified inplace"):
            out = lin(tensor(X.copy(), requires_grad=True))
            out += 1
        with pytest.raises(RuntimeError, match="modified inplace"):
            out = lin(tensor(X.copy(), requires_grad=True))
            out[0] *= 2
    with pytest.raises(NotImplementedError, match="register_full_backward_hook"):
        lin_d.register_backward_hook(lambda m, gi, go: None)


def test_recorded_gradients_are_not_changed_by_later_accumulation():
    # a leaf input may adopt the array a hook was shown only when the hook kept no reference to it
    kept = []
    lin = nn.Linear(4, 2).double()
    lin.register_full_backward_hook(lambda m, gi, go: kept.append(gi[0]))
    x = Tensor(X.copy(), requires_grad=True)
    lin(x).sum().backward()
    first = kept[0].numpy().copy()
    lin(x).sum().backward()
    np.testing.assert_array_equal(kept[0].numpy(), first)
    np.testing.assert_allclose(x.grad, 2 * first)


def test_a_module_without_backward_hooks_takes_the_plain_call():
    lin = nn.Linear(4, 2)
    assert not lin._forward_hooked
    y = lin(Tensor(X.astype(np.float32), requires_grad=True))
    assert type(y.grad_fn).__name__ != "_Pass"
    lin.register_full_backward_pre_hook(lambda m, go: None).remove()
    assert type(lin(Tensor(X.astype(np.float32), requires_grad=True)).grad_fn).__name__ != "_Pass"


def test_backward_hooks_fire_on_every_rank_of_a_data_parallel_model():
    from test_data_parallel import make_data, make_mlp

    from distnn.distributed import DataParallel, simulate

    def fn(comm):
        X_, Y_ = make_data()
        model = make_mlp(1)
        seen = []
        model[2].register_full_backward_hook(
            lambda m, gi, go: seen.append((gi[0].numpy().copy(), go[0].numpy().copy())))
        dp = DataParallel(model, comm, weight_by_samples=False)
        mine = np.arange(comm.rank, 8, comm.size)
        F.cross_entropy(dp(Tensor(X_[mine])), Y_[mine]).backward()
        return seen, {n: p.grad.copy() for n, p in model.named_parameters()}

    results = simulate(2, fn)
    X_, Y_ = make_data()
    model = make_mlp(1)
    F.cross_entropy(model(Tensor(X_[:8])), Y_[:8]).backward()
    for rank, (seen, grads) in enumerate(results):
        assert len(seen) == 1 and seen[0][0].shape[0] == seen[0][1].shape[0] == len(np.arange(rank, 8, 2))
        for n, p in model.named_parameters():
            np.testing.assert_allclose(grads[n], p.grad, rtol=1e-12, atol=1e-15)
