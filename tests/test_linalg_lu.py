"""distnn's LU (linalg.lu_factor, lu_factor_ex, lu, lu_solve, lu_unpack, the deprecated distnn.lu/lu_solve and the
Tensor methods) against torch's: values, pivots (int32, 1-based, exactly), info and the input gradients of a random
weighting of the outputs, float64 tightly and float32 loosely, square, wide, tall, batched and empty inputs;
singular matrices (factored, info > 0; lu_factor and check_errors raise as PyTorch); refusals; check_grad."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.linalg as DL  # noqa: E402
from distnn.testing import check_grad  # noqa: E402

R = np.random.default_rng(2901)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)
F64 = dict(dtype=np.float64, rtol=1e-9, atol=1e-10)
F32 = dict(dtype=np.float32, rtol=2e-3, atol=2e-4)
SHAPES = [(4, 4), (2, 3, 3), (2, 3, 5), (2, 5, 3), (1, 1), (3, 1, 4), (4, 1), (0, 3, 3), (2, 0, 3)]
SING = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])  # rank 2: U[3,3] = 0


def _host(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x.data)


def both(fd, ft, *arrays, dtype=np.float64, rtol=1e-9, atol=1e-10, grad=True, wrt=None):
    """fd and ft on the same inputs (arrays; int arrays pass as they are, never differentiated): every output
    compared (integer ones exactly), then the floating inputs' gradients of a random weighting of the outputs."""
    def make(lib, a):
        a = np.asarray(a)
        if a.dtype.kind != "f":
            return distnn.tensor(a) if lib is distnn else torch.tensor(a)
        need = grad and (wrt is None or any(a is np.asarray(w) for w in wrt))
        return (distnn.tensor(a.astype(dtype), requires_grad=need) if lib is distnn
                else torch.tensor(a.astype(dtype), requires_grad=need))
    dins, tins = [make(distnn, a) for a in arrays], [make(torch, a) for a in arrays]
    yd, yt = fd(*dins), ft(*tins)
    yd, yt = (list(y) if isinstance(y, tuple) else [y] for y in (yd, yt))
    assert len(yd) == len(yt)
    ld = lt = None
    for d, t in zip(yd, yt):
        assert tuple(d.shape) == tuple(t.shape) and str(d.dtype) == str(t.dtype).replace("torch.", "")
        if t.dtype in (torch.int32, torch.int64):
            np.testing.assert_array_equal(_host(d), _host(t))
            continue
        np.testing.assert_allclose(_host(d), _host(t), rtol=rtol, atol=atol)
        if grad and t.requires_grad:
            w = R.standard_normal(tuple(t.shape)).astype(dtype)
            ld = (d * distnn.tensor(w)).sum() + (0 if ld is None else ld)
            lt = (t * torch.tensor(w)).sum() + (0 if lt is None else lt)
    if ld is None:
        return
    ld.backward()
    lt.backward()
    for d, t in zip(dins, tins):
        if t.requires_grad:
            expected = t.grad.numpy() if t.grad is not None else np.zeros(t.shape, dtype)
            got = np.asarray(d.grad.data) if d.grad is not None else np.zeros(t.shape, dtype)
            np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("tol", [F64, F32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_lu_factor_and_lu_match_torch(shape, tol):
    a = R.standard_normal(shape)
    both(lambda x: DL.lu_factor(x), lambda x: torch.linalg.lu_factor(x), a, **tol)
    both(lambda x: DL.lu_factor_ex(x), lambda x: torch.linalg.lu_factor_ex(x), a, **tol)
    both(lambda x: DL.lu(x), lambda x: torch.linalg.lu(x), a, **tol)
    both(lambda x: distnn.lu_unpack(*DL.lu_factor(x)), lambda x: torch.lu_unpack(*torch.linalg.lu_factor(x)), a, **tol)


def test_pivots_are_int32_lapack_row_swaps_and_a_is_p_l_u():
    a = R.standard_normal((3, 5, 4))
    lu_data, pivots = DL.lu_factor(distnn.tensor(a))
    assert pivots.dtype == np.int32 and pivots.shape == (3, 4)
    p, low, up = DL.lu(distnn.tensor(a))
    np.testing.assert_allclose(np.asarray((p @ low @ up).data), a, atol=1e-12)
    # |L| <= 1 below the diagonal: partial pivoting picked the largest entry of each column
    assert np.abs(np.tril(np.asarray(low.data), -1)).max() <= 1


@pytest.mark.parametrize("a", [SING, np.zeros((3, 3)), np.stack([np.eye(3), SING, np.zeros((3, 3))]),
                               np.array([[0.0, 1.0], [0.0, 2.0], [0.0, 0.0]]), SING[:2]], ids=range(5))
def test_singular_matrices_are_factored_with_info_as_torch(a):
    both(lambda x: DL.lu_factor_ex(x), lambda x: torch.linalg.lu_factor_ex(x), a, grad=False)
    both(lambda x: DL.lu(x), lambda x: torch.linalg.lu(x), a, grad=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        both(lambda x: distnn.lu(x, get_infos=True), lambda x: torch.lu(x, get_infos=True), a, grad=False)
        both(lambda x: distnn.lu(x), lambda x: torch.lu(x), a, grad=False)  # (raises for no singular matrix)


@pytest.mark.parametrize("fd, ft", [
    (lambda x: DL.lu_factor(x), lambda x: torch.linalg.lu_factor(x)),
    (lambda x: DL.lu_factor_ex(x, check_errors=True), lambda x: torch.linalg.lu_factor_ex(x, check_errors=True)),
], ids=["lu_factor", "lu_factor_ex_check_errors"])
@pytest.mark.parametrize("a", [SING, np.stack([np.eye(3), np.eye(3), SING])], ids=["single", "batch"])
def test_lu_factor_of_a_singular_matrix_raises_as_torch(fd, ft, a):
    with pytest.raises(RuntimeError) as te:  # (PyTorch's is a plain RuntimeError; distnn's LinAlgError is one)
        ft(torch.tensor(a))
    with pytest.raises(DL.LinAlgError) as de:
        fd(distnn.tensor(a))
    assert str(de.value) == str(te.value)


@pytest.mark.parametrize("tol", [F64, F32], ids=["f64", "f32"])
@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("adjoint", [False, True])
def test_lu_solve_matches_torch_in_lu_and_b(left, adjoint, tol):
    a = R.standard_normal((2, 1, 4, 4)) + 3 * np.eye(4)
    lu_data, pivots = torch.linalg.lu_factor(torch.tensor(a))
    b = R.standard_normal((3, 4, 2) if left else (3, 2, 4))  # (batch dims broadcast)
    both(lambda f, p, y: DL.lu_solve(f, p, y, left=left, adjoint=adjoint),
         lambda f, p, y: torch.linalg.lu_solve(f, p, y, left=left, adjoint=adjoint),
         lu_data.numpy(), pivots.numpy(), b, **tol)


def test_lu_solve_through_lu_factor_matches_torch_in_a():
    a, b = R.standard_normal((2, 4, 4)) + 2 * np.eye(4), R.standard_normal((2, 4, 3))
    both(lambda x, y: DL.lu_solve(*DL.lu_factor(x), y),
         lambda x, y: torch.linalg.lu_solve(*torch.linalg.lu_factor(x), y), a, b)


@pytest.mark.parametrize("unpack_data, unpack_pivots", [(True, False), (False, True), (False, False)])
def test_lu_unpack_flags_match_torch(unpack_data, unpack_pivots):
    a = R.standard_normal((2, 3, 4))
    lu_data, pivots = torch.linalg.lu_factor(torch.tensor(a))
    both(lambda f, p: distnn.lu_unpack(f, p, unpack_data, unpack_pivots),
         lambda f, p: torch.lu_unpack(f, p, unpack_data, unpack_pivots), lu_data.numpy(), pivots.numpy(),
         grad=False)  # (PyTorch's backward fails on its own empty L and U: nothing to compare)


def test_deprecated_forms_and_tensor_methods_match_torch_and_warn():
    a, b = R.standard_normal((2, 3, 3)) + 2 * np.eye(3), R.standard_normal((2, 3, 2))
    with pytest.warns(UserWarning, match="torch.lu is deprecated"):
        distnn.lu(distnn.tensor(a))
    with pytest.warns(UserWarning, match="torch.lu_solve is deprecated"):
        distnn.lu_solve(distnn.tensor(b), *distnn.linalg.lu_factor(distnn.tensor(a)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        both(lambda x: x.lu(), lambda x: x.lu(), a)
        both(lambda x: x.lu(get_infos=True), lambda x: x.lu(get_infos=True), a)
        both(lambda x, y: y.lu_solve(*x.lu()), lambda x, y: y.lu_solve(*x.lu()), a, b)
        both(lambda x, y: distnn.lu_solve(y, *distnn.lu(x)), lambda x, y: torch.lu_solve(y, *torch.lu(x)), a, b)


def same_refusal(fd, ft, *arrays):
    """Both raise; distnn's error has PyTorch's type (or a subclass of it) and message."""
    with pytest.raises(Exception) as te:
        ft(*[torch.tensor(a) for a in arrays])
    with pytest.raises(Exception) as de:
        fd(*[distnn.tensor(a) for a in arrays])
    assert isinstance(de.value, type(te.value)), (de.value, te.value)
    assert str(te.value) in str(de.value) or str(de.value).replace("torch.", "") in str(te.value), (de.value, te.value)


PIV = np.array([1, 2, 3], dtype=np.int32)
EYE = np.eye(3)


@pytest.mark.parametrize("fd, ft, arrays", [
    (lambda x: DL.lu_factor(x, pivot=False), lambda x: torch.linalg.lu_factor(x, pivot=False), [EYE]),
    (lambda x: DL.lu(x, pivot=False), lambda x: torch.linalg.lu(x, pivot=False), [EYE]),
    (lambda x: DL.lu_factor_ex(x, pivot=False), lambda x: torch.linalg.lu_factor_ex(x, pivot=False), [EYE]),
    (DL.lu_factor, torch.linalg.lu_factor, [np.ones((3, 3), dtype=np.int64)]),
    (DL.lu_factor, torch.linalg.lu_factor, [np.ones((3, 3), dtype=np.float16)]),
    (DL.lu_factor, torch.linalg.lu_factor, [np.ones(3)]),
    (distnn.lu_unpack, torch.lu_unpack, [EYE, PIV.astype(np.int64)]),
    (distnn.lu_unpack, torch.lu_unpack, [EYE, np.array([1, 2, 4], dtype=np.int32)]),
    (DL.lu_solve, torch.linalg.lu_solve, [EYE, PIV, np.ones((2, 3))]),
    (lambda f, p, b: DL.lu_solve(f, p, b, left=False), lambda f, p, b: torch.linalg.lu_solve(f, p, b, left=False),
     [EYE, PIV, np.ones((3, 2))]),
    (DL.lu_solve, torch.linalg.lu_solve, [np.eye(3, 4), PIV, np.ones((3, 3))]),
    (DL.lu_solve, torch.linalg.lu_solve, [EYE, PIV.astype(np.int64), np.ones((3, 3))]),
    (DL.lu_solve, torch.linalg.lu_solve, [EYE, PIV, np.ones((3, 3), dtype=np.float32)]),
    (DL.lu_solve, torch.linalg.lu_solve, [EYE, PIV, np.ones(3)]),
    (DL.lu_solve, torch.linalg.lu_solve, [EYE.astype(np.int64), PIV, np.ones((3, 3), dtype=np.int64)]),
], ids=range(15))
def test_refusals_match_torch(fd, ft, arrays):
    same_refusal(fd, ft, *arrays)


def test_lu_unpack_refuses_too_few_pivots():
    # (not compared with torch: its lu_unpack reads past the end of too short pivots and raises only when the
    # byte there is out of range, about 99 % of calls; its message when it does is this one)
    with pytest.raises(RuntimeError, match="pivots passed to lu_unpack must be between 1 and LU.size"):
        distnn.lu_unpack(distnn.tensor(EYE), distnn.tensor(np.array([1, 2], dtype=np.int32)))


@pytest.mark.parametrize("shape", [(3, 3), (2, 3, 5), (2, 5, 3)], ids=str)
def test_lu_gradients_pass_the_numerical_check(shape):
    a = R.standard_normal(shape)
    assert check_grad(lambda x: DL.lu_factor(x).LU, a)
    assert check_grad(lambda x: (lambda p, low, up: low.sum(-1, keepdim=True) * up.sum(-2, keepdim=True))(
        *DL.lu(x)), a)


def test_lu_solve_gradients_pass_the_numerical_check():
    a = R.standard_normal((2, 4, 4)) + 3 * np.eye(4)
    lu_data, pivots = DL.lu_factor(distnn.tensor(a))
    b = R.standard_normal((2, 4, 3))
    for left, adjoint in [(True, False), (True, True), (False, False), (False, True)]:
        rhs = b if left else np.swapaxes(b, -1, -2)
        assert check_grad(lambda f, y: DL.lu_solve(f, pivots, y, left=left, adjoint=adjoint),
                          np.asarray(lu_data.data), rhs)


def test_an_in_place_change_of_lu_before_the_backward_is_refused_as_torch():
    a = R.standard_normal((3, 3))
    t = torch.tensor(a, requires_grad=True)
    lu_t = torch.linalg.lu_factor(t).LU
    d = distnn.tensor(a, requires_grad=True)
    lu_d = DL.lu_factor(d).LU
    with torch.no_grad():
        lu_t.mul_(2)
    with distnn.no_grad():
        lu_d.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        lu_t.sum().backward()
    with pytest.raises(RuntimeError):
        lu_d.sum().backward()
