"""``Tensor.real`` / ``Tensor.imag`` (properties, views as PyTorch's) and ``Tensor.angle()`` against PyTorch 2.13."""
import numpy as np
import pytest

import distnn
from tensor_ops_oracle import assert_refused_as_torch, compare, rand

torch = pytest.importorskip("torch")

Z = (rand(3, 4) + 1j * rand(3, 4, seed=1)).astype(np.complex128)


def _both(array):
    return distnn.tensor(array), torch.tensor(array)


@pytest.mark.parametrize("part", ["real", "imag"])
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_parts_are_views_as_torch(part, dtype):
    ours, theirs = _both(Z.astype(dtype))
    a, b = getattr(ours, part), getattr(theirs, part)
    assert a.dtype == np.dtype(str(b.dtype).replace("torch.", "")) and tuple(a.shape) == tuple(b.shape)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    a[1, 2], b[1, 2] = 7.0, 7.0  # (a write to the part reaches the complex tensor)
    getattr(ours, part).mul_(2)
    getattr(theirs, part).mul_(2)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_assigning_to_parts():
    ours, theirs = _both(Z)
    new = rand(3, 4, seed=2)
    ours.real, theirs.real = distnn.tensor(new), torch.tensor(new)
    ours.imag, theirs.imag = distnn.tensor(new[0]), torch.tensor(new[0])  # (broadcast, as copy_)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    x = distnn.tensor(rand(3))
    x.real = distnn.tensor(new[0, :3])
    np.testing.assert_array_equal(x.numpy(), new[0, :3])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_real_of_a_real_tensor_is_itself(dtype):
    x = distnn.tensor(rand(3).astype(dtype))
    assert x.real is x and torch.tensor(rand(3).astype(dtype)).real.dtype == torch.tensor(rand(3).astype(dtype)).dtype
    w = distnn.tensor(rand(3), requires_grad=True)
    (w.real * 3).sum().backward()  # (in the graph: the tensor itself)
    np.testing.assert_array_equal(w.grad, np.full(3, 3.0))


@pytest.mark.parametrize("array", [rand(3), np.arange(3), np.array([True, False])], ids=["float", "int", "bool"])
def test_imag_of_a_real_tensor_refused_as_torch(array):
    assert_refused_as_torch(torch, ("imag", lambda m, x: x.imag, [array],
                                    "imag is not implemented for tensors with non-complex dtypes"))
    assert_refused_as_torch(torch, ("imag =", lambda m, x: setattr(x, "imag", x), [array],
                                    "imag is not implemented for tensors with non-complex dtypes"))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_angle_method_matches_torch(dtype):
    x = np.array([[-2.0, 0.0, 3.0], [np.nan, -0.5, 1e-3]])
    compare(torch, lambda m, a: a.angle(), [x], dtype=dtype)  # (values, and PyTorch's zero gradient)
    compare(torch, lambda m, a: a.angle() * a, [x[:, [0, 2]]], dtype=dtype)


@pytest.mark.parametrize("array", [Z, Z.astype(np.complex64), np.array([-3, 0, 2])], ids=["c128", "c64", "int"])
def test_angle_method_of_complex_and_integer_tensors(array):
    ours, theirs = _both(array)
    a, b = ours.angle(), theirs.angle()
    assert a.dtype == np.dtype(str(b.dtype).replace("torch.", ""))
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


def test_conj_methods():
    ours, theirs = _both(Z)
    np.testing.assert_array_equal(ours.conj().numpy(), theirs.conj().resolve_conj().numpy())
    np.testing.assert_array_equal(ours.conj_physical().numpy(), theirs.conj_physical().numpy())
    assert ours.resolve_conj() is ours and ours.is_conj() is False and ours.is_neg() is False
