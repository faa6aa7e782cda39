"""``solve_triangular``: ``X`` with ``T X = B`` (``left=False``: ``X T = B``) where ``T`` is the upper or lower
triangle of ``A`` (the other triangle is never read; ``unitriangular``: the diagonal is taken as ones), with
PyTorch's gradient, projected on the triangle that was read:

    left:   g_B = T^{-T} g,   g_A = -g_B X^T;      right:   g_B = g T^{-T},   g_A = -X^T g_B

numpy and cupy have no batched triangular solver: the general ``solve`` runs on the triangle (LU of a
triangular matrix needs no pivoting, so it is as accurate). A zero on the diagonal gives inf/NaN, as PyTorch's
(trsm checks nothing): there the solution comes from a substitution sweep instead of raising.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, unwrap

from ._common import check_float, check_matrix, check_square, mT


def _triangle(xp, a, upper, unit):
    t = xp.triu(a) if upper else xp.tril(a)
    if unit:
        i = xp.arange(a.shape[-1])
        t[..., i, i] = 1
    return t


def _substitute(xp, t, b, upper):
    """``T^{-1} B`` row by row (a singular ``T``: divisions by zero give inf/NaN, not an error)."""
    n = t.shape[-1]
    x = xp.zeros(np.broadcast_shapes(t.shape[:-2], b.shape[:-2]) + b.shape[-2:], dtype=b.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in (range(n - 1, -1, -1) if upper else range(n)):
            acc = b[..., i, :] - (t[..., i:i + 1, :] @ x)[..., 0, :]
            x[..., i, :] = acc / t[..., i, i][..., None]
    return x


def _solve_left(xp, t, b, upper):
    batch = np.broadcast_shapes(t.shape[:-2], b.shape[:-2])
    t_b = xp.broadcast_to(t, batch + t.shape[-2:])
    b_b = xp.broadcast_to(b, batch + b.shape[-2:])
    try:
        return xp.linalg.solve(t_b, b_b)
    except np.linalg.LinAlgError:
        return _substitute(xp, t_b, b_b, upper)


class SolveTriangular(Function):
    reads = ((0, OUTPUT), (0,))

    def forward(self, a, b, upper=False, left=True, unit=False):
        xp = get_array_module(a, b)
        t = _triangle(xp, a, upper, unit)
        self.a, self.t, self.upper, self.left, self.unit = a, t, upper, left, unit  # (a: for the double backward)
        x = _solve_left(xp, t, b, upper) if left else mT(_solve_left(xp, mT(t), mT(b), not upper))
        self.x = x
        return x

    def backward(self, g):
        xp = get_array_module(g)
        t, x = self.t, self.x
        if self.left:
            gb = _solve_left(xp, mT(t), g, not self.upper)
            ga = -(gb @ mT(x))
        else:
            gb = mT(_solve_left(xp, t, mT(g), self.upper))
            ga = -(mT(x) @ gb)
        ga = xp.triu(ga, 1 if self.unit else 0) if self.upper else xp.tril(ga, -1 if self.unit else 0)
        return (ga if self.needs_input_grad[0] else None), (gb if self.needs_input_grad[1] else None)


def solve_triangular(A, B, *, upper, left=True, unitriangular=False) -> Tensor:
    """``torch.linalg.solve_triangular``: the solution of a triangular system (``upper`` is required, as in
    PyTorch), ``A`` ``(*, n, n)`` and ``B`` ``(*, n, k)`` (``left=False``: ``(*, k, n)``), batch dims broadcast."""
    a, b = unwrap(A), unwrap(B)
    a, b = (x if hasattr(x, "ndim") else np.asarray(x) for x in (a, b))
    op = "linalg.solve_triangular"
    check_matrix(a, op)
    check_matrix(b, op, "B")
    check_square(a, op)
    check_float(a, op)
    check_float(b, op, "B")
    n = a.shape[-1]
    if (b.shape[-2] if left else b.shape[-1]) != n:
        raise RuntimeError(f"{op}: Incompatible shapes of A and B for the equation "
                           f"{'AX = B' if left else 'XA = B'} ({n}x{n} and {b.shape[-2]}x{b.shape[-1]})")
    return SolveTriangular.apply(A, B, upper=bool(upper), left=bool(left), unit=bool(unitriangular))
