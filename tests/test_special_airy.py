"""distnn.special.airy_ai (new) against PyTorch 2.13: values over a wide line (both asymptotic forms, the
Maclaurin series between, the underflow above 103.892, +-inf and NaN exactly) in float64 and float32, integer
inputs, no derivative, refusals."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402

LINE = np.concatenate([np.linspace(-200.0, 110.0, 62001), np.linspace(-3.0, 3.0, 12001), np.geomspace(1e-300, 1e3, 500),
                       -np.geomspace(1e-300, 1e3, 500), [0.0, -0.0, 2.09, -2.09, 103.892, 103.9, 8.3203353, 1e300,
                                                         -1e300, math.inf, -math.inf, math.nan]])


def _both(x):
    return distnn.special.airy_ai(distnn.tensor(x)).data, torch.special.airy_ai(torch.tensor(x)).numpy()


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-14), (np.float32, 8e-6)])
def test_values_match_torch(dtype, rtol):
    with np.errstate(over="ignore"):
        x = LINE.astype(dtype)  # (float32: +-1e300 become +-inf)
    ours, ref = _both(x)
    assert ours.dtype == ref.dtype == dtype
    special = ~np.isfinite(ref) | (ref == 0)  # (NaN at +-inf and NaN, 0 once it underflows: exactly)
    np.testing.assert_array_equal(ours[special], ref[special])
    # left of 0 Ai oscillates inside the envelope (pi^2 |x|)^(-1/4): rounding relative to it near its zeros
    # (measured: 3.7e-15 in float64, at the series' end 2.09, 2.0e-6 in float32)
    a = np.abs(x[~special].astype(float))
    envelope = np.where(x[~special] < 0, np.minimum(0.6, 0.6 / np.maximum(a, 1e-300) ** 0.25), 0.0)
    err = np.abs(ours[~special].astype(float) - ref[~special])
    assert (err <= rtol * np.maximum(np.abs(ref[~special]), envelope)).all()


def test_edges_are_torchs():
    x = np.array([0.0, -0.0, math.inf, -math.inf, math.nan, 103.9, 1e300, 30.0])
    ours, ref = _both(x)
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_array_equal(ours[:7], [0.355028053887817239260] * 2 + [math.nan] * 3 + [0.0, 0.0])
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    ours32, ref32 = _both(x32)  # (float's e^zeta overflows from 25.77 on: 0 there, as torch's)
    np.testing.assert_array_equal(ours32, ref32)
    assert ours32[-1] == 0 and ours[-1] > 0


def test_no_derivative_integer_inputs_and_refusals():
    x = np.array([[0.3, -1.7], [4.5, -12.0]])
    d, t = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = distnn.special.airy_ai(d), torch.special.airy_ai(t)
    assert not ty.requires_grad and not y.requires_grad and y.grad_fn is None  # (PyTorch's: no derivative)
    with pytest.raises(RuntimeError):
        y.sum().backward()
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-14)
    for ints in (np.array([0, 1, -3, 7]), np.array([True, False])):
        yi, ti = distnn.special.airy_ai(distnn.tensor(ints)).data, torch.special.airy_ai(torch.tensor(ints)).numpy()
        assert yi.dtype == ti.dtype == np.float32
        np.testing.assert_allclose(yi, ti, rtol=2e-6)
    with pytest.raises(TypeError, match="must be Tensor, not float"):
        distnn.special.airy_ai(1.0)
    with pytest.raises(NotImplementedError, match="float16"):
        distnn.special.airy_ai(distnn.tensor(np.ones(2, np.float16)))
    with pytest.raises(NotImplementedError):
        torch.special.airy_ai(torch.ones(2, dtype=torch.float16))
    assert not hasattr(distnn.Tensor, "airy_ai") and not hasattr(torch.Tensor, "airy_ai")
