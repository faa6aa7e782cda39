"""Double backward (``create_graph=True``) of the ops added after the CNN set of test_double_backward_nn.py: 3-D
max/average pooling, LP pooling, fold/unfold, local_response_norm, sinc, logit and modules with full backward
hooks. Second derivatives (and third, where cheap) against PyTorch's, float64 tight and float32 loose, plus
gradgradcheck. Each of these was refused by name before."""
import warnings

import numpy as np
import pytest

import distnn.functional as F
import distnn.nn as nn
from distnn import Tensor, autograd
from test_double_backward import _compare, _run, assert_second_derivatives_match

RNG = np.random.default_rng(27)


def _n(*shape):
    return RNG.standard_normal(shape)


X5 = _n(2, 3, 5, 4, 6)
X4 = _n(2, 4, 6, 7)
X3 = _n(2, 3, 9)
P34 = RNG.uniform(0.05, 0.95, (3, 4))

# (name, f(F, X, L, *inputs) -> tensor, inputs), each op fed or followed by a nonlinear function (see
# test_double_backward_nn.py)
CASES = [
    ("max_pool3d", lambda F, X, L, x: F.max_pool3d(x.tanh(), 2) ** 2, (X5,)),
    ("max_pool3d_overlap_pad_dilation_ceil", lambda F, X, L, x: F.max_pool3d(
        x * x, (3, 2, 2), (2, 1, 2), (1, 0, 1), dilation=(1, 2, 1), ceil_mode=True) * x[:, :, :1, :1, :1].sum(),
     (X5,)),
    ("avg_pool3d", lambda F, X, L, x: F.avg_pool3d(x * x, 2) ** 2, (X5,)),
    ("avg_pool3d_pad_ceil_exclude", lambda F, X, L, x: F.avg_pool3d(
        x * x, 3, 2, 1, ceil_mode=True, count_include_pad=False) ** 2, (X5,)),
    ("avg_pool3d_divisor", lambda F, X, L, x: F.avg_pool3d(x.tanh(), (2, 3, 2), 1, divisor_override=5) ** 2, (X5,)),
    ("lp_pool1d", lambda F, X, L, x: F.lp_pool1d(x, 2, 3, 2) ** 2, (X3,)),
    ("lp_pool2d_p3_ceil", lambda F, X, L, x: F.lp_pool2d(x * x + 0.1, 3, (2, 3), ceil_mode=True).tanh(), (X4,)),
    ("lp_pool2d_p1_5", lambda F, X, L, x: F.lp_pool2d(x * x + 0.1, 1.5, 2) ** 2, (X4,)),
    ("lp_pool3d", lambda F, X, L, x: F.lp_pool3d(x, 2, (2, 2, 3), 1).tanh(), (X5,)),
    ("unfold", lambda F, X, L, x: F.unfold(x * x, (2, 3), dilation=(2, 1), padding=1, stride=(1, 2)) ** 2, (X4,)),
    ("fold", lambda F, X, L, c: F.fold(c * c, (5, 6), (2, 3), padding=(1, 0), stride=(2, 1)) ** 2,
     (_n(2, 12, 12),)),
    ("fold_unbatched", lambda F, X, L, c: F.fold(c.tanh(), (4, 4), 2, dilation=2) ** 2, (_n(8, 4),)),
    ("local_response_norm", lambda F, X, L, x: F.local_response_norm(x, 3, alpha=0.5, beta=0.75, k=1.5).tanh(),
     (X4,)),
    ("local_response_norm_wide_3d", lambda F, X, L, x: F.local_response_norm(x * x, 6, alpha=0.3, k=2.0) ** 2,
     (X3,)),
    ("sinc", lambda F, X, L, x: x.sinc() * x, (_n(3, 4) * 1.5,)),
    ("logit", lambda F, X, L, x: x.logit() * x, (P34,)),
    ("logit_eps", lambda F, X, L, x: x.logit(0.2) * x, (P34,)),
]


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_second_derivatives_match_torch(torch, name, fn, arrays):
    assert_second_derivatives_match(torch, fn, arrays, f64=(1e-10, 1e-11), f32=(2e-3, 5e-4))


@pytest.mark.parametrize("name", ["max_pool3d", "avg_pool3d_pad_ceil_exclude", "lp_pool2d_p3_ceil", "lp_pool3d",
                                  "unfold", "fold", "local_response_norm", "sinc", "logit_eps"])
