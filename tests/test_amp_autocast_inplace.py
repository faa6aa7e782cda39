"""In-place methods under distnn.autocast, against torch.autocast("cpu", dtype=torch.float16): PyTorch does not
autocast in-place ops (only the out-of-place ``addmm``... are on its lists), so ``x.addmm_(a, b)`` inside the
region computes in the tensor's own dtype, as outside it."""
import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

rng = np.random.default_rng(0)


def _r(*shape):
    return rng.standard_normal(shape).astype(np.float32)


X, A, B, V = _r(4, 5), _r(4, 3), _r(3, 5), _r(5)
BX, BA, BB = _r(2, 4, 5), _r(2, 4, 3), _r(2, 3, 5)
CASES = {
    "addmm_": (X, lambda L, x: x.addmm_(L.tensor(A), L.tensor(B))),
    "addmv_": (X[:, 0].copy(), lambda L, x: x.addmv_(L.tensor(X), L.tensor(V))),
    "baddbmm_": (BX, lambda L, x: x.baddbmm_(L.tensor(BA), L.tensor(BB))),
    "addbmm_": (X, lambda L, x: x.addbmm_(L.tensor(BA), L.tensor(BB))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_inplace_matmul_family_is_not_autocast(name):
    start, call = CASES[name]
    with torch.autocast("cpu", dtype=torch.float16):
        expected = call(torch, torch.tensor(start)).numpy()
    with distnn.autocast("cpu"):
        got = call(distnn, distnn.tensor(start))
    assert got.dtype == np.float32
    # (float32 arithmetic: float16 rounding of the operands would be off by ~1e-3)
    np.testing.assert_allclose(np.asarray(got.data), expected, rtol=1e-5, atol=1e-5)


def test_inplace_addmm_records_float32_gradients_under_autocast():
    a = distnn.tensor(A, requires_grad=True)
    ta = torch.tensor(A, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.float16):
        ty = torch.tensor(X) * 1.0
        ty.addmm_(ta, torch.tensor(B))
    (ty * ty).sum().backward()  # (outside the region, as PyTorch advises)
    with distnn.autocast("cpu"):
        y = distnn.tensor(X) * 1.0
        y.addmm_(a, distnn.tensor(B))
    (y * y).sum().backward()
    assert a.grad.dtype == np.float32
    np.testing.assert_allclose(a.grad, ta.grad.numpy(), rtol=1e-5, atol=1e-4)
