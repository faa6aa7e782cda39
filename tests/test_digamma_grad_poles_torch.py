"""digamma's gradient (trigamma) against PyTorch. Away from the poles they agree (distnn's is the more accurate:
it computes in float64 and reduces ``sin(pi x)``'s argument exactly). At the poles (0 and the negative integers)
distnn keeps +inf, trigamma's value there from both sides, where PyTorch gives finite, erratic numbers
(``pi^2 / sin(fl(pi) x)^2`` with ``pi`` rounded to the dtype: ``sin`` of it times an integer is not 0, e.g.
1.29e15 at -1 in float32, 1065 at -1e6): a rounding artifact of its reflection formula, not copied."""
import math

import numpy as np
import pytest
import torch

import distnn

pytestmark = pytest.mark.filterwarnings("error")


def _grad(lib, xs):
    x = lib.tensor(xs, requires_grad=True)
    out = lib.digamma(x)
    out.sum().backward()
    g = x.grad
    return out, np.asarray(g.numpy() if hasattr(g, "numpy") else g)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_away_from_poles(dtype):
    rng = np.random.default_rng(5)
    xs = np.concatenate([rng.uniform(-30, 30, 3000), rng.uniform(-3, 3, 3000), [0.5, 1e-3, -1e-3, 1e4]])
    xs = xs.astype(dtype)
    xs = xs[(xs != np.round(xs)) & (np.abs(xs - np.round(xs)) > 1e-2)]  # (near a pole float32's torch is off)
    out_t, g_t = _grad(torch, xs)
    out_d, g_d = _grad(distnn, xs)
    assert out_d.grad_fn.name() == out_t.grad_fn.name() == "DigammaBackward0"
    assert g_d.dtype == g_t.dtype == np.dtype(dtype)
    # (PyTorch's float32 trigamma computes in float32: off by up to ~1e-3 near the poles at |x| ~ 30)
    np.testing.assert_allclose(g_d, g_t, rtol={"float32": 1e-3, "float64": 1e-9}[dtype])
    # distnn's float32 is its float64 rounded: computed in float64
    np.testing.assert_array_equal(g_d, _grad(distnn, xs.astype(np.float64))[1].astype(dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_poles_are_infinite(dtype):
    poles = np.array([0.0, -0.0, -1.0, -2.0, -3.0, -10.0, -100.0, -1e6], dtype)
    out_t, g_t = _grad(torch, poles)
    out_d, g_d = _grad(distnn, poles)
    np.testing.assert_array_equal(distnn.polygamma(1, distnn.tensor(poles)).numpy(), np.inf)
    np.testing.assert_array_equal(g_d, np.inf)
    # PyTorch: inf at 0 (sin(0) is 0), finite at the negative integers: pi^2 / sin(fl(pi) x)^2 in the dtype
    assert np.all(np.isinf(g_t[:2])) and np.all(np.isfinite(g_t[2:]))
    pi = np.asarray(math.pi, dtype)
    assert g_t[2] == pytest.approx(float(pi * pi / np.sin(pi * poles[2]) ** 2), rel=1e-3)
    np.testing.assert_array_equal(out_d.detach().numpy(), out_t.detach().numpy())  # (the values: inf, NaN)
