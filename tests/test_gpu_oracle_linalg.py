"""The GPU (cupy) against the CPU (numpy) for distnn.linalg and the top-level linear algebra, changed since the
last run on a GPU (commit c209826), written without a GPU (a static review): cupy.linalg's batched
factorizations, the Functions whose outputs are packed into one array and sliced, diagonal writes in the
backwards, solve's broadcast batch dims; LU and Householder (column loops with row swaps gathered by device index
arrays, int32 pivots on the device), LDL, the randomized low-rank SVD and LOBPCG. gpu_oracle.py says how a case
draws its inputs and how the devices are compared."""
import numpy as np
import pytest

import distnn as dn
from distnn import backend

from gpu_oracle import DTYPES, NO_GPU, assert_op_matches_the_cpu

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip(NO_GPU, allow_module_level=True)


def _well_conditioned(R, shift):
    """Two 4 by 4 matrices, ``shift`` times the identity added: well away from singular."""
    return R.standard_normal((2, 4, 4)) + shift * np.eye(4)


def _eigh_projector(a):
    w, v = dn.linalg.eigh(a)
    return (v * w[..., None, :]) @ v.mT  # (independent of the eigenvectors' signs)


def _svd_product(a):
    u, s, vh = dn.linalg.svd(a, full_matrices=False)
    return (u * (s * s)[..., None, :]) @ vh


def _lu_solve_four_ways(a, b):
    lu_data, pivots = dn.linalg.lu_factor(a)  # (pivots: an int32 device array, gathered on the device)
    return (dn.linalg.lu_solve(lu_data, pivots, b) + dn.linalg.lu_solve(lu_data, pivots, b, adjoint=True)
            + dn.linalg.lu_solve(lu_data, pivots, b.mT, left=False).mT
            + dn.linalg.lu_solve(lu_data, pivots, b.mT, left=False, adjoint=True).mT)


