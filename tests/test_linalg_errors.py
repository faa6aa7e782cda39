"""distnn.linalg's refusals against PyTorch's (the error type and the gist of its message), LinAlgError naming the
batch element, result dtypes, numerical gradient checks (distnn.testing.check_grad, including det at a singular
matrix, where PyTorch 2.13 returns 0), and the top-level aliases and Tensor methods against torch's."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.linalg as DL  # noqa: E402
from distnn.testing import check_grad  # noqa: E402

TL = torch.linalg
R = np.random.default_rng(2613)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)
SING = np.array([[1.0, 2.0], [2.0, 4.0]])
BATCH_SING = np.stack([np.eye(2), SING])


def same_refusal(fd, ft, *arrays, match=None):
    """Both raise; distnn's error is of the type PyTorch's is (or a subclass) and its message has ``match``
    (default: PyTorch's whole message)."""
    with pytest.raises(Exception) as te:
        ft(*[torch.tensor(a) for a in arrays])
    expected = match if match is not None else str(te.value)
    with pytest.raises(Exception) as de:
        fd(*[distnn.tensor(a) for a in arrays])
    kind = RuntimeError if isinstance(te.value, RuntimeError) else type(te.value)
    assert isinstance(de.value, kind), (type(de.value), te.value)
    assert expected in str(de.value), (str(de.value), expected)
    if isinstance(te.value, TL.LinAlgError):
        assert isinstance(de.value, DL.LinAlgError)


def test_linalg_error_is_a_runtime_error():
    assert issubclass(DL.LinAlgError, RuntimeError)


@pytest.mark.parametrize("fd, ft, arrays", [
    (DL.inv, TL.inv, [SING]),
    (DL.inv, TL.inv, [BATCH_SING]),
    (DL.solve, TL.solve, [SING, np.ones(2)]),
    (DL.solve, TL.solve, [BATCH_SING, np.ones((2, 2))]),
    (DL.cholesky, TL.cholesky, [-np.eye(3)]),
    (DL.cholesky, TL.cholesky, [np.stack([np.eye(3), np.diag([1.0, -1.0, 1.0])])]),
    (distnn.inverse, torch.inverse, [SING]),
    (lambda a: DL.matrix_power(a, -1), lambda a: TL.matrix_power(a, -1), [BATCH_SING]),
], ids=["inv", "inv_batch", "solve", "solve_batch", "cholesky", "cholesky_batch", "inverse", "matrix_power"])
def test_singular_and_indefinite_matrices_raise_pytorchs_linalg_error(fd, ft, arrays):
    same_refusal(fd, ft, *arrays)


def test_singular_matrix_error_names_the_batch_element_and_pivot():
    with pytest.raises(DL.LinAlgError, match=r"\(Batch element 3\): The diagonal element 2 is zero"):
        DL.inv(distnn.tensor(np.stack([np.eye(2)] * 3 + [SING])))
    with pytest.raises(DL.LinAlgError, match=r"\(Batch element 1\).*leading minor of order 2"):
        DL.cholesky(distnn.tensor(np.stack([np.eye(3), np.diag([1.0, -1.0, 1.0])])))


_INT = np.ones((2, 2), dtype=np.int64)
REFUSALS = {
    "inv_not_square": (DL.inv, TL.inv, [np.ones((2, 3))]),
    "det_not_square": (DL.det, TL.det, [np.ones((2, 3))]),
    "eigh_not_square": (DL.eigh, TL.eigh, [np.ones((2, 3))]),
    "inv_1d": (DL.inv, TL.inv, [np.ones(3)]),
    "inv_int": (DL.inv, TL.inv, [_INT]),
    "det_int": (DL.det, TL.det, [_INT]),
    "slogdet_int": (DL.slogdet, TL.slogdet, [_INT]),
    "cholesky_int": (DL.cholesky, TL.cholesky, [_INT]),
    "vector_norm_int": (DL.vector_norm, TL.vector_norm, [np.ones(2, dtype=np.int64)]),
    "solve_shapes": (DL.solve, TL.solve, [np.eye(2), np.ones(3)]),
    "solve_shapes_right": (lambda a, b: DL.solve(a, b, left=False), lambda a, b: TL.solve(a, b, left=False),
                           [np.eye(2), np.ones(2)]),
    "qr_mode": (lambda a: DL.qr(a, "x"), lambda a: TL.qr(a, "x"), [np.ones((2, 3))]),
    "eigh_uplo": (lambda a: DL.eigh(a, "X"), lambda a: TL.eigh(a, "X"), [np.eye(2)]),
    "cross_length": (DL.cross, TL.cross, [np.ones(4), np.ones(4)]),
    "multi_dot_one": (lambda a: DL.multi_dot([a]), lambda a: TL.multi_dot([a]), [np.ones((2, 2))]),
    "multi_dot_first_3d": (lambda a, b: DL.multi_dot([a, b]), lambda a, b: TL.multi_dot([a, b]),
                           [np.ones((2, 2, 2)), np.ones((2, 2))]),
    "multi_dot_middle_3d": (lambda a, b, c: DL.multi_dot([a, b, c]), lambda a, b, c: TL.multi_dot([a, b, c]),
                            [np.ones(2), np.ones((2, 2, 2)), np.ones(2)]),
    "multi_dot_shapes": (lambda a, b: DL.multi_dot([a, b]), lambda a, b: TL.multi_dot([a, b]),
                         [np.ones((2, 3)), np.ones((2, 2))]),
    "norm_3d_with_ord": (lambda a: DL.norm(a, 2), lambda a: TL.norm(a, 2), [np.ones((2, 2, 2))]),
    "matrix_norm_1d": (lambda a: DL.matrix_norm(a), lambda a: TL.matrix_norm(a), [np.ones(2)]),
    "matrix_norm_order": (lambda a: DL.matrix_norm(a, 3), lambda a: TL.matrix_norm(a, 3), [np.ones((2, 2))]),
    "vector_norm_str": (lambda a: DL.vector_norm(a, "fro"), lambda a: TL.vector_norm(a, "fro"), [np.ones(2)]),
    "norm_str_vector": (lambda a: DL.norm(a, "fro"), lambda a: TL.norm(a, "fro"), [np.ones(3)]),
    "matrix_power_not_square": (lambda a: DL.matrix_power(a, 2), lambda a: TL.matrix_power(a, 2), [np.ones((2, 3))]),
    "matrix_power_int_negative": (lambda a: DL.matrix_power(a, -1), lambda a: TL.matrix_power(a, -1), [_INT]),
    "solve_triangular_vector": (lambda a, b: DL.solve_triangular(a, b, upper=True),
                                lambda a, b: TL.solve_triangular(a, b, upper=True), [np.eye(2), np.ones(2)]),
    "matrix_exp_not_square": (DL.matrix_exp, TL.matrix_exp, [np.ones((2, 3))]),
    "matrix_rank_1d": (DL.matrix_rank, TL.matrix_rank, [np.ones(3)]),
    "vander_0d": (DL.vander, TL.vander, [np.array(1.0)]),
    "solve_dtypes": (DL.solve, TL.solve, [np.eye(2), np.ones(2, dtype=np.float32)]),
    "lstsq_driver": (lambda a, b: DL.lstsq(a, b, driver="x"), lambda a, b: TL.lstsq(a, b, driver="x"),
                     [np.ones((3, 2)), np.ones((3, 1))]),
    "lstsq_rows": (DL.lstsq, TL.lstsq, [np.ones((3, 2)), np.ones((4, 1))]),
    "lstsq_dims": (DL.lstsq, TL.lstsq, [np.ones((3, 2)), np.ones((1, 3, 1))]),
    "lstsq_vector_batch": (DL.lstsq, TL.lstsq, [np.ones((2, 4, 3)), np.ones((4, 2))]),
    "inv_ex_check_errors": (lambda a: DL.inv_ex(a, check_errors=True), lambda a: TL.inv_ex(a, check_errors=True),
                            [BATCH_SING]),
    "cholesky_ex_check_errors": (lambda a: DL.cholesky_ex(a, check_errors=True),
                                 lambda a: TL.cholesky_ex(a, check_errors=True), [-np.eye(2)]),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_refusals_match_pytorchs(name):
    fd, ft, arrays = REFUSALS[name]
    gist = {"vander_0d": "", "lstsq_vector_batch": "must match the size of tensor b",
            "inv_ex_check_errors": "(Batch element 1): The diagonal element 2 is zero",
            "cholesky_ex_check_errors": "leading minor of order 1 is not positive-definite"}
    same_refusal(fd, ft, *arrays, match=gist.get(name))


def test_ex_variants_report_failures_in_info_as_torch():
    a = np.stack([np.eye(2) * 2, SING, np.array([[4.0, 1.0], [1.0, -3.0]])])
    for fd, ft in ((DL.inv_ex, TL.inv_ex), (DL.cholesky_ex, TL.cholesky_ex),
                   (lambda x: DL.cholesky_ex(x, upper=True), lambda x: TL.cholesky_ex(x, upper=True))):
        ours, theirs = fd(distnn.tensor(a)), ft(torch.tensor(a))
        np.testing.assert_array_equal(ours[1].data, theirs[1].numpy())
        assert ours[1].dtype == np.int32
        ok = ours[1].data == 0
        np.testing.assert_allclose(ours[0].data[ok], theirs[0][torch.tensor(ok)].numpy(), rtol=1e-12)
        assert np.isnan(ours[0].data[~ok]).all()  # (PyTorch leaves LAPACK's partial results there)
    t, u = distnn.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    DL.inv_ex(t).inverse[::2].sum().backward()
    TL.inv_ex(u).inverse[::2].sum().backward()
    np.testing.assert_allclose(t.grad[::2], u.grad[::2].numpy(), rtol=1e-12)
    assert (t.grad[1] == 0).all()


def test_pinv_refuses_a_vector_as_pytorch():
    same_refusal(DL.pinv, TL.pinv, np.ones(3), match="expected a tensor with 2 or more dimensions")


@pytest.mark.parametrize("mode, shape, match", [("complete", (4, 2), "not differentiable when mode='complete'"),
                                                ("r", (3, 3), "depends on Q, which is not computed")])
def test_qr_backward_refusals_match_pytorchs(mode, shape, match):
    a = R.standard_normal(shape)
    for lib, tensor in ((TL, torch.tensor(a, requires_grad=True)), (DL, distnn.tensor(a, requires_grad=True))):
        q, r = lib.qr(tensor, mode=mode)
        with pytest.raises(RuntimeError, match=match.replace("(", r"\(")):
            (r.sum() + (q.sum() if mode != "r" else 0)).backward()
    assert tuple(DL.qr(distnn.tensor(a), mode="r").Q.shape) == (0,)


def test_result_dtypes_and_named_tuples_are_pytorchs():
    a32 = R.standard_normal((2, 3, 3)).astype(np.float32)
    d, t = distnn.tensor(a32), torch.tensor(a32)
    for name in ("det", "inv", "svdvals", "matrix_exp", "pinv"):
        assert str(getattr(DL, name)(d).dtype) == str(getattr(TL, name)(t).dtype).replace("torch.", ""), name
    assert DL.matrix_rank(d).dtype == np.int64 and DL.matrix_rank(d).shape == (2,)
    sign, logabsdet = DL.slogdet(d)
    assert sign.dtype == np.float32
    for name, fields in (("slogdet", ("sign", "logabsdet")), ("eigh", ("eigenvalues", "eigenvectors")),
                         ("svd", ("U", "S", "Vh")), ("qr", ("Q", "R"))):
        ours, theirs = getattr(DL, name)(d), getattr(TL, name)(t)
        assert ours._fields == fields and all(hasattr(theirs, f) for f in fields), name
    ints = np.array([[1, 2], [3, 4]])
    np.testing.assert_array_equal(DL.matrix_power(distnn.tensor(ints), 3).data, TL.matrix_power(torch.tensor(ints), 3))
    np.testing.assert_array_equal(DL.vander(distnn.tensor(np.array([1, 2, 3]))).data,
                                  TL.vander(torch.tensor([1, 2, 3])))
    sing = DL.slogdet(distnn.tensor(SING))
    assert float(sing.sign.data) == 0 and float(sing.logabsdet.data) == -math.inf
    np.testing.assert_array_equal(DL.matrix_rank(distnn.tensor(BATCH_SING)).data, [2, 1])
    np.testing.assert_array_equal(DL.matrix_rank(distnn.tensor(BATCH_SING), hermitian=True).data, [2, 1])
    np.testing.assert_array_equal(DL.matrix_rank(distnn.tensor(BATCH_SING), atol=5.5).data,
                                  TL.matrix_rank(torch.tensor(BATCH_SING), atol=5.5))


def _sym(a):
    return (a + a.mT) * 0.5


GRAD_CHECKS = {
    "det": (DL.det, [R.standard_normal((2, 3, 3))]),
    "det_singular_rank_n_minus_1": (DL.det, [np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])]),
    "slogdet": (lambda a: DL.slogdet(a).logabsdet, [R.standard_normal((2, 3, 3))]),
    "inv": (DL.inv, [R.standard_normal((2, 3, 3)) + 3 * np.eye(3)]),
    "solve": (DL.solve, [R.standard_normal((3, 3)) + 3 * np.eye(3), R.standard_normal((2, 3, 2))]),
    "cholesky": (lambda a: DL.cholesky(a @ a.mT + 3 * distnn.tensor(np.eye(3))), [R.standard_normal((2, 3, 3))]),
    "qr": (lambda a: DL.qr(a).Q * 2 + DL.qr(a).R[..., :1, :].sum(), [R.standard_normal((4, 3))]),
    "eigh": (lambda a: DL.eigh(_sym(a)).eigenvalues + (DL.eigh(_sym(a)).eigenvectors ** 2).sum(-1).sum(-1)[..., None],
             [R.standard_normal((2, 4, 4))]),
    "eigh_projector": (lambda a: (lambda w, v: (v * w[..., None, :]) @ v.mT)(*DL.eigh(_sym(a))),
                       [R.standard_normal((4, 4))]),
    "svd_products": (lambda a: (lambda u, s, vh: (u * s[..., None, :] ** 2) @ vh)(*DL.svd(a, full_matrices=False)),
                     [R.standard_normal((2, 5, 3))]),
    "svd_full_wide": (lambda a: (lambda u, s, vh: u @ vh[..., :2, :] * s.sum())(*DL.svd(a)),
                      [R.standard_normal((2, 4))]),
    "pinv": (DL.pinv, [R.standard_normal((4, 3))]),
    "matrix_exp": (DL.matrix_exp, [R.standard_normal((2, 3, 3))]),
    "matrix_norm_nuc": (lambda a: DL.matrix_norm(a, "nuc"), [R.standard_normal((2, 3, 4))]),
    "vector_norm_3": (lambda a: DL.vector_norm(a, 3, dim=-1), [R.standard_normal((3, 4))]),
    "solve_triangular": (lambda a, b: DL.solve_triangular(a, b, upper=True, left=False),
                         [R.standard_normal((3, 3)) + 3 * np.eye(3), R.standard_normal((2, 3))]),
    "vander": (lambda x: DL.vander(x, N=4), [R.standard_normal(3)]),
}


