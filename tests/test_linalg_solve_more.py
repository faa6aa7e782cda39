"""distnn.linalg.solve_ex, cond, vecdot, matmul, tensorinv and tensorsolve against torch's: values, info and the
input gradients of a random weighting of the outputs (float64 tightly, float32 loosely), batched, 1x1 and empty
inputs, singular matrices, refusals (type and message), check_grad."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.linalg as DL  # noqa: E402
from distnn.testing import check_grad  # noqa: E402
from test_linalg_lu import F32, F64, SING, both  # noqa: E402

R = np.random.default_rng(3001)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)
TOLS = pytest.mark.parametrize("tol", [F64, F32], ids=["f64", "f32"])


def _raises_as_torch(fd, ft, *arrays, match_message=True):
    with pytest.raises(Exception) as te:
        ft(*[torch.tensor(a) for a in arrays])
    with pytest.raises(Exception) as de:
        fd(*[distnn.tensor(a) for a in arrays])
    assert isinstance(de.value, type(te.value)) or type(te.value).__name__ == "_LinAlgError"
    assert isinstance(de.value, RuntimeError) == isinstance(te.value, RuntimeError)
    if match_message:
        assert str(de.value) == str(te.value)


@TOLS
@pytest.mark.parametrize("a_shape, b_shape, left", [
    ((3, 3), (3, 2), True), ((2, 4, 4), (2, 4), True), ((2, 1, 3, 3), (4, 3, 2), True), ((2, 3, 3), (2, 5, 3), False),
    ((1, 1), (1, 1), True), ((1, 1), (1, 1), False), ((0, 2, 2), (0, 2, 1), True), ((2, 0, 0), (2, 0, 3), True),
], ids=str)
def test_solve_ex_matches_torch(a_shape, b_shape, left, tol):
    a = R.standard_normal(a_shape) + 3 * np.eye(a_shape[-1])
    both(lambda x, y: DL.solve_ex(x, y, left=left), lambda x, y: torch.linalg.solve_ex(x, y, left=left),
         a, R.standard_normal(b_shape), **tol)


def test_solve_ex_of_a_singular_matrix_reports_info_and_the_others_solve():
    a = np.stack([np.eye(3) * 2, SING, np.eye(3) + 0.5])
    b = R.standard_normal((4, 1, 3, 2))
    xd, infod = DL.solve_ex(distnn.tensor(a), distnn.tensor(b))
    xt, infot = torch.linalg.solve_ex(torch.tensor(a), torch.tensor(b))
    np.testing.assert_array_equal(np.asarray(infod.data), infot.numpy())
    assert infod.dtype == np.int32 and tuple(xd.shape) == tuple(xt.shape)
    ok = infot.numpy() == 0
    np.testing.assert_allclose(np.asarray(xd.data)[:, ok], xt.numpy()[:, ok], rtol=1e-12)
    assert not np.isfinite(np.asarray(xd.data)[:, ~ok]).any()  # (PyTorch: LAPACK's inf/NaN there)


def test_solve_ex_check_errors_raises_as_torch():
    a = np.stack([np.eye(3), SING])
    _raises_as_torch(lambda x, y: DL.solve_ex(x, y, check_errors=True),
                     lambda x, y: torch.linalg.solve_ex(x, y, check_errors=True), a, np.ones((3, 2)))
    _raises_as_torch(lambda x, y: DL.solve_ex(x, y), lambda x, y: torch.linalg.solve_ex(x, y),
                     np.eye(3), np.ones((3, 2), np.float32))
    _raises_as_torch(lambda x, y: DL.solve_ex(x, y, left=False), lambda x, y: torch.linalg.solve_ex(x, y, left=False),
                     np.eye(3), np.ones((3, 2)))
    _raises_as_torch(lambda x, y: DL.solve_ex(x, y, left=False), lambda x, y: torch.linalg.solve_ex(x, y, left=False),
                     np.eye(1), np.ones(1))  # (a vector right of a 1x1 A: refused, as PyTorch)


ORDS = [None, 2, -2, "fro", "nuc", math.inf, -math.inf, 1, -1, 2.0, -1.0]


@TOLS
@pytest.mark.parametrize("p", ORDS, ids=str)
@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (1, 1), (2, 0, 0)], ids=str)
def test_cond_matches_torch(p, shape, tol):
    a = R.standard_normal(shape) + np.eye(shape[-1])
    both(lambda x: DL.cond(x, p), lambda x: torch.linalg.cond(x, p), a, grad=False, **tol)
    if a.size == 0:  # (PyTorch's zeros for empty matrices carry no graph; neither do distnn's)
        assert not DL.cond(distnn.tensor(a, requires_grad=True), p).requires_grad
    elif p in (None, 2, -2, "nuc"):
        both(lambda x: DL.cond(x, p), lambda x: torch.linalg.cond(x, p), a, **tol)
    else:  # (PyTorch's backward fails there: it fills the inverse in place; the composition it computes instead)
        both(lambda x: DL.cond(x, p), lambda x: (torch.linalg.matrix_norm(x, p)
                                                 * torch.linalg.matrix_norm(torch.linalg.inv(x), p)), a, **tol)


@pytest.mark.parametrize("p", [None, 2, -2], ids=str)
def test_cond_of_non_square_matrices_matches_torch(p):
    for shape in [(2, 3, 5), (4, 2), (2, 3, 0)]:
        both(lambda x: DL.cond(x, p), lambda x: torch.linalg.cond(x, p), R.standard_normal(shape))


@pytest.mark.parametrize("p", ["fro", math.inf, -math.inf, 1, -1], ids=str)
def test_cond_of_a_singular_matrix_is_torchs(p):  # (inf: its LU has a zero pivot; the SVD ords give rounding noise)
    both(lambda x: DL.cond(x, p), lambda x: torch.linalg.cond(x, p), np.stack([SING, np.eye(3)]), grad=False,
         rtol=1e-6)


@pytest.mark.parametrize("p, shape", [("fro", (3, 4)), (1, (2, 3, 4)), (math.inf, (3, 4)), (3, (3, 3)), ("abc", (3, 3)),
                                      ("abc", (3, 4)), (None, (3,)), ("nuc", (3,)), (1.0, (2, 3))], ids=str)
def test_cond_refusals_match_torch(p, shape):
    _raises_as_torch(lambda x: DL.cond(x, p), lambda x: torch.linalg.cond(x, p), np.ones(shape))


def test_cond_check_grad():
    a = R.standard_normal((2, 3, 3)) + 2 * np.eye(3)
    for p in ORDS:
        assert check_grad(lambda x: DL.cond(x, p), a)


@TOLS
@pytest.mark.parametrize("xs, ys, dim", [((3,), (3,), -1), ((2, 4), (4,), -1), ((2, 1, 3), (5, 3), -1),
                                          ((2, 3), (3,), 0), ((2, 3), (2, 1), 0), ((2, 0), (2, 0), -1), ((), (), -1)],
                         ids=str)
def test_vecdot_matches_torch(xs, ys, dim, tol):
    both(lambda x, y: DL.vecdot(x, y, dim=dim), lambda x, y: torch.linalg.vecdot(x, y, dim=dim),
         R.standard_normal(xs), R.standard_normal(ys), **tol)


def test_vecdot_refusals_match_torch():
    _raises_as_torch(DL.vecdot, torch.linalg.vecdot, np.ones(3, np.float32), np.ones(3))
    _raises_as_torch(DL.vecdot, torch.linalg.vecdot, np.ones(3, np.int64), np.ones(3, np.int64))


def test_linalg_matmul_is_matmul():
    both(DL.matmul, torch.linalg.matmul, R.standard_normal((2, 3, 4)), R.standard_normal((4, 5)))
    both(DL.matmul, torch.linalg.matmul, R.standard_normal(4), R.standard_normal((2, 4, 5)))


def _well_conditioned(shape, n):
    """A random tensor of ``shape`` whose n by n matrix is well conditioned (float32 gradients stay accurate)."""
    return (R.standard_normal((n, n)) + 2 * math.sqrt(n) * np.eye(n)).reshape(shape)


@TOLS
@pytest.mark.parametrize("shape, ind", [((4, 6, 8, 3), 2), ((6, 2, 3), 1), ((2, 3, 6), 2), ((1, 1), 1),
                                        ((0, 2, 0), 1)], ids=str)
def test_tensorinv_matches_torch(shape, ind, tol):
    a = _well_conditioned(shape, math.prod(shape[:ind]))
    both(lambda x: DL.tensorinv(x, ind=ind), lambda x: torch.linalg.tensorinv(x, ind=ind), a, **tol)


@pytest.mark.parametrize("shape, ind", [((4, 6, 8, 3), 1), ((4, 4), 0), ((4, 4), -1), ((2, 2, 4), 1)], ids=str)
def test_tensorinv_refusals_match_torch(shape, ind):
    _raises_as_torch(lambda x: DL.tensorinv(x, ind=ind), lambda x: torch.linalg.tensorinv(x, ind=ind), np.ones(shape))


def test_tensorinv_of_a_singular_tensor_raises_as_torchs_inv():
    _raises_as_torch(lambda x: DL.tensorinv(x, ind=1), lambda x: torch.linalg.tensorinv(x, ind=1), SING.reshape(3, 3))


@TOLS
@pytest.mark.parametrize("a_shape, b_shape, dims", [((2, 3, 6), (2, 3), None), ((6, 4, 3, 8), (6, 4), None),
                                                    ((6, 4, 8, 12), (4, 12), (0, 2)), ((2, 3, 6), (3, 2), None),
                                                    ((1, 1), (1,), None), ((3, 2, 2, 3), (3, 2), (1,))], ids=str)
def test_tensorsolve_matches_torch(a_shape, b_shape, dims, tol):
    if dims is None:
        a = _well_conditioned(a_shape, math.prod(b_shape))
    else:  # (the dims moved to the end, then put back where they were)
        rest = [d for d in range(len(a_shape)) if d not in dims]
        moved = _well_conditioned([a_shape[d] for d in rest + list(dims)], math.prod(b_shape))
        a = np.moveaxis(moved, range(len(a_shape)), rest + list(dims))
    both(lambda x, y: DL.tensorsolve(x, y, dims=dims), lambda x, y: torch.linalg.tensorsolve(x, y, dims=dims),
         a, R.standard_normal(b_shape), **tol)


@pytest.mark.parametrize("a, b, dims", [(np.ones((6, 4, 3, 2)), np.ones((6, 4)), (0, 2)),
                                        (np.ones((2, 3, 5)), np.ones((2, 3)), None),
                                        (np.zeros((2, 3, 6)), np.ones((2, 3)), None),
                                        (np.ones((2, 3, 6)), np.ones((2, 3), np.float32), None)], ids=range(4))
def test_tensorsolve_refusals_match_torch(a, b, dims):
    _raises_as_torch(lambda x, y: DL.tensorsolve(x, y, dims=dims),
                     lambda x, y: torch.linalg.tensorsolve(x, y, dims=dims), a, b)


def test_check_grad_solve_ex_tensorinv_tensorsolve_vecdot():
    a, b = R.standard_normal((2, 3, 3)) + 2 * np.eye(3), R.standard_normal((2, 3, 2))
    assert check_grad(lambda x, y: DL.solve_ex(x, y, left=False).result, a, b.swapaxes(-1, -2))
    assert check_grad(lambda x: DL.tensorinv(x, ind=1), R.standard_normal((4, 2, 2)))
    assert check_grad(lambda x, y: DL.tensorsolve(x, y), R.standard_normal((2, 2, 4)), R.standard_normal((2, 2)))
    assert check_grad(lambda x, y: DL.vecdot(x, y, dim=0), R.standard_normal((3, 2)), R.standard_normal((3, 1)))
