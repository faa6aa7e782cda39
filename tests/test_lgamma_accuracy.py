"""distnn.lgamma and distnn.digamma (and what is built on them: special.gammaln, mvlgamma, betaln-like sums,
Beta and Poisson log-densities, lgamma's gradient) against mpmath at 50 digits over dense grids: near lgamma's
zeros at 1 and 2, around its minimum, tiny, huge and negative arguments; and against PyTorch at the edges
(poles, NaN, +-inf, -0.0) and for its dtype rules. Bounds are in units of float64's epsilon of the true value
(relative) or, where a formula's result passes through zero, of the terms it is made of (absolute)."""
from __future__ import annotations

import math

import numpy as np
import pytest

mpmath = pytest.importorskip("mpmath")
torch = pytest.importorskip("torch")

import distnn  # noqa: E402

EPS = np.finfo(np.float64).eps
mpmath.mp.dps = 50


def _true_lgamma(x):
    """log|Gamma(x)| to 50 digits, rounded to float64 (+inf at the poles)."""
    v = mpmath.mpf(float(x))
    if v <= 0 and v == mpmath.floor(v):
        return math.inf
    return float(mpmath.re(mpmath.loggamma(v)))


def _true(fn, xs):
    return np.array([fn(x) for x in xs])


def _true_digamma(x):
    return float(mpmath.digamma(mpmath.mpf(float(x))))


def _lgamma(xs):
    return distnn.lgamma(distnn.tensor(np.asarray(xs, dtype=np.float64))).data


def _digamma(xs):
    return distnn.digamma(distnn.tensor(np.asarray(xs, dtype=np.float64))).data


def _ulps_off(got, want):
    """``|got - want|`` in units of ``eps |want|`` (0 where both are the same infinity)."""
    same = got == want
    with np.errstate(invalid="ignore"):  # (inf - inf where both are the same infinity: masked)
        return np.where(same, 0.0, np.abs(got - want) / (EPS * np.abs(np.where(same, 1.0, want))))


def _around(centre, half_width, n):
    """``n`` points over ``centre +- half_width`` and the 20 doubles on either side of ``centre``."""
    ulps = [centre]
    for direction in (math.inf, -math.inf):
        v = centre
        for _ in range(20):
            v = math.nextafter(v, direction)
            ulps.append(v)
    return np.concatenate([centre + np.linspace(-half_width, half_width, n), ulps])


@pytest.mark.parametrize("zero", [1.0, 2.0])
def test_lgamma_keeps_its_relative_accuracy_next_to_its_zeros_at_1_and_2(zero):
    x = np.concatenate([_around(zero, 0.25, 1001), zero + np.geomspace(1e-15, 1e-2, 100),
                        zero - np.geomspace(1e-15, 1e-2, 100)])
    x = x[x != zero]
    want = _true(_true_lgamma, x)
    got = _lgamma(x)
    assert _ulps_off(got, want).max() <= 3  # (~1e-17 absolute; the old shift to z >= 10 was ~7e-15 off)
    assert (_lgamma([zero]) == 0.0).all() and not np.signbit(_lgamma([zero])).any()


@pytest.mark.parametrize("low,high,count,geometric", [
    (0.3, 6.0, 3001, False),          # the minimum at 1.4616 and the [2, 8) recurrence
    (6.0, 20.0, 801, False),          # across the switch to Stirling's series at 8
    (20.0, 1e6, 400, True),
    (1e6, 1e305, 300, True),           # x (log x - 1) from 2^58
    (1e-300, 0.3, 400, True),         # -log x and the approximation about 1 of lgamma(x + 1)
    (5e-324, 1e-300, 50, True),       # subnormals
])
def test_lgamma_is_within_a_few_ulps_on_the_positive_axis(low, high, count, geometric):
    x = np.geomspace(low, high, count) if geometric else np.linspace(low, high, count)
    want = _true(_true_lgamma, x)
    assert _ulps_off(_lgamma(x), want).max() <= 3


