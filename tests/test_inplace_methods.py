"""PyTorch's in-place Tensor methods (``x.add_(y)``, ``x.clamp_(...)``, ``x.scatter_(...)``, ...) against torch (the
oracle), on the same script: values, dtypes, gradients through a chain (``y = x * 2; y.<op>_(...);
(y * w).sum().backward()``, float64 tight), the version check (a refusal where torch refuses, none where it
allows), leaf refusal, no_grad updates of a Parameter, views, and dtype refusals.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
from distnn import Tensor  # noqa: E402
from distnn.nn import Parameter  # noqa: E402

SHAPE = (3, 4)
IDX = np.array([2, 0, 2])  # (a repeated index: the accumulating ops add up)


def _x(domain, rng, shape=SHAPE):
    if domain == "pos":
        return rng.uniform(0.2, 2.0, shape)
    if domain == "unit":
        return rng.uniform(-0.9, 0.9, shape)
    if domain == "ge1":
        return rng.uniform(1.1, 3.0, shape)
    if domain == "prob":
        return rng.uniform(0.1, 0.9, shape)
    return rng.normal(size=shape)


# name, domain of x (before the doubling), args(T, rng) -> (args, kwargs); T(array) is a tensor of the
# framework that requires grad (its gradient is compared), T(array, grad=False) one that does not
CASES = [(n, "any", lambda T, r: ((), {})) for n in (
    "neg_", "negative_", "abs_", "absolute_", "sign_", "sgn_", "square_", "exp_", "exp2_", "expm1_", "sin_", "cos_",
    "tan_", "atan_", "arctan_", "sinh_", "cosh_", "tanh_", "asinh_", "arcsinh_", "sigmoid_", "relu_", "erf_",
    "erfc_", "ceil_", "floor_", "round_", "trunc_", "fix_", "frac_", "deg2rad_", "rad2deg_", "sinc_",
    "nan_to_num_")] + [(n, "pos", lambda T, r: ((), {})) for n in (
        "sqrt_", "rsqrt_", "log_", "log2_", "log10_", "log1p_", "reciprocal_")] + [
    (n, "unit", lambda T, r: ((), {})) for n in ("asin_", "acos_", "arcsin_", "arccos_", "atanh_", "arctanh_",
                                                  "erfinv_")] + [
    ("acosh_", "ge1", lambda T, r: ((), {})), ("arccosh_", "ge1", lambda T, r: ((), {})),
    ("logit_", "prob", lambda T, r: ((), {})), ("logit_", "prob", lambda T, r: ((0.3,), {})),
    ("round_", "any", lambda T, r: ((), {"decimals": 1})),
    ("add_", "any", lambda T, r: ((T(r.normal(size=SHAPE)),), {})),
    ("add_", "any", lambda T, r: ((T(r.normal(size=(4,))),), {"alpha": -2.5})),
    ("add_", "any", lambda T, r: ((1.5,), {})),
    ("sub_", "any", lambda T, r: ((T(r.normal(size=SHAPE)),), {"alpha": 3})),
    ("subtract_", "any", lambda T, r: ((T(r.normal(size=SHAPE)),), {})),
    ("mul_", "any", lambda T, r: ((T(r.normal(size=SHAPE)),), {})),
    ("multiply_", "any", lambda T, r: ((T(r.normal(size=(3, 1))),), {})),
    ("div_", "any", lambda T, r: ((T(r.uniform(0.5, 2, SHAPE)),), {})),
    ("divide_", "any", lambda T, r: ((T(r.uniform(0.5, 2, SHAPE)),), {"rounding_mode": "floor"})),
    ("div_", "any", lambda T, r: ((0.7,), {"rounding_mode": "trunc"})),
    ("true_divide_", "any", lambda T, r: ((T(r.uniform(0.5, 2, SHAPE)),), {})),
    ("pow_", "pos", lambda T, r: ((T(r.normal(size=SHAPE)),), {})),
    ("pow_", "any", lambda T, r: ((2,), {})),
    ("float_power_", "pos", lambda T, r: ((T(r.normal(size=SHAPE)),), {})),
    ("clamp_", "any", lambda T, r: ((-0.5, 0.7), {})), ("clip_", "any", lambda T, r: ((None, 0.2), {})),
    ("clamp_", "any", lambda T, r: ((T(r.normal(size=SHAPE)),), {})),
    ("clamp_min_", "any", lambda T, r: ((0.1,), {})), ("clamp_max_", "any", lambda T, r: ((0.1,), {})),
    ("lerp_", "any", lambda T, r: ((T(r.normal(size=SHAPE)), 0.3), {})),
    ("lerp_", "any", lambda T, r: ((T(r.normal(size=SHAPE)), T(r.uniform(size=SHAPE))), {})),
    ("addcmul_", "any", lambda T, r: ((T(r.normal(size=SHAPE)), T(r.normal(size=(4,)))), {"value": 0.5})),
    ("addcdiv_", "any", lambda T, r: ((T(r.normal(size=SHAPE)), T(r.uniform(1, 2, SHAPE))), {"value": -2})),
    ("atan2_", "any", lambda T, r: ((T(r.normal(size=SHAPE)),), {})),
    ("arctan2_", "any", lambda T, r: ((T(r.normal(size=SHAPE)),), {})),
    ("hypot_", "any", lambda T, r: ((T(r.normal(size=SHAPE)),), {})),
    ("copysign_", "any", lambda T, r: ((T(r.normal(size=SHAPE)),), {})),
    ("fmod_", "any", lambda T, r: ((0.7,), {})), ("remainder_", "any", lambda T, r: ((-0.7,), {})),
    ("fmod_", "any", lambda T, r: ((T(r.uniform(0.5, 1, SHAPE)),), {})),
    ("xlogy_", "any", lambda T, r: ((T(r.uniform(0.5, 2, SHAPE)),), {})),
    ("eq_", "any", lambda T, r: ((0.0,), {})), ("ne_", "any", lambda T, r: ((T(r.normal(size=SHAPE)),), {})),
    ("lt_", "any", lambda T, r: ((0.1,), {})), ("le_", "any", lambda T, r: ((0.1,), {})),
    ("gt_", "any", lambda T, r: ((0.1,), {})), ("ge_", "any", lambda T, r: ((0.1,), {})),
    ("greater_", "any", lambda T, r: ((0.1,), {})), ("less_equal_", "any", lambda T, r: ((0.1,), {})),
    ("logical_and_", "any", lambda T, r: ((T(r.integers(0, 2, SHAPE).astype(bool), grad=False),), {})),
    ("logical_or_", "any", lambda T, r: ((T(np.zeros(SHAPE), grad=False),), {})),
    ("logical_xor_", "any", lambda T, r: ((T(r.integers(0, 2, SHAPE).astype(bool), grad=False),), {})),
    ("logical_not_", "any", lambda T, r: ((), {})),
    ("masked_fill_", "any", lambda T, r: ((T(r.integers(0, 2, SHAPE).astype(bool), grad=False), -1.5), {})),
    ("masked_scatter_", "any", lambda T, r: ((T(r.integers(0, 2, SHAPE).astype(bool), grad=False),
                                              T(r.normal(size=(3, 4)))), {})),
    ("index_add_", "any", lambda T, r: ((0, T(IDX, grad=False), T(r.normal(size=(3, 4)))), {"alpha": 2})),
    ("index_copy_", "any", lambda T, r: ((1, T(np.array([3, 0]), grad=False), T(r.normal(size=(3, 2)))), {})),
    ("index_fill_", "any", lambda T, r: ((1, T(np.array([1, 3]), grad=False), 2.5), {})),
    ("scatter_", "any", lambda T, r: ((0, T(np.array([[2, 1, 0, 2]]), grad=False), T(r.normal(size=(1, 4)))),
                                      {})),
    ("scatter_", "any", lambda T, r: ((1, T(np.array([[3], [0], [1]]), grad=False)), {"value": 9.0})),
    ("scatter_add_", "any", lambda T, r: ((0, T(np.array([[2, 1, 0, 2], [2, 2, 2, 2]]), grad=False),
                                           T(r.normal(size=(2, 4)))), {})),
    ("scatter_reduce_", "any", lambda T, r: ((0, T(np.array([[2, 1, 0, 2], [2, 0, 2, 2]]), grad=False),
                                              T(r.normal(size=(2, 4))), "sum"), {"include_self": False})),
    ("index_put_", "any", lambda T, r: (((T(IDX, grad=False), T(np.array([1, 1, 3]), grad=False)),
                                         T(r.normal(size=(3,)))), {"accumulate": True})),
    ("index_put_", "any", lambda T, r: (((T(np.array([0, 2]), grad=False),), T(r.normal(size=(4,)))), {})),
    ("index_put_", "any", lambda T, r: (((T(np.array([[True, False, True, False]] * 3), grad=False),),
                                         T(r.normal(size=(6,)))), {"accumulate": True})),
    ("put_", "any", lambda T, r: ((T(np.array([0, -1, 5, 5]), grad=False), T(r.normal(size=(4,)))),
                                  {"accumulate": True})),
    ("fill_diagonal_", "any", lambda T, r: ((3.0,), {})),
    ("tril_", "any", lambda T, r: ((), {})), ("triu_", "any", lambda T, r: ((1,), {})),
    ("cumsum_", "any", lambda T, r: ((1,), {})), ("cumprod_", "any", lambda T, r: ((0,), {})),
    ("addmm_", "any", lambda T, r: ((T(r.normal(size=(3, 2))), T(r.normal(size=(2, 4)))),
                                    {"beta": 0.5, "alpha": 2})),
    ("addbmm_", "any", lambda T, r: ((T(r.normal(size=(2, 3, 5))), T(r.normal(size=(2, 5, 4)))), {})),
    ("addmv_", "any", lambda T, r: ((T(r.normal(size=(4, 2))), T(r.normal(size=(2,)))), {"beta": 2}), (4,)),
    ("baddbmm_", "any", lambda T, r: ((T(r.normal(size=(2, 3, 5))), T(r.normal(size=(2, 5, 4)))),
                                      {"alpha": 0.5}), (2, 3, 4)),
    ("fill_diagonal_", "any", lambda T, r: ((-1.0,), {"wrap": True}), (7, 3)),
    ("fill_diagonal_", "any", lambda T, r: ((2.0,), {}), (3, 3, 3)),
    ("squeeze_", "any", lambda T, r: ((1,), {}), (3, 1, 2)),
    ("transpose_", "any", lambda T, r: ((0, 1), {})), ("t_", "any", lambda T, r: ((), {})),
    ("swapaxes_", "any", lambda T, r: ((1, 0), {})), ("swapdims_", "any", lambda T, r: ((0, -1), {})),
    ("unsqueeze_", "any", lambda T, r: ((1,), {})), ("squeeze_", "any", lambda T, r: ((), {})),
]


# torch 2.13 raises "the derivative for 'inplace version of asinh' is not implemented" at backward
TORCH_HAS_NO_INPLACE_DERIVATIVE = {"asinh_", "arcsinh_", "atanh_", "arctanh_", "acosh_", "arccosh_"}


def _run(lib, name, domain, args_fn, seed, shape=SHAPE):
    """``y = x * 2; y.<name>(...); (y * w).sum().backward()`` in ``lib`` (torch or distnn); returns
    (y's values, its dtype name, the gradients of x and of the operands that require grad)."""
    rng = np.random.default_rng(seed)
    x0 = _x(domain, rng, shape) / 2  # (doubled below)
    grads = []

    def T(array, grad=True):
        array = np.asarray(array)
        grad = grad and array.dtype.kind == "f"
        t = torch.tensor(array, requires_grad=grad) if lib == "torch" else Tensor(array.copy(), requires_grad=grad)
        if grad:
            grads.append(t)
        return t

    x = T(x0)
    args, kwargs = args_fn(T, rng)
    y = x * 2
    if lib == "torch" and name in TORCH_HAS_NO_INPLACE_DERIVATIVE:  # (distnn's: the out-of-place op's gradient)
        y = getattr(y, name[:-1])(*args, **kwargs)
    else:
        out = getattr(y, name)(*args, **kwargs)
        assert out is y
    w = rng.normal(size=tuple(y.shape))
    (y * (torch.tensor(w) if lib == "torch" else Tensor(w))).sum().backward()
    values = y.detach().numpy() if lib == "torch" else np.asarray(y.data)
    dtype = str(y.dtype).replace("torch.", "")
    return values, dtype, [None if g.grad is None else g.grad.numpy(force=True) if lib == "torch" else
                           np.asarray(g.grad.data) for g in grads]


@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_inplace_method_values_and_gradients_match_torch(case):
    name, domain, args_fn, *shape = CASES[case]
    shape = shape[0] if shape else SHAPE
    tv, tdt, tg = _run("torch", name, domain, args_fn, case, shape)
    dv, ddt, dg = _run("distnn", name, domain, args_fn, case, shape)
    assert ddt == tdt
    np.testing.assert_allclose(dv, tv, rtol=1e-10, atol=1e-12)
    assert len(dg) == len(tg)
    for d, t in zip(dg, tg):  # (torch gives zeros where distnn's graph gives no gradient at all)
        np.testing.assert_allclose(np.zeros_like(t) if d is None and t is not None else d,
                                   np.zeros_like(d) if t is None else t, rtol=1e-10, atol=1e-12)


def _both(fn):
    """fn(lib, make) run in torch and distnn: the outcome (an exception's type, or the values) of each."""
    outcomes = []
    for lib in ("torch", "distnn"):
        def make(a, grad=False):
            a = np.array(a)
            return torch.tensor(a, requires_grad=grad) if lib == "torch" else Tensor(a, requires_grad=grad)
        try:
            r = fn(lib, make)
            outcomes.append(("ok", None if r is None else np.asarray(r.detach().numpy() if lib == "torch" else
                                                                        r.data)))
        except RuntimeError as e:
            outcomes.append(("refused", str(e)))
    return outcomes


def _backward(lib, t):
    t.sum().backward()


SAVED = {  # in place on a value a node saved: the node's backward refuses, or not, as torch's
    "sin saves its input": lambda lib, m: (lambda x: (lambda y: (lambda z: (y.add_(1), _backward(lib, z)))(y.sin()))(
        x * 1))(m([1.0, 2.0], True)),
    "mul by a number saves nothing": lambda lib, m: (lambda x: (lambda y: (lambda z: (y.add_(1), _backward(lib, z)))(
        y * 3))(x * 1))(m([1.0, 2.0], True)),
    "exp saves its result": lambda lib, m: (lambda x: (lambda y: (y.mul_(2), _backward(lib, y)))(x.exp()))(
        m([1.0, 2.0], True)),
    "exp_ then sin_ of it": lambda lib, m: (lambda x: (lambda y: (y.exp_(), y.sin_(), _backward(lib, y)))(x * 1))(
        m([1.0, 2.0], True)),
    "sigmoid_ then a change of it": lambda lib, m: (lambda x: (lambda y: (
        lambda z: (y.sigmoid_(), y.zero_(), _backward(lib, z)))(y))(x * 1))(m([1.0, 2.0], True)),
    "uniform_ on the input of mul": lambda lib, m: (lambda x, w: (lambda z: (w.uniform_(), _backward(lib, z)))(
        x * w))(m([1.0, 2.0], True), m([3.0, 4.0])),
    "copy_ into the input of pow": lambda lib, m: (lambda x, w: (lambda z: (w.copy_(m([5.0, 6.0])), _backward(lib, z)))(
        x ** w))(m([1.0, 2.0], True), m([3.0, 4.0])),
    "sin_ then add_ (sin reads its input only)": lambda lib, m: (lambda x: (lambda y: (
        y.sin_(), y.add_(1), y.clamp_(-0.5, 0.5), _backward(lib, y * x)))(x * 2))(m([1.0, 2.0], True)),
    "t_ of a saved tensor": lambda lib, m: (lambda x: (lambda y: (lambda z: (y.t_(), _backward(lib, z)))(
        y.sin()))(x * 1))(m([[1.0, 2.0]], True)),
}


@pytest.mark.parametrize("case", sorted(SAVED))
def test_version_check_refuses_where_torch_does(case):
    t, d = _both(lambda lib, m: SAVED[case](lib, m) and None)
    assert t[0] == d[0], (t, d)
    if t[0] == "refused":
        assert "modified by an inplace operation" in t[1] and "in place" in d[1], d[1]


@pytest.mark.parametrize("method, args", [
    ("add_", (1.0,)), ("sin_", ()), ("clamp_", (0.0,)), ("uniform_", ()), ("copy_", (np.ones(2),)),
    ("index_fill_", (0, np.array([0]), 1.0)), ("t_", ()), ("unsqueeze_", (0,)), ("fill_diagonal_", (1.0,)),
])
def test_leaf_that_requires_grad_is_refused_and_no_grad_updates_a_parameter(method, args):
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place "
                                           "operation"):
        getattr(torch.zeros(2, 2, requires_grad=True), method)(
            *[torch.tensor(a) if isinstance(a, np.ndarray) else a for a in args])
    p = Parameter(np.zeros((2, 2)))
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place "
                                           "operation"):
        getattr(p, method)(*[Tensor(a) if isinstance(a, np.ndarray) else a for a in args])
    assert p._version == 0 and (p.data == 0).all() and p.shape == (2, 2)
    with distnn.no_grad():
        assert getattr(p, method)(*[Tensor(a) if isinstance(a, np.ndarray) else a for a in args]) is p
    assert p._version >= 1 and p.requires_grad and p.is_leaf


