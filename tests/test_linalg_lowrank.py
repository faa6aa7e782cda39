"""distnn.svd_lowrank and pca_lowrank (torch's randomized algorithm, its own random matrix) against torch's: shapes,
singular values and the low-rank product U diag(S) V^T where they do not depend on the random matrix (A - M of rank
at most q; a fast-decaying spectrum with subspace iterations), orthonormal U and V, gradients of the singular values
(torch's, and check_grad), M, centering, float64 tightly and float32 loosely, refusals as torch's."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
from distnn.testing import check_grad  # noqa: E402
from test_linalg_lu import F32, F64, both  # noqa: E402

R = np.random.default_rng(3004)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)
TOLS = pytest.mark.parametrize("tol", [F64, F32], ids=["f64", "f32"])


def _rank(shape, r):
    return R.standard_normal(shape[:-1] + (r,)) @ R.standard_normal(shape[:-2] + (r, shape[-1]))


def _product(u, s, v):
    return (u * s[..., None, :]) @ v.mT


@TOLS
@pytest.mark.parametrize("shape, q, niter", [((8, 5), 3, 2), ((2, 5, 9), 4, 0), ((3, 6, 6), 6, 1), ((1, 1), 1, 2),
                                             ((2, 7, 4), 4, 3)], ids=str)
def test_svd_lowrank_of_a_low_rank_matrix_matches_torch(shape, q, niter, tol):
    a = _rank(shape, min(q, *shape[-2:]))
    both(lambda x: (distnn.svd_lowrank(x, q=q, niter=niter)[1], _product(*distnn.svd_lowrank(x, q=q, niter=niter))),
         lambda x: (torch.svd_lowrank(x, q=q, niter=niter)[1], _product(*torch.svd_lowrank(x, q=q, niter=niter))),
         a, grad=False, **tol)
    u, s, v = distnn.svd_lowrank(distnn.tensor(a.astype(tol["dtype"])), q=q, niter=niter)
    tu, ts, tv = torch.svd_lowrank(torch.tensor(a), q=q, niter=niter)
    assert (tuple(u.shape), tuple(s.shape), tuple(v.shape)) == (tuple(tu.shape), tuple(ts.shape), tuple(tv.shape))
    eye = np.eye(q)
    for f in (u, v):
        f = np.asarray(f.data)
        np.testing.assert_allclose(f.swapaxes(-1, -2) @ f, np.broadcast_to(eye, f.shape[:-2] + (q, q)),
                                   atol=50 * tol["atol"])


@TOLS
def test_the_singular_values_gradient_matches_torch(tol):
    a = R.standard_normal((2, 7, 4))  # (q = n: the basis spans A's range whatever the random matrix)
    both(lambda x: distnn.svd_lowrank(x, q=4)[1], lambda x: torch.svd_lowrank(x, q=4)[1], a, **tol)
    both(lambda x: distnn.svd_lowrank(x.mT, q=4, niter=0)[1], lambda x: torch.svd_lowrank(x.mT, q=4, niter=0)[1],
         a, **tol)
    both(lambda x: distnn.pca_lowrank(x, q=3)[1], lambda x: torch.pca_lowrank(x, q=3)[1], a[:, :4, :], **tol)


def test_subspace_iterations_find_the_top_singular_values_as_torch():
    u, _ = np.linalg.qr(R.standard_normal((30, 30)))
    v, _ = np.linalg.qr(R.standard_normal((20, 20)))
    spectrum = 10.0 ** -np.arange(20)
    a = (u[:, :20] * spectrum) @ v.T
    both(lambda x: distnn.svd_lowrank(x, q=4, niter=4)[1], lambda x: torch.svd_lowrank(x, q=4, niter=4)[1], a,
         grad=False, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(np.asarray(distnn.svd_lowrank(distnn.tensor(a), q=4)[1].data), spectrum[:4],
                               rtol=1e-8)


def test_m_is_subtracted_and_broadcast_as_torch():
    m = R.standard_normal((6, 5))
    a = R.standard_normal((2, 6, 5)) + m  # (A - M: random, of full rank 5 = q)
    both(lambda x, y: _product(*distnn.svd_lowrank(x, q=5, M=y)),
         lambda x, y: _product(*torch.svd_lowrank(x, q=5, M=y)), a, m, grad=False)
    both(lambda x, y: distnn.svd_lowrank(x, q=5, M=y)[1], lambda x, y: torch.svd_lowrank(x, q=5, M=y)[1], a, m)
    both(lambda x, y: distnn.svd_lowrank(x.mT, q=5, M=y.mT)[1], lambda x, y: torch.svd_lowrank(x.mT, q=5, M=y.mT)[1],
         a, m)


@pytest.mark.parametrize("center", [True, False])
def test_pca_lowrank_matches_torch(center):
    a = _rank((3, 9, 6), 2) + 5.0  # (centered: rank 2 + the column means)
    q = 3
    both(lambda x: (distnn.pca_lowrank(x, q=q, center=center)[1], _product(*distnn.pca_lowrank(x, q=q, center=center))),
         lambda x: (torch.pca_lowrank(x, q=q, center=center)[1], _product(*torch.pca_lowrank(x, q=q, center=center))),
         a, grad=False)
    assert tuple(distnn.pca_lowrank(distnn.tensor(a))[0].shape) == tuple(torch.pca_lowrank(torch.tensor(a))[0].shape)


@pytest.mark.parametrize("kwargs", [{"q": 7}, {"q": -1}, {"niter": -1}], ids=str)
def test_pca_lowrank_refusals_match_torch(kwargs):
    a = R.standard_normal((6, 5))
    with pytest.raises(ValueError) as te:
        torch.pca_lowrank(torch.tensor(a), **kwargs)
    with pytest.raises(ValueError) as de:
        distnn.pca_lowrank(distnn.tensor(a), **kwargs)
    assert str(de.value) == str(te.value)


def test_the_random_matrix_is_distnns_generator():
    a = R.standard_normal((6, 5))
    distnn.manual_seed(7)
    u1 = np.asarray(distnn.svd_lowrank(distnn.tensor(a), q=2)[0].data)
    distnn.manual_seed(7)
    u2 = np.asarray(distnn.svd_lowrank(distnn.tensor(a), q=2)[0].data)
    np.testing.assert_array_equal(u1, u2)


def test_check_grad():
    def values(x):
        distnn.manual_seed(0)
        return distnn.svd_lowrank(x, q=3, niter=1)[1]
    assert check_grad(values, R.standard_normal((2, 5, 3)))
