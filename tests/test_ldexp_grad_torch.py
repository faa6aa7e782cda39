"""ldexp's gradients against PyTorch: its own node (LdexpBackward0), ``grad * 2 ** other`` for input and
``grad * result * ln 2`` for a float ``other`` (from the result; float16 multiplies ln 2 in float32), broadcasting
and mixed dtypes; an integer ``other`` keeps the true ``2 ** other`` where PyTorch 2.13 gives 0 (negative
``other``: its backward computes the power in integers)."""
import math

import numpy as np
import pytest
import torch

import distnn

pytestmark = pytest.mark.filterwarnings("error")


def _np(x):
    return np.asarray(x.detach().numpy() if hasattr(x, "detach") else x)


def _run(lib, xs, es, gs, e_grad=True):
    x = lib.tensor(xs, requires_grad=True)
    e = lib.tensor(es, requires_grad=e_grad)
    out = lib.ldexp(x, e)
    out.backward(lib.tensor(gs))
    return out, x.grad, e.grad


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_float_exponent_gradients(dtype):
    rng = np.random.default_rng(3)
    xs, es, gs = (rng.standard_normal(4000) * 5).astype(dtype), rng.uniform(-8, 8, 4000).astype(dtype), \
        rng.standard_normal(4000).astype(dtype)
    out_t, gx_t, ge_t = _run(torch, xs, es, gs)
    out_d, gx_d, ge_d = _run(distnn, xs, es, gs)
    assert out_d.grad_fn.name() == out_t.grad_fn.name() == "LdexpBackward0"
    assert _np(gx_d).dtype == _np(ge_d).dtype == np.dtype(dtype)
    # the formula: exactly PyTorch's arithmetic on distnn's own result (grad * result, then * ln 2)
    expected_e = (torch.tensor(gs) * torch.tensor(_np(out_d)) * math.log(2)).numpy()
    np.testing.assert_array_equal(_np(ge_d), expected_e)
    # against PyTorch's own: 2 ** other is computed by numpy here, by SLEEF's pow there (an ulp apart at times)
    tolerance = {"float16": 0, "float32": 4e-7, "float64": 1e-15}[dtype]
    for mine, reference in ((out_d, out_t), (gx_d, gx_t), (ge_d, ge_t)):
        np.testing.assert_allclose(_np(mine).astype(np.float64), _np(reference).astype(np.float64),
                                   rtol=tolerance, atol=0)


def test_broadcast_and_mixed_dtypes():
    results = []
    for L in (torch, distnn):
        x = L.tensor([[1.5], [2.0]], requires_grad=True)
        e = L.tensor([1.0, 2.0, 3.0], dtype=L.float64, requires_grad=True)
        out = L.ldexp(x, e)
        out.sum().backward()
        results.append((str(out.dtype).split(".")[-1], _np(x.grad), _np(e.grad)))
    (dt_t, gx_t, ge_t), (dt_d, gx_d, ge_d) = results
    assert dt_t == dt_d == "float64"
    assert gx_d.dtype == gx_t.dtype == np.float32 and gx_d.shape == (2, 1) and ge_d.shape == (3,)
    np.testing.assert_array_equal(gx_d, gx_t)
    np.testing.assert_allclose(ge_d, ge_t, rtol=1e-15)


def test_integer_input_float_exponent():
    results = []
    for L in (torch, distnn):
        e = L.tensor([0.5, 1.0, -2.0], requires_grad=True)
        out = L.ldexp(L.tensor([1, 2, 3]), e)
        out.sum().backward()
        results.append((str(out.dtype).split(".")[-1], _np(e.grad)))
    assert results[0][0] == results[1][0] == "float32"
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=2e-7)


def test_integer_exponent_keeps_the_true_power():
    xs, es, gs = np.array([1.5, -2.0, 3.0, 0.5], np.float32), np.array([1, 2, -1, -3]), np.ones(4, np.float32)
    out_t, gx_t, _ = _run(torch, xs, es, gs, e_grad=False)
    out_d, gx_d, _ = _run(distnn, xs, es, gs, e_grad=False)
    assert out_d.grad_fn.name() == out_t.grad_fn.name() == "LdexpBackward0"
    np.testing.assert_array_equal(_np(out_d), _np(out_t))
    non_negative = es >= 0
    np.testing.assert_array_equal(_np(gx_d)[non_negative], _np(gx_t)[non_negative])
    np.testing.assert_array_equal(_np(gx_t)[~non_negative], 0)  # (PyTorch's integer 2 ** -1)
    np.testing.assert_array_equal(_np(gx_d)[~non_negative], np.exp2(es[~non_negative]).astype(np.float32))


def test_no_node_without_gradients():
    out = distnn.ldexp(distnn.tensor([1.0, 2.0]), distnn.tensor([1.0, 2.0]))
    assert out.grad_fn is None and not out.requires_grad
    with distnn.no_grad():
        out = distnn.ldexp(distnn.tensor([1.0], requires_grad=True), distnn.tensor([3.0]))
    assert out.grad_fn is None
    np.testing.assert_array_equal(_np(out), [8.0])
