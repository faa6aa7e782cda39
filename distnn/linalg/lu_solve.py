"""``lu_solve``: the solution of ``A X = B`` (``left=False``: ``X A = B``; ``adjoint``: with ``A^T``) from
``lu_factor``'s ``(LU, pivots)``, ``A = P L U``, as two triangular solves and a row permutation:

    A X = B:      X = U^{-1} L^{-1} P^T B          A^T X = B:      X = P L^{-T} U^{-T} B
    X A = B:      X = B U^{-1} L^{-1} P^T          X A^T = B:      X = B P L^{-T} U^{-T}

composed of ``lu_unpack`` and ``solve_triangular``, so it is differentiable in ``B`` and in ``LU`` (through ``L``'s
strict lower triangle and ``U``), as PyTorch's; the pivots carry none. Batch dims of ``LU`` and ``B`` broadcast.
"""
from __future__ import annotations

import warnings

import numpy as np

from distnn.backend import unwrap

from ._common import as_tensor, dtype_name
from .lu import lu_unpack
from .triangular import solve_triangular


def _check(lu, pivots, b, left):
    op = "linalg.lu_solve"
    if lu.ndim < 2 or lu.shape[-1] != lu.shape[-2]:
        raise RuntimeError(f"torch.{op}: A must be batches of square matrices, but they are "
                           f"{lu.shape[-2] if lu.ndim > 1 else 1} by {lu.shape[-1]} matrices")
    if b.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor B must have at least 2 dimensions.")
    if lu.dtype.kind != "f":
        raise RuntimeError(f"torch.{op}: Expected a floating point or complex tensor as input. Got "
                           f"{dtype_name(lu.dtype)}")
    if pivots.dtype != np.int32:
        raise RuntimeError(f"{op}: pivots should be a Tensor of scalar type torch.int32")
    if lu.dtype != b.dtype:
        raise RuntimeError(f"{op}: Expected LU and B to have the same dtype, but found LU of type "
                           f"{dtype_name(lu.dtype)} and B of type {dtype_name(b.dtype)} instead")
    n = lu.shape[-1]
    if (b.shape[-2] if left else b.shape[-1]) != n:
        raise RuntimeError(f"{op}: Incompatible shapes of A and B for the equation {'AX = B' if left else 'XA = B'} "
                           f"({n}x{n} and {b.shape[-2]}x{b.shape[-1]})")


def lu_solve(LU, pivots, B, *, left=True, adjoint=False):  # noqa: N803 - PyTorch's names
    """``torch.linalg.lu_solve``: ``X`` with ``A X = B`` (``left=False``: ``X A = B``; ``adjoint``: ``A^T`` for
    ``A``), ``A = P L U`` given as ``lu_factor``'s ``(LU, pivots)``; ``LU`` ``(*, n, n)``, ``B`` ``(*, n, k)``
    (``left=False``: ``(*, k, n)``)."""
    lu, piv, b = unwrap(LU), unwrap(pivots), unwrap(B)
    _check(lu, piv, b, left)
    p, low, up = lu_unpack(LU, pivots)
    B = as_tensor(B)
    if left and not adjoint:
        y = solve_triangular(low, p.mT @ B, upper=False, unitriangular=True)
        return solve_triangular(up, y, upper=True)
    if left:
        y = solve_triangular(up.mT, B, upper=False)
        return p @ solve_triangular(low.mT, y, upper=True, unitriangular=True)
    if not adjoint:
        y = solve_triangular(up, B, upper=True, left=False)
        return solve_triangular(low, y, upper=False, left=False, unitriangular=True) @ p.mT
    y = solve_triangular(low.mT, B @ p, upper=True, left=False, unitriangular=True)
    return solve_triangular(up.mT, y, upper=False, left=False)


def lu_solve_deprecated(b, LU_data, LU_pivots, _stacklevel=2):  # noqa: N803
    """``torch.lu_solve(b, LU_data, LU_pivots)`` (deprecated in PyTorch for ``linalg.lu_solve``, whose arguments
    are the other way round): the solution of ``A X = b``."""
    warnings.warn("torch.lu_solve is deprecated in favor of torch.linalg.lu_solve and will be removed in a future "
                  "PyTorch release: distnn.lu_solve(B, LU, pivots) is distnn.linalg.lu_solve(LU, pivots, B)",
                  UserWarning, stacklevel=_stacklevel)
    return lu_solve(LU_data, LU_pivots, b)