CASES = {
    "linalg_det_slogdet": lambda R: ([_well_conditioned(R, 4)],
                                     lambda a: dn.linalg.det(a) + dn.linalg.slogdet(a).logabsdet),
    # (det 0: the LU's rounding leaves ~eps times the terms that cancel, bounded by Hadamard's product of the
    # rows' norms (about 40 here: float32 gave 3.6e-7 on the GPU, 0 on the CPU), the forward's scale)
    "linalg_det_singular": lambda R: (lambda a: ([a], dn.linalg.det, float(np.prod(np.linalg.norm(a, axis=1)))))(
        np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])),
    "linalg_inv": lambda R: ([_well_conditioned(R, 4)], dn.linalg.inv),
    "linalg_solve_broadcast": lambda R: ([_well_conditioned(R, 4)[:1], R.standard_normal((3, 1, 4, 2))],
                                         dn.linalg.solve),
    "linalg_solve_vector_right": lambda R: ([_well_conditioned(R, 4), R.standard_normal((2, 3, 4))],
                                            lambda a, b: dn.linalg.solve(a, b, left=False)),
    "linalg_cholesky_upper": lambda R: ([_well_conditioned(R, 4)],
                                        lambda a: dn.linalg.cholesky(a @ a.mT, upper=True)),
    "linalg_qr_wide": lambda R: ([R.standard_normal((2, 3, 5))],
                                 lambda a: dn.linalg.qr(a).Q.sum() + dn.linalg.qr(a).R),
    "linalg_eigh_projector": lambda R: ([R.standard_normal((2, 4, 4))], _eigh_projector),
    "linalg_eigvalsh_upper": lambda R: ([R.standard_normal((2, 4, 4))], lambda a: dn.linalg.eigvalsh(a, UPLO="U")),
    "linalg_svd_product": lambda R: ([R.standard_normal((2, 5, 3))], _svd_product),
    "linalg_svdvals_pinv": lambda R: ([R.standard_normal((2, 3, 5))],
                                      lambda a: dn.linalg.pinv(a) * dn.linalg.svdvals(a).sum()),
    "linalg_matrix_norms": lambda R: ([R.standard_normal((2, 4, 3))], lambda a: (
        dn.linalg.matrix_norm(a, "nuc") + dn.linalg.matrix_norm(a, float("inf")) + dn.linalg.matrix_norm(a, -2)
        + dn.linalg.vector_norm(a, 3, dim=(0, 2)).sum())),
    "linalg_vector_norm_inf_ties": lambda R: ([np.array([[1.0, -3.0, 3.0], [0.0, 0.0, 0.0]])],
                                              lambda a: dn.linalg.vector_norm(a, float("inf"), dim=1)),
    "linalg_matrix_exp": lambda R: ([R.standard_normal((2, 3, 3)) * [[[4.0]], [[0.1]]]], dn.linalg.matrix_exp),
    "linalg_matrix_power": lambda R: ([_well_conditioned(R, 4) / 4],
                                      lambda a: dn.linalg.matrix_power(a, 3) + dn.linalg.matrix_power(a, -2)),
    "linalg_solve_triangular": lambda R: ([_well_conditioned(R, 4), R.standard_normal((2, 3, 4))],
                                          lambda a, b: dn.linalg.solve_triangular(a, b, upper=True, left=False,
                                                                                  unitriangular=True)),
    "linalg_cross_vander_diagonal": lambda R: ([R.standard_normal((2, 3)), R.standard_normal((1, 3))],
                                               lambda a, b: dn.linalg.cross(a, b) * dn.linalg.vander(a, N=4).sum()
                                               + dn.linalg.diagonal(a[:, :, None] * b[:, None, :], offset=1).sum()),
    "linalg_lstsq_gelsd": lambda R: ([R.standard_normal((2, 5, 3)), R.standard_normal((2, 5))],
                                     lambda a, b: dn.linalg.lstsq(a, b, driver="gelsd").solution.sum(-1)
                                     + dn.linalg.lstsq(a, b, driver="gelsd").residuals[..., 0]),
    "linalg_multi_dot": lambda R: ([R.standard_normal(3), R.standard_normal((3, 4)), R.standard_normal((4, 2))],
                                   lambda a, b, c: dn.linalg.multi_dot([a, b, c])),
    # PyTorch's top-level forms (torch_toplevel_*.py)
    "toplevel_svd_product": lambda R: ([R.standard_normal((4, 3))],
                                       lambda a: (lambda u, s, v: (u * s.unsqueeze(-2)) @ v.mT)(*dn.svd(a))),
    "toplevel_cholesky_solve": lambda R: ([R.standard_normal((3, 2)),
                                           np.tril(R.standard_normal((3, 3))) + 3 * np.eye(3)],
                                          lambda b, f: dn.cholesky_solve(b, f)),
    "toplevel_cholesky_inverse_upper": lambda R: ([np.triu(R.standard_normal((3, 3))) + 3 * np.eye(3)],
                                                  lambda f: dn.cholesky_inverse(f, True)),
    "toplevel_triangular_solve": lambda R: ([R.standard_normal((3, 2)),
                                             np.triu(R.standard_normal((3, 3))) + 3 * np.eye(3)],
                                            lambda b, a: dn.triangular_solve(b, a, True, True)[0]),
    # LU and Householder (distnn.linalg.lu, lu_solve, householder): column loops with row swaps gathered by
    # device index arrays, int32 pivots on the device, reflectors written into slices
    "linalg_lu_tall_wide": lambda R: ([R.standard_normal((2, 5, 3))],
                                      lambda a: dn.linalg.lu_factor(a).LU.sum(-1) + dn.linalg.lu(a.mT).U.sum(-2)
                                      + dn.linalg.lu(a).U.sum(-2).sum(-1, keepdim=True)),
    "linalg_lu_unpack_square": lambda R: ([_well_conditioned(R, 3)], lambda a: (lambda p, low, up: p @ low * 2 + up)(
        *dn.lu_unpack(*dn.linalg.lu_factor(a)))),
    "linalg_lu_solve_four_ways": lambda R: ([_well_conditioned(R, 3), R.standard_normal((2, 4, 3))],
                                            _lu_solve_four_ways),
    "householder_product_ormqr": lambda R: ([R.standard_normal((2, 5, 3)), R.uniform(0.2, 1.8, (2, 3)),
                                             R.standard_normal((2, 5, 2))],
                                            lambda a, t, c: dn.linalg.householder_product(a, t).sum(-1, keepdim=True)
                                            + dn.ormqr(a, t, c, transpose=True) + dn.ormqr(a, t, c.mT, left=False).mT),
    "geqrf_then_orgqr": lambda R: ([R.standard_normal((2, 5, 3))],  # (geqrf has no gradient: its outputs detached)
                                   lambda a: dn.orgqr(*dn.geqrf(a.detach())) * a + dn.geqrf(a.detach()).a),
    # solve_ex (info on the device), cond (SVD and inverse paths), vecdot, tensorinv, tensorsolve
    "linalg_solve_ex_left_right": lambda R: ([_well_conditioned(R, 3), R.standard_normal((2, 4, 3))],
                                             lambda a, b: dn.linalg.solve_ex(a, b).result
                                             + dn.linalg.solve_ex(a, b.mT, left=False).result.mT),
    "linalg_cond_orders": lambda R: ([_well_conditioned(R, 3)], lambda a: (
        dn.linalg.cond(a) + dn.linalg.cond(a, "nuc") + dn.linalg.cond(a, 1) + dn.linalg.cond(a, "fro")
        + dn.linalg.cond(a, -float("inf")))),
    "linalg_vecdot_tensorinv_tensorsolve": lambda R: (
        [_well_conditioned(R, 3)[0].reshape(2, 2, 2, 2), R.standard_normal((2, 2))],
        lambda a, b: dn.linalg.tensorinv(a, ind=2).sum((0, 1))
        + dn.linalg.tensorsolve(a, b) * dn.linalg.vecdot(b, b, dim=0)[0]),
    # LDL (distnn.linalg.ldl: sytrf/sytrs written as column loops with per-matrix pivots; no gradient, as PyTorch:
    # inputs detached, + b carries one)
    "linalg_ldl_factor_solve": lambda R: (
        [R.standard_normal((2, 5, 5)) * (1 - 0.99 * np.eye(5)), R.standard_normal((2, 5, 3))],  # (2 by 2 pivots)
        lambda a, b: dn.linalg.ldl_solve(*dn.linalg.ldl_factor((a + a.mT).detach()), b.detach())
        + dn.linalg.ldl_factor((a + a.mT).detach()).LD.sum(-1, keepdim=True)
        + dn.linalg.ldl_factor((a + a.mT).detach()).pivots[..., None].to(a.dtype) + b),
    # randomized low-rank SVD (host-drawn random matrix; q = n: the singular values do not depend on it)
    "svd_pca_lowrank_values": lambda R: ([R.standard_normal((2, 6, 3))],
                                         lambda a: dn.svd_lowrank(a, q=3)[1] + dn.svd_lowrank(a.mT, q=3, niter=0)[1]
                                         + dn.pca_lowrank(a[:, :4], q=3)[1]),
    # LOBPCG (host-side control flow on device arrays; its gradient's characteristic-polynomial solve)
    "lobpcg_values_projector": lambda R: ([(lambda g: g @ g.T + 9 * np.eye(9))(R.standard_normal((9, 9)))],
                                          lambda a: (lambda e, x: e.sum() * (x @ x.mT))(
                                              *dn.lobpcg(a, k=2, X=a.detach()[:, :2], largest=False))),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("op", list(CASES))
def test_op_changed_since_the_last_gpu_run_matches_the_cpu(op, dtype, per_test_rng):
    arrays, fn, *forward_scale = CASES[op](per_test_rng)
    assert_op_matches_the_cpu(arrays, fn, dtype, *forward_scale)
