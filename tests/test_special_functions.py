"""distnn.i0, distnn.special.i0e/i1/i1e, distnn.polygamma (every order) and distnn.special.zeta (new: numpy has
none of them) against PyTorch 2.13: values over wide ranges (large |x|, negative x, 0, +-inf, NaN) in float64
and float32, gradients (torch's formulas, x = 0 included), integer inputs, Tensor methods and in-place forms,
refusals, and the distnn.special aliases of functions distnn already had."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
from distnn.testing import check_grad  # noqa: E402

R = np.random.default_rng(0)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)
WIDE = np.concatenate([np.linspace(-800.0, 800.0, 8001), np.geomspace(1e-300, 1e300, 300),
                       -np.geomspace(1e-300, 1e300, 300), np.linspace(7.9, 8.1, 41), -np.linspace(7.9, 8.1, 41),
                       [0.0, -0.0, math.inf, -math.inf, math.nan]])
BESSEL = {"i0": (distnn.i0, torch.i0), "i0e": (distnn.special.i0e, torch.special.i0e),
          "i1": (distnn.special.i1, torch.special.i1), "i1e": (distnn.special.i1e, torch.special.i1e)}


def _assert_matches(ours, ref, rtol):
    """Equal where torch's is not finite or zero (inf, -inf, NaN, and the sign of a zero), within ``rtol``
    elsewhere; float32 results in torch's subnormal range are compared absolutely (their ulp is absolute)."""
    assert ours.dtype == ref.dtype
    # (float32 zeros too are compared absolutely: torch's float kernel rounds the subnormal range differently)
    exact = ~np.isfinite(ref) | ((ref == 0) & (ref.dtype == np.float64))
    np.testing.assert_array_equal(ours[exact], ref[exact])
    signed = exact & ~np.isnan(ref)  # (a NaN's sign bit means nothing)
    assert np.array_equal(np.signbit(ours[signed]), np.signbit(ref[signed]))
    tiny = np.finfo(ref.dtype).tiny
    np.testing.assert_allclose(ours[~exact], ref[~exact], rtol=rtol, atol=tiny * 16)


@pytest.mark.parametrize("name", list(BESSEL))
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 2e-15), (np.float32, 2e-6)])
def test_bessel_values_match_torch_over_the_real_line(name, dtype, rtol):
    ours_fn, torch_fn = BESSEL[name]
    x = WIDE.astype(dtype)
    _assert_matches(ours_fn(distnn.tensor(x)).data, torch_fn(torch.tensor(x)).numpy(), rtol)


def test_bessel_edges_are_torchs():
    x = np.array([0.0, -0.0, math.inf, -math.inf, math.nan, 720.0, -720.0])
    y = {name: f(distnn.tensor(x)).data for name, (f, _) in BESSEL.items()}
    np.testing.assert_array_equal(y["i0"], [1.0, 1.0, math.nan, math.nan, math.nan, math.inf, math.inf])
    np.testing.assert_array_equal(y["i1"], [0.0, 0.0, math.nan, math.nan, math.nan, math.inf, -math.inf])
    np.testing.assert_array_equal(y["i0e"][:5], [1.0, 1.0, 0.0, 0.0, math.nan])
    np.testing.assert_array_equal(y["i1e"][:5], [0.0, 0.0, 0.0, -0.0, math.nan])
    # float32: e^|x| overflows past 88.72 as PyTorch's does (its float kernel), though I0 itself would not yet
    x32 = np.array([88.0, 89.0, 90.0, -89.0], np.float32)
    np.testing.assert_array_equal(distnn.i0(distnn.tensor(x32)).data, torch.i0(torch.tensor(x32)).numpy())
    assert np.isinf(distnn.special.i1(distnn.tensor(x32)).data[1:]).all()


