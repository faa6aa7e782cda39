"""cumprod's gradient at each slice's first zero against torch 2.13 (CPU, one thread, the oracle), bit for bit.

There PyTorch's cumprod_backward sums ``grad * prod(x after the zero)`` over the values up to the second zero with
its CPU ``sum`` kernel, whose order (vector lanes, 4 interleaved partial sums, a 16-value cascade, columns in
blocks) differs from numpy's pairwise sum: float32 and float64 gradients an ulp or more apart there before
distnn replayed that order. The draws put the first zero early in long slices (many terms to add), along the
innermost dim and outer ones, with rows and columns around the kernel's vector widths; and ``sum`` itself is
compared on the layouts the replay covers.
"""
from __future__ import annotations

import warnings
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
from distnn.functional._torch_sum_order import torch_sum  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F32, F64 = np.float32, np.float64


def grads(m, x, g, dim):
    t = m.tensor(x, requires_grad=True)
    m.cumprod(t, dim).backward(m.tensor(g))
    return t.grad.numpy() if m is torch else np.asarray(t.grad.data)


def draw_with_early_zeros(rng, dtype, shape, dim):
    """Values of either sign near 1 (long products stay finite), each slice along ``dim`` with a zero in its first
    quarter and, in some slices, a second one later."""
    x = (rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)).astype(dtype)
    n = shape[dim]
    moved = np.moveaxis(x, dim, 0)
    flat = moved.reshape(n, -1)
    for column in range(flat.shape[1]):
        flat[rng.integers(0, max(1, n // 4)), column] = 0
        if rng.random() < 0.3:
            flat[rng.integers(n // 2, n), column] = 0
    return np.ascontiguousarray(np.moveaxis(flat.reshape(moved.shape), 0, dim))


SHAPES = [(40,), (100,), (300,), (3, 9), (5, 37), (2, 130), (37, 3), (40, 9), (33, 17), (2, 50, 5), (4, 30, 40)]


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_gradient_at_the_first_zero_bitwise_as_torch(dtype, shape):
    rng = np.random.default_rng(zlib.crc32(repr((np.dtype(dtype).name, shape)).encode()))
    for _ in range(4):
        for dim in range(len(shape)):
            x = draw_with_early_zeros(rng, dtype, shape, dim)
            g = rng.normal(0, 1, shape).astype(dtype) * 10.0 ** rng.integers(-3, 4, shape)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                got = grads(distnn, x, g, dim)
            want = grads(torch, x, g, dim)
            np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


@pytest.mark.parametrize("dtype", [F32, F64])
def test_sum_order_replay_bitwise_as_torch_sum(dtype):
    rng = np.random.default_rng(3)
    shapes = [(n,) for n in (1, 3, 4, 7, 8, 9, 16, 17, 33, 64, 65, 257, 1000)] + \
             [(n, b) for n in (2, 5, 17, 40) for b in (2, 3, 4, 5, 8, 9, 16, 17, 33, 40)] + [(3, 7, 5), (2, 20, 17)]
    for shape in shapes:
        for axis in range(len(shape)):
            x = (rng.standard_normal(shape) * 10.0 ** rng.integers(-8, 8, shape)).astype(dtype)
            want = torch.from_numpy(x).sum(axis, keepdim=True).numpy()
            np.testing.assert_array_equal(torch_sum(x, axis).view(np.uint8), want.view(np.uint8))
