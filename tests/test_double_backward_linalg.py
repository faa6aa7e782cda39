"""Double backward (``create_graph=True``) of the linear-algebra ops: det, slogdet, logdet, inv (inv_ex,
matrix_power with a negative power), solve (matrix and vector right-hand sides, left=False, broadcast batches),
solve_triangular (upper/lower, left/right, unitriangular), cholesky (upper too, cholesky_ex), eigh (values and
vectors, vectors used sign-invariantly) and eigvalsh. Second derivatives (and third, where cheap) against
PyTorch's, float64 tight and float32 loose, plus gradgradcheck. Each was refused by name before.

The inputs are well conditioned: matrices near the identity (a random matrix plus 3 I), symmetric
positive-definite ones built from the input (``a a^T + 3 I``: the gradient then reaches every entry of ``a``),
and symmetric matrices with distinct eigenvalues. (det of singular matrices: test_det_singular_oracle.py)"""
import numpy as np
import pytest

from distnn import Tensor, autograd, linalg
from test_double_backward import _compare, _run, assert_second_derivatives_match

RNG = np.random.default_rng(41)


def _n(*shape):
    return RNG.standard_normal(shape)


M = _n(3, 3) + 3 * np.eye(3)  # (well conditioned)
MB = _n(2, 3, 3) + 3 * np.eye(3)  # (a batch)
RHS = _n(3, 2)
RHS_B = _n(2, 3, 2)
VEC = _n(3)
SQ = _n(3, 3)  # (a leaf that builds a symmetric positive-definite or symmetric matrix)
SQ_B = _n(2, 3, 3)


def _spd(X, a):
    # (3 I built from a itself: of a's dtype and device, which a numpy constant would not be on a GPU)
    return a @ a.mT + (a[..., 0] * 0.0 + 3.0).diag_embed()


def _sym(a):
    return a + a.mT


def _sign_free(v):
    """A function of eigenvectors that does not depend on their signs: each eigenvector's (column's) outer
    product v_j v_j^T, stacked along a new axis before the matrix's two. (Products of two entries of one ROW,
    v[i, j] v[i, k], change sign with column j's: cupy's eigh may flip columns numpy's does not, so such a
    case differs between the devices; test_eigenvector_cases_do_not_depend_on_the_signs guards this.)"""
    cols = v.mT
    return cols.unsqueeze(-1) * cols.unsqueeze(-2)


# (name, f(F, X, L, *inputs) -> tensor, inputs)
CASES = [
    ("det", lambda F, X, L, a: L.det(a) * a, (M,)),
    ("det_batch_tanh", lambda F, X, L, a: L.det(a.tanh() + a) ** 2, (MB,)),
    ("slogdet", lambda F, X, L, a: L.slogdet(a)[1] * a.sum(), (MB,)),
    ("logdet", lambda F, X, L, a: _spd(X, a).logdet() ** 2, (SQ_B,)),
    ("inv", lambda F, X, L, a: L.inv(a) * a, (M,)),
    ("inv_batch", lambda F, X, L, a: L.inv(a).tanh(), (MB,)),
    ("inv_ex", lambda F, X, L, a: L.inv_ex(a)[0] ** 2, (MB,)),
    ("matrix_power_negative", lambda F, X, L, a: L.matrix_power(a, -2), (M,)),
    ("solve", lambda F, X, L, a, b: L.solve(a, b) ** 2, (M, RHS)),
    ("solve_broadcast", lambda F, X, L, a, b: L.solve(a, b).tanh(), (M, RHS_B)),
    ("solve_vector", lambda F, X, L, a, b: L.solve(a, b) * b, (MB, VEC)),
    ("solve_right", lambda F, X, L, a, b: L.solve(a, b.mT, left=False) ** 2, (M, RHS)),
    ("solve_triangular_upper", lambda F, X, L, a, b: L.solve_triangular(a, b, upper=True) ** 2, (M, RHS)),
    ("solve_triangular_lower_right", lambda F, X, L, a, b: L.solve_triangular(a, b.mT, upper=False, left=False)
     * b.mT, (M, RHS)),
    ("solve_triangular_unit_batch", lambda F, X, L, a, b: L.solve_triangular(
        a, b, upper=False, unitriangular=True).tanh(), (MB, RHS)),
    ("cholesky", lambda F, X, L, a: L.cholesky(_spd(X, a)) ** 2, (SQ,)),
    ("cholesky_upper_batch", lambda F, X, L, a: L.cholesky(_spd(X, a), upper=True).tanh(), (SQ_B,)),
    ("cholesky_ex", lambda F, X, L, a: L.cholesky_ex(_spd(X, a))[0] * a, (SQ,)),
    ("eigh_values", lambda F, X, L, a: L.eigh(_sym(a))[0] ** 3, (SQ,)),
    ("eigh_vectors", lambda F, X, L, a: _sign_free(L.eigh(_sym(a))[1]).tanh(), (SQ,)),
    ("eigh_both_batch_upper", lambda F, X, L, a: L.eigh(_sym(a), UPLO="U")[0].unsqueeze(-1).unsqueeze(-1)
     * _sign_free(L.eigh(_sym(a), UPLO="U")[1]), (SQ_B,)),
    ("eigvalsh", lambda F, X, L, a: L.eigvalsh(_sym(a)) ** 3, (SQ_B,)),
]


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_second_derivatives_match_torch(torch, name, fn, arrays):
    assert_second_derivatives_match(torch, fn, arrays, f64=(1e-9, 1e-10), f32=(2e-3, 2e-3))


