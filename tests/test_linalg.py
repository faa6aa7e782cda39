"""distnn.linalg against torch.linalg (the oracle): the same well-conditioned random inputs, batched, outputs and
input gradients (of a random weighting of every output) compared, float64 tightly and float32 loosely; eigh and
svd through losses that do not depend on the eigenvectors' signs (as PyTorch's docs advise); refusals (type and
gist of PyTorch's message, LinAlgError naming the batch element); distnn.testing's gradient checker; the
top-level aliases and Tensor methods. A seeded fuzz over shapes is in test_linalg_fuzz.py.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.linalg as DL  # noqa: E402

TL = torch.linalg
R = np.random.default_rng(26)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)
F64 = dict(dtype=np.float64, rtol=1e-9, atol=1e-10)
F32 = dict(dtype=np.float32, rtol=2e-3, atol=2e-4)


def _outs(y):
    return list(y) if isinstance(y, tuple) else [y]


def both(fd, ft, *arrays, dtype=np.float64, rtol=1e-9, atol=1e-10, loss=None, grad=True):
    """fd and ft on the same inputs: every output compared, then the inputs' gradients of ``loss(outputs)``
    (default: a random weighting of the outputs that carry a gradient)."""
    dins = [distnn.tensor(np.asarray(a, dtype=dtype), requires_grad=grad) for a in arrays]
    tins = [torch.tensor(np.asarray(a, dtype=dtype), requires_grad=grad) for a in arrays]
    yd, yt = _outs(fd(*dins)), _outs(ft(*tins))
    assert len(yd) == len(yt)
    for d, t in zip(yd, yt):
        assert tuple(d.shape) == tuple(t.shape) and str(d.dtype) == str(t.dtype).replace("torch.", "")
        if loss is None:
            np.testing.assert_allclose(np.asarray(d.data), t.detach().numpy(), rtol=rtol, atol=atol)
    if not grad:
        return
    if loss is None:
        weights = [R.standard_normal(tuple(t.shape)) if t.requires_grad else None for t in yt]
        ld = sum((d * distnn.tensor(w.astype(dtype))).sum() for d, w in zip(yd, weights) if w is not None)
        lt = sum((t * torch.tensor(w.astype(dtype))).sum() for t, w in zip(yt, weights) if w is not None)
    else:
        ld, lt = loss(distnn, *yd), loss(torch, *yt)
        np.testing.assert_allclose(float(ld.data), float(lt.detach()), rtol=rtol, atol=atol)
    ld.backward()
    lt.backward()
    for d, t in zip(dins, tins):
        expected = t.grad.numpy() if t.grad is not None else np.zeros(t.shape, dtype)
        got = np.asarray(d.grad.data) if d.grad is not None else np.zeros(t.shape, dtype)
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


def well(*shape):
    """Well-conditioned square matrices: random plus a multiple of the identity."""
    return R.standard_normal(shape) + 3 * np.eye(shape[-1])


def spd(*shape):
    a = R.standard_normal(shape)
    return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])


_WEIGHTS = {}


def _wt(lib, shape, like):
    """Fixed random weights of ``shape`` (the same for both libraries), in ``like``'s dtype."""
    w = _WEIGHTS.setdefault(tuple(shape), R.standard_normal(tuple(shape)))
    return distnn.tensor(w.astype(str(like.dtype).replace("torch.", ""))) if lib is distnn else torch.tensor(w).to(
        like.dtype)


def eigh_loss(lib, w, v):
    """Invariant under the eigenvectors' signs: the eigenvalues and a weighted ``V diag(c) V^T``."""
    c = _wt(lib, tuple(w.shape[-1:]), w)
    return (w * w).sum() + ((v * c) @ v.mT * _wt(lib, tuple(v.shape), v)).sum()


def svd_loss(lib, u, s, vh):
    """Invariant under the singular vectors' signs (flipped in pairs): S, ``U_k diag(c) Vh_k`` and the squares
    of the first k columns of U and rows of Vh."""
    k = s.shape[-1]
    uk, vk = u[..., :k], vh[..., :k, :]
    c = _wt(lib, tuple(s.shape), s)
    product = (uk * c[..., None, :]) @ vk
    return ((s ** 3).sum() + (product * _wt(lib, tuple(product.shape), s)).sum()
            + (uk * uk * _wt(lib, tuple(uk.shape), s)).sum() + (vk * vk * _wt(lib, tuple(vk.shape), s)).sum())


