"""distnn.lgamma on (-28, -2), where lgamma has its negative zeros (-2.457, -2.747, -3.144, ...), against mpmath
at 50 digits: a few ulp relative everywhere, the 30 doubles on either side of every zero included (the reflection
formula alone was accurate only absolutely there: off by ~1e15 ulp at -2.4570247382208006). Also the zeros'
table against mpmath, and PyTorch's values at the poles and edges of the range."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

mpmath = pytest.importorskip("mpmath")
torch = pytest.importorskip("torch")

import distnn  # noqa: E402

EPS = np.finfo(np.float64).eps
mpmath.mp.dps = 50


def lgamma_zero(n, upper):
    """The zero of lgamma in (-n - 1/2, -n) (``upper``) or in (-n - 1, -n - 1/2), by bisection at 50 digits
    (lgamma falls from +inf at the pole to below 0 at -n - 1/2 in either half)."""
    pole, middle = (mpmath.mpf(-n), mpmath.mpf(-n) - 0.5) if upper else (mpmath.mpf(-n - 1), mpmath.mpf(-n) - 0.5)
    near, far = pole, middle  # (lgamma > 0 toward the pole, < 0 toward the middle)
    for _ in range(200):
        mid = (near + far) / 2
        if mpmath.log(abs(mpmath.gamma(mid))) > 0:
            near = mid
        else:
            far = mid
    return (near + far) / 2


def true_lgamma(x):
    v = mpmath.mpf(float(x))
    if v == mpmath.floor(v):
        return math.inf
    return float(mpmath.log(abs(mpmath.gamma(v))))


def lgamma(xs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (PyTorch's lgamma is silent, at the poles too)
        return np.asarray(distnn.lgamma(distnn.tensor(np.asarray(xs, dtype=np.float64))).data)


def relative_error(got, want):
    """``|got - want|`` in units of ``eps |want|`` (0 where both are the same infinity)."""
    same = got == want
    with np.errstate(invalid="ignore"):
        return np.where(same, 0.0, np.abs(got - want) / (EPS * np.abs(np.where(same, 1.0, want))))


def doubles_around(centre, count):
    out = [centre]
    for direction in (math.inf, -math.inf):
        v = centre
        for _ in range(count):
            v = math.nextafter(v, direction)
            out.append(v)
    return out


@pytest.mark.parametrize("n", range(2, 28))
def test_lgamma_next_to_the_zeros_in_each_interval_within_4_ulp(n):
    rng = np.random.default_rng(n)
    xs = []
    for upper in (True, False):
        zero = float(lgamma_zero(n, upper))
        xs += doubles_around(zero, 30)
        xs += list(zero + rng.normal(0, 1e-3, 15)) + list(zero + rng.normal(0, 1e-9, 15))
    xs += list(rng.uniform(-n - 1, -n, 120))  # (across the interval: its middle, where lgamma is least, too)
    xs += [-n - 1e-9, -n - 1 + 1e-9, -n - 0.5] + doubles_around(-n, 3)[1:] + doubles_around(-n - 1.0, 3)[1:]
    x = np.array([v for v in xs if -n - 1 < v < -n])
    want = np.array([true_lgamma(v) for v in x])
    assert relative_error(lgamma(x), want).max() <= 4


def test_lgamma_at_the_doubles_nearest_the_first_zeros():
    # (-2.4570247382208006: its lgamma is 5.6e-17; the reflection's two terms of 0.24 left ~1e-16 of noise)
    x = np.array([-2.4570247382208006, -2.7476826467274127, -3.14358088834998, -3.955294284858598])
    want = np.array([true_lgamma(v) for v in x])
    assert relative_error(lgamma(x), want).max() <= 2


def test_lgamma_beyond_the_range_keeps_its_accuracy():
    # (-28 and below: the zeros are within an ulp of the integers, |lgamma| is large and the reflection exact
    # enough; -2 to 0: no zeros)
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-40, -28, 300), rng.uniform(-2, 0, 300), [-28.5, -28 - 1e-9, -2 + 1e-9,
                                                                                -1.999999]])
    want = np.array([true_lgamma(v) for v in x])
    assert relative_error(lgamma(x), want).max() <= 4


def test_lgamma_at_the_poles_and_edges_as_torch():
    x = np.array([-2.0, -3.0, -27.0, -28.0, -2.5, -27.5, -2 - 2**-50, -28 + 2**-48, -math.inf, math.nan])
    got = lgamma(x)
    want = torch.lgamma(torch.from_numpy(x)).numpy()
    assert np.array_equal(np.isinf(got), np.isinf(want)) and np.array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-13)
    assert (got[np.isinf(got)] > 0).all()


def test_lgamma_float32_near_the_negative_zeros_as_torch():
    # (float32: computed in float64 and rounded, within a float32 ulp of PyTorch's lgammaf)
    x = (np.array([-2.4570247382208006, -2.7476826467274127, -3.14358088834998]) + np.linspace(-1e-3, 1e-3, 41)[:, None]
         ).astype(np.float32).ravel()
    got = np.asarray(distnn.lgamma(distnn.tensor(x)).data)
    want = np.array([true_lgamma(v) for v in x.astype(np.float64)])
    assert got.dtype == np.float32
    assert (np.abs(got - want) <= np.spacing(np.abs(want).astype(np.float32))).all()


def test_the_zeros_table_against_mpmath():
    from distnn.functional._lgamma_negative import _ZEROS

    for n in range(2, 28):
        for half, (hi, lo, sine) in enumerate((_ZEROS[2 * (n - 2)], _ZEROS[2 * (n - 2) + 1])):
            zero = mpmath.mpf(hi) + mpmath.mpf(lo)
            assert (-n - 0.5 < zero < -n) if half == 0 else (-n - 1 < zero < -n - 0.5)
            # lgamma vanishes there to double-double precision: |lgamma(x0)| <= |psi(x0)| |x0| 2^-104
            assert abs(mpmath.log(abs(mpmath.gamma(zero)))) <= abs(mpmath.digamma(zero)) * abs(zero) * 2.0 ** -104
            assert abs(sine - float(mpmath.sin(mpmath.pi * zero))) <= np.spacing(abs(sine))
