"""``pinv`` (Moore-Penrose pseudoinverse) and ``matrix_rank``, with PyTorch's tolerances and ``pinv``'s
gradient (PyTorch's ``pinv_backward``, the derivative of ``A^+`` for a fixed rank).

Singular values (``hermitian=True``: eigenvalues in absolute value, from the lower triangle) at or below
``max(atol, rtol * sigma_1)`` count as zero. Defaults, as PyTorch's: ``atol`` 0; ``rtol`` ``max(m, n) * eps``
of the dtype, or 0 when only a positive ``atol`` is given.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, to_numpy, unwrap

from ._common import check_float, dtype_name, mT


def _tolerance(xp, a, top, atol, rtol):
    """``max(atol, rtol * top)`` per matrix (``top``: the largest singular value, batch-shaped, last dim 1)."""
    if rtol is None:
        positive_atol = atol is not None and bool(np.all(np.asarray(_host(atol)) > 0))
        rtol = 0.0 if positive_atol else max(a.shape[-2:]) * float(np.finfo(a.dtype).eps)
    atol = 0.0 if atol is None else atol
    atol, rtol = (_column(xp, unwrap(t), a.dtype) for t in (atol, rtol))
    return xp.maximum(atol, rtol * top)


def _host(t):
    t = unwrap(t)
    return to_numpy(t) if hasattr(t, "dtype") else t


def _column(xp, t, dtype):
    """A tolerance as an array beside the singular values: a tensor's batch shape gets a trailing 1."""
    t = xp.asarray(t, dtype=dtype)
    return t[..., None] if t.ndim else t


def _spectrum(xp, a, hermitian):
    """(U or V, values, Vh or V^T): the SVD, or for ``hermitian`` the eigendecomposition."""
    if hermitian:
        w, v = xp.linalg.eigh(a)
        return v, w, mT(v)
    return xp.linalg.svd(a, full_matrices=False)


class Pinv(Function):
    reads = ((0, OUTPUT),)

    def forward(self, a, atol=None, rtol=None, hermitian=False):
        xp = get_array_module(a)
        u, s, vh = _spectrum(xp, a, hermitian)
        top = xp.abs(s).max(axis=-1, keepdims=True) if s.shape[-1] else xp.zeros(s.shape[:-1] + (1,), a.dtype)
        keep = xp.abs(s) > _tolerance(xp, a, top, atol, rtol)
        inverse = xp.where(keep, 1 / xp.where(keep, s, 1), 0).astype(a.dtype)
        self.a = a
        self.out = (mT(vh) * inverse[..., None, :]) @ mT(u)
        return self.out

    def backward(self, g):
        a, p = self.a, self.out
        pt, gt = mT(p), mT(g)
        m, n = a.shape[-2:]
        if m <= n:
            k = gt @ p
            kpt = k @ pt
            return (-mT(p @ k) + kpt - (a @ p) @ kpt + (pt @ p) @ (gt - k @ a),)
        k = p @ gt
        ptk = pt @ k
        return (-mT(k @ p) + (gt - a @ k) @ p @ pt + ptk - ptk @ p @ a,)


def _matrix(A, op):
    a = unwrap(A)
    a = a if hasattr(a, "ndim") else np.asarray(a)
    if a.ndim < 2 or a.dtype.kind != "f" or a.dtype == np.float16:
        raise RuntimeError(f"{op}({dtype_name(a.dtype)}{list(a.shape)}): expected a tensor with 2 or more "
                           f"dimensions of float or double types")
    return a


def pinv(A, *, atol=None, rtol=None, hermitian=False) -> Tensor:
    """``torch.linalg.pinv``: the pseudoinverse of each matrix of ``A`` (``(*, m, n)`` -> ``(*, n, m)``),
    through the SVD (or, ``hermitian=True``, the eigendecomposition of the lower triangle)."""
    _matrix(A, "linalg.pinv")
    return Pinv.apply(A, atol=atol, rtol=rtol, hermitian=bool(hermitian))


def pinverse(input, rcond=1e-15) -> Tensor:  # noqa: A002 - PyTorch's name
    """``torch.pinverse``: :func:`pinv` with ``rtol=rcond``."""
    _matrix(input, "pinverse")
    return Pinv.apply(input, rtol=rcond)


def matrix_rank(A, *, atol=None, rtol=None, hermitian=False) -> Tensor:
    """``torch.linalg.matrix_rank``: the number of singular values (``hermitian``: |eigenvalues|) above
    ``max(atol, rtol * sigma_1)``, as int64 (no gradient)."""
    a = unwrap(A)
    a = a if hasattr(a, "ndim") else np.asarray(a)
    if a.ndim < 2:
        raise RuntimeError("torch.linalg.matrix_rank: The input tensor input must have at least 2 dimensions.")
    check_float(a, "linalg.matrix_rank")
    xp = get_array_module(a)
    s = xp.abs(xp.linalg.eigvalsh(a)) if hermitian else xp.linalg.svd(a, compute_uv=False)
    top = s.max(axis=-1, keepdims=True) if s.shape[-1] else xp.zeros(s.shape[:-1] + (1,), a.dtype)
    return Tensor((s > _tolerance(xp, a, top, atol, rtol)).sum(axis=-1).astype(np.int64))
