"""bench_op_overhead's rows for float16 tensors with a Python number (PyTorch's opmath: the number read as a float32,
the result rounded once): ``h * s``, ``h / s``, ``s / h``, ``h.mul_(s)``, ``addcmul(h, h, h, value=s)``,
``leaky_relu(h, s)``, with ``h + s`` beside them (add rounds the number into float16 first), on 64x64 tensors.

The in-place row alternates ``mul_(1.25)`` and ``mul_(0.8)`` to keep its tensor in range. The numpy floor computes
the same float32 arithmetic on bare arrays (widen, compute, round once): what the op costs without any framework.
"""
from __future__ import annotations

import numpy as np

SHAPE = (64, 64)
ROWS = ("h * 0.1 float16", "h / 0.3 float16", "0.3 / h float16", "h.mul_(s) float16", "addcmul(h, h, h, 0.1) float16",
        "leaky_relu(h, 0.1) float16", "h + 0.1 float16", "h * 0.1 float16 (grad)")


def _array():
    return np.random.default_rng(5).uniform(0.5, 2.0, SHAPE).astype(np.float16)


def tensor_rows(lib, make):
    """The rows for distnn or torch (module ``lib``; ``make(array)`` wraps an array as its tensor)."""
    h, x = make(_array()), make(_array())
    hg = make(_array()).requires_grad_()
    leaky = lib.nn.functional.leaky_relu
    scales = [1.25, 0.8]

    def mul_in_place():
        scales.reverse()
        return x.mul_(scales[0])

    return {
        "h * 0.1 float16": lambda: h * 0.1,
        "h / 0.3 float16": lambda: h / 0.3,
        "0.3 / h float16": lambda: 0.3 / h,
        "h.mul_(s) float16": mul_in_place,
        "addcmul(h, h, h, 0.1) float16": lambda: lib.addcmul(h, h, h, value=0.1),
        "leaky_relu(h, 0.1) float16": lambda: leaky(h, 0.1),
        "h + 0.1 float16": lambda: h + 0.1,
        "h * 0.1 float16 (grad)": lambda: hg * 0.1,
    }


def numpy_rows():
    """The floor: float32 arithmetic on bare float16 arrays, rounded once."""
    h, x = _array(), _array()
    f32, s1, s3 = np.float32, np.float32(0.1), np.float32(0.3)
    scales = [np.float32(1.25), np.float32(0.8)]

    def mul_in_place():
        scales.reverse()
        x[...] = x.astype(f32) * scales[0]
        return x

    return {
        "h * 0.1 float16": lambda: (h.astype(f32) * s1).astype(np.float16),
        "h / 0.3 float16": lambda: (h.astype(f32) / s3).astype(np.float16),
        "0.3 / h float16": lambda: ((1 / h).astype(f32) * s3).astype(np.float16),
        "h.mul_(s) float16": mul_in_place,
        "addcmul(h, h, h, 0.1) float16": lambda: (h.astype(f32) + s1 * h.astype(f32) * h.astype(f32)).astype(
            np.float16),
        "leaky_relu(h, 0.1) float16": lambda: np.where(h > 0, h, (h.astype(f32) * s1).astype(np.float16)),
        "h + 0.1 float16": lambda: h + np.float16(0.1),
        "h * 0.1 float16 (grad)": lambda: (h.astype(f32) * s1).astype(np.float16),
    }
