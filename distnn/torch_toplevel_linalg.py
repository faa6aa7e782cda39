"""PyTorch's older top-level linear-algebra forms (``torch.svd``, ``torch.qr``, ``torch.cholesky_solve``,
``torch.triangular_solve``, ``torch.chain_matmul``, ``torch.frobenius_norm``, ``torch.nuclear_norm``),
``torch.mvlgamma`` and ``torch.igammac`` (from :mod:`distnn.functional.gamma_functions`), composed of
:mod:`distnn.linalg` and distnn's differentiable ops, so their gradients come from those ops' backward.

They keep PyTorch's older conventions: ``torch.svd`` returns ``V``, not ``Vh``, ``some`` chooses the reduced
factors, ``compute_uv=False`` gives zero-filled ``U`` (m, m) and ``V`` (n, n); ``triangular_solve(b, A)`` takes
the right-hand side first and returns ``(solution, cloned_coefficient)``. (``torch.lu``/``lu_solve``/
``lu_unpack`` and ``geqrf``/``orgqr``/``ormqr`` are in :mod:`distnn.linalg.aliases`.) Not here:
``torch.matrix_rank`` (PyTorch removed it: ``distnn.linalg.matrix_rank``).
"""
from __future__ import annotations

import math

import numpy as np

from . import linalg
from .autograd.grad_mode import is_grad_enabled
from .autograd.tensor import Tensor
from .backend import as_array, get_array_module, unwrap
from .functional.gamma_functions import igammac, lgamma  # noqa: F401 - igammac re-exported


def svd(input, some=True, compute_uv=True):  # noqa: A002 - PyTorch's name
    """``torch.svd``: ``(U, S, V)`` with ``input = U diag(S) V^T`` (``V``, not ``linalg.svd``'s ``Vh``);
    ``some`` False: the full square ``U`` and ``V``. ``compute_uv`` False: only ``S`` (differentiable), ``U``
    and ``V`` zero-filled ``(*, m, m)`` and ``(*, n, n)``, whatever ``some`` is (PyTorch's)."""
    if not compute_uv:
        s = linalg.svdvals(input)
        data = unwrap(s)
        xp = get_array_module(data)
        *batch, m, n = input.shape
        return (Tensor(xp.zeros((*batch, m, m), dtype=data.dtype)), s,
                Tensor(xp.zeros((*batch, n, n), dtype=data.dtype)))
    u, s, vh = linalg.svd(input, full_matrices=not some)
    return u, s, vh.mT


def qr(input, some=True):  # noqa: A002
    """``torch.qr``: ``(Q, R)``, reduced (``some``) or complete, as ``linalg.qr``'s 'reduced'/'complete'."""
    return linalg.qr(input, mode="reduced" if some else "complete")


def _gram(factor, upper):
    """``A = L L^T`` (``upper``: ``U^T U``) from the triangle of a Cholesky factor, with PyTorch's gradient.

    PyTorch reads only the triangle in ``cholesky_solve``/``cholesky_inverse``, but its gradient for the factor,
    ``-(G X^T + X G^T) L`` (``upper``: ``-U (...)``), multiplies by the factor as given, values in the other
    triangle included, and is not projected on the triangle. So the value is the triangle's Gram matrix and the
    gradient that of the whole factor's: ``D - D.detach()`` is exactly zero and carries the derivative of ``D``.
    """
    from . import tril, triu

    t = (triu(factor) if upper else tril(factor)).detach()
    gram = t.mT @ t if upper else t @ t.mT
    if not (getattr(factor, "requires_grad", False) and is_grad_enabled()):
        return gram
    whole = factor.mT @ factor if upper else factor @ factor.mT
    return gram + (whole - whole.detach())


def cholesky_solve(B, L, upper=False):  # noqa: N803 - PyTorch's names
    """``torch.cholesky_solve(B, L, upper=False)``: ``X`` with ``A X = B`` where ``A = L L^T`` (``upper``:
    ``U^T U``), ``L`` the (batch of) Cholesky factor(s); batch dims broadcast. Gradients as PyTorch's."""
    if len(B.shape) < 2 or len(L.shape) < 2:
        raise RuntimeError(f"cholesky_solve: b should have at least 2 dimensions, but has {len(B.shape)} "
                           f"dimensions instead" if len(B.shape) < 2 else
                           f"cholesky_solve: u should have at least 2 dimensions, but has {len(L.shape)} "
                           f"dimensions instead")
    return linalg.solve(_gram(L, upper), B)