@pytest.mark.parametrize("name", list(BESSEL))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bessel_gradients_match_torch(name, dtype):
    ours_fn, torch_fn = BESSEL[name]
    eps = np.finfo(dtype).eps
    # (0, +-eps and just past it: the i1/i1e formulas' guard; both Chebyshev ranges; negative x)
    x = np.concatenate([[0.0, -0.0, eps, -eps, 3 * eps, -3 * eps, 1e-3], R.uniform(-20, 20, 40),
                        [8.0, -8.0, 50.0, -50.0]]).astype(dtype)
    u = R.standard_normal(x.shape).astype(dtype)
    d, t = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (ours_fn(d) * distnn.tensor(u)).sum().backward()
    (torch_fn(t) * torch.tensor(u)).sum().backward()
    assert d.grad.dtype == dtype
    np.testing.assert_allclose(d.grad, t.grad.numpy(), rtol=1e-13 if dtype == np.float64 else 2e-5, atol=1e-30)


@pytest.mark.parametrize("name", list(BESSEL))
def test_bessel_gradient_check_and_integer_inputs(name):
    fn, torch_fn = BESSEL[name]
    check_grad(fn, distnn.tensor(R.uniform(-10, 10, (3, 4)), requires_grad=True))
    ints = np.array([-9, -3, 0, 1, 2, 10])
    y = fn(distnn.tensor(ints))
    ref = torch_fn(torch.tensor(ints)).numpy()
    assert y.dtype == np.float32 and ref.dtype == np.float32
    np.testing.assert_allclose(y.data, ref, rtol=2e-6)


POLY_X = np.concatenate([np.linspace(-30.3, 60.0, 1501), np.geomspace(1e-300, 1e300, 200),
                         -np.geomspace(1e-10, 0.4, 30) - 3.0, [0.0, -0.0, -1.0, -7.0, 1.0, 2.0, math.inf, -math.inf,
                                                                math.nan, 0.5, 1e-5]])


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 8, 13, 30, 60, 170, 171, 400])
def test_polygamma_values_match_torch_float64(n):
    ours = distnn.polygamma(n, distnn.tensor(POLY_X)).data
    ref = torch.polygamma(n, torch.tensor(POLY_X)).numpy()
    if n == 1:  # (torch's trigamma takes sin(pi x) of x unreduced: finite at the negative integers, and ~1e-6
        # off within 1e-8 of them; ours reduces x first, and is inf there, as digamma's gradient)
        poles = (POLY_X < 0) & (POLY_X == np.floor(POLY_X)) & np.isfinite(POLY_X)
        assert (ours[poles] == math.inf).all()
        near = (POLY_X < 0) & (np.abs(POLY_X - np.round(POLY_X)) < 1e-6)
        ours, ref, x = ours[~near], ref[~near], POLY_X[~near]
    else:
        x = POLY_X
    # (n = 1: torch's own trigamma, off by up to ~1e-9 relative, see test_gamma_functions; left of 0 the
    # alternating terms cancel, and torch's pow and numpy's differ by an ulp before it; from n ~ 30 on torch's
    # n! = exp(lgamma(n + 1)) carries lgamma's last-bit error times ~n log n)
    if n == 0:  # (torch's digamma shifts up to 10 and subtracts: ~2e-15 absolute, so relative error grows next
        # to digamma's zeros; ours is checked against mpmath there, in test_lgamma_accuracy)
        small = np.abs(ref) < 0.1
        np.testing.assert_allclose(ours[small], ref[small], rtol=0, atol=4e-15)
        ours, ref, x = ours[~small], ref[~small], x[~small]
    left = x < 0
    _assert_matches(ours[~left], ref[~left], 1e-8 if n == 1 else 1e-14 if n < 30 else 2e-13)
    _assert_matches(ours[left], ref[left], 1e-8 if n == 1 else 1e-11 if n < 30 else 2e-13)


