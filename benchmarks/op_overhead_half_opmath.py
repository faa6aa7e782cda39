"""bench_op_overhead's rows for the ops whose float16 forms compute in float32 as PyTorch's kernels (elu's alpha,
softplus's beta and threshold, threshold's cut, a division rounded down by a number or by a 0-d float32 tensor,
whose value is read as is), on 64x64 float16 tensors, with a rounded-down division by a tensor of the same shape,
and the same calls on float32 tensors: those must stay as cheap as they were (the float16 check is all they add);
with ``arange``/``linspace`` of the default dtype (float32, 4096 values), whose values now follow PyTorch's kernels.

The numpy floor computes the same arithmetic on bare arrays (float16: widen, compute in float32, round once).
"""
from __future__ import annotations

import numpy as np

SHAPE = (64, 64)


def _arrays():
    rng = np.random.default_rng(6)
    a = (rng.standard_normal(SHAPE) * 3).astype(np.float32)
    return a, a.astype(np.float16)


def tensor_rows(lib, make):
    """The rows for distnn or torch (module ``lib``; ``make(array)`` wraps an array as its tensor)."""
    a_np, h_np = _arrays()
    a, h = make(a_np), make(h_np)
    tenth, divisors = make(np.array(0.1, np.float32)), {"float16": make(h_np + 4), "float32": make(a_np + 4)}
    F = lib.nn.functional
    rows = {}
    for x, kind in ((h, "float16"), (a, "float32")):
        rows.update({
            f"elu(x, 0.3) {kind}": lambda x=x: F.elu(x, 0.3),
            f"softplus(x, 0.7) {kind}": lambda x=x: F.softplus(x, 0.7),
            f"threshold(x, 0.3, 0.0) {kind}": lambda x=x: F.threshold(x, 0.3, 0.0),
            f"x // 0.1 {kind}": lambda x=x: x // 0.1,
            f"x // tensor(0.1) {kind}": lambda x=x: x // tenth,
            f"x // y {kind}": lambda x=x, y=divisors[kind]: x // y,
        })
    rows["arange(0, 64, 1/64) float32"] = lambda: lib.arange(0, 64, 1 / 64)
    rows["linspace(0, 1, 4096) float32"] = lambda: lib.linspace(0, 1, 4096)
    return rows


def numpy_rows():
    """The floor: the same arithmetic on bare arrays (float16's in float32, rounded once)."""
    a, h = _arrays()
    f32, alpha, beta, cut, tenth = np.float32, np.float32(0.3), np.float32(0.7), np.float32(0.3), np.float32(0.1)

    def elu(x):
        return np.where(x < 0, np.expm1(np.minimum(x, 0)) * alpha, x)

    def softplus(x):
        z = x * beta
        return np.where(z > 20, x, np.log1p(np.exp(z)) / beta)

    rows = {}
    for x, kind, wide, narrow in ((h, "float16", lambda v: v.astype(f32), lambda v: v.astype(np.float16)),
                                  (a, "float32", lambda v: v, lambda v: v)):
        rows.update({
            f"elu(x, 0.3) {kind}": lambda x=x, w=wide, n=narrow: n(elu(w(x))),
            f"softplus(x, 0.7) {kind}": lambda x=x, w=wide, n=narrow: n(softplus(w(x))),
            f"threshold(x, 0.3, 0.0) {kind}": lambda x=x: np.where(x <= cut, x.dtype.type(0), x),
            f"x // 0.1 {kind}": lambda x=x, w=wide, n=narrow: n(np.floor_divide(w(x), tenth)),
            f"x // tensor(0.1) {kind}": lambda x=x, w=wide, n=narrow: n(np.floor_divide(w(x), tenth)),
            f"x // y {kind}": lambda x=x, y=x + x.dtype.type(4): np.floor_divide(x, y),
        })
    rows["arange(0, 64, 1/64) float32"] = lambda: np.arange(0, 64, 1 / 64).astype(f32)
    rows["linspace(0, 1, 4096) float32"] = lambda: np.linspace(0, 1, 4096).astype(f32)
    return rows