@pytest.mark.parametrize("name", ["det", "logdet", "inv", "solve", "solve_triangular_upper", "cholesky",
                                  "eigh_vectors", "eigvalsh"])
def test_third_derivatives_match_torch(torch, name):
    _, fn, arrays = next(c for c in CASES if c[0] == name)
    _compare(_run("distnn", torch, fn, arrays, np.float64, order=3),
             _run("torch", torch, fn, arrays, np.float64, order=3), rtol=1e-8, atol=1e-9)


def _flipping_signs(eigh):
    """numpy's eigh with every other eigenvector negated (another valid choice, as cupy's may be)."""
    def flipped(a, UPLO="L"):  # noqa: N803 - numpy's name
        w, v = eigh(a, UPLO=UPLO)
        return type(eigh(np.eye(1)))(w, v * np.where(np.arange(v.shape[-1]) % 2 == 0, -1.0, 1.0).astype(v.dtype))
    return flipped


def _output_and_derivatives(fn, arrays):
    from test_double_backward import _DistnnX
    from distnn import functional

    out = fn(functional, _DistnnX, linalg, *[Tensor(a) for a in arrays]).data.copy()
    return out, _run("distnn", None, fn, arrays, np.float64)


@pytest.mark.parametrize("name", ["eigh_vectors", "eigh_both_batch_upper"])
def test_eigenvector_cases_do_not_depend_on_the_signs(monkeypatch, name):
    """The eigenvector cases' outputs and first and second derivatives are the same for other eigenvector signs
    (the GPU oracle compares them with cupy's eigh, whose signs may differ from numpy's): a case that depends
    on the signs (as the row products v[i, j] v[i, k] did) fails here, on the CPU."""
    _, fn, arrays = next(c for c in CASES if c[0] == name)
    base = _output_and_derivatives(fn, arrays)
    monkeypatch.setattr(np.linalg, "eigh", _flipping_signs(np.linalg.eigh))
    flipped = _output_and_derivatives(fn, arrays)
    assert not np.allclose(np.linalg.eigh(np.diag([1.0, 2.0]))[1], np.eye(2))  # (the flip is in effect)
    np.testing.assert_allclose(flipped[0], base[0], rtol=1e-10, atol=1e-12, err_msg="output")
    _compare(flipped[1], base[1], rtol=1e-10, atol=1e-12)


def _eye():
    return Tensor(3 * np.eye(2))


@pytest.mark.parametrize("fn,shapes", [
    (lambda a, b: linalg.det(a + _eye()) * b, [(2, 2), (2,)]),
    (lambda a, b: linalg.inv(a + _eye()) @ b, [(2, 2), (2,)]),
    (lambda a, b: linalg.solve(a + _eye(), b), [(2, 2), (2, 3)]),
    (lambda a, b: linalg.solve_triangular(a + _eye(), b, upper=True), [(2, 2), (2, 3)]),
    (lambda a, b: linalg.cholesky(a @ a.mT + _eye()) * b.sum(), [(2, 2), (2,)]),
    (lambda a, b: linalg.eigvalsh(a + a.mT) * b, [(2, 2), (2,)]),
])
def test_gradgradcheck(fn, shapes):
    rng = np.random.default_rng(11)
    inputs = tuple(Tensor(rng.uniform(-1, 1, s), requires_grad=True) for s in shapes)
    assert autograd.gradcheck(fn, inputs) is True
    assert autograd.gradgradcheck(fn, inputs) is True

