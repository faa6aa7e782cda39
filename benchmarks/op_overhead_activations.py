"""bench_op_overhead's rows for relu, elu, silu, leaky_relu, selu, mish, hardtanh and hardsigmoid, with and without
``inplace=True``, on 64x64 float32
tensors: forward and backward of ``act(a * 1.0)`` with ``a`` requiring grad (the in-place form needs a non-leaf, so
both forms take the same product first), and the forward alone without grad (``x.copy_(z)`` first in both forms, so
that the values stay of both signs call after call). distnn and torch run the same calls; the numpy floor the same
arithmetic on bare arrays (the same floor for both forms).
"""
from __future__ import annotations

import numpy as np

SHAPE = (64, 64)
ACTS = ("relu", "elu", "silu", "leaky_relu", "selu", "mish", "hardtanh", "hardsigmoid")


def _arrays():
    rng = np.random.default_rng(5)
    return rng.standard_normal(SHAPE).astype(np.float32), rng.uniform(-4.0, 4.0, SHAPE).astype(np.float32)


def _names(act):
    """Row names: ``fwd+bw``: ``act(a * 1.0)`` and its backward; ``no grad``: ``act(x.copy_(z))``."""
    return f"{act} fwd+bw", f"{act} fwd+bw inplace", f"{act} no grad", f"{act} no grad inplace"


def tensor_rows(F, make, make_grad, ones):
    """The rows for distnn or torch: ``F`` its functional module, ``make(array)``/``make_grad(array)`` its tensor
    without/with requires_grad, ``ones`` its tensor of ones (backward's gradient)."""
    a_np, z_np = _arrays()
    ag, z, x = make_grad(a_np.copy()), make(z_np), make(z_np.copy())
    rows = {}
    for act in ACTS:
        f = getattr(F, act)
        names = _names(act)
        rows[names[0]] = lambda f=f: f(ag * 1.0).backward(ones)
        rows[names[1]] = lambda f=f: f(ag * 1.0, inplace=True).backward(ones)
        rows[names[2]] = lambda f=f: f(x.copy_(z))
        rows[names[3]] = lambda f=f: f(x.copy_(z), inplace=True)
    return rows


def _relu(h, g=None):
    out = np.maximum(h, 0)
    return out if g is None else (out, np.where(out != 0, g, 0))


def _elu(h, g=None):
    neg = h <= 0
    out = np.where(neg, np.expm1(np.minimum(h, 0)), h)
    return out if g is None else (out, np.where(neg, g * (out + 1), g))


def _silu(h, g=None):
    s = 1 / (1 + np.exp(-h))
    return h * s if g is None else (h * s, g * s * (1 + h * (1 - s)))


def _leaky_relu(h, g=None):
    pos = h > 0
    out = np.where(pos, h, h * np.float32(0.01))
    return out if g is None else (out, np.where(pos, g, g * np.float32(0.01)))


_SELU_ALPHA, _SELU_SCALE = np.float32(1.6732632423543772), np.float32(1.0507009873554805)


def _selu(h, g=None):
    neg = h <= 0
    out = np.where(neg, (_SELU_ALPHA * _SELU_SCALE) * np.expm1(np.minimum(h, 0)), h * _SELU_SCALE)
    return out if g is None else (out, np.where(neg, g * (out + _SELU_ALPHA * _SELU_SCALE), g * _SELU_SCALE))


def _mish(h, g=None):
    sp = np.maximum(h, 0) + np.log1p(np.exp(-np.abs(h)))
    t = np.tanh(sp)
    if g is None:
        return h * t
    return h * t, g * (t + h / (1 + np.exp(-h)) * (1 - t * t))


def _hardtanh(h, g=None):
    out = np.clip(h, -1, 1)
    return out if g is None else (out, np.where((h <= -1) | (h >= 1), 0, g))


def _hardsigmoid(h, g=None):
    out = np.minimum(np.maximum(h + 3, 0), 6) / 6
    return out if g is None else (out, np.where((h > -3) & (h < 3), g * np.float32(1 / 6), 0))


def numpy_rows():
    """The floor: the forward and backward arithmetic on bare arrays (the forward alone without grad)."""
    a, z = _arrays()
    x, ones = z.copy(), np.ones(SHAPE, np.float32)
    rows = {}
    for act, fb in (("relu", _relu), ("elu", _elu), ("silu", _silu), ("leaky_relu", _leaky_relu), ("selu", _selu),
                    ("mish", _mish), ("hardtanh", _hardtanh), ("hardsigmoid", _hardsigmoid)):
        names = _names(act)
        rows[names[0]] = rows[names[1]] = lambda fb=fb: fb(a * np.float32(1.0), ones)
        rows[names[2]] = rows[names[3]] = lambda fb=fb: (np.copyto(x, z), fb(x))
    return rows
