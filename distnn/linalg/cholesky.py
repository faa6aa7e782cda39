"""``cholesky``: ``A = L L^H`` for symmetric (complex: Hermitian) positive-definite ``A`` (only its lower
triangle is read; with ``upper=True``, ``A = U^H U`` from its upper triangle, as LAPACK's and PyTorch's), with
PyTorch's gradient (Murray 2016, arXiv 1602.07527):

    P = tril(L^H g_L), P = (P + tril(P, -1)^H) / 2  (the lower triangle mirrored, the diagonal halved),
    g_A = L^{-H} P L^{-1}

A matrix that is not positive-definite raises :class:`LinAlgError` naming the batch element and the order of
its first leading minor that is not positive-definite, as PyTorch.
"""
from __future__ import annotations

import warnings

import numpy as np

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, to_numpy

from ._common import LinAlgError, batch_prefix, finite_or_check, mH, square_float


def _failed_minor(m) -> int:
    """The order of the first leading minor of ``m`` that is not positive-definite (error path only)."""
    for k in range(1, m.shape[-1] + 1):
        try:
            np.linalg.cholesky(m[:k, :k])
        except np.linalg.LinAlgError:
            return k
        if not np.isfinite(m[:k, :k]).all():
            return k
    return 0


def _raise_not_positive_definite(a_host, op):
    stack = a_host.reshape((-1,) + a_host.shape[-2:])
    index, order = 0, 0
    for index, m in enumerate(stack):
        order = _failed_minor(m)
        if order:
            break
    raise LinAlgError(f"{op}: {batch_prefix(a_host.shape, index)}The factorization could not be completed because "
                      f"the input is not positive-definite (the leading minor of order {order} is not "
                      f"positive-definite).")


class Cholesky(Function):
    reads = ((OUTPUT,),)
    supports_complex = True  # (written with conjugate transposes)

    def forward(self, a, upper=False, op="linalg.cholesky"):
        xp = get_array_module(a)
        if upper:  # (the upper triangle of A is the lower one of A^H, conjugated)
            a = mH(a)
        try:
            low = xp.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            _raise_not_positive_definite(to_numpy(a), op)
        finite_or_check(xp, low, a, lambda h: _raise_not_positive_definite(h, op))
        self.low, self.upper = low, upper
        return xp.ascontiguousarray(mH(low)) if upper else low

    def backward(self, g):
        xp = get_array_module(g)
        low = self.low
        if self.upper:
            g = mH(g)
        p = xp.tril(mH(low) @ g)
        p = 0.5 * (p + mH(xp.tril(p, -1)))
        low_inv = xp.linalg.inv(low)
        return (mH(low_inv) @ p @ low_inv,)


def cholesky(A, *, upper=False) -> Tensor:
    """``torch.linalg.cholesky``: ``L`` (lower triangular, ``A = L L^H``), or ``U = L^H`` when ``upper``; ``A`` real
    symmetric or complex Hermitian positive-definite."""
    square_float(A, "linalg.cholesky", complex_ok=True)
    return Cholesky.apply(A, upper=bool(upper))


def cholesky_deprecated(A, upper=False, _stacklevel=2) -> Tensor:
    """``torch.cholesky`` (deprecated in PyTorch for :func:`distnn.linalg.cholesky`, with the same warning)."""
    warnings.warn("torch.cholesky is deprecated in favor of torch.linalg.cholesky and will be removed in a future "
                  "PyTorch release; distnn.cholesky(A, upper=True) is distnn.linalg.cholesky(A).mT",
                  UserWarning, stacklevel=_stacklevel)
    square_float(A, "cholesky")
    return Cholesky.apply(A, upper=bool(upper), op="cholesky")
