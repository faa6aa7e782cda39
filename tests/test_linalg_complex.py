"""``linalg.eig``/``eigvals`` and complex inputs of the core linalg ops, against PyTorch (the oracle): the same
inputs, values and gradients compared. Eigen- and singular vectors are defined up to a phase, so they are
compared gauge-invariantly (reconstructions, |<v, v'>|) and differentiated only through losses that do not
depend on the phases (|V|^2, V V^H, U diag(w) Vh); a loss that does depends on them is refused as PyTorch
refuses it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import distnn as dn

R = np.random.default_rng(11)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)
TOL = {np.complex128: dict(rtol=1e-9, atol=1e-10), np.complex64: dict(rtol=2e-3, atol=2e-3),
       np.float64: dict(rtol=1e-9, atol=1e-10), np.float32: dict(rtol=2e-3, atol=2e-3)}
REAL_OF = {np.complex128: np.float64, np.complex64: np.float32, np.float64: np.float64, np.float32: np.float32}


def _matrix(shape, dtype):
    a = R.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * R.standard_normal(shape)
    return a.astype(dtype)


def _hermitian_pd(shape, dtype):
    b = _matrix(shape, dtype)
    return (b @ np.conj(np.swapaxes(b, -1, -2)) + shape[-1] * np.eye(shape[-1])).astype(dtype)


def _np(t):
    return t.detach().resolve_conj().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.data)


def _weights(m, shape, like, complex_=True):
    """Fixed weights of ``shape``, complex ones of ``like``'s dtype or real ones of its real dtype."""
    w = np.linspace(0.3, 1.7, int(np.prod(shape))).reshape(shape)
    if complex_:
        return m.tensor(w * (1 - 0.6j)).to(like.dtype)
    return m.tensor(w).to(like.real.dtype)


def _grads(loss, arrays):
    """(loss value, input gradients) of ``loss(module, *leaves)`` for distnn and torch, from the same arrays."""
    out = {}
    for m in (dn, torch):
        leaves = [m.tensor(a, requires_grad=True) for a in arrays]
        y = loss(m, *leaves)
        y.backward()
        out[m] = (_np(y), [_np(x.grad) for x in leaves])
    return out[dn], out[torch]


def _check_grads(loss, arrays, dtype):
    (v, gs), (tv, tgs) = _grads(loss, arrays)
    np.testing.assert_allclose(v, tv, **TOL[dtype])
    for g, tg in zip(gs, tgs):
        assert g.dtype == tg.dtype, (g.dtype, tg.dtype)  # (a real input gets a real gradient, as torch's)
        np.testing.assert_allclose(g, tg, **TOL[dtype])


# ----------------------------------------------------------------------------------------------- eig, eigvals

EIG_DTYPES = [np.float64, np.float32, np.complex128, np.complex64]
COMPLEX_OF = {np.float64: np.complex128, np.float32: np.complex64, np.complex128: np.complex128,
              np.complex64: np.complex64}


@pytest.mark.parametrize("dtype", EIG_DTYPES)
@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 5, 5), (1, 1), (3, 1, 1)])
def test_eig_values_and_vectors_match_torch_up_to_phase(shape, dtype):
    a = _matrix(shape, dtype)
    w, v = dn.linalg.eig(dn.tensor(a))
    tw, tv = torch.linalg.eig(torch.tensor(a))
    w, v, tw, tv = _np(w), _np(v), _np(tw), _np(tv)
    assert w.dtype == tw.dtype == v.dtype == COMPLEX_OF[dtype]
    assert w.shape == tw.shape and v.shape == tv.shape
    tol = TOL[dtype]
    np.testing.assert_allclose(np.sort_complex(w), np.sort_complex(tw), **tol)
    # A V = V diag(L), unit columns, and each eigenvector torch's up to a phase: |<v_j, v'_k>| = 1 for the
    # torch eigenvalue k nearest to L_j
    np.testing.assert_allclose(a.astype(w.dtype) @ v, v * w[..., None, :], **tol)
    np.testing.assert_allclose(np.linalg.norm(v, axis=-2), 1, **tol)
    flat = (w.reshape(-1, shape[-1]), v.reshape((-1,) + shape[-2:]), tw.reshape(-1, shape[-1]),
            tv.reshape((-1,) + shape[-2:]))
    for wb, vb, twb, tvb in zip(*flat):
        k = np.abs(wb[:, None] - twb[None, :]).argmin(axis=1)
        overlap = np.abs(np.einsum("ij,ij->j", vb.conj(), tvb[:, k]))
        np.testing.assert_allclose(overlap, 1, **tol)


