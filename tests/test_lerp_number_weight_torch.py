"""lerp with a number weight against PyTorch: its gradients (lerp.Scalar's ``grad * (1 - weight)`` and
``grad * weight``, ``1 - weight`` taken in double and each product computed in float32 for float16, rounded once)
bit for bit, for float16/float32/float64, Python and numpy scalar weights; and a Tensor weight's gradients
(lerp.Tensor's, rounded per op) unchanged."""
import numpy as np
import pytest
import torch

import distnn

pytestmark = pytest.mark.filterwarnings("error")

DTYPES = [np.float16, np.float32, np.float64]
WEIGHTS = [0.3, 0.7, 1 / 3, 0.1234567, 2.5, -0.7, 0.5, 1.0, 0.0]


def _array(x):
    return np.asarray(x.detach().numpy() if hasattr(x, "detach") else x)


def _bits(x):
    x = _array(x)
    return x.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[x.itemsize])


def _lerp_grads(lib, start, end, grad, weight):
    x = lib.tensor(start, requires_grad=True)
    y = lib.tensor(end, requires_grad=True)
    out = lib.lerp(x, y, weight(lib) if callable(weight) else weight)
    out.backward(lib.tensor(grad))
    return out, x.grad, y.grad


def _inputs(dtype, seed, n=1000):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(dtype) * 3 for _ in range(3)]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("weight", WEIGHTS)
def test_number_weight_gradients_are_torchs_bit_for_bit(dtype, weight):
    start, end, grad = _inputs(dtype, 0)
    _, *theirs = _lerp_grads(torch, start, end, grad, weight)
    out, *ours = _lerp_grads(distnn, start, end, grad, weight)
    assert out.grad_fn.name() == "LerpBackward0"
    for mine, reference in zip(ours, theirs):
        assert _array(mine).dtype == dtype
        np.testing.assert_array_equal(_bits(mine), _bits(reference))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("scalar", [np.float64, np.float32, np.float16], ids=lambda t: t.__name__)
def test_numpy_scalar_weight_is_a_number(dtype, scalar):
    start, end, grad = _inputs(dtype, 1, n=200)
    weight = scalar(0.3)
    expected = _lerp_grads(torch, start, end, grad, weight)
    got = _lerp_grads(distnn, start, end, grad, weight)
    assert got[0].grad_fn.name() == expected[0].grad_fn.name()
    assert _array(got[0]).dtype == dtype
    _assert_forward_close(start, end, got[0], expected[0])
    for mine, reference in zip(got[1:], expected[1:]):
        np.testing.assert_array_equal(_bits(mine), _bits(reference))


def _assert_forward_close(start, end, got, expected):
    """Within two ulps of the largest of the operands, their difference and the result: PyTorch's vectorized
    loop uses a fused multiply-add (one rounding of ``w * (end - start) + start``), distnn two roundings, which
    differ where the sum cancels."""
    expected, got = _array(expected).astype(np.float64), _array(got).astype(np.float64)
    dtype = start.dtype
    scale = np.max([np.abs(start), np.abs(end), np.abs(expected).astype(dtype), np.abs(end - start)], axis=0)
    assert np.all(np.abs(got - expected) <= 2 * np.spacing(scale).astype(np.float64))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("weight", [0.3, 0.7, -0.7])
def test_forward_within_an_ulp_of_the_operands(dtype, weight):
    start, end, grad = _inputs(dtype, 2)
    _assert_forward_close(start, end, _lerp_grads(distnn, start, end, grad, weight)[0],
                          _lerp_grads(torch, start, end, grad, weight)[0])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_tensor_weight_gradients_unchanged(dtype):
    start, end, grad = _inputs(dtype, 3, n=300)
    weight = np.random.default_rng(4).uniform(-1, 2, 300).astype(dtype)
    results = []
    for lib in (torch, distnn):
        w = lib.tensor(weight, requires_grad=True)
        out, gx, gy = _lerp_grads(lib, start, end, grad, lambda L, w=w: w)
        results.append((out.grad_fn.name(), gx, gy, w.grad))
    assert results[0][0] == results[1][0] == "LerpBackward1"
    for mine, reference in zip(results[1][1:], results[0][1:]):
        np.testing.assert_array_equal(_bits(mine), _bits(reference))
