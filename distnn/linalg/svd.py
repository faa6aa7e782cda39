"""``svd`` and ``svdvals``: ``A = U diag(S) Vh`` (S descending), with PyTorch's gradient (real matrices):

    J = (skew(U^T g_U) S + S skew(V^T g_V)) / E + diag(g_S),   skew(X) = X - X^T,   E_ij = s_j^2 - s_i^2 (diag 1)
    m > n:  g_A = (U J + (I - U U^T) g_U S^{-1}) Vh;   m < n:  g_A = U (J Vh + S^{-1} g_Vh (I - V Vh));
    m = n:  g_A = U J Vh

With ``full_matrices=True`` only the first ``k = min(m, n)`` columns of U and rows of Vh are differentiated (the
rest are not unique), as PyTorch. Singular vectors are defined up to sign: as PyTorch's docs say, only a loss
that does not depend on that choice (and distinct singular values) has a well-defined gradient.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, unwrap

from ._common import check_float, check_matrix, mT, pack, unpack, unpack_grad

linalg_svd = namedtuple("linalg_svd", ["U", "S", "Vh"])


def svd_backward(xp, gu, gs, gvh, u, s, vh):
    """PyTorch's ``svd_backward`` on the reduced factors; ``gu``/``gvh`` None when they carry no gradient."""
    m, n = u.shape[-2], vh.shape[-1]
    if gu is None and gvh is None:
        return (u * gs[..., None, :]) @ vh
    s2 = s * s
    e = s2[..., None, :] - s2[..., :, None]
    i = xp.arange(s.shape[-1])
    e[..., i, i] = 1
    j = xp.zeros(s.shape + s.shape[-1:], dtype=s.dtype)
    if gu is not None:
        utgu = mT(u) @ gu
        j = j + (utgu - mT(utgu)) * s[..., None, :]
    if gvh is not None:
        vtgv = vh @ mT(gvh)
        j = j + s[..., :, None] * (vtgv - mT(vtgv))
    j = j / e
    j[..., i, i] += gs
    if m > n and gu is not None:
        gu_sinv = gu / s[..., None, :]
        return (u @ j + gu_sinv - u @ (mT(u) @ gu_sinv)) @ vh
    if m < n and gvh is not None:
        sinv_gvh = gvh / s[..., :, None]
        return u @ (j @ vh + sinv_gvh - (sinv_gvh @ mT(vh)) @ vh)
    return u @ j @ vh


class SVD(Function):
    """U, S and Vh packed in one output (see ``_common.pack``)."""

    reads = ((OUTPUT,),)

    def forward(self, a, full_matrices=True):
        xp = get_array_module(a)
        u, s, vh = xp.linalg.svd(a, full_matrices=full_matrices)
        self.u, self.s, self.vh = u, s, vh
        self.shapes = (u.shape, s.shape, vh.shape)
        return pack(xp, u, s, vh, batch=a.shape[:-2])

    def backward(self, g):
        xp = get_array_module(g)
        gu, gs, gvh = unpack_grad(xp, g, self.shapes)
        k = self.s.shape[-1]
        u, vh = self.u[..., :k], self.vh[..., :k, :]  # (full_matrices: the first k columns and rows, as PyTorch)
        gu, gvh = gu[..., :k], gvh[..., :k, :]
        # (a factor with no gradient at all is left out, as PyTorch's undefined gradients: 0 / 0 stays out)
        gu = gu if bool(xp.any(gu)) else None
        gvh = gvh if bool(xp.any(gvh)) else None
        return (svd_backward(xp, gu, gs, gvh, u, self.s, vh),)


class SVDVals(Function):
    """The singular values; U and Vh are computed too when a gradient is needed (``g_A = U diag(g_S) Vh``)."""

    reads = ((OUTPUT,),)

    def forward(self, a):
        xp = get_array_module(a)
        if not self.needs_input_grad[0]:
            return xp.linalg.svd(a, compute_uv=False)
        self.u, s, self.vh = xp.linalg.svd(a, full_matrices=False)
        self.s = s  # (for the graph backward, which records this SVD as a node: derivatives/linalg_more.py)
        return s

    def backward(self, g):
        return ((self.u * g[..., None, :]) @ self.vh,)


def _matrix(A, op):
    a = unwrap(A)
    a = a if hasattr(a, "ndim") else np.asarray(a)
    check_matrix(a, op)
    check_float(a, op)
    return a


def svd(A, full_matrices=True):
    """``torch.linalg.svd``: ``(U, S, Vh)`` with ``A = U diag(S) Vh``; ``A`` ``(*, m, n)``, ``k = min(m, n)``:
    U ``(*, m, m)`` and Vh ``(*, n, n)`` (``full_matrices=True``, the default) or ``(*, m, k)`` and ``(*, k, n)``."""
    a = _matrix(A, "linalg.svd")
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = tuple(a.shape[:-2])
    ku, kv = (m, n) if full_matrices else (k, k)
    u, s, vh = unpack(SVD.apply(A, full_matrices=bool(full_matrices)),
                      [batch + (m, ku), batch + (k,), batch + (kv, n)])
    return linalg_svd(u, s, vh)


def svdvals(A) -> Tensor:
    """``torch.linalg.svdvals``: the singular values of each matrix of ``A``, descending."""
    _matrix(A, "linalg.svdvals")
    return SVDVals.apply(A)
