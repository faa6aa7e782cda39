"""Shared by the tests/test_pointwise_*.py files: distnn's pointwise op and torch's on the same arrays,
values and gradients compared (compare), shapes with broadcasting and edge points."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import distnn


torch = pytest.importorskip("torch")
EDGE = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, 1e-300, -1e-12, 40.0, math.inf, -math.inf, math.nan])


def run(fd, ft, arrays, grad=True, seed=3):
    """``fd`` on distnn tensors and ``ft`` on torch tensors of the same arrays (float ones require grad), and
    backpropagated with one random upstream gradient: (outputs, gradients) of each, as numpy."""
    floats = [a.dtype.kind == "f" and grad for a in arrays]
    d = [distnn.tensor(a.copy(), requires_grad=f) for a, f in zip(arrays, floats)]
    t = [torch.tensor(a.copy(), requires_grad=f) for a, f in zip(arrays, floats)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yd, yt = fd(*d), ft(*t)
        gd = gt = []
        if grad and any(floats) and yt.requires_grad:
            u = np.random.default_rng(seed).standard_normal(tuple(yt.shape)).astype(yd.data.dtype)
            (yd * distnn.tensor(u)).sum().backward()
            (yt * torch.tensor(u)).sum().backward()
            gd = [np.asarray(x.grad) if x.grad is not None else np.zeros(x.shape) for x, f in zip(d, floats) if f]
            gt = [x.grad.numpy(force=True) if x.grad is not None else np.zeros(x.shape) for x, f in zip(t, floats) if f]
    return (np.asarray(yd.data), gd), (yt.detach().numpy(), gt)


def same(a, b, rtol, atol=None):
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    if a.dtype.kind in "biu":
        np.testing.assert_array_equal(a, b)
        return
    finite = np.isfinite(b)
    scale = np.max(np.abs(b[finite]), initial=1.0)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale * 1e-3 if atol is None else atol, equal_nan=True)
    np.testing.assert_array_equal(np.signbit(a[b == 0]), np.signbit(b[b == 0]))  # (-0.0 where PyTorch has it)


def compare(fd, ft, arrays, rtol, grad=True, atol=None):
    (od, gd), (ot, gt) = run(fd, ft, arrays, grad)
    same(od, ot, rtol, atol)
    assert len(gd) == len(gt)
    for a, b in zip(gd, gt):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.max(np.abs(b[np.isfinite(b)]), initial=1.0),
                                   equal_nan=True)
