"""torch.func's differentiating transforms in distnn.func (grad, grad_and_value, vjp, jvp, linearize, jacrev,
jacfwd, hessian) against torch.func on the same inputs in float64: values, pytree nesting, argnums, has_aux,
composition (grad(grad), jacrev(jacrev), a closure over a tracked tensor) and torch's refusals.
(vmap, randomness, stack_module_state, functionalize: tests/test_func_vmap.py.)"""
import numpy as np
import pytest

import distnn
import distnn.nn as nn
from distnn import Tensor
from distnn import func as dfunc

TIGHT = dict(rtol=1e-11, atol=1e-12)
R = np.random.default_rng(7)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)
X = R.standard_normal((3,))
M = R.standard_normal((2, 3))


def _close(d, t):
    """distnn pytree ``d`` equals torch pytree ``t``: same nesting, shapes and values."""
    if isinstance(t, (tuple, list)):
        assert type(d) is type(t) and len(d) == len(t), (type(d), type(t))
        for u, v in zip(d, t):
            _close(u, v)
    elif isinstance(t, dict):
        assert isinstance(d, dict) and list(d) == list(t)
        for k in t:
            _close(d[k], t[k])
    else:
        assert isinstance(d, Tensor), type(d)
        assert tuple(d.shape) == tuple(t.shape)
        np.testing.assert_allclose(d.detach().numpy(), t.detach().numpy(), **TIGHT)


def _fns(lib):
    """The same functions written for distnn and for torch (``lib`` is the module)."""
    return {
        "sin": lambda x: lib.sin(x).sum(),
        "exp_matmul": lambda x, m: (lib.exp(lib.matmul(m, x)) * x.sum()).sum(),
        "tree": lambda p, x: (lib.tanh(lib.matmul(p["w"], x)) * p["b"][0]).sum() + (p["b"][1] ** 3).sum(),
    }


def _both(torch, *arrays):
    return [Tensor(a.copy()) for a in arrays], [torch.tensor(a.copy()) for a in arrays]


# ---------------------------------------------------------------------------------------------- grad
@pytest.mark.parametrize("argnums", [0, 1, (0, 1), (1, 0)])
def test_grad_and_value_as_torch(torch, argnums):
    (x, m), (tx, tm) = _both(torch, X, M)
    f, tf = _fns(distnn)["exp_matmul"], _fns(torch)["exp_matmul"]
    g, v = dfunc.grad_and_value(f, argnums=argnums)(x, m)
    tg, tv = torch.func.grad_and_value(tf, argnums=argnums)(tx, tm)
    _close(g, tg)
    _close(v, tv)
    _close(dfunc.grad(f, argnums)(x, m), torch.func.grad(tf, argnums)(tx, tm))
    assert not v.requires_grad and not (g if isinstance(g, Tensor) else g[0]).requires_grad  # top level: detached
    assert x.grad is None and not x.requires_grad  # the caller's tensors are left alone


def test_grad_pytree_argument_and_has_aux_as_torch(torch):
    (w, b0, b1, x), (tw, tb0, tb1, tx) = _both(torch, M, X[:2], X, X)
    f, tf = _fns(distnn)["tree"], _fns(torch)["tree"]

    def aux_of(fn, lib):
        return lambda p, x: (fn(p, x), {"double": lib.exp(x) * 2})

    p, tp = {"w": w, "b": (b0, b1)}, {"w": tw, "b": (tb0, tb1)}
    _close(dfunc.grad(f)(p, x), torch.func.grad(tf)(tp, tx))
    g, aux = dfunc.grad(aux_of(f, distnn), argnums=(0, 1), has_aux=True)(p, x)
    tg, taux = torch.func.grad(aux_of(tf, torch), argnums=(0, 1), has_aux=True)(tp, tx)
    _close(g, tg)
    _close(aux, taux)
    g, (v, aux) = dfunc.grad_and_value(aux_of(f, distnn), has_aux=True)(p, x)
    tg, (tv, taux) = torch.func.grad_and_value(aux_of(tf, torch), has_aux=True)(tp, tx)
    _close((g, v, aux), (tg, tv, taux))


def test_grad_refusals_as_torch():
    x = Tensor(X.copy())
    with pytest.raises(RuntimeError, match="Expected f\\(\\*args\\) to return a scalar Tensor, got tensor with 1 "
                                           "dims. Maybe you wanted to use the vjp or jacrev APIs instead"):
        dfunc.grad(lambda x: x * 2)(x)
    with pytest.raises(RuntimeError, match="Expected f\\(\\*args\\) to return a Tensor, got <class 'float'>"):
        dfunc.grad(lambda x: 3.0)(x)
    with pytest.raises(RuntimeError, match="output of function f should be a tuple: \\(output, aux\\)"):
        dfunc.grad(lambda x: x.sum(), has_aux=True)(x)
    with pytest.raises(RuntimeError, match="Got argnum=1, but only 1 positional inputs"):
        dfunc.grad(lambda x: x.sum(), argnums=1)(x)
    with pytest.raises(RuntimeError, match="argnums must be non-empty"):
        dfunc.grad(lambda x: x.sum(), argnums=())(x)
    with pytest.raises(RuntimeError, match="argnums elements must be unique"):
        dfunc.grad(lambda x: x.sum(), argnums=(0, 0))(x)
    with pytest.raises(RuntimeError, match="argnums must be int or Tuple\\[int, ...\\], got: <class 'float'>"):
        dfunc.grad(lambda x: x.sum(), argnums=1.0)(x)
    with pytest.raises(ValueError, match="Thing passed to transform API must be Tensor, got <class 'float'>"):
        dfunc.grad(lambda x: x)(3.0)


