"""``linalg.vector_norm`` of float16 inputs near float16's range against PyTorch 2.13 (CPU), values and
gradients, for p-norms whose intermediates overflow float16: the norm is powered and added up in float32 and
rounded once, its gradient (PyTorch's ``norm_backward``) in float16 op by op, as PyTorch's, so where
``x |x|^(p-2)`` or ``|x|_p^(p-1)`` passes 65504 both give the same inf, 0 or NaN, and the same finite values
elsewhere, with no numpy warning."""
import warnings

import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

ORDS = [3, 4, 7, 2.5, 1.5, 0.5, -1]
SCALES = [10.0, 300.0, 1000.0, 10000.0, 60000.0]


def _input(rng, scale):
    x = np.clip(rng.standard_normal((6, 8)) * scale, -65504, 65504)
    return x.astype(np.float16)


def _same(got, expected):
    """Equal values, NaN where the other has NaN (PyTorch's inf * 0 and inf - inf are numpy's too)."""
    assert got.dtype == expected.dtype == np.float16
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("ord", ORDS)
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("dim", [None, 1, 0])
def test_value_and_gradient_are_torchs(ord, scale, dim):  # noqa: A002
    rng = np.random.default_rng(13)
    x = _input(rng, scale)
    g = rng.uniform(0.5, 2, x.shape[1 - dim] if dim in (0, 1) else ()).astype(np.float16)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.linalg.vector_norm(tx, ord, dim)
    ty.backward(torch.from_numpy(np.asarray(g)))
    dx = distnn.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (overflow, invalid, divide: numpy warns, PyTorch does not)
        dy = distnn.linalg.vector_norm(dx, ord, dim)
        dy.backward(distnn.tensor(np.asarray(g)))
    _same(np.asarray(dy.data), ty.detach().numpy())
    _same(np.asarray(dx.grad.data), tx.grad.numpy())


def test_the_inputs_do_reach_the_overflow():
    """The scales above are the case: PyTorch's own gradient is partly non-finite at p = 3 from 300 up."""
    rng = np.random.default_rng(13)
    x = torch.tensor(_input(rng, 300.0), requires_grad=True)
    torch.linalg.vector_norm(x, 3).backward()
    assert not torch.isfinite(x.grad).all() and torch.isfinite(x.grad).any()