def cholesky_inverse(L, upper=False):  # noqa: N803
    """``torch.cholesky_inverse(L, upper=False)``: ``A^{-1}`` for ``A = L L^T`` (``upper``: ``U^T U``)."""
    return linalg.inv(_gram(L, upper))


def triangular_solve(b, A, upper=True, transpose=False, unitriangular=False):  # noqa: N803
    """``torch.triangular_solve(b, A, upper=True, transpose=False, unitriangular=False)`` (deprecated in
    PyTorch for ``linalg.solve_triangular``): ``(solution, cloned_coefficient)``, the solution of ``A X = b``
    (``transpose``: ``A^T X = b``) reading only ``A``'s upper (lower) triangle, and a copy of ``A``."""
    if transpose:
        x = linalg.solve_triangular(A.mT, b, upper=not upper, unitriangular=unitriangular)
    else:
        x = linalg.solve_triangular(A, b, upper=upper, unitriangular=unitriangular)
    return x, A.clone()


def chain_matmul(*matrices):
    """``torch.chain_matmul(*matrices)`` (deprecated in PyTorch for ``linalg.multi_dot``): the product of 2-D
    matrices, in the cheapest order; one matrix is returned as a copy."""
    if len(matrices) == 0:
        raise RuntimeError("chain_matmul(): Expected one or more matrices")
    for m in matrices:
        if len(m.shape) != 2:
            raise RuntimeError(f"Tensor dimension is {len(m.shape)}, expected 2 instead.")
    return matrices[0].clone() if len(matrices) == 1 else linalg.multi_dot(list(matrices))


def frobenius_norm(input, dim, keepdim=False):  # noqa: A002
    """``torch.frobenius_norm(input, dim, keepdim=False)``: the 2-norm over at most two dims (``dim`` required,
    as ATen's); ``linalg.vector_norm(input, 2, dim, keepdim)``."""
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if len(dims) > 2:
        raise RuntimeError(f"Expected at most 2 dimensions, but got {len(dims)} dimensions instead.")
    return linalg.vector_norm(input, 2, dims, keepdim)


def nuclear_norm(input, dim=None, keepdim=False):  # noqa: A002
    """``torch.nuclear_norm(input, keepdim=False)`` or ``(input, dim, keepdim=False)``: the sum of the
    singular values over the two dims ``dim`` (default the last two; an int ``d`` means ``(d, d)``, refused)."""
    if isinstance(dim, bool):  # (ATen's overload nuclear_norm(input, keepdim))
        dim, keepdim = None, dim
    dims = (-2, -1) if dim is None else (dim, dim) if isinstance(dim, int) else tuple(dim)
    return linalg.matrix_norm(input, "nuc", dims, keepdim)


def mvlgamma(input, p):  # noqa: A002
    """``torch.mvlgamma(input, p)``: the multivariate log-gamma ``sum_{j<p} lgamma(x - j/2) + p(p-1)/4 log(pi)``,
    elementwise (no domain check, as PyTorch 2's: at or below (p-1)/2 it gives inf or NaN as lgamma does)."""
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)):
        raise TypeError(f"mvlgamma(): argument 'p' must be int, not {type(p).__name__}")
    if p < 1:
        raise RuntimeError("p has to be greater than or equal to 1")
    x = input if isinstance(input, Tensor) else Tensor(as_array(input))  # (a raw device array as it is)
    out = lgamma(x)
    for j in range(1, p):
        out = out + lgamma(x - j / 2.0)
    return out + p * (p - 1) / 4.0 * math.log(math.pi)


__all__ = ["svd", "qr", "cholesky_solve", "cholesky_inverse", "triangular_solve", "chain_matmul",
           "frobenius_norm", "nuclear_norm", "mvlgamma", "igammac"]
