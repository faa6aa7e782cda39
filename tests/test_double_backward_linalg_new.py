"""Double backward (``create_graph=True``) of the linear-algebra ops added with solve_ex: cond (the SVD orders),
solve_ex, tensorinv, tensorsolve, vecdot, svd_lowrank's singular values (q = n: independent of the random
matrix) and lobpcg's eigenvalues and eigenvectors (from a given start). Second derivatives against PyTorch's,
float64 tight and float32 loose."""
import sys

import numpy as np
import pytest

from test_double_backward import assert_second_derivatives_match

RNG = np.random.default_rng(44)


def _orth(n):
    q, r = np.linalg.qr(RNG.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def _mat(m, n, batch=()):
    """``(*batch, m, n)`` matrices with singular values 2.5, 1.8, 1.2, 0.7 (distinct, conditioned)."""
    k = min(m, n)
    s = np.array([2.5, 1.8, 1.2, 0.7])[:k]
    out = [_orth(m)[:, :k] * s @ _orth(n)[:, :k].T for _ in range(int(np.prod(batch)))]
    return np.stack(out).reshape(batch + (m, n))


SQ_B, TALL = _mat(3, 3, (2,)), _mat(5, 3)
RHS_B = RNG.standard_normal((2, 3, 2))
T4 = (_mat(4, 4)).reshape(2, 2, 2, 2)
SPD = _orth(9) * np.linspace(1.0, 9.0, 9) @ _orth(9).T
SPD = (SPD + SPD.T) / 2
START = RNG.standard_normal((9, 2))


def _top(L):  # noqa: N803
    """distnn or torch, whichever ``L`` is the linalg of (svd_lowrank and lobpcg are top-level names)."""
    return sys.modules[L.__name__.split(".")[0]]


def _lobpcg(L, a):  # noqa: N803
    top = _top(L)
    e, x = top.lobpcg(a, X=top.tensor(START).to(a.dtype), largest=False, tol=1e-12,
                      niter=100)  # (converged past the default tol; float32 stops at niter)
    return e.sum() * (x @ x.mT)  # (independent of the vectors' signs)


CASES = [
    ("cond_2", lambda F, X, L, a: L.cond(a)[:, None, None] * a, (SQ_B,)),
    ("cond_minus2_tall", lambda F, X, L, a: L.cond(a, -2) * a, (TALL,)),
    ("cond_nuc", lambda F, X, L, a: L.cond(a, "nuc").exp(), (SQ_B,)),
    ("solve_ex", lambda F, X, L, a, b: L.solve_ex(a, b).result ** 2, (SQ_B, RHS_B)),
    ("solve_ex_right", lambda F, X, L, a, b: L.solve_ex(a, b.mT, left=False).result.tanh(), (SQ_B, RHS_B)),
    ("tensorinv", lambda F, X, L, a: L.tensorinv(a, ind=2) ** 2, (T4,)),
    ("tensorsolve", lambda F, X, L, a, b: L.tensorsolve(a, b) ** 2, (T4, RHS_B[0, :2])),
    ("vecdot", lambda F, X, L, a, b: L.vecdot(a, b, dim=-2) ** 2, (SQ_B, RHS_B[..., :1])),
    ("svd_lowrank_values", lambda F, X, L, a: _top(L).svd_lowrank(a, q=3)[1] ** 3, (TALL,)),
    ("lobpcg", lambda F, X, L, a: _lobpcg(L, a), (SPD,)),
]


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_second_derivatives_match_torch(torch, name, fn, arrays):
    assert_second_derivatives_match(torch, fn, arrays, f64=(1e-8, 1e-9), f32=(3e-3, 3e-3))