def test_lgamma_of_negative_arguments_is_accurate_to_its_reflection_terms():
    # lgamma(x) = log(pi / |x sin(pi x)|) - lgamma(-x): next to the zeros of lgamma on the negative axis the
    # result is a difference, so the bound is relative to the larger term, not to the (small) result
    rng = np.random.default_rng(0)
    x = np.concatenate([-rng.uniform(0.0, 30.0, 1500), -np.arange(1, 30) + 1e-9, -np.arange(1, 30) - 1e-9,
                        -np.arange(1, 30) + 0.5, -np.geomspace(1e-300, 1e-5, 60)])
    want = _true(_true_lgamma, x)
    reflected = np.abs(_true(_true_lgamma, -x))
    scale = np.maximum(np.abs(want), reflected)
    assert (np.abs(_lgamma(x) - want) / (EPS * scale)).max() <= 4
    far = -np.concatenate([np.geomspace(40.0, 4e15, 300) + 0.25, [2.0**52 - 0.5]])  # (no zeros out there)
    assert _ulps_off(_lgamma(far), _true(_true_lgamma, far)).max() <= 3


def test_betaln_like_sums_stay_accurate():
    # lgamma(a) + lgamma(b) - lgamma(a + b), as Beta's log-normalizer and KL divergences take it: each term an
    # ulp or two off, so the sum is within a few ulps of its largest term (before: 1.4e-14 off on [0.3, 6]^2,
    # from the three shifted lgammas' ~7e-15 each)
    a, b = (g.ravel() for g in np.meshgrid(np.linspace(0.3, 6.0, 41), np.linspace(0.35, 6.05, 37)))
    got = _lgamma(a) + _lgamma(b) - _lgamma(a + b)
    # (a + b as float64 rounds it: the truth is taken at that rounded sum, the input the formula is given)
    want = np.array([float(mpmath.loggamma(u) + mpmath.loggamma(v) - mpmath.loggamma(float(u + v)))
                     for u, v in zip(a, b)])
    terms = np.abs(_lgamma(a)) + np.abs(_lgamma(b)) + np.abs(_lgamma(a + b))
    assert (np.abs(got - want) / (EPS * terms)).max() <= 2
    small = (a + b) < 4.0  # (terms below 2: the old ~7e-15 per term would be some 30 ulps of these)
    assert np.abs(got - want)[small].max() <= 1e-15


def test_digamma_is_within_a_few_ulps_on_the_positive_axis_its_zero_included():
    root = 1.4616321449683622
    x = np.concatenate([np.linspace(0.05, 12.0, 2001), _around(root, 0.05, 401), np.geomspace(1e-300, 0.05, 100),
                        np.geomspace(12.0, 1e300, 200)])
    want = _true(_true_digamma, x)
    assert _ulps_off(_digamma(x), want).max() <= 4  # (torch's: ~8e3 ulp next to the zero, 20 at 1)


def test_digamma_of_negative_arguments_is_accurate_to_its_reflection_terms():
    rng = np.random.default_rng(1)
    x = -rng.uniform(0.0, 20.0, 800)
    x = x[np.abs(x - np.round(x)) > 1e-6]
    want = _true(_true_digamma, x)
    # psi(x) = psi(1 - x) - pi cot(pi x): the two terms bound the error, and the roundings of 1 - x and of
    # pi x add ~eps absolute (psi' (1 - x) ulp(1 - x) is about eps)
    scale = np.abs(_true(_true_digamma, 1.0 - x)) + np.abs(math.pi / np.tan(math.pi * x)) + 1.0
    assert (np.abs(_digamma(x) - want) / (EPS * scale)).max() <= 8


def test_the_gradient_of_lgamma_is_digamma_to_a_few_ulps():
    x = np.concatenate([np.linspace(0.1, 8.0, 300), [1.4616321449683622, 1.0, 2.0, 30.0, 1e5]])
    t = distnn.tensor(x, requires_grad=True)
    distnn.lgamma(t).sum().backward()
    assert _ulps_off(t.grad.data, _true(_true_digamma, x)).max() <= 4
    # and digamma's own gradient (trigamma)
    t = distnn.tensor(x, requires_grad=True)
    distnn.digamma(t).sum().backward()
    np.testing.assert_allclose(t.grad.data, _true(lambda v: float(mpmath.polygamma(1, v)), x), rtol=8 * EPS)


EDGES = np.array([0.0, -0.0, math.inf, -math.inf, math.nan, 1.0, 2.0, -1.0, -2.0, -3.0, -1e300, -(2.0**52),
                  -(2.0**52) - 2.0, -(2.0**52) + 0.5, 5e-324, -5e-324, 1e-310, 2.0**-70, -(2.0**-70), 2.0**58,
                  1e306, np.finfo(np.float64).max, 2.5e305, 8.0, 7.999999999999999, 0.9, 0.7316, 0.23164,
                  1.7316312789916992, 1.2316322326660156, -0.5, -2.5, 3.0, 4.0, 10.0])


