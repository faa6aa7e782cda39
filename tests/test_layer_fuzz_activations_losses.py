"""Seeded fuzz of distnn's added activations against PyTorch (the oracle), with tests/layer_fuzz_harness.py.

Each case draws an activation, its arguments and an input that holds the activation's kinks exactly (the
bounds of hardtanh/relu6, +-3 for hardswish/hardsigmoid, +-lambd for the shrinks, the threshold) and
compares outputs and input gradients in float64; one float32 case per family. ``DISTNN_LAYER_FUZZ_CASES``
and ``DISTNN_LAYER_FUZZ_START`` as in tests/layer_fuzz_harness.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from layer_fuzz_harness import G, activation_input as _act_input, run_cases
from layer_fuzz_harness import torch  # noqa: F401  (importorskip'd there)

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402

TF = torch.nn.functional
KINKS = (-6.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 6.0)
INPLACE = ("SiLU", "Mish", "ReLU6", "Hardtanh", "Hardswish", "Hardsigmoid", "SELU", "CELU", "Threshold")
FNAME = {"SiLU": "silu", "Mish": "mish", "ReLU6": "relu6", "Hardtanh": "hardtanh", "Hardswish": "hardswish",
         "Hardsigmoid": "hardsigmoid", "SELU": "selu", "CELU": "celu", "Softsign": "softsign",
         "Tanhshrink": "tanhshrink", "Softshrink": "softshrink", "Hardshrink": "hardshrink",
         "Threshold": "threshold", "GLU": "glu", "Softmin": "softmin"}


def _activation(c, name):
    shape, x = _act_input(c)
    if x.size and c.coin(0.7):  # the kinks themselves, exactly
        flat = x.reshape(-1)
        pick = c.rng.random(flat.shape) < 0.5
        flat[pick] = c.rng.choice(KINKS, size=int(pick.sum()))
    kw = {}
    if name == "Hardtanh":
        lo = c.pick(-1.0, -2.0, 0.0, 0.5)
        kw = dict(min_val=lo, max_val=lo + c.pick(1.0, 2.5, 0.5))
    elif name == "CELU":
        kw = dict(alpha=c.pick(1.0, 0.5, 2.0))
    elif name in ("Softshrink", "Hardshrink"):
        kw = dict(lambd=c.pick(0.5, 1.0, 0.0, 3.0))
    elif name == "Threshold":
        kw = dict(threshold=c.pick(0.0, 1.0, -0.5), value=c.pick(0.0, 2.0, -1.0))
    elif name in ("GLU", "Softmin"):
        if not shape:
            return False
        kw = dict(dim=c.int(-len(shape), len(shape) - 1))
        if name == "GLU":
            s = list(shape)
            s[kw["dim"]] = 2 * c.int(0 if c.coin(0.1) else 1, 2)
            shape = tuple(s)
            x = c.normal(*shape, ties=True)
    inplace = name in INPLACE and c.coin(0.3)
    if inplace:
        kw["inplace"] = True
    c.draw(act=name, shape=shape, **kw)
    if c.draw(functional=c.coin()):
        fname = FNAME[name]
        fd, ft = getattr(DF, fname), getattr(TF, fname)
        fd, ft = (lambda f: lambda a: f(a, **kw))(fd), (lambda f: lambda a: f(a, **kw))(ft)
    else:
        fd, ft = getattr(dnn, name)(**kw), getattr(torch.nn, name)(**kw)
    if inplace:  # on a non-leaf, as in a network
        fd, ft = (lambda f: lambda a: f(a * 1.0))(fd), (lambda f: lambda a: f(a * 1.0))(ft)
    return c.run(fd, ft, [G(x)])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", sorted(FNAME))
def test_activation_fuzz_matches_pytorch(name):
    run_cases(name, lambda c: _activation(c, name))


@pytest.mark.parametrize("name", sorted(FNAME))
def test_activation_float32_matches_pytorch(name):
    x = np.array([[-6.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 6.0, 2.2]], dtype=np.float32)
    kw = {"Threshold": dict(threshold=0.5, value=-1.0), "GLU": dict(dim=1), "Softmin": dict(dim=1)}.get(name, {})
    d = distnn.tensor(x.copy(), requires_grad=True)
    t = torch.tensor(x.copy(), requires_grad=True)
    yd, yt = getattr(dnn, name)(**kw)(d), getattr(torch.nn, name)(**kw)(t)
    assert yd.dtype == np.float32
    np.testing.assert_allclose(np.asarray(yd.data), yt.detach().numpy(), rtol=1e-6, atol=1e-6)
    yd.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(np.asarray(d.grad.data), t.grad.numpy(), rtol=1e-6, atol=1e-6)
