"""``svd`` and ``svdvals``: ``A = U diag(S) Vh`` (S real, descending), with PyTorch's gradient (real or complex):

    J = (skew(U^H g_U) S + S skew(V^H g_V)) / E + diag(g_S),   skew(X) = X - X^H,   E_ij = s_j^2 - s_i^2 (diag 1)
    complex: J's diagonal also gets diag(skew(U^H g_U)) / (2 S)   (i Im(diag(U^H g_U)) / S)
    m > n:  g_A = (U J + (I - U U^H) g_U S^{-1}) Vh;   m < n:  g_A = U (J Vh + S^{-1} g_Vh (I - V Vh));
    m = n:  g_A = U J Vh

With ``full_matrices=True`` only the first ``k = min(m, n)`` columns of U and rows of Vh are differentiated (the
rest are not unique), as PyTorch. Singular vectors are defined up to sign (complex: up to a phase ``e^{i phi}``
shared by a column of U and the row of Vh): as PyTorch's docs say, only a loss that does not depend on that
choice (and distinct singular values) has a well-defined gradient; for complex ones the backward checks it as
PyTorch's (``Im(diag(U^H g_U)) = -Im(diag(V^H g_V))``) and raises otherwise.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, unwrap

from ._common import check_float, check_matrix, mH, pack, unpack, unpack_grad

linalg_svd = namedtuple("linalg_svd", ["U", "S", "Vh"])

_PHASE = ("svd_backward: The singular vectors in the complex case are specified up to multiplication by e^{i phi}. "
          "The specified loss function depends on this phase term, making it ill-defined.")


def svd_backward(xp, gu, gs, gvh, u, s, vh):
    """PyTorch's ``svd_backward`` on the reduced factors; ``gu``/``gvh`` None when they carry no gradient."""
    m, n = u.shape[-2], vh.shape[-1]
    if gu is None and gvh is None:
        return (u * gs[..., None, :]) @ vh
    complex_ = u.dtype.kind == "c"
    s2 = s * s
    e = s2[..., None, :] - s2[..., :, None]
    i = xp.arange(s.shape[-1])
    e[..., i, i] = 1
    j = xp.zeros(s.shape + s.shape[-1:], dtype=u.dtype)
    im_u = im_v = 0
    if gu is not None:
        uhgu = mH(u) @ gu
        uhgu = uhgu - mH(uhgu)
        j = j + uhgu * s[..., None, :]
        im_u = uhgu[..., i, i].imag if complex_ else 0
    if gvh is not None:
        vhgv = vh @ mH(gvh)
        vhgv = vhgv - mH(vhgv)
        j = j + s[..., :, None] * vhgv
        im_v = vhgv[..., i, i].imag if complex_ else 0
    if complex_ and not bool((xp.abs(im_u + im_v) <= 1e-2 * (1 + xp.abs(im_v))).all()):
        raise RuntimeError(_PHASE)  # (PyTorch's allclose(im_u, -im_v, rtol=1e-2, atol=1e-2))
    j = j / e
    j[..., i, i] += gs
    if complex_ and gu is not None:
        j[..., i, i] += uhgu[..., i, i] / (2 * s)
    if m > n and gu is not None:
        gu_sinv = gu / s[..., None, :]
        return (u @ j + gu_sinv - u @ (mH(u) @ gu_sinv)) @ vh
    if m < n and gvh is not None:
        sinv_gvh = gvh / s[..., :, None]
        return u @ (j @ vh + sinv_gvh - (sinv_gvh @ mH(vh)) @ vh)
    return u @ j @ vh


class SVD(Function):
    """U, S and Vh packed in one output (see ``_common.pack``; complex when A is, S then taken back out real)."""

    reads = ((OUTPUT,),)
    supports_complex = True  # (svd_backward is written with conjugate transposes)

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
        gs = gs.real  # (a complex packed output: S's gradient is real, as S is)
        # (a factor with no gradient at all is left out, as PyTorch's undefined gradients: 0 / 0 stays out)
        gu = gu if bool(xp.any(gu)) else None
        gvh = gvh if bool(xp.any(gvh)) else None
        return (svd_backward(xp, gu, gs, gvh, u, self.s, vh),)


class SVDVals(Function):
    """The singular values; U and Vh are computed too when a gradient is needed (``g_A = U diag(g_S) Vh``)."""

    reads = ((OUTPUT,),)
    supports_complex = True

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
    check_float(a, op, complex_ok=True)
    return a


def svd(A, full_matrices=True):
    """``torch.linalg.svd``: ``(U, S, Vh)`` with ``A = U diag(S) Vh``, S real (also for a complex ``A``);
    ``A`` ``(*, m, n)``, ``k = min(m, n)``:
    U ``(*, m, m)`` and Vh ``(*, n, n)`` (``full_matrices=True``, the default) or ``(*, m, k)`` and ``(*, k, n)``."""
    a = _matrix(A, "linalg.svd")
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = tuple(a.shape[:-2])
    ku, kv = (m, n) if full_matrices else (k, k)
    u, s, vh = unpack(SVD.apply(A, full_matrices=bool(full_matrices)),
                      [batch + (m, ku), batch + (k,), batch + (kv, n)])
    return linalg_svd(u, s.real if a.dtype.kind == "c" else s, vh)


def svdvals(A) -> Tensor:
    """``torch.linalg.svdvals``: the (real) singular values of each real or complex matrix of ``A``, descending."""
    _matrix(A, "linalg.svdvals")
    return SVDVals.apply(A)
