"""Float-valued functions of integer or boolean tensors compute in the default float dtype, as PyTorch."""
import numpy as np
import pytest

import distnn
import distnn.functional as F


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "tanh", "sigmoid"])
def test_integer_tensors_give_float32_like_torch(torch, name):
    x0 = np.array([1, 4, 9, 16])
    for out in (getattr(F, name)(distnn.Tensor(x0)), getattr(distnn.Tensor(x0), name)()):
        ref = getattr(torch, name)(torch.from_numpy(x0))
        assert out.dtype == np.float32 and str(ref.dtype) == "torch.float32"
        np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-6)
    assert F.sqrt(distnn.Tensor(np.array([True, False]))).dtype == np.float32
    assert F.sqrt(distnn.Tensor(np.array([4.0]))).dtype == np.float64  # floats keep their dtype


def test_softmax_of_integers_is_float32():
    p = F.softmax(distnn.Tensor(np.array([1, 2, 3])), dim=0)
    assert p.dtype == np.float32
    np.testing.assert_allclose(p.numpy().sum(), 1.0, rtol=1e-6)