def _eig_loss(m, a):
    # gauge invariant (|V|^2, V V^H) and independent of the eigenvalues' order (each column with its value)
    w, v = m.linalg.eig(a)
    n = a.shape[-1]
    cdtype = w.dtype
    c = m.tensor(np.asarray(0.7 - 0.4j), dtype=cdtype)
    rows = m.tensor(np.linspace(0.5, 1.5, n)[:, None], dtype=w.real.dtype)
    loss = (w * w * c).real.sum() + (w.abs() ** 2).sum()
    loss = loss + ((v.abs() ** 2) * rows * w.real.unsqueeze(-2)).sum()
    vvh = v @ v.mH
    return loss + (vvh * m.tensor(np.linspace(-1, 1, n * n).reshape(n, n) * (1 + 0.5j), dtype=cdtype)).real.sum()


@pytest.mark.parametrize("dtype", EIG_DTYPES)
@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 3)])
def test_eig_gradient_of_gauge_invariant_losses_matches_torch(shape, dtype):
    # (a real input: a real gradient, the real part of the complex one, as torch's handle_r_to_c)
    _check_grads(_eig_loss, [_matrix(shape, dtype)], dtype)


@pytest.mark.parametrize("dtype", EIG_DTYPES)
def test_eigvals_values_and_gradient_match_torch(dtype):
    a = _matrix((2, 4, 4), dtype)
    w, tw = _np(dn.linalg.eigvals(dn.tensor(a))), _np(torch.linalg.eigvals(torch.tensor(a)))
    assert w.dtype == tw.dtype == COMPLEX_OF[dtype]
    np.testing.assert_allclose(np.sort_complex(w), np.sort_complex(tw), **TOL[dtype])

    def loss(m, x):
        w = m.linalg.eigvals(x)
        return (w * w * m.tensor(np.asarray(0.7 - 0.4j), dtype=w.dtype)).real.sum() + (w.abs() ** 3).sum()

    _check_grads(loss, [a], dtype)


def test_eig_one_by_one():
    for m in (dn, torch):
        a = m.tensor([[2.0 + 1.0j]], requires_grad=True)
        w, v = m.linalg.eig(a)
        (w.real * 3 + w.imag + v.abs().sum()).sum().backward()
        np.testing.assert_allclose(_np(w), [2 + 1j])
        np.testing.assert_allclose(_np(v), [[1]])
        np.testing.assert_allclose(_np(a.grad), [[3 + 1j]])


def test_eig_of_a_real_matrix_with_real_eigenvalues_is_complex_and_its_gradient_real():
    a = np.array([[2.0, 1.0], [0.5, 3.0]])
    x = dn.tensor(a, requires_grad=True)
    w, v = dn.linalg.eig(x)
    assert w.dtype == dn.complex128 and v.dtype == dn.complex128  # (numpy's own eig gives float64 here)
    _check_grads(_eig_loss, [a], np.float64)


def test_eig_of_an_empty_batch_and_empty_matrices():
    for shape in [(0, 0), (2, 0, 0), (0, 3, 3)]:
        w, v = dn.linalg.eig(dn.zeros(*shape))
        tw, tv = torch.linalg.eig(torch.zeros(*shape))
        assert tuple(w.shape) == tuple(tw.shape) and tuple(v.shape) == tuple(tv.shape)
        assert w.dtype == dn.complex64 and v.dtype == dn.complex64


_EIG_PHASE = ("linalg_eig_backward: The eigenvectors in the complex case are specified up to multiplication by "
              "e^{i phi}. The specified loss function depends on this quantity, so it is ill-defined.")


@pytest.mark.parametrize("op", ["eig", "eigh"])
def test_a_loss_that_depends_on_the_eigenvectors_phase_is_refused_as_torch(op):
    a = _matrix((3, 3), np.complex128)
    if op == "eigh":
        a = _hermitian_pd((3, 3), np.complex128)
    messages = []
    for m in (dn, torch):
        x = m.tensor(a, requires_grad=True)
        v = getattr(m.linalg, op)(x)[1]
        with pytest.raises(RuntimeError, match="specified up to multiplication by e\\^\\{i phi\\}") as info:
            v.real.sum().backward()
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    if op == "eig":
        assert messages[0] == _EIG_PHASE