def test_lgamma_edges_are_torchs():
    got = _lgamma(EDGES)
    ref = torch.lgamma(torch.tensor(EDGES)).numpy()
    special = ~np.isfinite(ref) | (ref == 0)
    np.testing.assert_array_equal(got[special], ref[special])  # (+inf at the poles, NaN, exact +0 at 1 and 2)
    assert not np.signbit(got[ref == 0]).any()
    np.testing.assert_allclose(got[~special], ref[~special], rtol=4 * EPS, atol=4 * EPS)  # (-2.5: near a zero)


def test_digamma_edges_are_torchs():
    got = _digamma(EDGES)
    ref = torch.digamma(torch.tensor(EDGES)).numpy()
    special = ~np.isfinite(ref)  # (-inf at +0, +inf at -0, NaN at the negative integers and -inf)
    np.testing.assert_array_equal(got[special], ref[special])
    np.testing.assert_allclose(got[~special], ref[~special], rtol=1e-14, atol=4 * EPS)  # (torch's: ~8e3 ulp
    # next to the zero; ours is held to mpmath's above)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_lgamma_and_digamma_in_float32_and_float16_are_the_float64_values_rounded(dtype):
    x = np.concatenate([np.linspace(-9.7, 20.0, 600), [0.0, -0.0, 1.0, 2.0, -1.0, math.inf, -math.inf,
                                                        math.nan]]).astype(dtype)
    for ours, theirs, truth in ((distnn.lgamma, torch.lgamma, _true_lgamma), (distnn.digamma, torch.digamma,
                                                                             _true_digamma)):
        got = ours(distnn.tensor(x)).data
        ref = theirs(torch.from_numpy(x)).numpy()
        assert got.dtype == dtype and ref.dtype == dtype
        finite = np.isfinite(ref)
        np.testing.assert_array_equal(got[~finite], ref[~finite])  # (poles, NaN, +-inf as torch's)
        # computed in float64 and rounded once: the correctly rounded value but where float64's few ulps of
        # error straddle a rounding boundary (torch's own float kernel is up to ~5 float32 ulps off for
        # digamma, so the truth is the reference, torch's only for the non-finite values)
        want = np.array([truth(v) if np.isfinite(v) and not (v <= 0 and v == int(v)) else np.nan
                         for v in x.astype(np.float64)]).astype(dtype)
        ok = finite & np.isfinite(want)
        spacing = np.spacing(np.abs(want[ok])).astype(np.float64)
        assert (np.abs(got[ok].astype(np.float64) - want[ok]) <= spacing).all()


def test_integer_inputs_compute_in_the_default_float_dtype():
    ints = np.arange(-3, 40)
    got = distnn.lgamma(distnn.tensor(ints))
    ref = torch.lgamma(torch.tensor(ints)).numpy()
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.data, ref)


def test_what_is_built_on_lgamma_gets_its_accuracy():
    x = np.linspace(1.6, 6.0, 200)
    ref = _true(_true_lgamma, x)
    assert _ulps_off(distnn.special.gammaln(distnn.tensor(x)).data, ref).max() <= 3
    mv = distnn.mvlgamma(distnn.tensor(x), 3).data
    want = np.array([float(mpmath.log(mpmath.pi) * 3 / 2 + sum(mpmath.loggamma(mpmath.mpf(v) - mpmath.mpf(j) / 2)
                                                            for j in range(3))) for v in x])
    assert np.abs(mv - want).max() <= 8 * EPS * np.abs(want).max()
    # Beta's log-density (betaln inside) and Poisson's log-factorial
    a, b, v = 0.7, 3.3, np.linspace(0.05, 0.95, 50)
    beta = distnn.distributions.Beta(distnn.tensor(np.array(a)), distnn.tensor(np.array(b))).log_prob(distnn.tensor(v))
    beta = beta.data
    exact = np.array([float((a - 1) * mpmath.log(u) + (b - 1) * mpmath.log(1 - mpmath.mpf(u))
                            - mpmath.log(mpmath.beta(a, b))) for u in v])
    assert np.abs(beta - exact).max() <= 2e-15
    k = np.arange(0.0, 60.0)
    poisson = distnn.distributions.Poisson(distnn.tensor(np.array(2.5))).log_prob(distnn.tensor(k)).data
    exact = np.array([float(u * mpmath.log(2.5) - 2.5 - mpmath.loggamma(u + 1)) for u in k])
    assert np.abs(poisson - exact).max() <= 4 * EPS * np.abs(exact).max()
