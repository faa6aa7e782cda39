"""silu, sigmoid and the elu family (elu, selu, celu) compute on their own temporaries in place (numpy's out=) and
form selu's backward slope by slope instead of a where (session 42): the outputs and gradients must keep the bits of
the plain formulas they replace, in every float dtype, on 0-d, contiguous and strided inputs, at the edge values
(signed zeros, infinities, NaN, the exp overflow and underflow thresholds), and the node must still keep the input
alone (one pack under saved_tensors_hooks).

The references below are the formulas the nodes computed before, written in plain numpy on the same arrays."""
from __future__ import annotations

import numpy as np
import pytest

import distnn
import distnn.nn.functional as F

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
EDGES = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -1e-30, 88.5, -88.5, 100.0, -100.0, 17.0, -17.0, 1e-8, -1e-8,
         3.0, -3.0, 0.5, -0.5]


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1, e) / (1 + e)


def _silu(x, g):
    s = 1 / (1 + np.exp(-x))
    return x * _sigmoid(x), g * s * (1 + x * (1 - s))


def _elu_family(alpha, scale, input_scale, backward_input_scale):
    def reference(x, g):
        m = np.minimum(x, 0)
        if input_scale != 1:
            m = m * input_scale
        neg = np.expm1(m)
        if alpha * scale != 1:
            neg = neg * (alpha * scale)
        out = np.where(x <= 0, neg, x * scale if scale != 1 else x)
        kind = np.float32 if x.dtype.itemsize <= 4 else np.float64
        coef = (kind(alpha) * kind(scale)).astype(g.dtype)
        m = np.fmin(x, 0)
        e = np.exp(m * backward_input_scale if backward_input_scale != 1 else m)
        if backward_input_scale == 1 and coef == 1 and scale == 1:
            return out, g * e
        neg = g * backward_input_scale if backward_input_scale != 1 else g
        if coef != 1:
            neg = neg * coef
        return out, np.where(x <= 0, neg * e, g * scale if scale != 1 else g)
    return reference


def _celu(alpha):
    return _elu_family(alpha, 1.0, 1.0 / alpha, 1.0 / float(np.float32(alpha)))


CASES = {
    "silu": (F.silu, _silu),
    "sigmoid": (distnn.sigmoid, lambda x, g: (_sigmoid(x), g * _sigmoid(x) * (1 - _sigmoid(x)))),
    "selu": (F.selu, _elu_family(SELU_ALPHA, SELU_SCALE, 1.0, 1.0)),
    "elu": (F.elu, _elu_family(1.0, 1.0, 1.0, 1.0)),
    "elu alpha 1.3": (lambda t: F.elu(t, 1.3), _elu_family(1.3, 1.0, 1.0, 1.0)),
    # (alpha - 1 rounds away from alpha's bits: the where form, not slope by slope)
    "elu alpha 1e-9": (lambda t: F.elu(t, 1e-9), _elu_family(1e-9, 1.0, 1.0, 1.0)),
    "celu alpha 0.7": (lambda t: F.celu(t, 0.7), _celu(0.7)),
    "celu alpha -0.5": (lambda t: F.celu(t, -0.5), _celu(-0.5)),  # (input_scale < 0: fmin's exponential)
}


def _inputs(dtype, layout, rng):
    values = np.concatenate([np.array(EDGES), rng.standard_normal(64) * 6])
    if layout == "0-d":
        return [np.array(v, dtype) for v in (0.0, -0.0, np.nan, -2.5, 2.5, -100.0)]
    if layout == "contiguous":
        return [values.astype(dtype).reshape(-1)]
    return [values[:80].astype(dtype).reshape(8, 10).T]  # (a transposed view: strided, not C-contiguous)


def _bits_equal(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True) and \
        np.array_equal(np.signbit(a), np.signbit(b))


# (float16 elu, selu and celu compute in PyTorch's float32 opmath instead, checked against torch bit for bit in
# test_half_activation_opmath_torch.py: the plain formulas are theirs in float32 and float64 only)
COMBINATIONS = [(name, dtype) for name in CASES for dtype in (np.float16, np.float32, np.float64)
                if not (dtype is np.float16 and name.split()[0] in ("elu", "selu", "celu"))]


@pytest.mark.parametrize("layout", ["0-d", "contiguous", "strided"])
@pytest.mark.parametrize("name, dtype", COMBINATIONS)
def test_outputs_and_gradients_keep_the_plain_formulas_bits(name, dtype, layout):
    op, reference = CASES[name]
    rng = np.random.default_rng(42)
    for a in _inputs(dtype, layout, rng):
        g = rng.standard_normal(a.shape).astype(dtype)
        x = distnn.tensor(a.copy(), requires_grad=True)
        with np.errstate(over="ignore", invalid="ignore"):  # (the references' own fp flags: an inf, a NaN)
            want_out, want_grad = reference(a, g)
        y = op(x)
        y.backward(distnn.tensor(g.copy()))
        assert _bits_equal(y.detach().data, want_out), f"{name} forward, {np.dtype(dtype)}, {layout}"
        assert _bits_equal(x.grad.data, want_grad), f"{name} backward, {np.dtype(dtype)}, {layout}"


@pytest.mark.parametrize("name", ["silu", "selu", "elu alpha 1.3", "celu alpha 0.7"])
def test_the_node_still_packs_the_input_alone(name):
    op, _ = CASES[name]
    packed = []

    def pack(t):
        packed.append(t)
        return t

    x = distnn.tensor(np.linspace(-3, 3, 12, dtype=np.float32), requires_grad=True)
    with distnn.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = op(x)
    assert len(packed) == 1 and packed[0] is x
    y.sum().backward()  # (backward recomputes from the unpacked input: the temporaries are its own)
    assert np.array_equal(x.data, np.linspace(-3, 3, 12, dtype=np.float32))