def test_a_loss_that_depends_on_the_singular_vectors_phase_is_refused_as_torch():
    a = _matrix((4, 3), np.complex128)
    messages = []
    for m in (dn, torch):
        x = m.tensor(a, requires_grad=True)
        u = m.linalg.svd(x, full_matrices=False)[0]
        with pytest.raises(RuntimeError, match="svd_backward: The singular vectors") as info:
            u.imag.sum().backward()
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_eig_refusals_as_torch():
    for bad, what in [(np.ones((2, 3)), "must be batches of square matrices"),
                      (np.ones(3), "must have at least 2 dimensions")]:
        for op in ("eig", "eigvals"):
            for m in (dn, torch):
                with pytest.raises(RuntimeError, match=f"linalg.{op}: .*{what}"):
                    getattr(m.linalg, op)(m.tensor(bad))
    nan = np.array([[np.nan, 1.0], [0.0, 1.0]])
    for m in (dn, torch):
        with pytest.raises(RuntimeError, match="torch.linalg.eig: input tensor should not contain infs or NaNs."):
            m.linalg.eig(m.tensor(nan))
        assert not np.isfinite(_np(m.linalg.eigvals(m.tensor(nan)))).all()  # (no error, as torch's)
    with pytest.raises(RuntimeError, match="Expected a floating point or complex tensor as input. Got Long"):
        dn.linalg.eig(dn.tensor([[1, 2], [3, 4]]))


def test_tensor_eig_is_the_removed_method_as_torch():
    a = np.eye(2)
    assert not hasattr(torch.Tensor, "eigvals") and not hasattr(dn.Tensor, "eigvals")
    for m in (dn, torch):
        with pytest.raises(RuntimeError, match="L_complex, V_complex = torch.linalg.eig"):
            m.tensor(a).eig()


# ------------------------------------------------------------------------------- complex inputs of core ops

def _tall(m, shape, dtype):
    return m.tensor(_matrix(shape, dtype))


CORE = {
    "inv": (lambda m, a: (m.linalg.inv(a) * _weights(m, (2, 3, 3), a)).real.sum(), [(2, 3, 3)]),
    "solve": (lambda m, a, b: (m.linalg.solve(a, b) * _weights(m, (2, 3, 2), a)).real.sum(),
              [(2, 3, 3), (2, 3, 2)]),
    "solve_vector_left_false": (
        lambda m, a, b: (m.linalg.solve(a, b) * _weights(m, (3,), a)).real.sum()
        + (m.linalg.solve(a, b.unsqueeze(0), left=False) * _weights(m, (1, 3), a)).real.sum(),
        [(3, 3), (3,)]),
    "det": (lambda m, a: (m.linalg.det(a) * _weights(m, (2,), a)).real.sum(), [(2, 3, 3)]),
    "slogdet": (lambda m, a: (m.linalg.slogdet(a).sign * _weights(m, (2,), a)).real.sum()
                + (m.linalg.slogdet(a).logabsdet * _weights(m, (2,), a, False)).sum(), [(2, 3, 3)]),
    "svd_tall": (lambda m, a: _svd_loss(m, a), [(2, 4, 3)]),
    "svd_wide": (lambda m, a: _svd_loss(m, a), [(2, 3, 4)]),
    "svd_square_full": (lambda m, a: _svd_loss(m, a, True), [(3, 3)]),
    "svdvals": (lambda m, a: (m.linalg.svdvals(a) * _weights(m, (2, 3), a, False)).sum(), [(2, 4, 3)]),
    "qr_tall": (lambda m, a: _qr_loss(m, a, "reduced"), [(2, 4, 3)]),
    "qr_wide": (lambda m, a: _qr_loss(m, a, "reduced"), [(2, 3, 4)]),
    "qr_complete": (lambda m, a: _qr_loss(m, a, "complete"), [(3, 3)]),
    "vector_norm": (lambda m, a: sum((m.linalg.vector_norm(a, o, dim=-1) * _weights(m, (3,), a, False)).sum()
                                     for o in (2, 1, 3, 1.5, 0.5, float("inf"), -float("inf"))), [(3, 4)]),
    "matrix_norm": (lambda m, a: sum((m.linalg.matrix_norm(a, o) * _weights(m, (2,), a, False)).sum()
                                     for o in ("fro", "nuc", 2, -2, 1, -1, float("inf"))), [(2, 3, 4)]),
    "norm": (lambda m, a: m.linalg.norm(a) + m.linalg.norm(a[0], "nuc"), [(2, 3, 4)]),
}


