"""The GPU (cupy) against the CPU (numpy) for distnn.sparse (COO) and distnn.masked, written without a GPU (a
static review): host indices beside device values (moved to the values' device), the scatter and gather of the
values (coalesce, to_dense, sum, the products), dense +/- sparse; masked reductions, scans and normalizations
with host masks (where-filled), a MaskedTensor through unary, binary and reduction ops. gpu_oracle.py says how a
case draws its inputs and how the devices are compared."""
import numpy as np
import pytest

import distnn as dn
from distnn import backend

from gpu_oracle import DTYPES, NO_GPU, assert_op_matches_the_cpu

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip(NO_GPU, allow_module_level=True)

_SP_IDX = np.array([[0, 1, 1, 0, 2], [2, 0, 2, 2, 1]])  # (0, 2) twice: coalesce sums it
_MASKED_M = np.array([[1, 0, 1, 1, 0], [0, 1, 1, 1, 1], [1, 1, 0, 0, 1], [0, 0, 0, 0, 0]], bool)


def _sparse(values, size=(3, 4)):
    return dn.sparse_coo_tensor(_SP_IDX, values, size)


def _masked_reductions(x):
    """distnn.masked's reductions over a (4, 5) input with a host mask; row 3 is masked out entirely (the
    identities of sum, prod, amax, norm; mean/var/std/median/logsumexp on rows that keep elements)."""
    from distnn import masked as M

    m = _MASKED_M
    keep = m[:3]
    return (M.sum(x, 1, mask=m) + M.prod(x, 1, mask=m) + M.norm(x, 2.0, 1, mask=m) + M.amax(x, 1, mask=m).clamp(-9)
            + M.norm(x, 3.0, (0, 1), mask=m) + M.sum(x, mask=m[0]) + M.amin(x, 0, mask=m).sum()
            + dn.cat([M.mean(x[:3], 1, mask=keep) + M.var(x[:3], 1, mask=keep) + M.std(x[:3], 1, correction=0,
                                                                                       mask=keep)
                      + M.median(x[:3], 1, mask=keep) + M.logsumexp(x[:3], 1, mask=keep), x[3, :1]]))


def _masked_normalizations(x):
    """distnn.masked's scans and normalizations along dim 1 with a host mask (rows that keep elements)."""
    from distnn import masked as M

    m = _MASKED_M[:3]
    return (M.cumsum(x, 1, mask=m) + M.cumprod(x, 1, mask=m) + M.softmax(x, 1, mask=m) + M.softmin(x, 1, mask=m)
            + M.log_softmax(x, 1, mask=m).clamp(-30) + M.normalize(x, 2.0, 1, mask=m)
            + M.logaddexp(x, x.flip(1), input_mask=m, other_mask=m[:, ::-1].copy()).clamp(-30))  # (-inf: both out)


def _masked_tensor_ops(x):
    """A MaskedTensor (host mask) through unary, binary and reduction ops and softmax, back to a plain tensor."""
    from distnn import masked as M

    mt = M.as_masked_tensor(x, dn.tensor(_MASKED_M[:3]))
    y = (mt.exp() * mt + mt.sin() / 2 - mt.abs().sqrt()) ** 2 + mt.softmax(1)
    return (y.to_tensor(0.0) + y.sum(1, keepdim=True).to_tensor(0.0) + dn.where(x > 0, mt, x).to_tensor(1.0)
            + mt.var(1, keepdim=True).to_tensor(0.0) + mt.amax().to_tensor(0.0))


CASES = {
    # distnn.sparse (COO), written without a GPU: host indices beside device values (moved to the values' device),
    # the scatter and gather of the values (coalesce, to_dense, sum, mm) and dense +/- sparse
    "sparse_coalesce_to_dense": lambda R: ([R.standard_normal(5)], lambda v: _sparse(v).coalesce().to_dense()),
    "sparse_mm_addmm": lambda R: ([R.standard_normal(5), R.standard_normal((4, 2)), R.standard_normal((3, 2))],
                                  lambda v, b, a: dn.sparse.addmm(a, _sparse(v), b, beta=0.5, alpha=2.0)
                                  + _sparse(v) @ b),
    "sparse_sum_hybrid_minus_dense": lambda R: ([R.standard_normal((5, 2)), R.standard_normal((4, 2))], lambda v, x: (
        x - dn.sparse.sum(_sparse(v, (3, 4, 2)), 0).to_dense() * 3.0)),
    "to_sparse_values": lambda R: ([R.standard_normal((3, 4))], lambda x: (x * (x > 0)).to_sparse(1).values() * 2.0),
    # the products of distnn.sparse.products (the dense operand a non-leaf: a leaf's gradient would be sparse)
    "sparse_mul_dense_and_sparse": lambda R: ([R.standard_normal(5), R.standard_normal((3, 4))],
                                              lambda v, x: ((_sparse(v) * (x * 1.0)) * _sparse(v).coalesce()).to_dense()
                                              + ((x * 1.0) * _sparse(v)).to_dense()),
    "dense_mm_sparse": lambda R: ([R.standard_normal(5), R.standard_normal((2, 3))],
                                  lambda v, a: a @ _sparse(v) + dn.matmul(a[0], _sparse(v))),
    "sparse_mm_sparse": lambda R: ([R.standard_normal(5), R.standard_normal(5)],
                                   lambda v, w: dn.sparse.mm(_sparse(v), dn.sparse_coo_tensor(_SP_IDX[::-1], w, (4, 3)))
                                   .to_dense()),
    # distnn.masked (masked/): where-filled reductions and normalizations with host masks beside device inputs
    "masked_reductions": lambda R: ([R.standard_normal((4, 5))], _masked_reductions),
    "masked_normalizations": lambda R: ([R.standard_normal((3, 5))], _masked_normalizations),
    "masked_tensor_ops": lambda R: ([R.standard_normal((3, 5))], _masked_tensor_ops),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("op", list(CASES))
def test_op_changed_since_the_last_gpu_run_matches_the_cpu(op, dtype, per_test_rng):
    assert_op_matches_the_cpu(*CASES[op](per_test_rng), dtype)
