"""Double backward (``create_graph=True``) of the pointwise math beyond test_double_backward.py's (atan2, hypot,
logaddexp(2), xlogy, copysign, fmax/fmin, float_power, lerp, fmod/remainder, the step
functions, nan_to_num, lgamma/digamma/igamma) and of the reductions and scans with a closed-form gradient
(var/std, logsumexp, nanmean, median, prod/cumprod). Second derivatives (and third, where cheap) against
PyTorch's, float64 tight and float32 loose, plus gradgradcheck. Each was refused by name before."""
import numpy as np
import pytest

from distnn import Tensor, autograd
from test_double_backward import _compare, _run, assert_second_derivatives_match

RNG = np.random.default_rng(41)


def _n(*shape):
    return RNG.standard_normal(shape)


A, B = _n(3, 4), _n(3, 4)
POS = RNG.uniform(0.5, 2.5, (3, 4))
NANS = _n(3, 4)
NANS[0, 1] = NANS[2, 3] = np.nan

# (name, f(F, X, L, *inputs) -> tensor, inputs), each op fed or followed by a nonlinear function
CASES = [
    ("atan2", lambda F, X, L, a, b: (a).atan2(b) * a, (A, B)),
    ("hypot", lambda F, X, L, a, b: (a).hypot(b) ** 2 * a, (A, B)),
    ("logaddexp", lambda F, X, L, a, b: (a).logaddexp(b) * b, (A, B)),
    ("logaddexp2", lambda F, X, L, a, b: (a * a).logaddexp2(b) ** 2, (A, B)),
    ("xlogy", lambda F, X, L, a, b: (a).xlogy(b) * a, (A, POS)),
    ("copysign", lambda F, X, L, a, b: (a * a).copysign(b) * a, (A, B)),
    ("fmax_fmin", lambda F, X, L, a, b: (a).fmax(b) ** 3 + (a * a).fmin(b) ** 2, (A, B)),
    ("float_power", lambda F, X, L, a, b: (a).float_power(b) * a, (POS, B)),
    ("lerp_tensor_weight", lambda F, X, L, a, b, w: (a * a).lerp(b, w.tanh()) ** 2, (A, B, _n(3, 4))),
    ("lerp_number_weight", lambda F, X, L, a, b: (a.tanh()).lerp(b * b, 0.3) ** 2, (A, B)),
    ("fmod_remainder", lambda F, X, L, a, b: (a * 3).fmod(b + 4) ** 2 + (a * 3).remainder(b + 4) * a, (A, B)),
    ("step_functions", lambda F, X, L, a: (a.sign() + a.round() + a.floor() + a.ceil() + a.trunc() + a.sgn()) * a ** 2,
     (A,)),
    ("nan_to_num", lambda F, X, L, a: (a.log()).nan_to_num(neginf=0.0) ** 2, (np.abs(A) * (A > 0),)),
    ("lgamma", lambda F, X, L, a: a.lgamma() * a, (POS,)),
    ("igamma", lambda F, X, L, x: X.as_tensor(POS[::-1].copy()).igamma(x) ** 2, (POS,)),
    ("var_std", lambda F, X, L, a: a.var(1).unsqueeze(1) ** 2 * a + a.std(0, keepdim=True) * a + a.std() * a.var(), (A,)),
    ("var_correction0", lambda F, X, L, a: (a * a).var(dim=(0, 1), correction=0) * a, (A,)),
    ("logsumexp", lambda F, X, L, a: a.logsumexp(1).unsqueeze(1) ** 2 * a + a.logsumexp((0, 1), keepdim=True) * a, (A,)),
    ("nanmean", lambda F, X, L, a: (a * a).nanmean(1).unsqueeze(1) ** 2 + a.nanmean() * a.nan_to_num(), (NANS,)),
    ("median_all", lambda F, X, L, a: a.median() * a ** 2, (A,)),
    ("prod", lambda F, X, L, a: a.prod(1).unsqueeze(1) ** 2 + a.prod() * a + a.prod(0, keepdim=True) * a, (A,)),
    ("cumprod", lambda F, X, L, a: a.cumprod(1) ** 2 + a.tanh().cumprod(0) * a, (A,)),
]