CASES = {
    "det": (DL.det, TL.det, lambda: [well(2, 3, 4, 4)]),
    "slogdet": (DL.slogdet, TL.slogdet, lambda: [R.standard_normal((3, 5, 5))]),
    "logdet": (distnn.logdet, torch.logdet, lambda: [spd(2, 4, 4)]),
    "inv": (DL.inv, TL.inv, lambda: [well(3, 4, 4)]),
    "solve_matrix_broadcast": (DL.solve, TL.solve, lambda: [well(2, 1, 4, 4), R.standard_normal((3, 4, 2))]),
    "solve_vector": (DL.solve, TL.solve, lambda: [well(3, 4, 4), R.standard_normal(4)]),
    "solve_batched_vector": (DL.solve, TL.solve, lambda: [well(3, 4, 4), R.standard_normal((3, 4))]),
    "solve_right": (lambda a, b: DL.solve(a, b, left=False), lambda a, b: TL.solve(a, b, left=False),
                    lambda: [well(2, 4, 4), R.standard_normal((2, 3, 4))]),
    "cholesky": (DL.cholesky, TL.cholesky, lambda: [spd(2, 4, 4)]),
    "cholesky_ex": (DL.cholesky_ex, TL.cholesky_ex, lambda: [spd(2, 4, 4)]),
    "inv_ex": (DL.inv_ex, TL.inv_ex, lambda: [well(3, 4, 4)]),
    "lstsq": (DL.lstsq, TL.lstsq, lambda: [R.standard_normal((2, 5, 3)), R.standard_normal((2, 5, 2))]),
    "lstsq_gelsd_vector_broadcast": (lambda a, b: DL.lstsq(a, b, driver="gelsd"),
                                     lambda a, b: TL.lstsq(a, b, driver="gelsd"),
                                     lambda: [R.standard_normal((2, 5, 3)), R.standard_normal((2, 5))]),
    "lstsq_gelss_rcond": (lambda a, b: DL.lstsq(a, b, 1e-3, driver="gelss"),
                          lambda a, b: TL.lstsq(a, b, 1e-3, driver="gelss"),
                          lambda: [R.standard_normal((2, 4, 3)), R.standard_normal((1, 4, 2))]),
    "lstsq_gels_wide": (lambda a, b: DL.lstsq(a, b, driver="gels"), lambda a, b: TL.lstsq(a, b, driver="gels"),
                        lambda: [R.standard_normal((3, 5)), R.standard_normal((3, 2))]),
    # (rcond 1e-5: a rank-2 product's third singular value is rounding, ~eps of the first, right at the
    # default rcond eps * 5; torch's gelsy then took it as rank 3 for some draws (a solution ~1e17). 1e-5 is
    # far above float32's rounding (~1e-7) and far below the other two singular values.)
    "lstsq_rank_deficient": (lambda a, b: DL.lstsq(a, b, 1e-5), lambda a, b: TL.lstsq(a, b, 1e-5),
                             lambda: [R.standard_normal((5, 2)) @ R.standard_normal((2, 3)), R.standard_normal(5)]),
    "cholesky_reads_lower": (DL.cholesky, TL.cholesky,
                             lambda: [np.tril(spd(3, 3)) + np.triu(R.standard_normal((3, 3)), 1)]),
    "cholesky_upper_reads_upper": (lambda a: DL.cholesky(a, upper=True), lambda a: TL.cholesky(a, upper=True),
                                   lambda: [np.triu(spd(3, 3)) + np.tril(R.standard_normal((3, 3)), -1)]),
    "qr_tall": (DL.qr, TL.qr, lambda: [R.standard_normal((2, 5, 3))]),
    "qr_wide": (DL.qr, TL.qr, lambda: [R.standard_normal((2, 3, 5))]),
    "qr_complete_wide": (lambda a: DL.qr(a, "complete"), lambda a: TL.qr(a, "complete"),
                         lambda: [R.standard_normal((3, 5))]),
    "qr_complete_square": (lambda a: DL.qr(a, "complete"), lambda a: TL.qr(a, "complete"),
                           lambda: [R.standard_normal((2, 4, 4))]),
    "eigvalsh": (DL.eigvalsh, TL.eigvalsh, lambda: [R.standard_normal((2, 4, 4))]),
    "eigvalsh_upper": (lambda a: DL.eigvalsh(a, "U"), lambda a: TL.eigvalsh(a, "U"),
                       lambda: [R.standard_normal((4, 4))]),
    "svdvals": (DL.svdvals, TL.svdvals, lambda: [R.standard_normal((2, 5, 3))]),
    "pinv_tall": (DL.pinv, TL.pinv, lambda: [R.standard_normal((2, 5, 3))]),
    "pinv_wide": (DL.pinv, TL.pinv, lambda: [R.standard_normal((3, 5))]),
    "pinv_hermitian": (lambda a: DL.pinv(a, hermitian=True), lambda a: TL.pinv(a, hermitian=True),
                       lambda: [R.standard_normal((2, 4, 4)) * 0 + spd(2, 4, 4)]),
    "pinv_rank_deficient_atol": (lambda a: DL.pinv(a, atol=1e-6), lambda a: TL.pinv(a, atol=1e-6),
                                 lambda: [R.standard_normal((4, 2)) @ R.standard_normal((2, 3))]),
    "matrix_power_5": (lambda a: DL.matrix_power(a, 5), lambda a: TL.matrix_power(a, 5), lambda: [well(2, 3, 3) / 3]),
    "matrix_power_-2": (lambda a: DL.matrix_power(a, -2), lambda a: TL.matrix_power(a, -2), lambda: [well(2, 3, 3)]),
    "matrix_power_1": (lambda a: DL.matrix_power(a, 1), lambda a: TL.matrix_power(a, 1), lambda: [well(3, 3)]),
    "matrix_exp": (DL.matrix_exp, TL.matrix_exp, lambda: [R.standard_normal((3, 4, 4))]),
    "matrix_exp_large_norm": (DL.matrix_exp, TL.matrix_exp,
                              lambda: [R.standard_normal((2, 3, 3)) * [[[4.0]], [[0.01]]]]),
    "cross": (DL.cross, TL.cross, lambda: [R.standard_normal((4, 3)), R.standard_normal((1, 3))]),
    "cross_dim0": (lambda a, b: DL.cross(a, b, dim=0), lambda a, b: TL.cross(a, b, dim=0),
                   lambda: [R.standard_normal((3, 2)), R.standard_normal((3, 2))]),
    "multi_dot_vectors": (lambda *t: DL.multi_dot(t), lambda *t: TL.multi_dot(t),
                          lambda: [R.standard_normal(3), R.standard_normal((3, 5)), R.standard_normal((5, 2)),
                                   R.standard_normal(2)]),
    "multi_dot_matrices": (lambda *t: DL.multi_dot(t), lambda *t: TL.multi_dot(t),
                           lambda: [R.standard_normal((6, 3)), R.standard_normal((3, 5)), R.standard_normal((5, 2)),
                                    R.standard_normal((2, 7))]),
    "vander": (DL.vander, TL.vander, lambda: [R.standard_normal((2, 4))]),
    "vander_N": (lambda x: DL.vander(x, N=6), lambda x: TL.vander(x, N=6), lambda: [R.standard_normal(3)]),
    "diagonal": (lambda a: DL.diagonal(a, offset=1, dim1=0, dim2=2), lambda a: TL.diagonal(a, offset=1, dim1=0, dim2=2),
                 lambda: [R.standard_normal((3, 2, 4))]),
    "diagonal_below": (lambda a: DL.diagonal(a, offset=-2), lambda a: TL.diagonal(a, offset=-2),
                       lambda: [R.standard_normal((2, 5, 4))]),
}
for _up in (True, False):
    for _left in (True, False):
        for _unit in (True, False):
            CASES[f"solve_triangular_{'upper' if _up else 'lower'}_{'left' if _left else 'right'}"
                  f"{'_unit' if _unit else ''}"] = (
                lambda a, b, u=_up, le=_left, un=_unit: DL.solve_triangular(a, b, upper=u, left=le, unitriangular=un),
                lambda a, b, u=_up, le=_left, un=_unit: TL.solve_triangular(a, b, upper=u, left=le, unitriangular=un),
                lambda le=_left: [well(2, 4, 4), R.standard_normal((2, 4, 3) if le else (3, 4))])
