"""The GPU (cupy) against the CPU (numpy) for shape ops, joins and creation functions changed since the last run
on a GPU (commit c209826), written without a GPU (a static review): expand with -1, cat of mixed dtypes, triangles
and diagonals, repeat_interleave, kron, windows, channels_last copies (as_strided for an empty one), views of
non-contiguous tensors with size-1 dims, block_diag, combinations' index grid moved to the device, vander's
cumulative product, view copies and as_strided (storage geometry from cupy's allocation). gpu_oracle.py says how
a case draws its inputs and how the devices are compared."""
import numpy as np
import pytest

import distnn as dn
from distnn import backend
from distnn import functional as F

from gpu_oracle import DTYPES, NO_GPU, assert_op_matches_the_cpu

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip(NO_GPU, allow_module_level=True)

_REPEATS = np.array([2, 0, 3])
_VANDER_X = np.array([0.0, 1.5, -2.0, 0.0, 0.5])  # (zeros: the cumulative product's gradient there)


CASES = {
    "expand_minus_one": lambda R: ([R.standard_normal((3, 1))], lambda a: a.expand(2, -1, 4)),
    "cat_int_tensor": lambda R: ([R.standard_normal((2, 3))], lambda a: F.cat([a, (a * 2).astype(np.int64)])),
    # PyTorch's shape and matrix functions: index grids built with the input's array module
    "tril_triu": lambda R: ([R.standard_normal((2, 3, 4))], lambda x: dn.tril(x, 1) - dn.triu(x, -1) * 2),
    "diagonal_diag_embed": lambda R: ([R.standard_normal((2, 3, 4))],
                                      lambda x: dn.diag_embed(dn.diagonal(x, 1, 0, 2), -1, 0, 2)),
    "repeat_interleave_rot90": lambda R: ([R.standard_normal((3, 4))],
                                          lambda x: dn.rot90(dn.repeat_interleave(x, _REPEATS, 0), 1, (0, 1))),
    "kron_tensordot": lambda R: ([R.standard_normal((2, 3)), R.standard_normal((3, 2))],
                                 lambda a, b: dn.tensordot(dn.kron(a, b), dn.kron(b, a), dims=([1], [0]))),
    "baddbmm_cross": lambda R: (
        [R.standard_normal((2, 3, 3)), R.standard_normal((2, 3, 4)), R.standard_normal((2, 4, 3))],
        lambda i, a, b: dn.cross(dn.baddbmm(i, a, b, beta=0.5, alpha=2.0), i, dim=1)),
    # the rest of the Tensor API: windows through index_select
    "unfold_windows": lambda R: ([R.standard_normal((2, 7, 3))], lambda x: x.unfold(1, 3, 2)),
    "addr": lambda R: ([R.standard_normal((3, 4)), R.standard_normal(3), R.standard_normal(4)],
                       lambda x, a, b: dn.addr(x, a, b, beta=0.5, alpha=2.0)),
    # shape ops whose strides changed: channels_last copies (as_strided for an empty one), views of
    # non-contiguous tensors with size-1 dims (as_strided to PyTorch's strides), unsqueeze by indexing
    "contiguous_channels_last": lambda R: ([R.standard_normal((2, 3, 4, 5))],
                                           lambda x: x.contiguous(memory_format=dn.channels_last) * 2),
    "contiguous_channels_last_3d": lambda R: ([R.standard_normal((2, 3, 2, 4, 5))],
                                              lambda x: x.contiguous(memory_format=dn.channels_last_3d).sin()),
    "contiguous_channels_last_empty": lambda R: ([R.standard_normal((0, 3, 4, 5))],
                                                 lambda x: x.contiguous(memory_format=dn.channels_last) * 2),
    "view_size1_of_transpose": lambda R: ([R.standard_normal((2, 3, 4))],
                                          lambda x: x.transpose(0, 2).unsqueeze(3).view(1, 4, 3, 2, 1) * 3),
    "reshape_size1_of_slice": lambda R: ([R.standard_normal((2, 3, 4))],
                                         lambda x: x[:, :, 2:3].reshape(1, 2, 3, 1).exp()),
    "unsqueeze_each_dim": lambda R: ([R.standard_normal((2, 3))],
                                     lambda x: x.t().unsqueeze(0) * x.t().unsqueeze(1).unsqueeze(-1).sum(-1)),
    # top-level joins and creation functions: block_diag's windows, combinations' index grid moved to the device,
    # vander's cumulative product
    "stack_family": lambda R: ([R.standard_normal((3, 2)), R.standard_normal(3)],
                               lambda a, b: dn.hstack([a, b[:, None]]) + dn.vstack([a.t(), b]) * 2
                               + dn.dstack([dn.column_stack([a, b]), b.expand(3, 3)]).prod(-1)
                               + dn.concatenate([a, dn.row_stack([b]).t()], axis=1) ** 2),
    "block_diag": lambda R: ([R.standard_normal((2, 3)), R.standard_normal(2)],
                             lambda a, b: dn.block_diag(a, b, a[1, 1], b.reshape(2, 1))),
    "cartesian_prod_combinations": lambda R: ([R.standard_normal(4), R.standard_normal(3)], lambda a, b: (
        dn.cartesian_prod(a, b).sum(0) + dn.combinations(a, 3).sum(0)[:2]
        + dn.combinations(b, 2, with_replacement=True).prod(1).sum())),
    "vander": lambda R: ([_VANDER_X], lambda x: dn.vander(x) + dn.vander(x, 5, increasing=True) * 0.5),
    # view copies and as_strided (storage geometry from cupy's allocation, backward scatter-added into the storage)
    "view_copies": lambda R: ([R.standard_normal((3, 4, 5))],
                              lambda x: dn.diagonal_copy(x, 1, 0, 2) * 2 + dn.permute_copy(x, (2, 0, 1))[:4, :, 0]
                              + dn.t_copy(dn.unfold_copy(x, 2, 3, 2).sum((-1, -2)))),
    "as_strided_family": lambda R: ([R.standard_normal(12), R.standard_normal((2, 2))],
                                    lambda x, s: dn.as_strided(x[1:] * 1.0, (3, 3), (1, 1), 0).sum(0)[:2]
                                    + dn.as_strided_scatter(x.view(3, 4) * 1.0, s, (2, 2), (4, 1), 1)[:2, :2]),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("op", list(CASES))
def test_op_changed_since_the_last_gpu_run_matches_the_cpu(op, dtype, per_test_rng):
    assert_op_matches_the_cpu(*CASES[op](per_test_rng), dtype)
