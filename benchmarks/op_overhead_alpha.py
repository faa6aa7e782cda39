"""bench_op_overhead's rows for ``add``/``sub`` with ``alpha`` (PyTorch's one fused kernel, ``a + alpha * b`` rounded
once): out-of-place and in-place, float32 (with and without grad), float16 and float64, on 64x64 tensors.

The in-place rows change their tensor over and over: values in (0.1, 0.9) and ``alpha=0.1`` keep them in a plain
range for the run's length. The numpy floor writes ``a + alpha * b`` as two ufuncs (one more rounding than PyTorch's
and distnn's: no fused multiply-add in numpy), the in-place ones into the array with ``out=`` and a scratch array.
"""
from __future__ import annotations

import numpy as np

SHAPE = (64, 64)
ROWS = ("add(a, b, alpha=0.1)", "sub(a, b, alpha=0.1)", "add(a, b, alpha=0.1) (grad)", "add(a, 0.5, alpha=2)",
        "add(h, h, alpha=0.1) float16", "add(d, d, alpha=0.1) float64",
        "x.sub_(y, alpha=0.1)", "x.add_(0.5, alpha=0.1)", "xd.add_(yd, alpha=0.1) float64")


def _arrays():
    rng = np.random.default_rng(4)
    a, b = (rng.uniform(0.1, 0.9, SHAPE).astype(np.float32) for _ in range(2))
    return a, b


def tensor_rows(lib, make):
    """The rows for distnn or torch (module ``lib``; ``make(array)`` wraps an array as its tensor)."""
    a_np, b_np = _arrays()
    a, b, ag, bg = make(a_np), make(b_np), make(a_np.copy()).requires_grad_(), make(b_np.copy()).requires_grad_()
    h, d = make(a_np.astype(np.float16)), make(a_np.astype(np.float64))
    x, y = make(a_np.copy()), make(b_np)
    x2, xd, yd = make(a_np.copy()), make(a_np.astype(np.float64)), make(b_np.astype(np.float64))
    return {
        "add(a, b, alpha=0.1)": lambda: lib.add(a, b, alpha=0.1),
        "sub(a, b, alpha=0.1)": lambda: lib.sub(a, b, alpha=0.1),
        "add(a, b, alpha=0.1) (grad)": lambda: lib.add(ag, bg, alpha=0.1),
        "add(a, 0.5, alpha=2)": lambda: lib.add(a, 0.5, alpha=2),
        "add(h, h, alpha=0.1) float16": lambda: lib.add(h, h, alpha=0.1),
        "add(d, d, alpha=0.1) float64": lambda: lib.add(d, d, alpha=0.1),
        "x.sub_(y, alpha=0.1)": lambda: x.sub_(y, alpha=0.1),
        "x.add_(0.5, alpha=0.1)": lambda: x2.add_(0.5, alpha=0.1),
        "xd.add_(yd, alpha=0.1) float64": lambda: xd.add_(yd, alpha=0.1),
    }


def numpy_rows():
    """The floor: ``a + alpha * b`` as two ufuncs on bare arrays."""
    a, b = _arrays()
    h, d = a.astype(np.float16), a.astype(np.float64)
    x, x2, xd, yd = a.copy(), a.copy(), a.astype(np.float64), b.astype(np.float64)
    s, sd = np.empty(SHAPE, np.float32), np.empty(SHAPE, np.float64)
    return {
        "add(a, b, alpha=0.1)": lambda: a + b * np.float32(0.1),
        "sub(a, b, alpha=0.1)": lambda: a - b * np.float32(0.1),
        "add(a, b, alpha=0.1) (grad)": lambda: a + b * np.float32(0.1),
        "add(a, 0.5, alpha=2)": lambda: a + np.float32(1.0),
        "add(h, h, alpha=0.1) float16": lambda: h + h * np.float16(0.1),
        "add(d, d, alpha=0.1) float64": lambda: d + d * 0.1,
        "x.sub_(y, alpha=0.1)": lambda: np.subtract(x, np.multiply(b, np.float32(0.1), out=s), out=x),
        "x.add_(0.5, alpha=0.1)": lambda: np.add(x2, np.float32(0.05), out=x2),
        "xd.add_(yd, alpha=0.1) float64": lambda: np.add(xd, np.multiply(yd, 0.1, out=sd), out=xd),
    }