# (distnn's digamma and trigamma, computed by series, agree with PyTorch's to about 1e-8)
LOOSER = {"lgamma": 1e-6, "igamma": 1e-6}


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_second_derivatives_match_torch(torch, name, fn, arrays):
    assert_second_derivatives_match(torch, fn, arrays, f64=(LOOSER.get(name, 1e-10), 1e-11))


@pytest.mark.parametrize("name", ["atan2", "hypot", "logaddexp", "xlogy", "float_power", "lerp_tensor_weight",
                                  "var_std", "logsumexp", "prod", "cumprod"])
def test_third_derivatives_match_torch(torch, name):
    _, fn, arrays = next(c for c in CASES if c[0] == name)
    _compare(_run("distnn", torch, fn, arrays, np.float64, order=3),
             _run("torch", torch, fn, arrays, np.float64, order=3), rtol=LOOSER.get(name, 1e-9), atol=1e-10)


@pytest.mark.parametrize("expr,message", [
    (lambda x: x.prod(), "prod of an input holding zeros"),
    (lambda x: x.cumprod(1), "cumprod of an input holding zeros"),
    (lambda x: x.digamma() * x, "polygamma\\(2, x\\)"),
])
def test_uncovered_cases_are_refused_by_name(expr, message):
    a = A.copy()
    a[1, 2] = 0.0
    x = Tensor(np.abs(a) + (0 if "zeros" in message else 0.5), requires_grad=True)
    with pytest.raises(NotImplementedError, match=message):
        g, = autograd.grad((expr(x) ** 2).sum(), x, create_graph=True)
        autograd.grad(g.sum(), x)


def test_digamma_gradient_differentiates_in_other_inputs(torch):
    """digamma's gradient (polygamma(1, x) times w) differentiated in w: polygamma(1, x), PyTorch's."""
    out = []
    for lib in ("distnn", "torch"):
        T = (lambda a: Tensor(a, requires_grad=True)) if lib == "distnn" else (
            lambda a: torch.tensor(a, requires_grad=True))
        grad = autograd.grad if lib == "distnn" else torch.autograd.grad
        x, w = T(POS), T(B)
        g, = grad((x.digamma() * w).sum(), x, create_graph=True)
        h, = grad((g * g).sum(), w)
        out.append(np.asarray(h.data if lib == "distnn" else h.detach().numpy()))
    np.testing.assert_allclose(out[0], out[1], rtol=1e-7)


def test_igamma_shape_derivative_is_refused_as_torch():
    a, x = Tensor(POS, requires_grad=True), Tensor(POS, requires_grad=True)
    with pytest.raises(NotImplementedError, match="igamma"):
        autograd.grad(a.igamma(x).sum(), (a, x), create_graph=True)


@pytest.mark.parametrize("fn,shapes", [
    (lambda x, w: (x * w.sum()).atan2(x + 2).logaddexp(x) * x.hypot(w.sum()), [(2, 3), (2,)]),
    (lambda x, w: (x * w.sum()).var(1) * x.std() + (x * w.sum()).logsumexp(0).sum(), [(2, 3), (2,)]),
    (lambda x, w: (x + 2).prod(1).unsqueeze(1) * (x * w.sum() + 2).cumprod(1), [(2, 3), (2,)]),
    (lambda x, w: (x * w.sum() + 2).lgamma() + (x + 2).lerp(w.sum() * x, 0.3) ** 2, [(2, 3), (2,)]),
])
def test_gradgradcheck(fn, shapes):
    rng = np.random.default_rng(11)
    inputs = tuple(Tensor(rng.uniform(-1, 1, s), requires_grad=True) for s in shapes)
    assert autograd.gradcheck(fn, inputs) is True
    assert autograd.gradgradcheck(fn, inputs) is True