def test_optimizer_style_update_of_a_parameter_under_no_grad():
    tp = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))
    p = Parameter(np.array([1.0, -2.0, 3.0]))
    (tp * tp).sum().backward()
    (p * p).sum().backward()
    for lib_p in (tp, p):
        ctx = torch.no_grad() if lib_p is tp else distnn.no_grad()
        with ctx:
            lib_p.mul_(0.9).add_(lib_p.grad, alpha=-0.1).clamp_(-1.5, 1.5)
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12)
    assert p.is_leaf and p.requires_grad


def test_views_see_the_change_and_a_view_of_a_leaf_is_refused():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    x[0].add_(1)
    x[:, 1].mul_(10)
    np.testing.assert_array_equal(x.data, [[1, 20, 3], [3, 40, 5]])
    leaf = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        leaf[0].sin_()
    # through a view of a non-leaf: the gradient as torch's
    outs = []
    for lib in ("torch", "distnn"):
        a = np.linspace(-1, 1, 6).reshape(2, 3)
        leaf = torch.tensor(a, requires_grad=True) if lib == "torch" else Tensor(a, requires_grad=True)
        y = leaf * 2
        y[0].mul_(3)
        y[:, 2].add_(y[0, :2].detach())
        y[1].sin_()
        (y * y).sum().backward()
        outs.append((np.asarray(y.detach().numpy() if lib == "torch" else y.data), np.asarray(leaf.grad)))
    np.testing.assert_allclose(outs[1][0], outs[0][0], rtol=1e-12)
    np.testing.assert_allclose(outs[1][1], outs[0][1], rtol=1e-12)