def test_third_derivatives_match_torch(torch, name):
    _, fn, arrays = next(c for c in CASES if c[0] == name)
    _compare(_run("distnn", torch, fn, arrays, np.float64, order=3),
             _run("torch", torch, fn, arrays, np.float64, order=3), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("fn,shapes", [
    (lambda x, w: F.max_pool3d(x * w.sum(), 2, 1), [(1, 2, 3, 3, 2), (2,)]),
    (lambda x, w: F.avg_pool3d(x * w.sum(), 2, 1, 1, count_include_pad=False), [(1, 1, 3, 2, 3), (2,)]),
    (lambda x, w: F.lp_pool2d(x * w.sum(), 2, 2), [(1, 2, 4, 4), (2,)]),
    (lambda x, w: F.fold(F.unfold(x, 2) * w.sum(), (3, 4), 2), [(1, 2, 3, 4), (2,)]),
    (lambda x, w: F.local_response_norm(x * w.sum(), 2, alpha=0.5), [(2, 3, 2), (2,)]),
    (lambda x, w: (x * w).sinc() + (x * 0.3 + 0.5).logit(), [(2, 3), (3,)]),
])
def test_gradgradcheck(fn, shapes):
    rng = np.random.default_rng(11)
    inputs = tuple(Tensor(rng.uniform(-1, 1, s), requires_grad=True) for s in shapes)
    assert autograd.gradcheck(fn, inputs) is True
    assert autograd.gradgradcheck(fn, inputs) is True


# ---------------------------------------------------------------- modules with full backward hooks
def _hooked_penalty(lib, torch, replace):
    """A gradient penalty through Sequential(Linear, Tanh, Linear) with a full backward hook on the first
    Linear and a pre-hook on the second (``replace``: they scale the gradients they see), PyTorch's weights;
    returns per pass the hooks' (name, requires_grad of each gradient) and the gradient, x's and the
    parameters' second derivatives."""
    rng = np.random.default_rng(12)
    tnn = torch.nn
    ref = tnn.Sequential(tnn.Linear(3, 4), tnn.Tanh(), tnn.Linear(4, 2)).double()
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape))))
    if lib == "torch":
        model, T, grad = ref, (lambda a: torch.tensor(a, requires_grad=True)), torch.autograd.grad
    else:
        model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
        for p, q in zip(model.parameters(), ref.parameters()):
            p.data = q.detach().numpy().copy()
        T, grad = (lambda a: Tensor(a, requires_grad=True)), autograd.grad
    calls = []

    def hook(module, gi, go):
        calls.append(("hook", [t.requires_grad for t in gi + go]))
        return (gi[0] * gi[0] * 0.5,) if replace else None

    def pre_hook(module, go):
        calls.append(("pre", [t.requires_grad for t in go]))
        return (go[0] * 3.0,) if replace else None

    model[0].register_full_backward_hook(hook)
    model[2].register_full_backward_pre_hook(pre_hook)
    x = T(rng.standard_normal((5, 3)))
    params = list(model.parameters())
    g, = grad((model(x) ** 2).sum(), x, create_graph=True)
    first = list(calls)
    calls.clear()
    seconds = grad((g.tanh() * g).sum(), [x] + params)
    arrays = [g] + list(seconds)
    return first, list(calls), [a.detach().numpy() if lib == "torch" else np.asarray(getattr(a, "data", a))
                                for a in arrays]


@pytest.mark.parametrize("replace", [False, True], ids=["observing", "replacing"])
def test_full_backward_hooks_under_create_graph_match_torch(torch, replace):
    """PyTorch runs a module's full backward hooks in a create_graph pass with gradients that require grad
    (what a hook returns stays in the graph), and again, without a graph, when the second pass goes back
    through the module: distnn's calls, gradients and second derivatives are PyTorch's."""
    first_d, second_d, ours = _hooked_penalty("distnn", torch, replace)
    first_t, second_t, theirs = _hooked_penalty("torch", torch, replace)
    assert first_d == first_t and second_d == second_t
    assert first_d == [("pre", [True]), ("hook", [True, True])]
    assert second_d == [("pre", [False]), ("hook", [False, False])]
    for i, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"result {i}")


@pytest.mark.parametrize("x_grad", [False, True], ids=["input_without_grad", "input_with_grad"])
def test_full_backward_hooks_under_create_graph_to_the_weights_only(torch, x_grad):
    """A penalty on the weights' gradient (create_graph=True to the weight alone): without an input needing a
    gradient the hook fires with the outputs' gradients (PyTorch's warning), in both passes; with one, only
    the pre-hook fires (the input's side is not on the way to the weight), as PyTorch's. The second
    derivatives are torch's."""
    rng = np.random.default_rng(13)
    X, W = rng.standard_normal((4, 3)), rng.standard_normal((2, 3))
    out = []
    for lib in ("distnn", "torch"):
        if lib == "torch":
            lin = torch.nn.Linear(3, 2, bias=False).double()
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(W))
            x, grad = torch.tensor(X, requires_grad=x_grad), torch.autograd.grad
        else:
            lin = nn.Linear(3, 2, bias=False)
            lin.weight.data = W.copy()
            x, grad = Tensor(X, requires_grad=x_grad), autograd.grad
        seen = []
        lin.register_full_backward_hook(lambda m, gi, go, seen=seen: seen.append(("hook", go[0].requires_grad)))
        lin.register_full_backward_pre_hook(lambda m, go, seen=seen: seen.append(("pre", go[0].requires_grad)))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gw, = grad((lin(x).tanh() ** 2).sum(), lin.weight, create_graph=True)
            hw, = grad((gw ** 2).sum(), lin.weight)
        warned = any("no inputs require gradients" in str(w.message) for w in caught)
        out.append((seen, warned, np.asarray(getattr(hw, "data", hw)) if lib == "distnn" else hw.numpy()))
    assert out[0][:2] == out[1][:2]
    if x_grad:
        assert out[0][:2] == ([("pre", True), ("pre", False)], False)
    else:
        assert out[0][:2] == ([("pre", True), ("hook", True), ("pre", False), ("hook", False)], True)
    np.testing.assert_allclose(out[0][2], out[1][2], rtol=1e-10, atol=1e-12)