for _ord in ("fro", "nuc", math.inf, -math.inf, 1, -1, 2, -2):
    CASES[f"matrix_norm_{_ord}"] = (lambda a, o=_ord: DL.matrix_norm(a, o), lambda a, o=_ord: TL.matrix_norm(a, o),
                                    lambda: [R.standard_normal((2, 4, 3))])
    CASES[f"matrix_norm_{_ord}_dims_keepdim"] = (
        lambda a, o=_ord: DL.matrix_norm(a, o, dim=(2, 0), keepdim=True),
        lambda a, o=_ord: TL.matrix_norm(a, o, dim=(2, 0), keepdim=True), lambda: [R.standard_normal((3, 2, 5))])
_WITH_ZERO = lambda: [np.where(R.random((3, 4, 5)) < 0.2, 0.0, R.standard_normal((3, 4, 5)))]  # noqa: E731
for _ord in (2, 1, 0, math.inf, -math.inf, 3, 0.5, 1.5, -1):
    for _dim, _keep in ((None, False), (1, True), ((0, 2), False)):
        CASES[f"vector_norm_{_ord}_{_dim}_{_keep}"] = (
            lambda x, o=_ord, d=_dim, k=_keep: DL.vector_norm(x, o, d, k),
            lambda x, o=_ord, d=_dim, k=_keep: TL.vector_norm(x, o, d, k), _WITH_ZERO)
