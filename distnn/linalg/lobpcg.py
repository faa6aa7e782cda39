"""``lobpcg``: the ``k`` largest (or smallest) eigenpairs of a symmetric positive-definite generalized problem
``A X = B X E`` by PyTorch's LOBPCG (``torch.lobpcg``; the iteration is in :mod:`.lobpcg_worker`), with PyTorch's
gradient for ``A`` when ``B`` is None.

As PyTorch's: when ``A`` (or ``B``) requires grad, the problem solved is that of ``(A + A^T) / 2`` (so the
gradient is symmetric); the gradient (``torch._lobpcg._symeig_backward``) is that of an eigendecomposition
restricted to the ``k`` pairs found: within their span the usual ``U (diag(g_E) + (U^T g_U) * F) U^T``, and outside
it the solution of a Sylvester equation written with the characteristic polynomial of ``E`` evaluated at ``A``
(Hu and Cheng 2006). A backward with ``B`` given raises ``ValueError``, as PyTorch's. Batches are solved one matrix
after the other (each converges in its own number of steps), as PyTorch's. The starting ``X``, when not given, is
drawn from distnn's generator.
"""
from __future__ import annotations

import math

import numpy as np

from distnn.autograd.function import Function
from distnn.backend import get_array_module, unwrap

from ._common import as_tensor, pack, unpack, unpack_grad
from .lobpcg_worker import LOBPCG


def _run(A, k, B, X, n, iK, niter, tol, largest, method, tracker, ortho_iparams, ortho_fparams,  # noqa: N803
         ortho_bparams):
    """PyTorch's ``_lobpcg`` on raw arrays: ``(E (*, k), X (*, m, k))``."""
    from distnn import random

    if A.shape[-2] != A.shape[-1]:
        raise AssertionError(f"A must be square, got shape {tuple(A.shape)}")
    if B is not None and A.shape != B.shape:
        raise AssertionError(f"A and B must have same shape, got {tuple(A.shape)} vs {tuple(B.shape)}")
    xp = get_array_module(A)
    dtype = A.dtype if A.dtype.kind == "f" else np.dtype(np.float32)
    if tol is None:
        tol = {np.dtype(np.float32): 1.2e-07, np.dtype(np.float64): 2.23e-16}[np.dtype(dtype)] ** 0.5
    m = A.shape[-1]
    k = (1 if X is None else X.shape[-1]) if k is None else k
    n = (k if n is None else n) if X is None else X.shape[-1]
    if m < 3 * n:
        raise ValueError(f"LOBPCG algorithm is not applicable when the number of A rows (={m}) is smaller than 3 x "
                         f"the number of requested eigenpairs (={n})")
    method = "ortho" if method is None else method
    iparams = {"m": m, "n": n, "k": k, "niter": 1000 if niter is None else niter}
    fparams = {"tol": tol}
    bparams = {"largest": True if largest is None else largest}
    if method == "ortho":
        iparams.update(ortho_iparams or {})
        fparams.update(ortho_fparams or {})
        bparams.update(ortho_bparams or {})
        iparams.setdefault("ortho_i_max", 3)
        iparams.setdefault("ortho_j_max", 3)
        for key in ("ortho_tol", "ortho_tol_drop", "ortho_tol_replace"):
            fparams.setdefault(key, tol)
        bparams.setdefault("ortho_use_drop", False)
    batch = tuple(A.shape[:-2])
    count = math.prod(batch)
    values, vectors = xp.empty((count, k), dtype=dtype), xp.empty((count, m, k), dtype=dtype)
    for i in range(count):
        a = A.reshape((count, m, m))[i]
        b = B.reshape((count, m, m))[i] if B is not None else None
        if X is None:
            x = xp.asarray(random.default_generator().standard_normal((m, n)).astype(dtype))
        else:  # (a copy: the worker updates its X in place)
            x = (X.reshape((count,) + X.shape[-2:])[i] if batch else X).astype(dtype, copy=True)
        if x.shape != (m, n):
            raise AssertionError(f"X shape mismatch: got {tuple(x.shape)}, expected {(m, n)}")
        if batch:
            iparams["batch_index"] = i
        worker = LOBPCG(a, b, x, iK, iparams, fparams, bparams, method, tracker)
        worker.run()
        values[i], vectors[i] = worker.E[:k], worker.X[:, :k]
    return values.reshape(batch + (k,)), vectors.reshape(batch + (m, k))


def _poly_coefficients(roots):
    """[a_0, ..., a_k = 1] (Tensors of the batch shape) of ``prod_i (x - roots_i)`` (PyTorch's recurrence)."""
    k = roots.shape[-1]
    c = [None] * (k + 2)  # (None: zero; c[0] and c[k + 1] start at 1, as PyTorch's, c[0] is dropped)
    c[0] = c[k + 1] = 1.0
    for i in range(1, k + 1):
        r = roots[..., i - 1]
        old = list(c)
        for j in range(k - i, k + 1):
            c[j] = (0.0 if old[j] is None else old[j]) - r * (0.0 if old[j + 1] is None else old[j + 1])
    return c[1:]


