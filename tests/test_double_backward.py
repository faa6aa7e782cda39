"""Double backward (``create_graph=True``) against PyTorch: second derivatives of each covered op (float64
tight, float32 loose), third derivatives, the gradient penalty of WGAN-GP on a small critic, a MAML inner
step, and ``autograd.functional``'s hessian/hvp/vhp/jvp with their nesting. (gradgradcheck, refusals, hooks,
retain_graph: test_double_backward_api.py)"""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import Tensor, autograd
from distnn.autograd import functional as AF

R = np.random.default_rng(7)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)
A34 = R.standard_normal((3, 4))
B34 = R.standard_normal((3, 4))
B45 = R.standard_normal((4, 5))
POS = R.uniform(0.5, 2.0, (3, 4))
LABELS = np.array([2, 0, 3])


class _DistnnX:
    """The torch.* names the cases use, on distnn."""

    cat, stack, maximum, minimum, where = F.cat, F.stack, F.maximum, F.minimum, F.where

    @staticmethod
    def as_tensor(a):
        return Tensor(a)


def _lib(lib, torch):
    """(functional, namespace with maximum/where/cat/..., linalg) for distnn or torch."""
    if lib == "distnn":
        return F, _DistnnX, distnn.linalg
    return torch.nn.functional, torch, torch.linalg


# (name, f(F, X, L, *inputs) -> tensor, inputs). Kinks (relu at 0, abs at 0, clamp bounds) are avoided:
# random normal values never sit on them.
CASES = [
    ("add_broadcast", lambda F, X, L, a, b: (a * a + b[0]) * a, (A34, B34)),
    ("sub", lambda F, X, L, a, b: (a - b) * (a - 2.0 * b), (A34, B34)),
    ("mul", lambda F, X, L, a, b: a * b * a, (A34, B34)),
    ("div", lambda F, X, L, a, b: a / b + 3.0 / b, (A34, POS)),
    ("neg", lambda F, X, L, a: -(a * a * a), (A34,)),
    ("pow_scalar", lambda F, X, L, a: a ** 3 + a ** 2.5, (POS,)),
    ("pow_tensor", lambda F, X, L, a, b: a ** b, (POS, B34)),
    ("rpow", lambda F, X, L, a: 2.0 ** a, (A34,)),
    ("exp_log_sqrt", lambda F, X, L, a: a.exp() * a.log() + a.sqrt() * a, (POS,)),
    ("abs", lambda F, X, L, a: a.abs() * a, (A34,)),
    ("sin_cos", lambda F, X, L, a: a.sin() * a.cos() + a.sin() * a, (A34,)),
    ("matmul_2d", lambda F, X, L, a, b: (a @ b) * (a @ b), (A34, B45)),
    ("matmul_batched", lambda F, X, L, a, b: (a @ b).tanh(), (R.standard_normal((2, 3, 4)),
                                                                R.standard_normal((2, 4, 2)))),
    ("matmul_vector", lambda F, X, L, a, b: (a @ b) * (a @ b), (A34, R.standard_normal(4))),
    ("sum_mean_dims", lambda F, X, L, a: a.sum(1).unsqueeze(1) * a.mean(0).sum() + a.mean(1, keepdim=True) * a, (A34,)),
    ("shape_ops", lambda F, X, L, a: (a.reshape(4, 3).transpose(0, 1) * a).permute(1, 0).unsqueeze(0).squeeze(0)
     .view(12) * a.reshape(12), (A34,)),
    ("expand", lambda F, X, L, a, b: a[:1].expand(3, 4) * b * a, (A34, B34)),
    ("index", lambda F, X, L, a: a[1] * a[:, 2:].sum() + a[0, 1] * a, (A34,)),
    ("cat_stack", lambda F, X, L, a, b: X.cat([a * b, a], 0) * X.stack([a, b * a], 0).sum(0).sum(), (A34, B34)),
    ("max_min_clamp", lambda F, X, L, a, b: X.maximum(a, b) * X.minimum(a * a, b) + a.clamp(-0.5, 0.5) * a,
     (A34, B34)),
    ("where", lambda F, X, L, a, b: X.where(a.detach() > 0, a * a, b * a), (A34, B34)),
    ("tanh_sigmoid_relu", lambda F, X, L, a: a.tanh() * a.sigmoid() + a.relu() * a, (A34,)),
    ("leaky_softplus", lambda F, X, L, a: F.leaky_relu(a, 0.2) * a + F.softplus(a, beta=2.0) * a, (A34,)),
    ("gelu", lambda F, X, L, a: F.gelu(a) * a + F.gelu(a, approximate="tanh"), (A34,)),
    ("softmax", lambda F, X, L, a: a.softmax(dim=1) * a + a.log_softmax(dim=0) * a * a, (A34,)),
    ("linear", lambda F, X, L, x, w, b: F.linear(x, w, b).tanh(), (A34, R.standard_normal((5, 4)),
                                                                     R.standard_normal(5))),
    ("mse_loss", lambda F, X, L, a, b: F.mse_loss(a * a, b), (A34, B34)),
    ("cross_entropy", lambda F, X, L, a: F.cross_entropy(a * a, X.as_tensor(LABELS)), (A34,)),
    ("cross_entropy_none_4d", lambda F, X, L, a: F.cross_entropy(a, X.as_tensor(LABELS[:2].reshape(2, 1, 1).repeat(
        3, 1)), reduction="none") * a.sum(), (R.standard_normal((2, 4, 3, 1)),)),
    ("cross_entropy_weighted_smoothing", lambda F, X, L, a: F.cross_entropy(
        a * a, X.as_tensor(LABELS), weight=X.as_tensor(np.array([1.0, 2.0, 0.5, 1.5])).to(a.dtype), label_smoothing=0.1,
        ignore_index=0), (A34,)),
    ("norm", lambda F, X, L, a: (a.norm(2, dim=1) * a.sum()).sum() + a.norm() + (L.vector_norm(a, 2, dim=0) * a[0])
     .sum() + L.vector_norm(a, 1) + (L.vector_norm(a, 2, dim=1, keepdim=True) * a).sum(), (A34,)),
]