def test_grad_of_unused_input_is_zeros_as_torch(torch):
    (x, m), (tx, tm) = _both(torch, X, M)
    _close(dfunc.grad(lambda x, m: x.sum(), argnums=(0, 1))(x, m),
           torch.func.grad(lambda x, m: x.sum(), argnums=(0, 1))(tx, tm))


# ------------------------------------------------------------------------------- composition (nesting)
def test_grad_of_grad_and_closure_as_torch(torch):
    (x,), (tx,) = _both(torch, X)
    d2 = dfunc.grad(lambda x: dfunc.grad(lambda y: (distnn.sin(y) * y).sum())(x).sum())(x)
    t2 = torch.func.grad(lambda x: torch.func.grad(lambda y: (torch.sin(y) * y).sum())(x).sum())(tx)
    _close(d2, t2)
    # third order on a scalar
    s, ts = Tensor(np.array(0.7)), torch.tensor(0.7, dtype=torch.float64)
    _close(dfunc.grad(dfunc.grad(dfunc.grad(distnn.exp)))(distnn.sin(s)),
           torch.func.grad(torch.func.grad(torch.func.grad(torch.exp)))(torch.sin(ts)))
    # an inner transform closing over the outer one's argument: no perturbation confusion
    d = dfunc.grad(lambda x: dfunc.grad(lambda y: (x * y).sum())(x).sum())(x)
    t = torch.func.grad(lambda x: torch.func.grad(lambda y: (x * y).sum())(x).sum())(tx)
    _close(d, t)


def test_grad_of_caller_tensor_that_requires_grad_stays_in_its_graph_as_torch(torch):
    x = Tensor(X.copy(), requires_grad=True)
    tx = torch.tensor(X.copy(), requires_grad=True)
    g = dfunc.grad(lambda y: (distnn.sin(y) ** 2).sum())(x)
    tg = torch.func.grad(lambda y: (torch.sin(y) ** 2).sum())(tx)
    assert g.requires_grad and tg.requires_grad
    (g * g).sum().backward()
    (tg * tg).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), **TIGHT)


def test_jacrev_of_jacrev_and_hessian_as_torch(torch):
    (x, m), (tx, tm) = _both(torch, X, M)
    f, tf = _fns(distnn)["exp_matmul"], _fns(torch)["exp_matmul"]
    _close(dfunc.jacrev(dfunc.jacrev(f))(x, m), torch.func.jacrev(torch.func.jacrev(tf))(tx, tm))
    _close(dfunc.hessian(f)(x, m), torch.func.hessian(tf)(tx, tm))
    _close(dfunc.hessian(f, argnums=(0, 1))(x, m), torch.func.hessian(tf, argnums=(0, 1))(tx, tm))
    # a vector function: jacobian of a jacobian (out.shape + in.shape + in.shape)
    _close(dfunc.jacrev(dfunc.jacrev(lambda x: distnn.sin(x) * x.sum()))(x),
           torch.func.jacrev(torch.func.jacrev(lambda x: torch.sin(x) * x.sum()))(tx))


# -------------------------------------------------------------------------------------------- jacobians
@pytest.mark.parametrize("name", ["jacrev", "jacfwd"])
def test_jacobian_shapes_nesting_and_aux_as_torch(torch, name):
    (x, m), (tx, tm) = _both(torch, X, M)
    jac, tjac = getattr(dfunc, name), getattr(torch.func, name)

    def f(lib):
        return lambda x, m: {"y": lib.matmul(m, lib.exp(x)), "z": (lib.sin(x), m * x.sum())}

    _close(jac(f(distnn))(x, m), tjac(f(torch))(tx, tm))
    _close(jac(f(distnn), argnums=(1, 0))(x, m), tjac(f(torch), argnums=(1, 0))(tx, tm))
    _close(jac(f(distnn), argnums=1)(x, m), tjac(f(torch), argnums=1)(tx, tm))
    # a pytree argument, and has_aux
    p, tp = {"x": x, "m": [m]}, {"x": tx, "m": [tm]}
    out, aux = jac(lambda p: (p["m"][0] @ p["x"], p["x"] * 3), has_aux=True)(p)
    tout, taux = tjac(lambda p: (p["m"][0] @ p["x"], p["x"] * 3), has_aux=True)(tp)
    _close((out, aux), (tout, taux))


