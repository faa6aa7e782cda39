"""distnn.special's ndtr, log_ndtr, ndtri, erfcx, entr and xlog1py (new) against PyTorch 2.13: values over wide
ranges (0, -0, negative, large, +-inf, NaN: those exactly, signed zeros included) in float64 and float32,
gradients (torch's formulas, their edge values included), integer inputs, broadcasting, refusals."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
from distnn.testing import check_grad  # noqa: E402

from test_special_functions import _assert_matches  # noqa: E402

R = np.random.default_rng(29)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)
EDGES = [0.0, -0.0, math.inf, -math.inf, math.nan]
LINE = np.concatenate([np.linspace(-40.0, 60.0, 20001), np.geomspace(1e-300, 1e300, 400),
                       -np.geomspace(1e-300, 1e300, 400), [-1.0, -6.1, -26.7, 50.0, 5e7, 1.0], EDGES])
UNIT = np.concatenate([np.linspace(0.0, 1.0, 20001), np.geomspace(1e-300, 0.5, 600), 1 - np.geomspace(1e-16, 0.5, 300),
                       [-0.1, 1.1, 1e-320, math.exp(-2), 1 - math.exp(-2)], EDGES])
ENTR = np.concatenate([np.geomspace(1e-300, 1e300, 600), np.linspace(-3.0, 3.0, 601), EDGES])
# (name, distnn, torch, inputs, float64 rtol): the rtols measured with some margin; ndtri and log_ndtr use
# the same Cephes/SciPy formulas as torch, erfcx an independent method (series, continued fraction); ndtr's
# composite 1 + erf(x) cancels left of 0, so it is compared absolutely there (test_values_match_torch)
UNARY = {"ndtr": (distnn.special.ndtr, torch.special.ndtr, LINE, 2e-15),
         # (log_ndtr from -1 to 2: log1p(-erfc/2) carries erfc's relative error, distnn's 1 - erf below 1.5)
         "log_ndtr": (distnn.special.log_ndtr, torch.special.log_ndtr, LINE, 3e-14),
         "ndtri": (distnn.special.ndtri, torch.special.ndtri, UNIT, 3e-15),
         "erfcx": (distnn.special.erfcx, torch.special.erfcx, LINE, 5e-15),
         "entr": (distnn.special.entr, torch.special.entr, ENTR, 1e-15)}


@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_values_match_torch(name, dtype):
    ours_fn, torch_fn, x, rtol = UNARY[name]
    with np.errstate(over="ignore"):
        x = x.astype(dtype)  # (float32: the largest become inf)
    ours, ref = ours_fn(distnn.tensor(x)).data, torch_fn(torch.tensor(x)).numpy()
    if name == "ndtr":  # (erf's last-ulp difference from torch's, absolute after 1 + erf)
        left = x < 0
        np.testing.assert_allclose(ours[left], ref[left], rtol=0, atol=4 * np.finfo(dtype).eps)
        ours, ref = ours[~left], ref[~left]
    # (float32: torch computes in float, ours in float64 rounded once; ndtri's tails and log_ndtr's erfcx
    # amplify float's rounding by a few more ulps)
    _assert_matches(ours, ref, rtol if dtype == np.float64 else 3e-6)


def test_edge_values_are_torchs():
    s = distnn.special
    x = np.array(EDGES + [-10.0, -27.0, 1e8])
    np.testing.assert_array_equal(s.ndtr(distnn.tensor(x)).data[:5], [0.5, 0.5, 1.0, 0.0, math.nan])
    assert s.ndtr(distnn.tensor(x)).data[5] == torch.special.ndtr(torch.tensor(-10.0, dtype=torch.float64)).item()
    np.testing.assert_array_equal(s.erfcx(distnn.tensor(x)).data[[0, 2, 3, 4, 6]], [1.0, 0.0, math.inf, math.nan,
                                                                                      math.inf])
    np.testing.assert_array_equal(s.log_ndtr(distnn.tensor(x)).data[2:5], [-0.0, -math.inf, math.nan])
    np.testing.assert_array_equal(s.ndtri(distnn.tensor(np.array([0.0, 1.0, -0.0, 2.0]))).data,
                                  [-math.inf, math.inf, -math.inf, math.nan])
    e = s.entr(distnn.tensor(np.array([1.0, 0.0, -0.0, -1e-300, -math.inf, math.inf]))).data
    np.testing.assert_array_equal(e, [-0.0, 0.0, 0.0, -math.inf, -math.inf, -math.inf])
    assert np.signbit(e[0]) and not np.signbit(e[1]) and not np.signbit(e[2])


GRAD_X = {"ndtr": np.concatenate([R.uniform(-12, 12, 40), [0.0, -40.0, 40.0, math.inf, -math.inf]]),
          "log_ndtr": np.concatenate([R.uniform(-60, 12, 40), [0.0, -1.0, -40.0, 40.0, math.inf, -math.inf]]),
          "ndtri": np.concatenate([R.uniform(0, 1, 40), [1e-300, 1e-20, 0.5, 0.0, 1.0, 1.5, -0.5]]),
          "erfcx": np.concatenate([R.uniform(-20, 60, 40), [0.0, -26.0, 1e8, math.inf, -math.inf]]),
          "entr": np.concatenate([R.uniform(0, 20, 40), [0.0, -0.0, 1.0, -1.0, 1e-300, math.inf]])}


@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradients_match_torch(name, dtype):
    ours_fn, torch_fn, _, _ = UNARY[name]
    x = np.concatenate([GRAD_X[name], [math.nan]]).astype(dtype)
    u = R.uniform(0.5, 2.0, x.shape).astype(dtype)
    d, t = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (ours_fn(d) * distnn.tensor(u)).sum().backward()
    (torch_fn(t) * torch.tensor(u)).sum().backward()
    assert d.grad.dtype == dtype
    ours, ref = np.asarray(d.grad), t.grad.numpy()
    if name == "erfcx":  # (2 x erfcx(x) - 2/sqrt(pi) cancels for large x: erfcx's last ulp, times x^2)
        big = np.abs(x) > 1
        np.testing.assert_allclose(ours[big], ref[big], rtol=1e-13, atol=8 * np.finfo(dtype).eps)
        ours, ref = ours[~big], ref[~big]
    _assert_matches(ours, ref, 1e-13 if dtype == np.float64 else 3e-5)


@pytest.mark.parametrize("name", list(UNARY))
def test_gradient_check_integer_inputs_and_namespace(name):
    fn, torch_fn, _, _ = UNARY[name]
    x = R.uniform(0.05, 0.95, (3, 4)) if name == "ndtri" else R.uniform(0.1, 4.0, (3, 4))
    check_grad(fn, distnn.tensor(x, requires_grad=True))
    ints = np.array([0, 1, 2]) if name != "ndtri" else np.array([0, 1, 1])
    y, ref = fn(distnn.tensor(ints)), torch_fn(torch.tensor(ints)).numpy()
    assert y.dtype == ref.dtype == np.float32 and not y.requires_grad
    np.testing.assert_allclose(y.data, ref, rtol=1e-6)
    assert not hasattr(distnn.Tensor, name) and not hasattr(torch.Tensor, name)  # (torch.special's only)


XLOG1PY_A = np.array([0.0, 0.0, 0.0, 2.0, math.nan, 0.0, 1.0, -0.0, 3.0, -2.0, 0.0, 1.5])
XLOG1PY_B = np.array([-1.0, math.nan, 3.0, -1.0, -1.0, -2.0, math.inf, 5.0, -0.5, 1e300, -math.inf, -3.0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_xlog1py_values_and_gradients_match_torch(dtype):
    a = np.concatenate([XLOG1PY_A, R.uniform(-5, 5, 50)]).astype(dtype)
    with np.errstate(over="ignore"):
        b = np.concatenate([XLOG1PY_B, R.uniform(-0.99, 50, 50)]).astype(dtype)
    da, db = distnn.tensor(a, requires_grad=True), distnn.tensor(b, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    y, ty = distnn.special.xlog1py(da, db), torch.special.xlog1py(ta, tb)
    rtol = 1e-15 if dtype == np.float64 else 1e-6
    _assert_matches(y.data, ty.detach().numpy(), rtol)
    y.sum().backward()
    ty.sum().backward()
    _assert_matches(np.asarray(da.grad), ta.grad.numpy(), rtol)
    _assert_matches(np.asarray(db.grad), tb.grad.numpy(), rtol)


def test_xlog1py_broadcasting_numbers_dtypes_and_gradient_check():
    a, b = R.uniform(-2, 2, (3, 1)), R.uniform(-0.5, 3, (1, 4))
    check_grad(lambda x, y: distnn.special.xlog1py(x, y),
               distnn.tensor(a, requires_grad=True), distnn.tensor(b, requires_grad=True))
    for x, y in [(2, np.array([1, 2])), (np.array([1, 2]), 3.5), (np.array([1.5], np.float32), 2.0),
                 (np.array([1, 2]), np.array([0.5, 2.0], np.float32)), (np.array([True]), np.array([3]))]:
        dx, dy = (distnn.tensor(v) if isinstance(v, np.ndarray) else v for v in (x, y))
        tx, ty = (torch.tensor(v) if isinstance(v, np.ndarray) else v for v in (x, y))
        ours, ref = distnn.special.xlog1py(dx, dy), torch.special.xlog1py(tx, ty).numpy()
        assert ours.dtype == ref.dtype
        np.testing.assert_allclose(ours.data, ref, rtol=1e-6)
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(3\) must match the size of tensor b \(4\)"):
        distnn.special.xlog1py(distnn.tensor(np.ones(3)), distnn.tensor(np.ones(4)))
