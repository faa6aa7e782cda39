"""float16 prod against torch 2.13 (CPU, one thread, the oracle): bit for bit, PyTorch's multiplication order.

PyTorch's CPU kernel rounds every float16 multiplication and takes a row's values 64 at a time in 4 vectors of 16
lanes (numpy keeps a running float32 product within a loop): the draws cover rows shorter and longer than 64, every
reduced dim of 1-, 2- and 3-dim tensors, keepdim, and products that pass float16's 65504 midway (inf, or inf times
a zero: NaN) or come back from it. Warnings are errors: PyTorch gives none.
"""
from __future__ import annotations

import warnings
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402

F16 = np.float16


# (PyTorch splits a full product of 32,768 elements or more among its threads: one thread is the order copied)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def products(x, dim, keepdim):
    """(distnn's, torch's) float16 products of ``x`` as numpy arrays, distnn's with warnings as errors."""
    want = torch.from_numpy(x).prod() if dim is None else torch.from_numpy(x).prod(dim, keepdim=keepdim)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = distnn.tensor(x)
        got = t.prod() if dim is None else t.prod(dim, keepdim=keepdim)
        got_function = distnn.prod(t) if dim is None else distnn.prod(t, dim, keepdim)
    return np.asarray(got.data), np.asarray(got_function.data), want.numpy()


def assert_bitwise(got, want):
    assert got.dtype == np.float16 and got.shape == want.shape
    np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))  # (NaNs too: PyTorch's bits)


SHAPES = [(1,), (5,), (63,), (64,), (65,), (127,), (128,), (129,), (300,), (1000,), (3, 200), (200, 3), (7, 64),
          (2, 5, 129), (129, 3, 2), (4, 1, 70), (70, 1), (1, 70), (3, 70, 1), (0,), (3, 0), (0, 4)]


def draw(rng, shape, spread):
    """Random float16 values of either sign whose logs spread by ``spread``: wide spreads overflow midway."""
    with np.errstate(over="ignore"):
        magnitude = np.exp(rng.normal(0, spread, shape)).astype(F16)
    return magnitude * rng.choice(np.array([-1, 1], F16), shape)


@pytest.mark.parametrize("spread", [0.02, 0.3, 1.5, 4.0])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_float16_products_bitwise_as_torch(shape, spread):
    rng = np.random.default_rng(zlib.crc32(repr((shape, spread)).encode()))
    dims = [None] + list(range(len(shape)))
    for _ in range(8):
        x = draw(rng, shape, spread)
        for dim in dims:
            for keepdim in ((False, True) if dim is not None else (False,)):
                got, got_function, want = products(x, dim, keepdim)
                assert_bitwise(got, want)
                assert_bitwise(got_function, want)


def test_float16_product_past_65504_and_back_as_torch():
    # (numpy's float32 running product: 300 * 300 * 1e-3 is 90; PyTorch's float16 one is inf at 90,000)
    for values in ([300, 300, 1e-3], [300, 300, 0.0], [300, 300, 1e-3, -1e-3, 500], [1e-4, 1e-4, 1e4, 1e4],
                   [6e4, 2, 0.5], [0.5, 6e4, 2], [np.inf, 0.0], [np.nan, 2.0]):
        x = np.array(values, F16)
        for tiled in (x, np.tile(x, 40), np.tile(x[None], (3, 50))):
            for dim in (None, -1, 0):
                got, _, want = products(tiled, dim, False)
                assert_bitwise(got, want)


def test_float16_product_of_ones_and_near_ones_over_many_rows_as_torch():
    # (long rows: many 64-value steps, where rounding each step drifts from one rounding at the end)
    rng = np.random.default_rng(3)
    x = (1 + rng.uniform(-0.01, 0.01, (16, 4096))).astype(F16)
    for dim in (None, 0, 1):
        got, _, want = products(x, dim, False)
        assert_bitwise(got, want)


def test_float16_product_gradient_as_torch():
    # (PyTorch's prod_backward on the float16 result: grad * result / input)
    rng = np.random.default_rng(4)
    x = draw(rng, (4, 70), 0.3)
    for dim in (None, 0, 1):
        grads = []
        for m in (distnn, torch):
            t = m.tensor(x, requires_grad=True)
            (t.prod() if dim is None else t.prod(dim)).sum().backward()
            grads.append(np.asarray(t.grad.numpy() if m is torch else getattr(t.grad, "data", t.grad)))
        assert_bitwise(grads[0], grads[1])