@pytest.mark.parametrize("n", [2, 3, 6, 20, 35, 50])
def test_polygamma_values_match_torch_float32(n):
    x = np.concatenate([np.linspace(-10.3, 16.0, 601), [0.0, -1.0, 1.0, math.inf, -math.inf, math.nan]])
    x = x.astype(np.float32)
    ours = distnn.polygamma(n, distnn.tensor(x)).data
    # (n! overflows float32 from 35 on: inf, as PyTorch's; zeta(n + 1, x) stays above float32's subnormals)
    ref = torch.polygamma(n, torch.tensor(x)).numpy()
    _assert_matches(ours, ref, 2e-4 if n >= 6 else 1e-5)  # (left of 0: float32's rounding of x, amplified)


@pytest.mark.parametrize("n", [0, 1, 2, 5])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_polygamma_gradient_is_the_next_order(n, dtype):
    x = np.concatenate([R.uniform(0.1, 12.0, 20), R.uniform(-4.9, -0.1, 10)]).astype(dtype)
    x = x[np.abs(x - np.round(x)) > 0.05]
    d, t = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    distnn.polygamma(n, d).sum().backward()
    torch.polygamma(n, t).sum().backward()
    rtol = (1e-8 if n == 0 else 1e-11) if dtype == np.float64 else 2e-4  # (n = 0: torch's trigamma, see above)
    np.testing.assert_allclose(d.grad, t.grad.numpy(), rtol=rtol)


def test_polygamma_methods_inplace_forms_and_refusals():
    x = distnn.tensor(R.uniform(0.5, 5.0, (3, 4)), requires_grad=True)
    check_grad(lambda t: distnn.polygamma(3, t), x)
    np.testing.assert_array_equal(x.polygamma(3).data, distnn.special.polygamma(3, x).data)
    y = distnn.tensor(x.data.copy())
    assert y.polygamma_(2) is y
    np.testing.assert_allclose(y.data, torch.polygamma(2, torch.tensor(x.data)).numpy(), rtol=1e-14)
    ints = distnn.polygamma(2, distnn.tensor(np.array([1, 2, 3])))
    assert ints.dtype == np.float32 == torch.polygamma(2, torch.tensor([1, 2, 3])).numpy().dtype
    with pytest.raises(RuntimeError, match="does not support negative n"):
        distnn.polygamma(-1, x)
    with pytest.raises(TypeError, match="must be int, not float"):
        distnn.polygamma(1.5, x)
    with pytest.raises(RuntimeError, match="can't be cast"):
        distnn.tensor(np.array([1, 2])).polygamma_(2)


def test_zeta_values_edges_and_dtypes_match_torch():
    x = np.concatenate([np.round(R.uniform(-3, 40, 800)), R.uniform(-3, 40, 1600),
                        [1, 0.5, 2, 2, 2, 3, math.nan, 2, 2, -2, 1.0000001, 1.5, 100, 3, 2]])
    q = np.concatenate([R.uniform(-30, 50, 2400),
                        [1, 1, 0, -1, -1.5, -1.5, 1, math.inf, math.nan, -2, 0.3, -math.inf, 1e-5, 1e300, -1e4 + 0.5]])
    ours = distnn.special.zeta(distnn.tensor(x), distnn.tensor(q)).data
    ref = torch.special.zeta(torch.tensor(x), torch.tensor(q)).numpy()
    _assert_matches(ours, ref, 1e-11)  # (q < 0: alternating terms again)
    pos = q > 0
    np.testing.assert_allclose(ours[pos & np.isfinite(ref)], ref[pos & np.isfinite(ref)], rtol=2e-15)
    for a, b in [(2, np.array([1, 2])), (np.array([2.0]), 1.0), (2.0, np.array([1.5], np.float32))]:
        da, db = (distnn.tensor(v) if isinstance(v, np.ndarray) else v for v in (a, b))
        ta, tb = (torch.tensor(v) if isinstance(v, np.ndarray) else v for v in (a, b))
        y, t = distnn.special.zeta(da, db), torch.special.zeta(ta, tb)
        assert y.dtype == t.numpy().dtype
        np.testing.assert_allclose(y.data, t.numpy(), rtol=1e-6)


