"""Double backward (``create_graph=True``) of the other linear-algebra ops: svd (U, S and Vh; square, tall, wide,
batched, full_matrices), svdvals, matrix_norm 'nuc'/2/-2 (through svdvals), pinv (tall, wide, hermitian), lstsq
(through pinv), qr (reduced and complete, square, tall, wide, batched), matrix_exp, linalg.cross (broadcast),
vander and linalg.diagonal. Second derivatives (and third, where cheap) against PyTorch's, float64 tight and
float32 loose, plus gradgradcheck; qr's non-differentiable modes raise PyTorch's error. Each was refused by name before.

The matrices are built with set singular values (well separated and away from zero: U diag(s) V^T with random
orthogonal U, V), so the singular vectors are well defined and every inverse well conditioned. Losses of singular
vectors do not depend on their signs (as PyTorch's tests: products u_i s_i v_i^T, or squares of the entries);
QR is unique once R's diagonal sign is fixed, and LAPACK's Householder QR fixes it as PyTorch's does."""
import numpy as np
import pytest

from distnn import Tensor, autograd, linalg
from test_double_backward import _compare, _run, assert_second_derivatives_match

RNG = np.random.default_rng(43)


def _orth(n):
    q, r = np.linalg.qr(RNG.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def _mat(m, n, batch=()):
    """``(*batch, m, n)`` matrices with singular values 2.5, 1.8, 1.2, 0.7... (distinct, conditioned)."""
    k = min(m, n)
    s = np.array([2.5, 1.8, 1.2, 0.7, 0.4])[:k]
    out = [_orth(m)[:, :k] * s @ _orth(n)[:, :k].T for _ in range(int(np.prod(batch)))]
    return np.stack(out).reshape(batch + (m, n))


SQ, TALL, WIDE = _mat(3, 3), _mat(4, 3), _mat(3, 4)
TALL_B, SQ_B = _mat(4, 3, (2,)), _mat(3, 3, (2,))
SYM = _orth(3) * np.array([2.0, -1.3, 0.8]) @ _orth(3).T  # (hermitian pinv: symmetric, distinct |eigenvalues|)
SYM = (SYM + SYM.T) / 2
RHS = RNG.standard_normal((4, 2))
V3 = RNG.standard_normal((4, 3))
V3_ROW = RNG.standard_normal((1, 3))
X = RNG.uniform(0.5, 1.5, (4,)) * np.array([1, -1, 1, -1])
X_B = RNG.uniform(0.5, 1.5, (2, 3))
A234 = RNG.standard_normal((2, 3, 4))


def _usv(L, a, power=1, full_matrices=False):
    """``sum_i u_i s_i^power v_i^T``: independent of the singular vectors' signs."""
    u, s, vh = L.svd(a, full_matrices=full_matrices)
    k = s.shape[-1]
    return (u[..., :k] * (s ** power).unsqueeze(-2)) @ vh[..., :k, :]


def _squares(L, a, full_matrices=False):
    u, s, vh = L.svd(a, full_matrices=full_matrices)
    k = s.shape[-1]
    return (u[..., :k] ** 2).sum(-1, keepdim=True) * s.unsqueeze(-2) + (vh[..., :k, :] ** 2).sum(-2, keepdim=True)


# (name, f(F, X, L, *inputs) -> tensor, inputs)
CASES = [
    ("svd_usv_square", lambda F, X, L, a: _usv(L, a, 2), (SQ,)),
    ("svd_usv_tall", lambda F, X, L, a: _usv(L, a, 3).tanh(), (TALL,)),
    ("svd_usv_wide", lambda F, X, L, a: _usv(L, a, 2) * a, (WIDE,)),
    ("svd_usv_batch", lambda F, X, L, a: _usv(L, a, 2), (TALL_B,)),
    ("svd_u_only_tall", lambda F, X, L, a: L.svd(a, full_matrices=False)[0] ** 2, (TALL,)),
    ("svd_vh_only_wide", lambda F, X, L, a: L.svd(a, full_matrices=False)[2] ** 2, (WIDE,)),
    ("svd_squares_full_matrices", lambda F, X, L, a: _squares(L, a, full_matrices=True), (TALL,)),
    ("svd_values_only", lambda F, X, L, a: L.svd(a)[1] ** 3, (WIDE,)),
    ("svdvals", lambda F, X, L, a: L.svdvals(a) ** 3, (TALL_B,)),
    ("svdvals_times_input", lambda F, X, L, a: L.svdvals(a).sum() * a, (WIDE,)),
    ("matrix_norm_nuc", lambda F, X, L, a: L.matrix_norm(a, "nuc") * a, (TALL,)),
    ("matrix_norm_2", lambda F, X, L, a: L.matrix_norm(a, 2, keepdim=True) ** 2 * a, (SQ_B,)),
    ("matrix_norm_minus2", lambda F, X, L, a: L.matrix_norm(a, -2, dim=(0, 1)).exp(), (WIDE,)),
    ("pinv_tall", lambda F, X, L, a: L.pinv(a) ** 2, (TALL,)),
    ("pinv_wide", lambda F, X, L, a: L.pinv(a).tanh() * a.mT, (WIDE,)),
    ("pinv_square_batch", lambda F, X, L, a: L.pinv(a) ** 2, (SQ_B,)),
    ("pinv_hermitian", lambda F, X, L, a: L.pinv(a, hermitian=True) ** 2, (SYM,)),
    ("lstsq", lambda F, X, L, a, b: L.lstsq(a, b).solution ** 2, (TALL, RHS)),
    ("qr_square", lambda F, X, L, a: L.qr(a)[0].tanh() + L.qr(a)[1] ** 2, (SQ,)),
    ("qr_tall", lambda F, X, L, a: L.qr(a)[0] ** 2 * L.qr(a)[1].sum(), (TALL,)),
    ("qr_wide", lambda F, X, L, a: L.qr(a)[1].tanh() * L.qr(a)[0].sum(), (WIDE,)),
    ("qr_wide_of_a_product", lambda F, X, L, a: L.qr(a * a.abs())[1] ** 2, (WIDE,)),  # (A not a leaf)
    ("matrix_exp_of_a_product", lambda F, X, L, a: L.matrix_exp(a * a), (SQ,)),
    ("qr_complete_square_batch", lambda F, X, L, a: (L.qr(a, mode="complete")[0] @ L.qr(a, mode="complete")[1]
                                                     ** 2), (SQ_B,)),
    ("matrix_exp", lambda F, X, L, a: L.matrix_exp(a), (SQ,)),
    ("matrix_exp_batch", lambda F, X, L, a: L.matrix_exp(a).tanh() * a, (SQ_B,)),
    ("cross", lambda F, X, L, a, b: L.cross(a, b) ** 2, (V3, V3_ROW)),
    ("cross_dim0", lambda F, X, L, a, b: L.cross(a, b, dim=0) * a, (V3.T[:, :2], V3_ROW.T)),
    ("vander", lambda F, X, L, x: L.vander(x), (X,)),
    ("vander_n_batch", lambda F, X, L, x: L.vander(x, N=5).tanh(), (X_B,)),
    ("diagonal", lambda F, X, L, a: L.diagonal(a * a, offset=1, dim1=0, dim2=2) ** 3, (A234,)),
    ("diagonal_offsets", lambda F, X, L, a: L.diagonal(a.tanh(), offset=-1) * L.diagonal(a, offset=1),
     (A234[:, :, :3],)),
]


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_second_derivatives_match_torch(torch, name, fn, arrays):
    assert_second_derivatives_match(torch, fn, arrays, f64=(1e-9, 1e-10), f32=(3e-3, 3e-3))


@pytest.mark.parametrize("name", ["svd_usv_tall", "svd_usv_wide", "svdvals", "matrix_norm_nuc", "pinv_tall",
                                  "lstsq", "qr_square", "qr_wide", "qr_wide_of_a_product", "matrix_exp", "cross",
                                  "vander", "diagonal"])
def test_third_derivatives_match_torch(torch, name):
    _, fn, arrays = next(c for c in CASES if c[0] == name)
    _compare(_run("distnn", torch, fn, arrays, np.float64, order=3),
             _run("torch", torch, fn, arrays, np.float64, order=3), rtol=1e-8, atol=1e-9)


C32, C23 = _mat(3, 2), _mat(2, 3)  # (small steps around these stay well conditioned)


@pytest.mark.parametrize("fn,shapes", [
    (lambda a, b: _usv(linalg, a + Tensor(C32), 2) * b, [(3, 2), (2,)]),
    (lambda a, b: linalg.svdvals(a + Tensor(C23)) * b, [(2, 3), (2,)]),
    (lambda a, b: linalg.pinv(a + Tensor(C32)) * b, [(3, 2), (3,)]),
    (lambda a, b: linalg.qr(a + Tensor(C23))[0] * b, [(2, 3), (2,)]),
    (lambda a, b: linalg.matrix_exp(a) * b, [(2, 2), (2,)]),
    (lambda a, b: linalg.cross(a, b), [(2, 3), (1, 3)]),
    (lambda a, b: linalg.vander(a, N=4) * b.unsqueeze(-1), [(3,), (3,)]),
    (lambda a, b: linalg.diagonal(a * a, offset=1) * b, [(3, 4), (3,)]),
])
def test_gradgradcheck(fn, shapes):
    rng = np.random.default_rng(12)
    inputs = tuple(Tensor(rng.uniform(-0.3, 0.3, s), requires_grad=True) for s in shapes)
    assert autograd.gradcheck(fn, inputs) is True
    assert autograd.gradgradcheck(fn, inputs) is True


def test_qr_modes_without_a_gradient_raise_as_torch(torch):
    """mode='r' (Q not computed) and mode='complete' with more rows than columns have no gradient: under
    create_graph too, the error is PyTorch's (it was a refusal naming the op before)."""
    for L, grad, a in ((linalg, autograd.grad, Tensor(TALL, requires_grad=True)),
                       (torch.linalg, torch.autograd.grad, torch.tensor(TALL, requires_grad=True))):
        with pytest.raises(RuntimeError, match="not computed when mode='r'"):
            grad(L.qr(a, mode="r")[1].sum(), a, create_graph=True)
        with pytest.raises(RuntimeError, match="not differentiable when mode='complete' and nrows > ncols"):
            grad(L.qr(a, mode="complete")[0].sum(), a, create_graph=True)
