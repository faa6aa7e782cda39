"""PyTorch's unary pointwise math on distnn tensors (distnn.sin, Tensor.erfinv, ...) against PyTorch 2.13
as the oracle: values and gradients in float64 (tight) and float32 (loose) over a fuzz of shapes, edge points (0,
-0.0, inf, NaN, domain ends) where PyTorch's derivative formulas have their conventions, result dtypes for
integer and bool inputs (or PyTorch's refusal), logit's eps, nan_to_num, erf's range, GELU without scipy."""
from __future__ import annotations

import math

import numpy as np
import pytest

import distnn

from pointwise_oracle import EDGE, compare


torch = pytest.importorskip("torch")


R = np.random.default_rng(0)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)


def _normal(*args, **kwargs):
    """R.standard_normal looked up at each call: while a test runs, R is its own generator (DRAW_PER_TEST)."""
    return R.standard_normal(*args, **kwargs)


# name -> sampler of the domain (where torch is finite: gradients compare everywhere)
UNARY = {
    "sin": _normal, "cos": _normal, "tan": lambda s: R.uniform(-1.4, 1.4, s),
    "asin": lambda s: R.uniform(-0.99, 0.99, s), "arcsin": lambda s: R.uniform(-0.99, 0.99, s),
    "acos": lambda s: R.uniform(-0.99, 0.99, s), "arccos": lambda s: R.uniform(-0.99, 0.99, s),
    "atan": _normal, "arctan": _normal, "sinh": _normal, "cosh": _normal,
    "asinh": _normal, "arcsinh": _normal, "acosh": lambda s: R.uniform(1.01, 5, s),
    "arccosh": lambda s: R.uniform(1.01, 5, s), "atanh": lambda s: R.uniform(-0.99, 0.99, s),
    "arctanh": lambda s: R.uniform(-0.99, 0.99, s), "log1p": lambda s: R.uniform(-0.9, 5, s),
    "expm1": _normal, "log2": lambda s: R.uniform(0.01, 9, s), "log10": lambda s: R.uniform(0.01, 9, s),
    "exp2": _normal, "erf": lambda s: R.standard_normal(s) * 3, "erfc": lambda s: R.standard_normal(s) * 3,
    "erfinv": lambda s: R.uniform(-0.999, 0.999, s), "rsqrt": lambda s: R.uniform(0.1, 4, s),
    "reciprocal": lambda s: R.uniform(0.1, 4, s) * R.choice([-1, 1], s), "square": _normal,
    "neg": _normal, "negative": _normal, "sgn": _normal,
    "frac": lambda s: R.standard_normal(s) * 4, "logit": lambda s: R.uniform(0.01, 0.99, s),
    "sinc": lambda s: R.standard_normal(s) * 2, "deg2rad": lambda s: R.standard_normal(s) * 90,
    "rad2deg": _normal, "nan_to_num": _normal, "positive": _normal,
}


INT_REFUSED = {"frac"}  # (PyTorch: not implemented for integers)
BOOL_REFUSED = {"frac", "neg", "negative", "positive"}


@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.parametrize("shape", [(3, 4), (2, 1, 3), (), (0, 2)], ids=str)
def test_unary_value_and_gradient_in_float64_match_pytorch(name, shape):
    x = np.asarray(UNARY[name](shape), dtype=np.float64)
    compare(getattr(distnn, name), getattr(torch, name), [x], 1e-12)


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_at_edge_points_matches_pytorch_value_and_gradient(name):
    """0, -0.0, +-1, 2, tiny, large, +-inf, NaN: the values (NaN and -0.0 where PyTorch gives them) and the
    gradients of PyTorch's formulas there (erfinv at +-1, logit outside [0, 1], sinc at 0, ...)."""
    compare(getattr(distnn, name), getattr(torch, name), [EDGE.copy()], 1e-12)


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_in_float32_matches_pytorch_loosely_and_stays_float32(name):
    x = np.asarray(UNARY[name]((4, 5)), dtype=np.float32)
    compare(getattr(distnn, name), getattr(torch, name), [x], 2e-5)


