"""distnn.linalg.ldl_factor, ldl_factor_ex and ldl_solve against torch's (LAPACK sytrf/sytrs): LD and pivots
(int32, 1-based, negative for 2 by 2 blocks: exactly the same pivots), info, solutions, float64 tightly and
float32 loosely, batches mixing 1 by 1 and 2 by 2 pivots, 1x1 and empty inputs, singular D, only the lower triangle
read, no gradient (as torch: results require grad and a backward raises), refusals."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.linalg as DL  # noqa: E402
from test_linalg_lu import F32, F64, both  # noqa: E402

R = np.random.default_rng(3003)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)
TOLS = pytest.mark.parametrize("tol", [F64, F32], ids=["f64", "f32"])


def _indefinite(shape):
    """Symmetric matrices with small diagonal entries: Bunch-Kaufman picks 2 by 2 blocks and swaps rows."""
    a = R.standard_normal(shape)
    a = a + a.swapaxes(-1, -2)
    a[..., ::2, ::2] *= 0.01
    return a


@TOLS
@pytest.mark.parametrize("shape", [(3, 3), (5, 5), (4, 6, 6), (2, 3, 7, 7), (1, 1), (2, 0, 0), (0, 3, 3), (12, 12)],
                         ids=str)
def test_ldl_factor_matches_torch_pivots_exactly(shape, tol):
    a = _indefinite(shape)
    both(lambda x: DL.ldl_factor_ex(x), lambda x: torch.linalg.ldl_factor_ex(x), a, grad=False, **tol)
    both(lambda x: DL.ldl_factor(x, hermitian=True), lambda x: torch.linalg.ldl_factor(x, hermitian=True), a,
         grad=False, **tol)


def test_the_batch_mixes_pivot_kinds_and_only_the_lower_triangle_is_read():
    a = np.stack([_indefinite((6, 6)), np.eye(6) * 2 + 0.1, _indefinite((6, 6))])
    a[1, 0, 5] = 1e3  # (upper triangle: ignored)
    ld, piv = DL.ldl_factor(distnn.tensor(a))
    p = np.asarray(piv.data)
    assert (p[1] > 0).all() and (p[[0, 2]] < 0).any()  # (1 by 1 blocks in one matrix, 2 by 2 in the others)
    both(lambda x: DL.ldl_factor(x), lambda x: torch.linalg.ldl_factor(x), a, grad=False)
    assert not np.triu(np.asarray(ld.data), 1).any()


@TOLS
@pytest.mark.parametrize("a_shape, b_shape", [((4, 4), (4, 2)), ((3, 5, 5), (3, 5, 1)), ((6, 6), (2, 6, 3)),
                                              ((1, 1), (1, 1)), ((2, 0, 0), (2, 0, 2)), ((3, 3), (3, 0))], ids=str)
def test_ldl_solve_matches_torch(a_shape, b_shape, tol):
    a = _indefinite(a_shape) + 2 * np.eye(a_shape[-1]) * (R.standard_normal(a_shape[-1]) > 0)
    ld, piv = torch.linalg.ldl_factor(torch.tensor(a.astype(tol["dtype"])))
    both(lambda f, p, y: DL.ldl_solve(f, p, y), lambda f, p, y: torch.linalg.ldl_solve(f, p, y),
         ld.numpy(), piv.numpy(), R.standard_normal(b_shape), grad=False, **tol)


def test_ldl_solve_through_ldl_factor_solves_and_broadcasts():
    a, b = _indefinite((2, 1, 5, 5)), R.standard_normal((3, 5, 2))  # (PyTorch crashes on this broadcast)
    x = DL.ldl_solve(*DL.ldl_factor(distnn.tensor(a)), distnn.tensor(b))
    assert tuple(x.shape) == (2, 3, 5, 2)
    np.testing.assert_allclose(a @ np.asarray(x.data), np.broadcast_to(b, (2, 3, 5, 2)), atol=1e-9)


@pytest.mark.parametrize("a", [np.zeros((3, 3)), np.stack([np.eye(3), np.diag([1.0, 0.0, 2.0])]),
                               np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[1.0, 1.0], [1.0, 1.0]])], ids=range(4))
def test_singular_d_gives_info_as_torch_and_ldl_factor_raises(a):
    both(lambda x: DL.ldl_factor_ex(x), lambda x: torch.linalg.ldl_factor_ex(x), a, grad=False)
    info = torch.linalg.ldl_factor_ex(torch.tensor(a)).info.numpy()
    if info.any():
        for fd, ft in [(DL.ldl_factor, torch.linalg.ldl_factor),
                       (lambda x: DL.ldl_factor_ex(x, check_errors=True),
                        lambda x: torch.linalg.ldl_factor_ex(x, check_errors=True))]:
            with pytest.raises(RuntimeError):  # (PyTorch's: an internal assert, 'Unknown error code')
                ft(torch.tensor(a))
            with pytest.raises(RuntimeError, match="D is exactly singular"):
                fd(distnn.tensor(a))


def test_no_gradient_as_torch():
    a = _indefinite((4, 4))
    for lib in (torch, distnn):
        x = lib.tensor(a, requires_grad=True)
        ld, piv = lib.linalg.ldl_factor(x)
        assert ld.requires_grad and not piv.requires_grad
        with pytest.raises(RuntimeError, match="derivative for aten::linalg_ldl_factor_ex is not implemented"):
            ld.sum().backward()
        b = lib.tensor(R.standard_normal((4, 2)), requires_grad=True)
        y = lib.linalg.ldl_solve(ld.detach(), piv, b)
        assert y.requires_grad
        with pytest.raises(RuntimeError, match="derivative for aten::linalg_ldl_solve is not implemented"):
            y.sum().backward()


@pytest.mark.parametrize("a", [np.ones((2, 3)), np.ones(3), np.ones((3, 3), np.int64)], ids=range(3))
def test_ldl_factor_refusals_match_torch(a):
    for fd, ft in [(DL.ldl_factor, torch.linalg.ldl_factor), (DL.ldl_factor_ex, torch.linalg.ldl_factor_ex)]:
        with pytest.raises(RuntimeError) as te:
            ft(torch.tensor(a))
        with pytest.raises(RuntimeError) as de:
            fd(distnn.tensor(a))
        assert str(de.value) == str(te.value)


def test_ldl_solve_refusals_match_torch():
    ld, piv = torch.linalg.ldl_factor(torch.tensor(_indefinite((3, 3))))
    b = R.standard_normal((3, 2))
    for f, p, y in [(ld, piv.float(), b), (ld[:2], piv, b), (ld, piv[:2], b), (ld, piv, b.astype(np.float32)),
                    (ld, piv, R.standard_normal((4, 1)))]:
        with pytest.raises(RuntimeError) as te:
            torch.linalg.ldl_solve(f, p, torch.tensor(y))
        with pytest.raises(RuntimeError) as de:
            DL.ldl_solve(distnn.tensor(f.numpy()), distnn.tensor(p.numpy()), distnn.tensor(y))
        assert str(de.value) == str(te.value)
    with pytest.raises(RuntimeError, match="B must have at least 2 dimensions"):
        DL.ldl_solve(distnn.tensor(ld.numpy()), distnn.tensor(piv.numpy()), distnn.tensor(b[:, 0]))
    # int64 pivots are accepted, as PyTorch's
    np.testing.assert_allclose(np.asarray(DL.ldl_solve(distnn.tensor(ld.numpy()), distnn.tensor(piv.numpy().astype(
        np.int64)), distnn.tensor(b)).data), torch.linalg.ldl_solve(ld, piv.long(), torch.tensor(b)).numpy())