@pytest.mark.parametrize("name", list(GRAD_CHECKS))
def test_gradients_pass_the_numerical_check(name):
    fn, arrays = GRAD_CHECKS[name]
    assert check_grad(fn, *arrays)


def test_top_level_aliases_and_tensor_methods_match_torch():
    a = R.standard_normal((2, 3, 3)) + 3 * np.eye(3)
    s = a @ np.swapaxes(a, -1, -2)
    d, t = distnn.tensor(a), torch.tensor(a)
    pairs = [(distnn.det(d), torch.det(t)), (distnn.logdet(distnn.tensor(s)), torch.logdet(torch.tensor(s))),
             (distnn.inverse(d), torch.inverse(t)), (distnn.pinverse(d), torch.pinverse(t)),
             (distnn.matrix_power(d, 3), torch.matrix_power(t, 3)), (distnn.matrix_exp(d), torch.matrix_exp(t)),
             (distnn.slogdet(d).logabsdet, torch.slogdet(t).logabsdet),
             (d.det(), t.det()), (distnn.tensor(s).logdet(), torch.tensor(s).logdet()), (d.inverse(), t.inverse()),
             (d.pinverse(1e-3), t.pinverse(1e-3)), (d.matrix_power(-2), t.matrix_power(-2)),
             (d.matrix_exp(), t.matrix_exp()), (d.slogdet().sign, t.slogdet().sign)]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-10, atol=1e-12)
    for call in (lambda x: distnn.cholesky(x, upper=True), lambda x: x.cholesky(True)):
        with pytest.warns(UserWarning, match="deprecated"):
            ours = call(distnn.tensor(s))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.testing.assert_allclose(ours.data, torch.cholesky(torch.tensor(s), upper=True).numpy(), rtol=1e-10)
    assert distnn.linalg is DL


def test_logdet_is_nan_for_a_negative_determinant_as_torch():
    a = np.diag([-1.0, 2.0, 3.0])
    assert math.isnan(float(distnn.logdet(distnn.tensor(a)).data)) and math.isnan(float(torch.logdet(torch.tensor(a))))


@pytest.mark.parametrize("name", ["det", "slogdet", "inv", "cholesky", "eigh", "eigvalsh", "svd", "svdvals", "qr",
                                  "pinv", "matrix_exp"])
@pytest.mark.parametrize("shape", [(0, 0), (2, 0, 0), (0, 3, 3)])
def test_empty_matrices_and_batches_give_torchs_shapes_and_values(name, shape):
    d = getattr(DL, name)(distnn.tensor(np.zeros(shape), requires_grad=True))
    t = getattr(TL, name)(torch.zeros(shape, dtype=torch.float64))
    d, t = (d, t) if isinstance(d, tuple) else ((d,), (t,))
    for ours, theirs in zip(d, t):
        assert tuple(ours.shape) == tuple(theirs.shape)
        np.testing.assert_allclose(np.asarray(ours.data), theirs.numpy())
    sum(x.sum() for x in d if x.requires_grad).backward()  # (an empty gradient, no error)