def _svd_loss(m, a, full=False):
    # |U|^2, |Vh|^2 and U diag(w) Vh are phase invariant; the last reaches the imaginary diagonal term
    u, s, vh = m.linalg.svd(a, full_matrices=full)
    k = s.shape[-1]
    u, vh = u[..., :k], vh[..., :k, :]
    w = m.tensor(np.linspace(1, 2, k), dtype=s.dtype)
    prod = (u * w) @ vh
    return ((s * w).sum() + ((u.abs() ** 2) * _weights(m, tuple(u.shape[-2:]), a, False)).sum()
            + (vh.abs() ** 3).sum() + (prod * _weights(m, tuple(prod.shape[-2:]), a)).real.sum())


def _qr_loss(m, a, mode):
    q, r = m.linalg.qr(a, mode=mode)
    return ((q * _weights(m, tuple(q.shape[-2:]), a)).real.sum()
            + (r * _weights(m, tuple(r.shape[-2:]), a)).real.sum())


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("name", sorted(CORE))
def test_core_op_of_complex_input_matches_torch(name, dtype):
    loss, shapes = CORE[name]
    _check_grads(loss, [_matrix(s, dtype) for s in shapes], dtype)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("uplo", ["L", "U"])
def test_eigh_eigvalsh_of_hermitian_input_match_torch(uplo, dtype):
    a = _hermitian_pd((2, 4, 4), dtype)
    a[..., 0, 1] += 5  # (no longer Hermitian: only the triangle UPLO is read, as torch's)

    def loss(m, x):
        w, v = m.linalg.eigh(x, UPLO=uplo)
        assert w.dtype in (dn.float64, dn.float32, torch.float64, torch.float32)  # (real eigenvalues)
        n = x.shape[-1]
        vvh = (v * m.tensor(np.linspace(1, 2, n), dtype=w.dtype)) @ v.mH
        return ((w * m.tensor(np.arange(1.0, n + 1), dtype=w.dtype)).sum() + (v.abs() ** 4).sum()
                + (vvh * _weights(m, (n, n), x)).real.sum()
                + (m.linalg.eigvalsh(x, UPLO=uplo) ** 2).sum())

    _check_grads(loss, [a], dtype)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_of_hermitian_input_matches_torch(upper, dtype):
    _check_grads(lambda m, x: (m.linalg.cholesky(x, upper=upper) * _weights(m, (2, 3, 3), x)).real.sum(),
                 [_hermitian_pd((2, 3, 3), dtype)], dtype)


def test_complex_values_have_torchs_dtypes():
    a = _matrix((2, 3, 3), np.complex64)
    for name, fn in [("svd", lambda m, x: m.linalg.svd(x)), ("slogdet", lambda m, x: m.linalg.slogdet(x)),
                     ("eigh", lambda m, x: m.linalg.eigh(x)), ("qr", lambda m, x: m.linalg.qr(x)),
                     ("norms", lambda m, x: (m.linalg.vector_norm(x, 0), m.linalg.matrix_norm(x, "nuc")))]:
        ours, theirs = fn(dn, dn.tensor(a)), fn(torch, torch.tensor(a))
        for o, t in zip(ours, theirs):
            assert _np(o).dtype == _np(t).dtype, name


def test_real_matrix_and_complex_right_side_are_refused_as_torch():
    a, b = _matrix((3, 3), np.float64), _matrix((3, 2), np.complex128)
    for m in (dn, torch):
        with pytest.raises(RuntimeError, match="Expected A and B to have the same dtype"):
            m.linalg.solve(m.tensor(a), m.tensor(b))


def test_ops_without_complex_support_refuse_complex_input_by_name():
    a = dn.tensor(_matrix((3, 3), np.complex128), requires_grad=True)
    for op, call in [("linalg.matrix_exp", dn.linalg.matrix_exp),
                     ("torch.linalg.lstsq", lambda x: dn.linalg.lstsq(x, x)), ("logdet", dn.logdet)]:
        with pytest.raises(RuntimeError, match=f"{op}: complex inputs are not supported by distnn yet"):
            call(a)


def test_second_order_through_a_complex_linalg_node_is_refused_by_name():
    a = dn.tensor(_matrix((3, 3), np.complex128), requires_grad=True)
    loss = (dn.linalg.inv(a) * dn.linalg.inv(a).conj()).real.sum()  # (mul, conj, real: second order ok)
    with pytest.raises(NotImplementedError, match="Inv"):
        dn.autograd.grad(loss, a, create_graph=True)