def _run(lib, torch, fn, arrays, dtype, order=2):
    """The first ``order`` derivatives of sum(fn(inputs) * u) with respect to the inputs, each reduced along
    a fixed direction (so every step is a scalar function of the inputs), as numpy arrays."""
    Fm, X, L = _lib(lib, torch)
    if lib == "distnn":
        ins = [Tensor(a.astype(dtype), requires_grad=True) for a in arrays]
        grad = autograd.grad
    else:
        ins = [torch.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
        grad = torch.autograd.grad
    out = fn(Fm, X, L, *ins)
    u = np.random.default_rng(3).standard_normal(tuple(out.shape)).astype(dtype)
    y = (out * (Tensor(u) if lib == "distnn" else torch.tensor(u))).sum()
    results = []
    for k in range(order):
        gs = grad(y, ins, create_graph=k + 1 < order, allow_unused=True)
        results.append([None if g is None else (g.data.copy() if lib == "distnn" else g.detach().numpy().copy())
                        for g in gs])
        if k + 1 < order:
            y = sum(((g * g).sum() if g is not None else 0.0) for g in gs)  # a scalar that depends on every input
    return results


def _compare(ours, theirs, rtol, atol, noise_eps=0):
    """Each derivative within ``atol + rtol * |theirs|``; ``noise_eps`` adds ``noise_eps * eps * max|theirs|`` to
    atol (eps of the arrays' dtype), for entries that are sums of terms as large as the largest entry."""
    for level, (a_list, b_list) in enumerate(zip(ours, theirs)):
        for i, (a, b) in enumerate(zip(a_list, b_list)):
            if a is None or b is None:
                # PyTorch may give zeros where distnn's graph has no path (e.g. a piecewise-constant factor)
                other = b if a is None else a
                assert other is None or not np.any(other), f"derivative {level + 1}, input {i}: one is None"
                continue
            tol = atol + (noise_eps * np.finfo(b.dtype).eps * float(np.nanmax(np.abs(b), initial=0.0)) if noise_eps
                          else 0.0)  # (nanmax: derivatives may hold NaN where PyTorch's do too)
            np.testing.assert_allclose(a, b, rtol=rtol, atol=tol, err_msg=f"derivative {level + 1}, input {i}")


def assert_second_derivatives_match(torch, fn, arrays, f64=(1e-10, 1e-11), f32=(2e-3, 5e-4)):
    """distnn's first and second derivatives of ``fn`` equal torch's: float64 tightly, float32 loosely
    (``(rtol, atol)`` each); the body of every ``test_second_derivatives_match_torch``."""
    for dtype, (rtol, atol) in ((np.float64, f64), (np.float32, f32)):
        ours, theirs = _run("distnn", torch, fn, arrays, dtype), _run("torch", torch, fn, arrays, dtype)
        _compare(ours, theirs, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_second_derivatives_match_torch(torch, name, fn, arrays):
    assert_second_derivatives_match(torch, fn, arrays, f64=(1e-10, 1e-11), f32=(2e-3, 2e-4))


@pytest.mark.parametrize("name", ["mul", "exp_log_sqrt", "sin_cos", "tanh_sigmoid_relu", "softmax", "matmul_2d",
                                  "gelu", "cross_entropy", "norm", "div", "pow_tensor"])
def test_third_derivatives_match_torch(torch, name):
    _, fn, arrays = next(c for c in CASES if c[0] == name)
    _compare(_run("distnn", torch, fn, arrays, np.float64, order=3),
             _run("torch", torch, fn, arrays, np.float64, order=3), rtol=1e-9, atol=1e-10)


def test_third_derivative_of_a_scalar_function(torch):
    x0 = 0.7
    out = []
    for lib in ("distnn", "torch"):
        x = Tensor(np.array(x0), requires_grad=True) if lib == "distnn" else torch.tensor(x0, dtype=torch.float64,
                                                                                         requires_grad=True)
        grad = autograd.grad if lib == "distnn" else torch.autograd.grad
        y = x.sin() * x.exp() + x ** 4
        d1, = grad(y, x, create_graph=True)
        d2, = grad(d1, x, create_graph=True)
        d3, = grad(d2, x)
        out.append(float(d3.data if lib == "distnn" else d3.detach()))
    exact = -2 * np.sin(x0) * np.exp(x0) + 2 * np.cos(x0) * np.exp(x0) + 24 * x0  # d^3/dx^3 of sin(x)e^x + x^4
    assert out[0] == pytest.approx(out[1], rel=1e-13)
    assert out[0] == pytest.approx(exact, rel=1e-13)


# ---------------------------------------------------------------- models: WGAN-GP, MAML
def _critic_params(rng):
    return [rng.standard_normal((8, 3)) * 0.7, rng.standard_normal(8) * 0.1, rng.standard_normal((1, 8)) * 0.7,
            rng.standard_normal(1) * 0.1]


def _wgan_gp(lib, torch, params, real, fake, eps):
    """The critic loss of WGAN-GP: D(fake) - D(real) + 10 (|grad_x D(x_hat)| - 1)^2, mean over the batch."""
    Fm = F if lib == "distnn" else torch.nn.functional
    T = (lambda a, g=False: Tensor(a.copy(), requires_grad=g)) if lib == "distnn" else \
        (lambda a, g=False: torch.tensor(a.copy(), requires_grad=g))
    grad = autograd.grad if lib == "distnn" else torch.autograd.grad
    w1, b1, w2, b2 = (T(p, True) for p in params)

    def critic(x):
        return Fm.linear(Fm.leaky_relu(Fm.linear(x, w1, b1), 0.2), w2, b2)

    x_hat = T(eps * real + (1 - eps) * fake, True)
    g, = grad(critic(x_hat).sum(), x_hat, create_graph=True)
    penalty = ((g.norm(2, dim=1) - 1) ** 2).mean()
    loss = critic(T(fake)).mean() - critic(T(real)).mean() + 10.0 * penalty
    loss.backward()
    to_np = (lambda t: t.grad) if lib == "distnn" else (lambda t: t.grad.numpy())
    return float(loss.data if lib == "distnn" else loss.detach()), [to_np(p) for p in (w1, b1, w2, b2)]


def test_wgan_gp_penalty_gradients_match_torch(torch):
    rng = np.random.default_rng(11)
    params = _critic_params(rng)
    real, fake, eps = rng.standard_normal((6, 3)), rng.standard_normal((6, 3)), rng.uniform(size=(6, 1))
    loss_d, grads_d = _wgan_gp("distnn", torch, params, real, fake, eps)
    loss_t, grads_t = _wgan_gp("torch", torch, params, real, fake, eps)
    assert loss_d == pytest.approx(loss_t, rel=1e-12)
    for gd, gt in zip(grads_d, grads_t):
        np.testing.assert_allclose(gd, gt, rtol=1e-10, atol=1e-12)


def test_penalty_alone_gives_zero_not_none_where_torch_does(torch):
    """The penalty depends on the first bias only through leaky_relu's mask: PyTorch gives it a zero gradient
    (not None), and so does distnn; the last bias gets None in both."""
    rng = np.random.default_rng(12)
    params = _critic_params(rng)
    x0 = rng.standard_normal((4, 3))
    got = {}
    for lib in ("distnn", "torch"):
        T = (lambda a: Tensor(a.copy(), requires_grad=True)) if lib == "distnn" else \
            (lambda a: torch.tensor(a.copy(), requires_grad=True))
        Fm = F if lib == "distnn" else torch.nn.functional
        grad = autograd.grad if lib == "distnn" else torch.autograd.grad
        w1, b1, w2, b2 = (T(p) for p in params)
        x = T(x0)
        g, = grad(Fm.linear(Fm.leaky_relu(Fm.linear(x, w1, b1), 0.2), w2, b2).sum(), x, create_graph=True)
        ((g.norm(2, dim=1) - 1) ** 2).mean().backward()
        got[lib] = [None if p.grad is None else np.asarray(p.grad if lib == "distnn" else p.grad.numpy())
                    for p in (w1, b1, w2, b2)]
    assert got["distnn"][1] is not None and not np.any(got["distnn"][1]) and not np.any(got["torch"][1].any())
    assert got["distnn"][3] is None and got["torch"][3] is None
    for a, b in zip(got["distnn"], got["torch"]):
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_maml_inner_step_matches_torch(torch):
    """w' = w - lr * grad(loss(w), w, create_graph=True); the outer loss at w' backpropagates to w through
    the inner gradient (second-order MAML)."""
    rng = np.random.default_rng(13)
    w0, b0 = rng.standard_normal((2, 3)), rng.standard_normal(2)
    xs, ys = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    xq, yq = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    out = {}
    for lib in ("distnn", "torch"):
        T = (lambda a, g=False: Tensor(a.copy(), requires_grad=g)) if lib == "distnn" else \
            (lambda a, g=False: torch.tensor(a.copy(), requires_grad=g))
        Fm = F if lib == "distnn" else torch.nn.functional
        grad = autograd.grad if lib == "distnn" else torch.autograd.grad
        w, b = T(w0, True), T(b0, True)

        def loss(w_, b_, x, y):
            return Fm.mse_loss(Fm.linear(x, w_, b_).tanh(), T(y))

        gw, gb = grad(loss(w, b, T(xs), ys), (w, b), create_graph=True)
        w1, b1 = w - 0.1 * gw, b - 0.1 * gb
        gw2, gb2 = grad(loss(w1, b1, T(xs), ys), (w1, b1), create_graph=True)  # a second inner step
        w2, b2 = w1 - 0.1 * gw2, b1 - 0.1 * gb2
        outer = loss(w2, b2, T(xq), yq)
        outer.backward()
        out[lib] = [np.asarray(w.grad if lib == "distnn" else w.grad.numpy()),
                    np.asarray(b.grad if lib == "distnn" else b.grad.numpy())]
    for a, b in zip(out["distnn"], out["torch"]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- autograd.functional
def _f1(x):
    return (x.exp() * x.sin()).sum() + (x * x * x).sum() * x[0]


def _f2(x, y):
    return (y @ x.tanh()).sum() * x.sum() + (y * y * y).sum() * (x * x).sum()


def _nested(a, b, rtol=1e-11):
    if isinstance(b, tuple):
        assert isinstance(a, tuple) and len(a) == len(b)
        for u, v in zip(a, b):
            _nested(u, v, rtol)
    else:
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("create_graph", [False, True])
def test_hessian_matches_torch(torch, create_graph):
    x, y = R.standard_normal(3), R.standard_normal((2, 3))
    _nested(AF.hessian(_f1, Tensor(x.copy()), create_graph=create_graph),
            torch.autograd.functional.hessian(_f1, torch.tensor(x)))
    _nested(AF.hessian(_f1, (Tensor(x.copy()),)), torch.autograd.functional.hessian(_f1, (torch.tensor(x),)))
    _nested(AF.hessian(_f2, (Tensor(x.copy()), Tensor(y.copy())), create_graph=create_graph),
            torch.autograd.functional.hessian(_f2, (torch.tensor(x), torch.tensor(y))))
    # a linear function: zeros (no graph behind its gradient)
    _nested(AF.hessian(lambda a: (a * 2.0).sum(), Tensor(x.copy())),
            torch.autograd.functional.hessian(lambda a: (a * 2.0).sum(), torch.tensor(x)))


def test_hessian_create_graph_is_differentiable(torch):
    """With create_graph=True the Hessian stays in the graph of the caller's inputs: its sum differentiates
    to the third derivatives."""
    x = R.standard_normal(3)
    xd, xt = Tensor(x.copy(), requires_grad=True), torch.tensor(x.copy(), requires_grad=True)
    hd = AF.hessian(_f1, xd, create_graph=True)
    ht = torch.autograd.functional.hessian(_f1, xt, create_graph=True)
    assert hd.requires_grad
    hd.sum().backward()
    ht.sum().backward()
    np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=1e-11)


@pytest.mark.parametrize("name", ["hvp", "vhp"])
def test_hvp_vhp_match_torch(torch, name):
    x, y = R.standard_normal(3), R.standard_normal((2, 3))
    vx, vy = R.standard_normal(3), R.standard_normal((2, 3))
    ours, theirs = getattr(AF, name), getattr(torch.autograd.functional, name)
    _nested(ours(_f1, Tensor(x.copy()), Tensor(vx.copy())), theirs(_f1, torch.tensor(x), torch.tensor(vx)))
    _nested(ours(_f2, (Tensor(x.copy()), Tensor(y.copy())), (Tensor(vx.copy()), Tensor(vy.copy()))),
            theirs(_f2, (torch.tensor(x), torch.tensor(y)), (torch.tensor(vx), torch.tensor(vy))))
    with pytest.raises(RuntimeError, match="should return a single Tensor"):
        ours(lambda a: (a.sum(), a.sum()), Tensor(x.copy()), Tensor(vx.copy()))
    with pytest.raises(RuntimeError, match="should contain a single element"):
        ours(lambda a: a * 2.0, Tensor(x.copy()), Tensor(vx.copy()))
    with pytest.raises(RuntimeError, match="v can only be None if the input"):
        ours(_f1, Tensor(x.copy()))
    with pytest.raises(RuntimeError, match="v has invalid size"):
        ours(_f1, Tensor(x.copy()), Tensor(np.ones(4)))


def test_jvp_matches_torch(torch):
    x, y = R.standard_normal(3), R.standard_normal((2, 3))
    vx, vy = R.standard_normal(3), R.standard_normal((2, 3))

    def g(a, b):
        return (b @ a.exp()).tanh(), a * b.sum()

    _nested(AF.jvp(lambda a: a.sin() * a.sum(), Tensor(x.copy()), Tensor(vx.copy())),
            torch.autograd.functional.jvp(lambda a: a.sin() * a.sum(), torch.tensor(x), torch.tensor(vx)))
    _nested(AF.jvp(g, (Tensor(x.copy()), Tensor(y.copy())), (Tensor(vx.copy()), Tensor(vy.copy()))),
            torch.autograd.functional.jvp(g, (torch.tensor(x), torch.tensor(y)), (torch.tensor(vx),
                                                                                  torch.tensor(vy))))
    one = np.array([0.3])
    _nested(AF.jvp(lambda a: a.exp() * 3.0, Tensor(one.copy())),
            torch.autograd.functional.jvp(lambda a: a.exp() * 3.0, torch.tensor(one)))


def test_vjp_and_jacobian_create_graph(torch):
    x = R.standard_normal(3)
    for lib in ("distnn", "torch"):
        xin = Tensor(x.copy(), requires_grad=True) if lib == "distnn" else torch.tensor(x.copy(), requires_grad=True)
        fun = torch.autograd.functional if lib == "torch" else AF
        _, vj = fun.vjp(lambda a: a.exp() * a, xin, xin * 1.0, create_graph=True)
        jac = fun.jacobian(lambda a: a.sin() * a.sum(), xin, create_graph=True)
        (vj.sum() + (jac * jac).sum()).backward()
        if lib == "distnn":
            ours = xin.grad.copy()
        else:
            np.testing.assert_allclose(ours, xin.grad.numpy(), rtol=1e-11)
