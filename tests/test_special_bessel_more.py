"""distnn.special's Bessel functions without a derivative (new): bessel_j0/j1/y0/y1, modified_bessel_i0/i1/k0/k1,
scaled_modified_bessel_k0/k1 and spherical_bessel_j0 against PyTorch 2.13: values over wide ranges (0, -0,
negative, large, +-inf, NaN: those exactly, signed zeros included) in float64 and float32, integer inputs, and
PyTorch's behaviour with an input that requires grad (the result does not: no derivative is defined)."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402

from test_special_functions import _assert_matches  # noqa: E402

LINE = np.concatenate([np.linspace(-100.0, 300.0, 40001), np.linspace(-3.0, 3.0, 6001), np.geomspace(1e-300, 1e300, 800),
                       -np.geomspace(1e-300, 1e300, 800), [5.0, -5.0, 2.0, -2.0, 8.0, -8.0, 0.5, -0.5, 1e-5, -1e-5],
                       [0.0, -0.0, math.inf, -math.inf, math.nan]])
OSCILLATING = ["bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1"]
NAMES = OSCILLATING + ["modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0", "modified_bessel_k1",
                       "scaled_modified_bessel_k0", "scaled_modified_bessel_k1", "spherical_bessel_j0"]


def _both(name, x):
    return getattr(distnn.special, name)(distnn.tensor(x)).data, getattr(torch.special, name)(torch.tensor(x)).numpy()


@pytest.mark.parametrize("name", NAMES)
def test_values_match_torch_float64(name):
    ours, ref = _both(name, LINE)
    if name in OSCILLATING:
        # (near their zeros the relative error of any method grows: sin/cos's last ulp, numpy's against libm's,
        # is absolute, of the size of the envelope sqrt(2/(pi x)); measured below 2.1e-15 of it)
        fin = np.isfinite(ref)
        _assert_matches(ours[~fin], ref[~fin], 0)
        envelope = np.maximum(np.minimum(1.0, np.sqrt(2 / (math.pi * np.maximum(np.abs(LINE[fin]), 1e-300)))), np.abs(ref[fin]))
        assert (np.abs(ours[fin] - ref[fin]) <= 3e-15 * envelope).all()
        assert np.array_equal(np.signbit(ours[ref == 0]), np.signbit(ref[ref == 0]))
    else:
        _assert_matches(ours, ref, 4e-15)  # (the same Cephes coefficients and order of operations)


@pytest.mark.parametrize("name", NAMES)
def test_values_match_torch_float32(name):
    # (torch computes in float, ours in float64 rounded once: away from float's own trouble spots, its
    # subnormal inputs and the large arguments where x - pi/4 has lost every digit)
    x = LINE[(np.abs(LINE) > 1e-30) & (np.abs(LINE) < 200) | ~np.isfinite(LINE) | (LINE == 0)].astype(np.float32)
    ours, ref = _both(name, x)
    if name in OSCILLATING:
        fin = np.isfinite(ref)
        _assert_matches(ours[~fin], ref[~fin], 0)
        a = np.abs(x[fin].astype(float))
        envelope = np.maximum(np.minimum(1.0, np.sqrt(2 / (math.pi * np.maximum(a, 1e-300)))), np.abs(ref[fin]))
        # (torch's float x - pi/4 is off by x ulps: the phase error grows with x)
        assert (np.abs(ours[fin] - ref[fin]) <= 8 * np.finfo(np.float32).eps * (1 + a) * envelope).all()
    else:
        _assert_matches(ours, ref, 3e-6)


def test_edges_are_torchs():
    x = np.array([0.0, -0.0, math.inf, -math.inf, math.nan, -1.0])
    s = distnn.special
    np.testing.assert_array_equal(s.bessel_j0(distnn.tensor(x)).data, [1, 1, math.nan, math.nan, math.nan,
                                                                         torch.special.bessel_j0(torch.tensor(-1.0,
                                                                         dtype=torch.float64)).item()])
    j1 = s.bessel_j1(distnn.tensor(x)).data
    assert j1[0] == 0 and not np.signbit(j1[0]) and np.signbit(j1[1])
    for name in ("bessel_y0", "bessel_y1"):
        np.testing.assert_array_equal(getattr(s, name)(distnn.tensor(x)).data[[0, 1, 2, 3, 4, 5]],
                                      [-math.inf, -math.inf, math.nan, math.nan, math.nan, math.nan])
    for name in ("modified_bessel_k0", "modified_bessel_k1", "scaled_modified_bessel_k0", "scaled_modified_bessel_k1"):
        np.testing.assert_array_equal(getattr(s, name)(distnn.tensor(x)).data,
                                      [math.inf, math.inf, 0.0, math.nan, math.nan, math.nan])
    np.testing.assert_array_equal(s.spherical_bessel_j0(distnn.tensor(x)).data[:5], [1, 1, 0, 0, math.nan])
    np.testing.assert_array_equal(s.modified_bessel_i0(distnn.tensor(x)).data[:5], [1, 1] + [math.nan] * 3)


@pytest.mark.parametrize("name", NAMES)
def test_no_derivative_integer_inputs_and_refusals(name):
    fn, torch_fn = getattr(distnn.special, name), getattr(torch.special, name)
    x = np.array([[0.3, 1.7], [4.5, 12.0]])
    d, t = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = fn(d), torch_fn(t)
    assert not ty.requires_grad and not y.requires_grad and y.grad_fn is None  # (PyTorch's: no derivative)
    with pytest.raises(RuntimeError):
        y.sum().backward()
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=4e-15)
    ints = np.array([0, 1, 3, 7])
    yi, ti = fn(distnn.tensor(ints)), torch_fn(torch.tensor(ints)).numpy()
    assert yi.dtype == ti.dtype == np.float32
    np.testing.assert_allclose(yi.data, ti, rtol=2e-6)
    with pytest.raises(TypeError, match="must be Tensor, not float"):
        fn(1.0)
    assert not hasattr(distnn.Tensor, name) and not hasattr(torch.Tensor, name) and not hasattr(torch, name)
