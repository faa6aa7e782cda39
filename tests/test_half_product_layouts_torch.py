"""float16 prod of arrays that are not row-major (transposed, strided, reversed, expanded): bit for bit torch 2.13's
(CPU, one thread, the oracle) product of the same values laid out row-major.

distnn's float16 product rounds every multiplication by letting numpy reduce over an axis that is not innermost in
memory (numpy's innermost-axis reduction keeps a float32 running product instead); these layouts would put the
reduced axis innermost were the array not laid out row-major first. (PyTorch's own order on such a strided tensor
follows its memory layout. Over every element of a permuted (transposed) array distnn follows it too (its values
in memory order): compared there with torch's product of the same strided tensor. Along a transposed dim, and over
every element of a sliced or expanded array, distnn follows the row-major order, as it always has; a known gap.)
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F16 = np.float16


def layouts(rng):
    """(name, numpy array) of float16 values near 1 (long products stay finite) in several layouts."""
    base = rng.uniform(0.97, 1.03, (70, 130)).astype(F16)
    yield "transposed", base.T
    yield "every other row and column", base[::2, ::3]
    yield "reversed columns", base[:, ::-1]
    yield "expanded row", np.broadcast_to(base[:1], (5, 130))
    yield "expanded column", np.broadcast_to(base[:, :1], (70, 9))
    yield "3-dim transposed", rng.uniform(0.97, 1.03, (6, 70, 4)).astype(F16).transpose(2, 1, 0)


@pytest.mark.parametrize("keepdim", [False, True])
def test_float16_products_of_other_layouts_bitwise_as_torch_row_major(keepdim):
    rng = np.random.default_rng(7)
    for name, x in layouts(rng):
        d = distnn.Tensor(x)  # (the array itself, its strides kept)
        t = torch.from_numpy(np.ascontiguousarray(x))
        permuted = "transposed" in name  # (over every element: memory order, torch's own strided tensor's)
        for dim in [None] + list(range(x.ndim)):
            got = d.prod() if dim is None else d.prod(dim, keepdim=keepdim)
            want = (torch.from_numpy(x) if permuted else t).prod() if dim is None else t.prod(dim, keepdim=keepdim)
            got = np.asarray(got.data)
            assert got.dtype == F16 and got.shape == tuple(want.shape), (name, dim)
            np.testing.assert_array_equal(got.view(np.uint16), want.numpy().view(np.uint16), err_msg=f"{name} {dim}")