def _vector_poly(poly, x):
    res = x * 0 + 1
    for j in range(len(poly) - 2, -1, -1):
        res = res * x + poly[j].unsqueeze(-1)
    return res


def _matrix_poly(poly, a, eye):
    res = eye
    for j in range(len(poly) - 2, -1, -1):
        res = a @ res + poly[j].unsqueeze(-1).unsqueeze(-1) * eye
    return res


def symeig_grad(gd, gu, a, d, u, largest):
    """PyTorch's ``_symeig_backward`` (Tensors, so that it is differentiable again): the gradient in symmetric
    ``a`` of its ``k`` eigenpairs ``(d, u)``."""
    from distnn.autograd.tensor import Tensor

    from .inverse import solve

    xp = get_array_module(a.data)
    m, k = u.shape[-2:]
    eye_k = Tensor(xp.eye(k, dtype=a.dtype))
    f = d.unsqueeze(-2) - d.unsqueeze(-1) + eye_k  # (the diagonal: 1, then masked to 0)
    ut = u.mT
    res = u @ ((ut @ gu) * (1 - eye_k) / f + gd.diag_embed()) @ ut
    if m == k:
        return res
    # outside span(U): a basis of the complement (any: the result does not depend on it; a fixed draw)
    eye = Tensor(xp.eye(m, dtype=a.dtype))
    draw = np.random.default_rng(0).standard_normal(tuple(a.shape[:-1]) + (m - k,)).astype(a.dtype)
    u_ortho = (eye - u @ ut) @ Tensor(xp.asarray(draw))
    chr_poly = _poly_coefficients(d)
    series, projected = None, gu
    for j in range(1, len(chr_poly)):
        term = projected * _vector_poly(chr_poly[j:], d).unsqueeze(-2)
        series = term if series is None else series + term
        projected = a @ projected
    sign = -1.0 if (largest and k % 2 == 1) else 1.0  # (sign * restricted is positive-definite)
    restricted = u_ortho.mT @ _matrix_poly(chr_poly, a, eye) @ u_ortho
    return res - u_ortho @ (sign * solve(sign * restricted, u_ortho.mT @ series)) @ ut


class LOBPCGFunction(Function):
    """``(E, X)`` packed in one output (``_common.pack``); the gradient flows to ``A`` only."""

    def forward(self, a, b=None, largest=None, shapes=None, out=None):
        xp = get_array_module(a)
        self.a, self.b, self.largest, self.shapes = a, b, True if largest is None else largest, shapes
        self.e, self.x = out
        return pack(xp, self.e, self.x, batch=a.shape[:-2])

    def backward(self, g):
        from distnn.autograd.grad_mode import no_grad
        from distnn.autograd.tensor import Tensor

        if self.b is not None:
            raise ValueError("lobpcg.backward does not support backward with B != I yet.")
        xp = get_array_module(g)
        ge, gx = unpack_grad(xp, g, self.shapes)
        with no_grad():  # (the Tensor formula on constants; its graph form is in autograd/derivatives/linalg_more.py)
            out = symeig_grad(*(Tensor(t) for t in (ge, gx, self.a, self.e, self.x)), self.largest)
        return (out.data,)


def lobpcg(A, k=None, B=None, X=None, n=None, iK=None, niter=None, tol=None, largest=None, method=None,  # noqa: N803
           tracker=None, ortho_iparams=None, ortho_fparams=None, ortho_bparams=None):
    """``torch.lobpcg``: ``(E, X)``, the ``k`` largest (``largest=False``: smallest) eigenvalues ``(*, k)`` and
    eigenvectors ``(*, m, k)`` of ``A X = B X E`` (``B`` None: the identity); ``X``: the starting ``(*, m, n)``
    block, ``n`` its size (default ``k``), ``iK`` a preconditioner, ``niter`` the most steps (default 1000), ``tol``
    the relative residual taken as converged, ``method`` 'ortho' (default) or 'basic'; ``tracker(worker)`` is called
    after every step. ``m`` must be at least ``3 n``."""
    tA = as_tensor(A)  # noqa: N806
    tB = as_tensor(B) if B is not None else None  # noqa: N806
    grad = tA.requires_grad or (tB is not None and tB.requires_grad)
    if grad:  # (PyTorch's: the symmetric part, so the gradient is symmetric)
        tA = (tA + tA.mT) / 2  # noqa: N806
        tB = (tB + tB.mT) / 2 if tB is not None else None  # noqa: N806
    raw = [None if t is None else unwrap(t) for t in (X, iK)]
    e, x = _run(tA.data, k, None if tB is None else tB.data, raw[0], n, raw[1], niter, tol, largest, method, tracker,
                ortho_iparams, ortho_fparams, ortho_bparams)
    if not grad:
        return as_tensor(e), as_tensor(x)
    inputs = (tA,) if tB is None else (tA, tB)
    packed = LOBPCGFunction.apply(*inputs, largest=largest, shapes=(e.shape, x.shape), out=(e, x))
    e_t, x_t = unpack(packed, [e.shape, x.shape])
    return e_t, x_t