_TIES = np.array([[1.0, -3.0, 3.0], [0.0, 0.0, 0.0], [2.0, 2.0, -1.0], [-2.0, 1.0, 0.5]])
CASES.update({
    "vector_norm_inf_ties": (lambda x: DL.vector_norm(x, math.inf, 1), lambda x: TL.vector_norm(x, math.inf, 1),
                             lambda: [_TIES]),  # (tied maxima share the gradient; a zero row gets it everywhere)
    "vector_norm_-inf_ties": (lambda x: DL.vector_norm(x, -math.inf, 0), lambda x: TL.vector_norm(x, -math.inf, 0),
                              lambda: [_TIES]),
    "matrix_norm_inf_tied_rows": (lambda x: DL.matrix_norm(x, math.inf), lambda x: TL.matrix_norm(x, math.inf),
                                  lambda: [_TIES[[0, 0, 2]]]),
    "vector_norm_dtype": (lambda x: DL.vector_norm(x, 3, dtype=np.float64),
                          lambda x: TL.vector_norm(x, 3, dtype=torch.float64),
                          lambda: [R.standard_normal((3, 4))]),
    "pinv_tensor_tolerances": (lambda a: DL.pinv(a, atol=distnn.tensor(np.array([0.5, 1e-9])),
                                                 rtol=distnn.tensor(np.array(0.3))),
                               lambda a: TL.pinv(a, atol=torch.tensor([0.5, 1e-9]).to(a.dtype),
                                                 rtol=torch.tensor(0.3).to(a.dtype)),
                               lambda: [R.standard_normal((2, 4, 3))]),
    "norm_all_entries": (DL.norm, TL.norm, lambda: [R.standard_normal((2, 3, 4))]),
    "norm_matrix_ord": (lambda a: DL.norm(a, -2), lambda a: TL.norm(a, -2), lambda: [R.standard_normal((4, 3))]),
    "norm_vector_ord": (lambda a: DL.norm(a, 3), lambda a: TL.norm(a, 3), lambda: [R.standard_normal(5)]),
    "norm_dim_pair": (lambda a: DL.norm(a, "nuc", (0, 1)), lambda a: TL.norm(a, "nuc", (0, 1)),
                      lambda: [R.standard_normal((3, 4, 2))]),
    "norm_one_dim": (lambda a: DL.norm(a, math.inf, 1, True), lambda a: TL.norm(a, math.inf, 1, True),
                     lambda: [R.standard_normal((3, 4, 2))]),
})


@pytest.mark.parametrize("name", list(CASES))
def test_float64_matches_torch(name):
    fd, ft, make = CASES[name]
    both(fd, ft, *make(), **F64)


@pytest.mark.parametrize("name", [n for n in CASES if "vector_norm_0.5" not in n])
def test_float32_matches_torch_loosely(name):
    fd, ft, make = CASES[name]
    both(fd, ft, *make(), **F32)


@pytest.mark.parametrize("opts", [F64, F32], ids=["f64", "f32"])
@pytest.mark.parametrize("uplo", ["L", "U"])
def test_eigh_values_and_gauge_invariant_gradient_match_torch(opts, uplo):
    a = R.standard_normal((2, 3, 5, 5))
    both(lambda t: DL.eigh(t, uplo), lambda t: TL.eigh(t, uplo), a, loss=eigh_loss, **opts)
    w, v = DL.eigh(distnn.tensor(a), uplo)
    np.testing.assert_allclose(w.data, TL.eigvalsh(torch.tensor(a), uplo).numpy(), rtol=1e-10, atol=1e-12)
    tri = np.tril(a) if uplo == "L" else np.triu(a)
    sym = tri + np.swapaxes(tri, -1, -2) - a * np.eye(5)  # (the triangle read, mirrored)
    np.testing.assert_allclose((v.data * w.data[..., None, :]) @ np.swapaxes(v.data, -1, -2), sym, atol=1e-12)


@pytest.mark.parametrize("opts", [F64, F32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(2, 5, 3), (4, 4), (2, 2, 3, 6)])
@pytest.mark.parametrize("full", [True, False])
def test_svd_values_and_gauge_invariant_gradient_match_torch(opts, shape, full):
    a = R.standard_normal(shape)
    both(lambda t: DL.svd(t, full), lambda t: TL.svd(t, full), a, loss=svd_loss, **opts)
    u, s, vh = DL.svd(distnn.tensor(a), full_matrices=full)
    k = s.shape[-1]
    np.testing.assert_allclose((u.data[..., :k] * s.data[..., None, :]) @ vh.data[..., :k, :], a, atol=1e-12)