@pytest.mark.parametrize("dtype, call", [
    ("int64", lambda t, m: t.add_(1.5)), ("int64", lambda t, m: t.sqrt_()), ("int64", lambda t, m: t.div_(2)),
    ("int64", lambda t, m: t.sigmoid_()), ("int64", lambda t, m: t.pow_(2.5)), ("int64", lambda t, m: t.clamp_(0.5)),
    ("int64", lambda t, m: t.mul_(m(np.ones(3)))), ("bool", lambda t, m: t.add_(1)),
    ("int32", lambda t, m: t.logit_()), ("float32", lambda t, m: t.float_power_(2)),
    ("int64", lambda t, m: t.float_power_(2)),
])
def test_results_that_need_promotion_are_refused_as_torch(dtype, call):
    (tk, tmsg), (dk, dmsg) = _both(lambda lib, m: call(m(np.array([1, 0, 3]).astype(dtype)), m))
    assert tk == dk == "refused"
    gist = "can't be cast to the desired output type" if "desired" in tmsg else tmsg  # (torch: Long or long int)
    assert gist in dmsg, (tmsg, dmsg)


@pytest.mark.parametrize("dtype, call", [
    ("int64", lambda t, m: t.eq_(1)), ("int64", lambda t, m: t.logical_and_(t)), ("int64", lambda t, m: t.abs_()),
    ("int64", lambda t, m: t.div_(2, rounding_mode="floor")), ("int64", lambda t, m: t.floor_divide_(2)),
    ("int64", lambda t, m: t.remainder_(2)), ("int64", lambda t, m: t.bitwise_xor_(6)),
    ("int64", lambda t, m: t.copy_(m(np.array([1.7, -2.2, 3.9])))), ("bool", lambda t, m: t.logical_not_()),
    ("bool", lambda t, m: t.bitwise_or_(m(np.array([True, False, False])))), ("float32", lambda t, m: t.ge_(1)),
    ("float32", lambda t, m: t.add_(m(np.array([1, 2, 3])))), ("int32", lambda t, m: t.mul_(m(np.array([5, 6, 7])))),
    ("float32", lambda t, m: t.copy_(m(np.array([0.1, 0.2, 0.3])))), ("int64", lambda t, m: t.cumsum_(0)),
])
def test_results_that_fit_keep_the_tensors_dtype(dtype, call):
    (tk, tv), (dk, dv) = _both(lambda lib, m: call(m(np.array([1, 0, 3]).astype(dtype)), m))
    assert tk == dk == "ok", (tv, dv)
    assert dv.dtype == tv.dtype
    np.testing.assert_allclose(dv, tv, rtol=1e-6)


