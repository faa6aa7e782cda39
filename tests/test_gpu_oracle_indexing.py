"""The GPU (cupy) against the CPU (numpy) for scatters, gathers and index writes changed since the last run on a
GPU (commit c209826), written without a GPU (a static review): index grids built with the input's array module,
cupyx scatter_add/max/min (scatter-multiply through logs), repeated host indices, slice and select writes through
setitem on a copy, index_reduce through scatter_reduce. gpu_oracle.py says how a case draws its inputs and how the
devices are compared."""
import numpy as np
import pytest

import distnn as dn
from distnn import backend

from gpu_oracle import DTYPES, NO_GPU, assert_op_matches_the_cpu

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip(NO_GPU, allow_module_level=True)

_SCATTER_I = np.array([[0, 1, 3], [0, 0, 3], [2, 1, 1], [3, 1, 0], [2, 2, 3], [0, 1, 1]])
_TAKE_I = np.array([[0, 2, 1, 1], [2, 0, 0, 1]])


CASES = {
    "scatter_reduce_amax_ties": lambda R: (
        [np.round(R.standard_normal((4, 3))), np.round(R.standard_normal((6, 3)))],
        lambda x, s: dn.scatter_reduce(x, 0, _SCATTER_I, s, "amax", include_self=False)),
    "scatter_reduce_prod": lambda R: ([R.standard_normal((4, 3)), R.standard_normal((6, 3))],
                                      lambda x, s: dn.scatter_reduce(x, 0, _SCATTER_I, s, "prod")),
    "scatter_reduce_mean_index_add": lambda R: ([R.standard_normal((4, 3)), R.standard_normal((6, 3))],
                                                lambda x, s: dn.index_add(dn.scatter_reduce(x, 0, _SCATTER_I, s,
                                                                                             "mean"),
                                                                          0, _SCATTER_I[:, 0], s)),
    "masked_scatter_take_along_dim": lambda R: ([R.standard_normal((3, 4)), R.standard_normal(12)],
                                                lambda x, s: dn.take_along_dim(dn.masked_scatter(x, x > 0, s),
                                                                               _TAKE_I, 0)),
    "select_scatter": lambda R: ([R.standard_normal((3, 4)), R.standard_normal(3)],
                                 lambda x, s: dn.select_scatter(x, s, 1, 2)),
    "slice_scatter": lambda R: ([R.standard_normal((5, 3)), R.standard_normal((2, 3))],
                                lambda x, s: dn.slice_scatter(x, s, 0, 1, 5, 2)),
    "diagonal_scatter": lambda R: ([R.standard_normal((3, 4)), R.standard_normal(3)],
                                   lambda x, s: dn.diagonal_scatter(x, s, 1)),
    "index_reduce_amax": lambda R: ([R.standard_normal((4, 3)), R.standard_normal((4, 3))],
                                    lambda x, s: x.index_reduce(0, dn.Tensor(np.array([0, 2, 0, 3])), s, "amax")),
    "index_reduce_mean": lambda R: ([R.standard_normal((4, 3)), R.standard_normal((3, 2))],
                                    lambda x, s: x.index_reduce(1, dn.Tensor(np.array([1, 1, 0])), s.t(), "mean")),
    "index_put_accumulate": lambda R: ([R.standard_normal((3, 4)), R.standard_normal(3)],
                                       lambda x, v: x.index_put((np.array([1, 1, 0]), np.array([2, 2, 3])), v, True)),
    # (distinct positions, -1 among them: a position written twice is undefined without accumulate, in PyTorch
    # too; cupy's scatter let the other write win on the H100, numpy's the last)
    "put": lambda R: ([R.standard_normal((2, 3)), R.standard_normal(3)],
                      lambda x, v: x.put(dn.Tensor(np.array([0, 4, -1])), v)),
    "put_accumulate_repeated": lambda R: ([R.standard_normal((2, 3)), R.standard_normal(3)],
                                          lambda x, v: x.put(dn.Tensor(np.array([0, 5, -1])), v, True)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("op", list(CASES))
def test_op_changed_since_the_last_gpu_run_matches_the_cpu(op, dtype, per_test_rng):
    assert_op_matches_the_cpu(*CASES[op](per_test_rng), dtype)