@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_], ids=["int64", "int32", "bool"])
def test_unary_of_integers_and_bools_has_pytorchs_dtype_or_its_refusal(name, dtype):
    x = np.array([0, 1, 2, -3, 5])
    x = (x > 0) if dtype is np.bool_ else x.astype(dtype)
    if name in (BOOL_REFUSED if dtype is np.bool_ else INT_REFUSED):
        with pytest.raises(Exception) as torch_error:
            getattr(torch, name)(torch.tensor(x))
        with pytest.raises(type(torch_error.value)):
            getattr(distnn, name)(distnn.tensor(x))
        return
    if name in ("acosh", "arccosh", "atanh", "arctanh", "erfinv", "logit", "log2", "log10", "rsqrt",
                "reciprocal", "log1p"):
        x = x[:3] if dtype is not np.bool_ else x  # (values inside the domain where it matters little)
    compare(getattr(distnn, name), getattr(torch, name), [x], 2e-6, grad=False)


@pytest.mark.parametrize("eps", [None, 0.0, 1e-3, 0.2])
def test_logit_eps_clamps_and_its_gradient_is_zero_outside_as_pytorch(eps):
    x = np.array([-0.5, 0.0, 1e-4, 0.1, 0.5, 0.85, 0.9999, 1.0, 1.5, math.nan])
    compare(lambda t: distnn.logit(t, eps), lambda t: torch.logit(t, eps), [x], 1e-12)


@pytest.mark.parametrize("kw", [{}, {"nan": 1.5}, {"nan": 2.0, "posinf": 7.0, "neginf": -9.0}])
def test_nan_to_num_replacements_and_gradient_mask_match_pytorch(kw):
    x = np.array([1.0, math.nan, math.inf, -math.inf, -0.0, 3.5])
    for dtype, rtol in ((np.float64, 1e-15), (np.float32, 1e-7)):
        compare(lambda t: distnn.nan_to_num(t, **kw), lambda t: torch.nan_to_num(t, **kw), [x.astype(dtype)], rtol)


def test_erf_erfc_erfinv_are_precise_over_their_whole_range():
    """numpy has no erf: distnn's series and continued fraction give float64 precision everywhere, the
    tails of erfc included (where 1 - erf would be 0), and erfinv inverts them to the ends of (-1, 1)."""
    x = np.concatenate([np.linspace(-27, 27, 20001), [1.4999999, 1.5, 1.5000001, 5e-324, 1e-200]])
    for name in ("erf", "erfc"):
        got = getattr(distnn, name)(distnn.tensor(x)).data
        want = getattr(torch, name)(torch.tensor(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-320)  # (subnormals: absolute precision)
    y = np.concatenate([np.linspace(-1, 1, 20001), [1 - 2**-53, -1 + 2**-53, 1e-300, 0.5 - 1e-16]])
    np.testing.assert_allclose(distnn.erfinv(distnn.tensor(y)).data, torch.erfinv(torch.tensor(y)).numpy(),
                               rtol=1e-13, atol=0)


def test_gelu_without_scipy_uses_the_whole_array_erf(monkeypatch):
    # scipy is optional (the data extra brings it): GELU's exact form fell back to math.erf per element
    import sys

    import distnn.functional as F
    from distnn.functional import _special

    x = distnn.Tensor(np.linspace(-6, 6, 1001))
    with_scipy = F.gelu(x).numpy()
    calls = []
    real = _special.erf_array
    monkeypatch.setattr(_special, "erf_array", lambda a: calls.append(a.shape) or real(a))
    monkeypatch.setitem(sys.modules, "scipy.special", None)  # (import fails as if scipy were missing)
    np.testing.assert_allclose(F.gelu(x).numpy(), with_scipy, rtol=1e-14, atol=1e-15)
    assert calls == [(1001,)]
