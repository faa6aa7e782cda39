"""cumprod and its gradient against torch 2.13 (CPU, the oracle) with infs, zeros and values past the range.

PyTorch carries a float16 running product in float32 and a float32 one in float64 (forward: bit for bit here for
every dtype); its gradient (cumprod_backward) adds the reversed running sums in the same wider floats and returns
the incoming gradient itself along a dim of size 1 (no ``g * x / x``, NaN at an inf). Gradients are compared bit
for bit everywhere, each slice's first zero included (a sum added in PyTorch's sum kernel's order there:
tests/test_cumprod_first_zero_torch.py). Warnings are errors.
"""
from __future__ import annotations

import warnings
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402

F16, F32, F64 = np.float16, np.float32, np.float64


def cumprod_and_grad(m, x, g, dim):
    t = m.tensor(x, requires_grad=True)
    out = m.cumprod(t, dim)
    out.backward(m.tensor(g))
    if m is torch:
        return out.detach().numpy(), t.grad.numpy()
    return np.asarray(out.data), np.asarray(getattr(t.grad, "data", t.grad))


def draw(rng, dtype, shape, zeros, infs):
    with np.errstate(over="ignore"):
        x = (np.exp(rng.normal(0, 3, shape)) * rng.choice([-1, 1], shape)).astype(dtype)
    u = rng.random(shape)
    x[u < zeros] = 0
    x[(u >= zeros) & (u < zeros + infs)] = np.inf
    x[(u >= zeros + infs) & (u < zeros + 1.5 * infs)] = -np.inf
    return x


def assert_same(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)  # (NaN where PyTorch's is NaN)


@pytest.mark.parametrize("infs", [0.0, 0.08])
@pytest.mark.parametrize("zeros", [0.0, 0.15, 0.4])
@pytest.mark.parametrize("shape", [(1,), (2,), (7,), (3, 1), (3, 11), (4, 5, 3)], ids=str)
@pytest.mark.parametrize("dtype", [F16, F32, F64])
def test_cumprod_and_gradient_with_infs_and_zeros_as_torch(dtype, shape, zeros, infs):
    rng = np.random.default_rng(zlib.crc32(repr((np.dtype(dtype).name, shape, zeros, infs)).encode()))
    for _ in range(20):
        x = draw(rng, dtype, shape, zeros, infs)
        g = rng.normal(0, 2, shape).astype(dtype) if rng.random() < 0.7 else np.ones(shape, dtype)
        for dim in range(len(shape)):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                out, grad = cumprod_and_grad(distnn, x, g, dim)
            want_out, want_grad = cumprod_and_grad(torch, x, g, dim)
            assert_same(out, want_out)
            assert_same(grad, want_grad)


@pytest.mark.parametrize("values", [[np.inf], [-np.inf], [np.nan], [0.0], [np.inf, 2.0], [2.0, np.inf],
                                    [np.inf, 0.0], [0.0, np.inf], [np.inf, 0.0, 3.0], [0.0, 0.0, np.inf],
                                    [300.0, 300.0, 0.0, 2.0], [300.0, 300.0, 1e-3], [6e4, 0.0, 6e4, 2.0]], ids=str)
@pytest.mark.parametrize("dtype", [F16, F32, F64])
def test_cumprod_gradient_at_float16_infs_and_zeros_as_torch(dtype, values):
    x = np.array(values, dtype)
    for g in (np.ones_like(x), np.arange(1, len(values) + 1).astype(dtype)):
        for shaped in (x, x.reshape(-1, 1), x.reshape(1, -1)):
            gs = g.reshape(shaped.shape)
            for dim in range(shaped.ndim):
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    out, grad = cumprod_and_grad(distnn, shaped, gs, dim)
                want_out, want_grad = cumprod_and_grad(torch, shaped, gs, dim)
                assert_same(out, want_out)
                assert_same(grad, want_grad)


def test_float32_cumprod_is_accumulated_in_float64_as_torch():
    # (a float32 running product drifts by an ulp within a few steps; PyTorch's is rounded once per value)
    x = np.random.default_rng(9).uniform(0.5, 2.0, (8, 300)).astype(F32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = np.asarray(distnn.cumprod(distnn.tensor(x), 1).data)
    assert_same(got, torch.cumprod(torch.from_numpy(x), 1).numpy())