def test_zeta_gradient_in_other_and_refusal_in_input():
    x = np.array([[2.0], [3.5]])
    q = R.uniform(0.2, 6.0, (2, 5))
    dq, tq = distnn.tensor(q, requires_grad=True), torch.tensor(q, requires_grad=True)
    distnn.special.zeta(distnn.tensor(x), dq).sum().backward()
    torch.special.zeta(torch.tensor(x), tq).sum().backward()
    np.testing.assert_allclose(dq.grad, tq.grad.numpy(), rtol=1e-14)
    dx = distnn.tensor(x, requires_grad=True)
    with pytest.raises(NotImplementedError, match="derivative for 'zeta' is not implemented"):
        distnn.special.zeta(dx, distnn.tensor(q)).sum().backward()


def test_i0_methods_and_inplace_forms():
    x = R.uniform(-5, 5, (2, 3))
    t = distnn.tensor(x.copy())
    np.testing.assert_array_equal(t.i0().data, distnn.special.i0(t).data)
    assert t.i0_() is t and distnn.i0_(distnn.tensor(x.copy())).data.tolist() == t.data.tolist()
    np.testing.assert_allclose(t.data, torch.i0(torch.tensor(x)).numpy(), rtol=2e-15)
    with pytest.raises(RuntimeError, match="can't be cast"):
        distnn.tensor(np.array([1, 2])).i0_()


# (distnn name, torch name, arguments after the input): torch.special's aliases of functions distnn had
ALIASES = [
    ("expit", "expit", ()), ("gammaln", "gammaln", ()), ("psi", "psi", ()), ("digamma", "digamma", ()),
    ("erf", "erf", ()), ("erfc", "erfc", ()), ("exp2", "exp2", ()), ("expm1", "expm1", ()), ("log1p", "log1p", ()),
    ("sinc", "sinc", ()), ("round", "round", ()), ("multigammaln", "multigammaln", (3,)),
    ("softmax", "softmax", (1,)), ("log_softmax", "log_softmax", (0,)), ("logsumexp", "logsumexp", (1,)),
]


@pytest.mark.parametrize("name,torch_name,args", ALIASES, ids=[a[0] for a in ALIASES])
def test_special_aliases_match_torch_values_and_gradients(name, torch_name, args):
    x = R.uniform(1.2, 4.0, (3, 4))
    d, t = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = getattr(distnn.special, name)(d, *args), getattr(torch.special, torch_name)(t, *args)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12)
    u = R.standard_normal(tuple(ty.shape))
    (y * distnn.tensor(u)).sum().backward()
    (ty * torch.tensor(u)).sum().backward()
    rtol = 1e-8 if name in ("psi", "digamma") else 1e-10  # (torch's trigamma, see above)
    np.testing.assert_allclose(d.grad, t.grad.numpy(), rtol=rtol, atol=1e-12)


def test_special_binary_aliases_and_softmax_dtype():
    a, b = R.uniform(0.2, 5.0, (3, 4)), R.uniform(0.2, 5.0, (3, 4))
    for name in ("gammainc", "gammaincc", "xlogy"):
        ours = getattr(distnn.special, name)(distnn.tensor(a), distnn.tensor(b)).data
        np.testing.assert_allclose(ours, getattr(torch.special, name)(torch.tensor(a), torch.tensor(b)).numpy(),
                                   rtol=1e-10)
    np.testing.assert_allclose(distnn.special.logit(distnn.tensor(a / 6), eps=0.1).data,
                               torch.special.logit(torch.tensor(a / 6), eps=0.1).numpy(), rtol=1e-14)
    x32 = a.astype(np.float32)
    y = distnn.special.softmax(distnn.tensor(x32), -1, dtype=distnn.float64)
    ty = torch.special.softmax(torch.tensor(x32), -1, dtype=torch.float64)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.data, ty.numpy(), rtol=1e-14)
