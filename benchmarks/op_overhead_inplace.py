"""bench_op_overhead's rows for the in-place methods (``x.exp_()``, ``x.clamp_(0, 1)``, ``x.lerp_(y, 0.1)``...) on
64x64 float32 tensors that require no grad: the calls an optimizer-style update or a ported PyTorch loop makes.

Each row changes a tensor of its own over and over, so each is chosen to keep its values in a plain range (no
infinities, NaNs or subnormals, whose arithmetic can be slower): values in (0.1, 0.9), a divisor in [1, 2) (ones where
the row divides again and again), the square of ones, ``exp_`` undone by ``log_`` in one row. distnn and torch run the same calls; the numpy floor writes
the same arithmetic with ``out=`` and a preallocated scratch array. One row copies values of both signs in
before its ``sigmoid_``, whose cost depends on the mix of signs.
"""
from __future__ import annotations

import numpy as np

SHAPE = (64, 64)
ROWS = ("x.neg_()", "x.abs_()", "x.sqrt_()", "x.exp_().log_()", "x.tanh_()", "x.sigmoid_()", "x.copy_(z).sigmoid_()",
        "x.relu_()",
        "ones.pow_(2)", "x.clamp_(0, 1)", "x.clamp_(min=0)", "x.copy_(y)", "x.addcmul_(y, y, value=1e-4)",
        "x.addcdiv_(y, w, value=1e-4)", "x.lerp_(y, 0.1)", "x.add_(y, alpha=0.1)", "x.div_(1.0)", "x.div_(ones)")


def _arrays():
    rng = np.random.default_rng(2)
    x = rng.uniform(0.1, 0.9, SHAPE).astype(np.float32)
    y = rng.uniform(0.1, 0.9, SHAPE).astype(np.float32)
    w = rng.uniform(1.0, 2.0, SHAPE).astype(np.float32)
    return x, y, w


def _mixed_signs():
    """Values of both signs (sigmoid_ of them, over and over, would leave only positive ones: copied in first)."""
    return np.random.default_rng(3).uniform(-4.0, 4.0, SHAPE).astype(np.float32)


def tensor_rows(make):
    """The rows for distnn or torch (their calls agree): ``make(array)`` wraps an array as the library's tensor."""
    x, y, w = _arrays()
    t = {name: make(x.copy()) for name in ROWS}
    t["ones.pow_(2)"] = make(np.ones(SHAPE, np.float32))
    yt, wt, ones = make(y.copy()), make(w.copy()), make(np.ones(SHAPE, np.float32))
    zt = make(_mixed_signs())
    calls = {
        "x.neg_()": lambda a: a.neg_(),
        "x.abs_()": lambda a: a.abs_(),
        "x.sqrt_()": lambda a: a.sqrt_(),
        "x.exp_().log_()": lambda a: a.exp_().log_(),
        "x.tanh_()": lambda a: a.tanh_(),
        "x.sigmoid_()": lambda a: a.sigmoid_(),
        "x.copy_(z).sigmoid_()": lambda a: a.copy_(zt).sigmoid_(),
        "x.relu_()": lambda a: a.relu_(),
        "ones.pow_(2)": lambda a: a.pow_(2),
        "x.clamp_(0, 1)": lambda a: a.clamp_(0, 1),
        "x.clamp_(min=0)": lambda a: a.clamp_(min=0),
        "x.copy_(y)": lambda a: a.copy_(yt),
        "x.addcmul_(y, y, value=1e-4)": lambda a: a.addcmul_(yt, yt, value=1e-4),
        "x.addcdiv_(y, w, value=1e-4)": lambda a: a.addcdiv_(yt, wt, value=1e-4),
        "x.lerp_(y, 0.1)": lambda a: a.lerp_(yt, 0.1),
        "x.add_(y, alpha=0.1)": lambda a: a.add_(yt, alpha=0.1),
        "x.div_(1.0)": lambda a: a.div_(1.0),
        "x.div_(ones)": lambda a: a.div_(ones),
    }
    return {name: _bind(calls[name], t[name]) for name in ROWS}


def _bind(call, tensor):
    return lambda: call(tensor)


def numpy_rows():
    """The floor: the same arithmetic on bare arrays, written into them with ``out=``."""
    x, y, w = _arrays()
    a = {name: x.copy() for name in ROWS}
    a["ones.pow_(2)"] = np.ones(SHAPE, np.float32)
    s = np.empty(SHAPE, np.float32)

    def sigmoid(u):
        np.negative(u, out=s)
        np.exp(s, out=s)
        np.add(s, 1, out=s)
        np.divide(1, s, out=u)

    def add_scaled(u, product):  # u += product (written into the scratch array)
        u += product

    ones, z = np.ones(SHAPE, np.float32), _mixed_signs()
    calls = {
        "x.neg_()": lambda u: np.negative(u, out=u),
        "x.abs_()": lambda u: np.absolute(u, out=u),
        "x.sqrt_()": lambda u: np.sqrt(u, out=u),
        "x.exp_().log_()": lambda u: np.log(np.exp(u, out=u), out=u),
        "x.tanh_()": lambda u: np.tanh(u, out=u),
        "x.sigmoid_()": sigmoid,
        "x.copy_(z).sigmoid_()": lambda u: (np.copyto(u, z), sigmoid(u)),
        "x.relu_()": lambda u: np.maximum(u, 0, out=u),
        "ones.pow_(2)": lambda u: np.square(u, out=u),
        "x.clamp_(0, 1)": lambda u: np.clip(u, 0, 1, out=u),
        "x.clamp_(min=0)": lambda u: np.maximum(u, 0, out=u),
        "x.copy_(y)": lambda u: np.copyto(u, y),
        "x.addcmul_(y, y, value=1e-4)": lambda u: add_scaled(u, np.multiply(np.multiply(y, 1e-4, out=s), y, out=s)),
        "x.addcdiv_(y, w, value=1e-4)": lambda u: add_scaled(u, np.divide(np.multiply(y, 1e-4, out=s), w, out=s)),
        "x.lerp_(y, 0.1)": lambda u: add_scaled(u, np.multiply(np.subtract(y, u, out=s), 0.1, out=s)),
        "x.add_(y, alpha=0.1)": lambda u: add_scaled(u, np.multiply(y, 0.1, out=s)),
        "x.div_(1.0)": lambda u: np.divide(u, 1.0, out=u),
        "x.div_(ones)": lambda u: np.divide(u, ones, out=u),
    }
    return {name: _bind(calls[name], a[name]) for name in ROWS}
