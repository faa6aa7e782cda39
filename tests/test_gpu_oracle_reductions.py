"""The GPU (cupy) against the CPU (numpy) for reductions, scans and statistics changed since the last run on a
GPU (commit c209826), written without a GPU (a static review): empty dims, 0-d inputs, log-step scans through
zeros and ties, median/kthvalue/mode, quantile with device quantiles, cdist, cov/corrcoef, renorm. gpu_oracle.py
says how a case draws its inputs and how the devices are compared."""
import numpy as np
import pytest

import distnn as dn
from distnn import backend
from distnn import functional as F

from gpu_oracle import DTYPES, NO_GPU, assert_op_matches_the_cpu, on

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip(NO_GPU, allow_module_level=True)


def _with_zeros(R):
    """One zero in row 0, two in a row in row 1: the cumulative product's gradient there."""
    x = R.standard_normal((3, 6))
    x[0, 2] = x[1, 1] = x[1, 4] = 0.0
    return x


CASES = {
    "sum_empty_dim": lambda R: ([R.standard_normal((2, 3, 4))], lambda a: F.sum(a, dim=[])),
    "norm_empty_dim": lambda R: ([R.standard_normal((2, 3))], lambda a: a.norm(dim=())),
    "max_0d": lambda R: ([R.standard_normal(())], lambda a: F.max(a, dim=0).values * 2.0),
    "cdist_p1_5": lambda R: ([R.standard_normal((2, 4, 3)), R.standard_normal((2, 5, 3))],
                             lambda a, b: dn.cdist(a, b, 1.5)),
    "cumprod_zeros": lambda R: ([_with_zeros(R)], lambda x: dn.cumprod(x, 1)),
    "cummax_logcumsumexp": lambda R: ([np.round(R.standard_normal((3, 6)))],
                                      lambda x: dn.cummax(x, 1).values + dn.logcumsumexp(x * 20, 1)),
    "median_kthvalue_mode": lambda R: ([R.permutation(20).reshape(4, 5) * 0.3], lambda x: (
        dn.median(x, 1).values + dn.kthvalue(x, 2, 1).values + dn.mode(x, 1).values)),
    "quantile_linear": lambda R: ([R.standard_normal((4, 7))], lambda x: dn.quantile(
        x, dn.Tensor(on(backend.device_of(x.data), np.array([0.1, 0.5, 0.9], x.dtype))), dim=1)),
    "sum_to_size": lambda R: ([R.standard_normal((2, 3, 4))], lambda x: x.sum_to_size(3, 1)),
    "cov_aweights": lambda R: ([R.standard_normal((3, 5)), R.uniform(0.2, 1.0, 5)],
                               lambda x, a: dn.cov(x, correction=2, aweights=a)),
    "corrcoef": lambda R: ([R.standard_normal((3, 6))], dn.corrcoef),
    "dist_p3": lambda R: ([R.standard_normal((3, 4)), R.standard_normal(4)], lambda x, y: dn.dist(x, y, 3.0)),
    "renorm": lambda R: ([R.standard_normal((4, 3))], lambda x: dn.renorm(x, 2, 0, 1.2)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("op", list(CASES))
def test_op_changed_since_the_last_gpu_run_matches_the_cpu(op, dtype, per_test_rng):
    assert_op_matches_the_cpu(*CASES[op](per_test_rng), dtype)