def test_jacrev_of_mlp_parameters_via_functional_call_as_torch(torch):
    t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    d = nn.Sequential(nn.Linear(3, 4, dtype=np.float64), nn.Tanh(), nn.Linear(4, 2, dtype=np.float64))
    params = {k: Tensor(v.detach().numpy().copy()) for k, v in t.named_parameters()}
    tparams = {k: v.detach() for k, v in t.named_parameters()}
    x = R.standard_normal((5, 3))
    jd = dfunc.jacrev(lambda p: dfunc.functional_call(d, p, (Tensor(x),)))(params)
    jt = torch.func.jacrev(lambda p: torch.func.functional_call(t, p, (torch.tensor(x),)))(tparams)
    _close(jd, jt)
    assert jd["0.weight"].shape == (5, 2, 4, 3)


def test_jacobian_refusals_as_torch():
    x = Tensor(X.copy())
    with pytest.raises(ValueError, match="jacrev: `chunk_size` should be greater than 0."):
        dfunc.jacrev(distnn.sin, chunk_size=0)
    with pytest.raises(RuntimeError, match="Only allowed values for randomness are 'error', 'different', or 'same'. "
                                           "Got x"):
        dfunc.jacfwd(distnn.sin, randomness="x")
    with pytest.raises(RuntimeError, match="Got argnum=2, but only 1 positional inputs"):
        dfunc.jacrev(distnn.sin, argnums=2)(x)
    with pytest.raises(RuntimeError, match="vmap: called random operation while in randomness error mode"):
        dfunc.jacfwd(lambda x: x * distnn.rand(3))(x)
    assert dfunc.jacfwd(lambda x: x * distnn.rand(3), randomness="same")(x).shape == (3, 3)


# ------------------------------------------------------------------------------------ vjp, jvp, linearize
def test_vjp_as_torch(torch):
    (x, m, c), (tx, tm, tc) = _both(torch, X, M, M[:, 0])

    def f(lib):
        return lambda x, m: (lib.matmul(m, lib.sin(x)), {"s": (x * x).sum()})

    out, fn = dfunc.vjp(f(distnn), x, m)
    tout, tfn = torch.func.vjp(f(torch), tx, tm)
    _close(out, tout)
    cot = (c, {"s": Tensor(np.array(1.5))})
    tcot = (tc, {"s": torch.tensor(1.5, dtype=torch.float64)})
    _close(fn(cot), tfn(tcot))
    _close(fn(cot), tfn(tcot))  # callable again
    out, fn, aux = dfunc.vjp(lambda x: (distnn.exp(x), x.sum()), x, has_aux=True)
    tout, tfn, taux = torch.func.vjp(lambda x: (torch.exp(x), x.sum()), tx, has_aux=True)
    _close((out, fn(x), aux), (tout, tfn(tx), taux))
    with pytest.raises(RuntimeError, match="Mismatch in shape: grad_output\\[0\\] has a shape of \\(3,\\) and "
                                           "output\\[0\\] has a shape of \\(\\)"):
        dfunc.vjp(lambda a: a.sum(), x)[1](x)
    with pytest.raises(RuntimeError, match="vjp\\(f, \\*primals\\): output of function f should be a tuple"):
        dfunc.vjp(lambda a: a.sum(), x, has_aux=True)


def test_jvp_and_linearize_as_torch(torch):
    (x, m, t1, t2), (tx, tm, tt1, tt2) = _both(torch, X, M, X[::-1], M[::-1])

    def f(lib):
        return lambda x, m: (lib.matmul(m, lib.exp(x)), lib.sin(x) * m.sum())

    _close(dfunc.jvp(f(distnn), (x, m), (t1, t2)), torch.func.jvp(f(torch), (tx, tm), (tt1, tt2)))
    out, jv, aux = dfunc.jvp(lambda x: (x ** 3, x), (x,), (t1,), has_aux=True)
    tout, tjv, taux = torch.func.jvp(lambda x: (x ** 3, x), (tx,), (tt1,), has_aux=True)
    _close((out, jv, aux), (tout, tjv, taux))
    out, fn = dfunc.linearize(f(distnn), x, m)
    tout, tfn = torch.func.linearize(f(torch), tx, tm)
    _close(out, tout)
    _close(fn(t1, t2), tfn(tt1, tt2))
    _close(fn(x, m), tfn(tx, tm))  # reusable with other tangents
    with pytest.raises(RuntimeError, match="Expected primals to be a tuple"):
        dfunc.jvp(distnn.sin, x, x)
    with pytest.raises(RuntimeError, match="Expected primals and tangents to have the same python structure"):
        dfunc.jvp(distnn.sin, (x,), [x])
    with pytest.raises(RuntimeError, match="Tensor is of size \\[3\\] while the given forward gradient is of size "
                                           "\\[2\\]"):
        dfunc.jvp(distnn.sin, (x,), (Tensor(X[:2].copy()),))
