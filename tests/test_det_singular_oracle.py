"""``det`` of singular matrices (rank n - 1 and rank <= n - 2, single and batched, mixed with invertible ones)
against PyTorch in float64: the first derivative with ``create_graph=True`` (the cofactors) and the second
derivative of two scalar reductions of it, through ``linalg.det``, ``distnn.det`` and ``Tensor.det``. PyTorch
takes its SVD path where ``|det A| < 100 eps``; distnn's double backward used ``A^-1`` there and raised (or,
with a numerically invertible matrix, returned rounding noise)."""
import numpy as np
import pytest

import distnn
from distnn import Tensor, autograd, linalg

R = np.random.default_rng(5)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)


def _with_singular_values(s, batch=()):
    """``U diag(s) V^T`` with random orthogonal ``U``, ``V``: with zeros in ``s`` a singular matrix whose
    computed determinant is rounding-small (|det| < 100 eps: PyTorch's SVD path), in numpy and PyTorch alike."""
    n = len(s)
    u = np.linalg.qr(R.standard_normal(batch + (n, n)))[0]
    v = np.linalg.qr(R.standard_normal(batch + (n, n)))[0]
    return (u * np.asarray(s, dtype=float)) @ np.swapaxes(v, -1, -2)


CASES = {
    "rank_n_minus_1": _with_singular_values([1.5, 1.1, 0.7, 0.0]),
    "rank_n_minus_2": _with_singular_values([1.3, 0.9, 0.0, 0.0]),
    "rank_1_of_3": _with_singular_values([1.2, 0.0, 0.0]),
    "batched_rank_n_minus_1": _with_singular_values([1.4, 0.6, 0.0], batch=(2,)),
    "batched_mixed": np.stack([_with_singular_values([1.4, 0.8, 0.0]), R.standard_normal((3, 3)),
                               _with_singular_values([1.1, 0.0, 0.0]), _with_singular_values([0.9, 0.5, 0.0])]),
    "zero_row": np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0], [3.0, -1.0, 2.0]]),  # (det exactly 0)
}
ENTRY = {"linalg.det": lambda L, a: L.linalg.det(a), "det": lambda L, a: L.det(a), "Tensor.det": lambda L, a: a.det()}


def _derivatives(lib, entry, a, u, w):
    """(d det·u / dA with create_graph, d/dA of sum(g * g), d/dA of sum(g * w)) as numpy arrays."""
    import torch
    if lib == "distnn":
        x, grad, wrap, mod = Tensor(a, requires_grad=True), autograd.grad, Tensor, distnn
    else:
        x, grad, wrap, mod = torch.tensor(a, requires_grad=True), torch.autograd.grad, torch.tensor, torch
    y = (ENTRY[entry](mod, x) * wrap(u)).sum()
    g, = grad(y, x, create_graph=True)
    gg, = grad((g * g).sum(), x, retain_graph=True)
    gw, = grad((g * wrap(w)).sum(), x)
    return [np.array(t.data if lib == "distnn" else t.detach().numpy()) for t in (g, gg, gw)]


@pytest.mark.parametrize("entry", list(ENTRY))
@pytest.mark.parametrize("name", list(CASES))
def test_singular_det_first_and_second_derivatives_match_torch(torch, name, entry):
    a = CASES[name]
    u = R.standard_normal(a.shape[:-2])
    w = R.standard_normal(a.shape)
    ours, theirs = _derivatives("distnn", entry, a, u, w), _derivatives("torch", entry, a, u, w)
    scale = max(1.0, float(np.abs(theirs[0]).max()))
    for level, (o, t) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(o, t, rtol=1e-9, atol=1e-9 * scale ** 2, err_msg=f"{name}: result {level}")


def test_singular_det_second_derivative_is_the_finite_difference_of_the_cofactors():
    """Independent of PyTorch: d/dA sum(cof(A) * W) at a rank n - 1 matrix, by central differences of the
    cofactors (exact minors), equals the double backward."""
    a = _with_singular_values([1.2, 0.8, 0.0])
    w = R.standard_normal(a.shape)

    def cofactors(m):
        return np.array([[(-1) ** (i + j) * np.linalg.det(np.delete(np.delete(m, i, 0), j, 1)) for j in range(3)]
                         for i in range(3)])

    x = Tensor(a, requires_grad=True)
    g, = autograd.grad(linalg.det(x), x, create_graph=True)
    np.testing.assert_allclose(g.data, cofactors(a), atol=1e-10)
    gw, = autograd.grad((g * Tensor(w)).sum(), x)
    h, fd = 1e-6, np.zeros_like(a)
    for k in range(a.size):
        e = np.zeros_like(a)
        e.flat[k] = h
        fd.flat[k] = ((cofactors(a + e) - cofactors(a - e)) * w).sum() / (2 * h)
    np.testing.assert_allclose(gw.data, fd, rtol=1e-6, atol=1e-6)


def test_plain_backward_of_a_singular_matrix_gives_the_cofactors():
    """Without create_graph distnn keeps the cofactors (PyTorch's LU path gives 0 for an exactly singular
    matrix, which the finite differences contradict; its create_graph path gives the cofactors, as here)."""
    a = Tensor(np.array([[1.0, 2.0], [2.0, 4.0]]), requires_grad=True)
    linalg.det(a).backward()
    np.testing.assert_allclose(a.grad.data, [[4.0, -2.0], [-2.0, 1.0]])
