"""``inv`` and ``solve``, with PyTorch's gradients, broadcasting and errors.

``inv``: ``g_A = -A^{-H} g A^{-H}``. ``solve`` (``AX = B``): ``g_B = A^{-H} g`` and ``g_A = -g_B X^H``;
``left=False`` (``XA = B``) is the transposed problem ``A^T X^T = B^T``. (``^H``, the conjugate transpose, is the
plain one for real matrices: the complex formulas are the real ones with the saved operands conjugated.) A singular
matrix raises :class:`LinAlgError` naming the batch element (and, for ``inv``, the zero diagonal element of its LU
factorization), with PyTorch's wording.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, to_numpy, unwrap

from ._common import (LinAlgError, as_tensor, batch_prefix, check_float, dtype_name, finite_or_check, mT,
                      singular_element, square_float)


def _raise_singular_inv(a_host, op="linalg.inv"):
    found = singular_element(a_host)
    index, pivot = found if found is not None else (0, 0)
    element = f"The diagonal element {pivot} is zero, " if pivot else ""
    raise LinAlgError(f"{op}: {batch_prefix(a_host.shape, index)}{element}the inversion could not be completed "
                      f"because the input matrix is singular.")


def _raise_singular_solve(a_host, op="torch.linalg.solve"):
    found = singular_element(a_host)
    index = found[0] if found is not None else 0
    raise LinAlgError(f"{op}: {batch_prefix(a_host.shape, index)}The solver failed because the input "
                      f"matrix is singular.")


def inverse_array(xp, a, op="linalg.inv"):
    """``inv(a)`` on raw arrays, raising PyTorch's error for a singular matrix on either device."""
    try:
        out = xp.linalg.inv(a)
    except np.linalg.LinAlgError:
        _raise_singular_inv(to_numpy(a), op)
    return finite_or_check(xp, out, a, lambda h: _raise_singular_inv(h, op))


class Inv(Function):
    reads = ((OUTPUT,),)
    supports_complex, conj_saved = True, ("out",)

    def forward(self, a, op="linalg.inv"):
        self.out = inverse_array(get_array_module(a), a, op)
        return self.out

    def backward(self, g):
        t = mT(self.out)
        return (-(t @ g @ t),)


class Solve(Function):
    """``A X = B`` for a matrix ``B`` (``vector``: ``B`` is one column, given without its last dim)."""

    reads = ((0, OUTPUT), (0,))
    supports_complex, conj_saved = True, ("a", "x")

    def forward(self, a, b, vector=False, op="torch.linalg.solve"):
        xp = get_array_module(a, b)
        self.vector, self.a_in = vector, a  # (a_in: A as given, for the double backward)
        bm = b[..., None] if vector else b
        batch = np.broadcast_shapes(a.shape[:-2], bm.shape[:-2])  # (cupy's solve wants equal batch dims)
        a = xp.broadcast_to(a, batch + a.shape[-2:])
        bm = xp.broadcast_to(bm, batch + bm.shape[-2:])
        try:
            x = xp.linalg.solve(a, bm)
        except np.linalg.LinAlgError:
            _raise_singular_solve(to_numpy(a), op)
        finite_or_check(xp, x, a, lambda h: _raise_singular_solve(h, op))
        self.a, self.x = a, x
        return x[..., 0] if vector else x

    def backward(self, g):
        xp = get_array_module(g)
        gm = g[..., None] if self.vector else g
        gb = xp.linalg.solve(mT(self.a), xp.broadcast_to(gm, self.x.shape))
        ga = -(gb @ mT(self.x)) if self.needs_input_grad[0] else None
        return ga, (gb[..., 0] if self.vector else gb)


def inv(A) -> Tensor:
    """``torch.linalg.inv``: the inverse of each (real or complex) matrix of ``A``; a singular one raises
    :class:`LinAlgError`."""
    square_float(A, "linalg.inv", complex_ok=True)
    return Inv.apply(A)


def solve(A, B, *, left=True, _op="torch.linalg.solve") -> Tensor:
    """``torch.linalg.solve``: ``X`` with ``A X = B`` (``X A = B`` when ``left=False``).

    ``B`` is a batch of vectors when it is 1-D or has ``A``'s shape without its last dim, else a batch of
    matrices; batch dims broadcast. ``A`` and ``B`` may be complex (of one dtype). A singular ``A`` raises
    :class:`LinAlgError`."""
    a = square_float(A, "linalg.solve", complex_ok=True)
    b = unwrap(B)
    b = b if hasattr(b, "ndim") else np.asarray(b)
    check_float(b, "linalg.solve", "B", complex_ok=True)
    if a.dtype != b.dtype:
        raise RuntimeError(f"linalg.solve: Expected A and B to have the same dtype, but found A of type "
                           f"{dtype_name(a.dtype)} and B of type {dtype_name(b.dtype)} instead")
    n = a.shape[-1]
    vector = b.ndim == 1 or (b.ndim == a.ndim - 1 and b.shape == a.shape[:-1])
    rows = b.shape[-1] if vector else b.shape[-2 if left else -1]
    if rows != n or (vector and not left and n != 1):
        shape_b = f"{b.shape[-1]}x1" if vector else f"{b.shape[-2]}x{b.shape[-1]}"
        raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation "
                           f"{'AX = B' if left else 'XA = B'} ({n}x{n} and {shape_b})")
    if not left:  # X A = B  <=>  A^T X^T = B^T
        if vector:  # (1 by 1 matrices only get here: refused as PyTorch refuses them)
            raise RuntimeError("linalg.solve: Vector broadcasting of the left hand side is not supported for "
                               "left=False. In this case linalg.solve is equivalent to B / A.squeeze(-1)")
        return Solve.apply(as_tensor(A).mT, as_tensor(B).mT, op=_op).mT
    return Solve.apply(A, B, vector=vector, op=_op)