def test_copy_broadcasts_casts_and_sends_the_gradient_to_the_source():
    got = []
    for lib in ("torch", "distnn"):
        src32 = np.array([0.5, -1.0, 2.0], dtype=np.float32)
        if lib == "torch":
            x, src = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True), torch.tensor(src32, requires_grad=True)
        else:
            x, src = Tensor(np.zeros((2, 3)), requires_grad=True), Tensor(src32, requires_grad=True)
        y = x * 1
        y.copy_(src)
        (y * y).sum().backward()
        got.append((str(y.dtype).replace("torch.", ""), np.asarray(src.grad), str(src.grad.dtype).replace("torch.", ""),
                    np.asarray(x.grad)))
    assert got[0][0] == got[1][0] == "float64" and got[0][2] == got[1][2] == "float32"
    np.testing.assert_allclose(got[1][1], got[0][1])
    np.testing.assert_allclose(got[1][3], got[0][3])
    x = Tensor(np.zeros((2, 2), dtype=np.int32))
    assert x.copy_(np.array([1.9, -2.9])) is x and x.dtype == np.int32
    np.testing.assert_array_equal(x.data, [[1, -2], [1, -2]])
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        Tensor(np.zeros(3)).copy_(Tensor(np.zeros((2, 3))))


def test_metadata_and_detach():
    x = Tensor(np.ones((2, 1, 3)))
    assert x.squeeze_(1).shape == (2, 3) and x.t_().shape == (3, 2) and x.unsqueeze_(0).shape == (1, 3, 2)
    assert x.transpose_(0, 2).shape == (2, 3, 1)
    leaf = Tensor(np.ones(3), requires_grad=True)
    y = leaf * 2
    assert y.detach_() is y and y.grad_fn is None and not y.requires_grad
    y.add_(1)  # (cut from the graph: no longer recorded)
    np.testing.assert_array_equal(y.data, [3, 3, 3])
    view = (leaf * 2)[0]
    with pytest.raises(RuntimeError, match="Can't detach views in-place"):
        view.detach_()
