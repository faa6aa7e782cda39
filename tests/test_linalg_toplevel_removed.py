"""distnn's top-level torch.lstsq/solve/eig/symeig/matrix_rank (removed in PyTorch: they raise its RuntimeError, word
for word) and the Tensor methods cholesky_solve, cholesky_inverse, qr, svd, triangular_solve (torch oracle:
values and gradients) and lstsq, solve, eig, symeig (refused as PyTorch's)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
from test_linalg_lu import F32, F64, both  # noqa: E402

R = np.random.default_rng(3002)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)
A = R.standard_normal((3, 3))


def _same_refusal(fd, ft):
    with pytest.raises(RuntimeError) as te:
        ft()
    with pytest.raises(RuntimeError) as de:
        fd()
    assert str(de.value) == str(te.value)


@pytest.mark.parametrize("name, args, kwargs", [
    ("lstsq", (A, A), {}), ("solve", (A, A), {}), ("eig", (A,), {}), ("eig", (A, True), {}),
    ("symeig", (A,), {"eigenvectors": True, "upper": False}), ("matrix_rank", (A,), {}),
    ("matrix_rank", (A, 0.1, True), {}),
], ids=lambda v: str(v) if isinstance(v, str) else "")
def test_removed_toplevel_functions_raise_torchs_error(name, args, kwargs):
    _same_refusal(lambda: getattr(distnn, name)(*[distnn.tensor(a) for a in args], **kwargs),
                  lambda: getattr(torch, name)(*[torch.tensor(a) for a in args], **kwargs))


@pytest.mark.parametrize("name, args", [("lstsq", (A,)), ("solve", (A,)), ("eig", ()), ("eig", (True,)),
                                        ("symeig", (True,))], ids=str)
def test_removed_tensor_methods_raise_torchs_error(name, args):
    def call(lib):
        args_ = [lib.tensor(a) if isinstance(a, np.ndarray) else a for a in args]
        return getattr(lib.tensor(A), name)(*args_)
    _same_refusal(lambda: call(distnn), lambda: call(torch))


def test_removed_names_keep_torchs_required_arguments():
    for fd, ft in [(lambda: distnn.lstsq(distnn.tensor(A)), lambda: torch.lstsq(torch.tensor(A))),
                   (lambda: distnn.eig(), lambda: torch.eig())]:
        with pytest.raises(TypeError):
            ft()
        with pytest.raises(TypeError):
            fd()


@pytest.mark.parametrize("tol", [F64, F32], ids=["f64", "f32"])
@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_methods_match_torch(upper, tol):
    spd = R.standard_normal((2, 3, 3))
    spd = spd @ spd.swapaxes(-1, -2) + 3 * np.eye(3)
    factor = np.linalg.cholesky(spd)
    factor = factor.swapaxes(-1, -2) if upper else factor
    b = R.standard_normal((2, 3, 2))
    both(lambda y, f: y.cholesky_solve(f, upper), lambda y, f: y.cholesky_solve(f, upper), b, factor, **tol)
    both(lambda f: f.cholesky_inverse(upper), lambda f: f.cholesky_inverse(upper), factor, **tol)
    both(lambda f: f.cholesky_inverse(upper=upper), lambda f: torch.cholesky_inverse(f, upper=upper), factor[0], **tol)


@pytest.mark.parametrize("some", [True, False])
def test_qr_svd_triangular_solve_methods_match_torch(some):
    a = R.standard_normal((2, 4, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (PyTorch warns that torch.qr and triangular_solve are deprecated)
        both(lambda x: tuple(x.qr(some)), lambda x: tuple(x.qr(some)), a, grad=some)  # (complete, tall: no gradient)
        both(lambda x: (x.svd(some)[1], x.svd(some)[0][..., :3].abs().sum(-1)),
             lambda x: (x.svd(some)[1], x.svd(some)[0][..., :3].abs().sum(-1)), a, grad=False)
        both(lambda x: x.svd(compute_uv=False)[1], lambda x: x.svd(compute_uv=False)[1], a)
        t = np.triu(R.standard_normal((2, 3, 3))) + 3 * np.eye(3)
        both(lambda y, m: tuple(y.triangular_solve(m, transpose=not some)),
             lambda y, m: tuple(y.triangular_solve(m, transpose=not some)), R.standard_normal((2, 3, 2)), t)
