"""``qr``: ``A = Q R`` (Householder, LAPACK's geqrf on the CPU, cuSOLVER's on a GPU: the same signs as
PyTorch's), modes ``'reduced'``, ``'complete'`` and ``'r'``, with PyTorch's gradient:

    for m >= n:  M = R g_R^H - g_Q^H Q,   g_A = (g_Q + Q copyltu(M)) R^{-H},   copyltu(M) = tril(M) + tril(M, -1)^H
    for m < n:   A = [X | Y], R = [U | V]:  g_Y = Q g_V,  g_X = the square case with g_Q + Y g_V^H and g_U

(``^H`` the conjugate transpose: the same formulas serve complex matrices, whose R has a real diagonal, so
``copyltu`` keeps only the real part of M's diagonal there.)

As in PyTorch, ``mode='r'`` has no gradient (Q is not computed) and ``mode='complete'`` with more rows than
columns is not differentiable: both say so when the backward reaches them.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, unwrap

from ._common import check_float, check_matrix, mH, pack, unpack, unpack_grad

linalg_qr = namedtuple("linalg_qr", ["Q", "R"])


def _square_backward(xp, gq, gr, q, r):
    """The gradient for ``m >= n`` (``r`` square)."""
    m = r @ mH(gr) - mH(gq) @ q
    copyltu = xp.tril(m) + mH(xp.tril(m, -1))
    if copyltu.dtype.kind == "c":  # (R's diagonal is real: only the real part of M's diagonal counts, torch's)
        i = xp.arange(m.shape[-1])
        copyltu[..., i, i] = copyltu[..., i, i].real
    x = gq + q @ copyltu
    return mH(xp.linalg.solve(r, mH(x)))  # X R^{-H}: R G^H = X^H


class QR(Function):
    """Q and R packed in one output (see ``_common.pack``)."""

    reads = ((OUTPUT,),)
    supports_complex = True  # (written with conjugate transposes)

    def forward(self, a, mode="reduced"):
        xp = get_array_module(a)
        q, r = xp.linalg.qr(a, mode=mode)
        self.q, self.r, self.mode = q, r, mode
        self.shapes = (q.shape, r.shape)
        return pack(xp, q, r, batch=a.shape[:-2])

    def backward(self, g):
        xp = get_array_module(g)
        gq, gr = unpack_grad(xp, g, self.shapes)
        q, r = self.q, self.r
        m, n = q.shape[-2], r.shape[-1]
        if self.mode == "complete" and m > n:
            raise RuntimeError("The QR decomposition is not differentiable when mode='complete' and nrows > ncols.")
        if m >= n:
            return (_square_backward(xp, gq, gr, q, r),)
        u = r[..., :m]
        gu, gv = gr[..., :m], gr[..., m:]
        y = self.a_right
        gx = _square_backward(xp, gq + y @ mH(gv), gu, q, u)
        return (xp.concatenate([gx, q @ gv], axis=-1),)


class _QRWide(QR):
    """More columns than rows: the backward also reads A's columns past the first ``m``."""

    reads = ((0, OUTPUT),)

    def forward(self, a, mode="reduced"):
        self.a_right = a[..., a.shape[-2]:]
        return super().forward(a, mode)


class RFactor(Function):
    """``mode='r'``: R only, which PyTorch does not differentiate."""

    saves_tensors = False
    supports_complex = True  # (its backward only raises PyTorch's error, for complex A too)

    def forward(self, a):
        return get_array_module(a).linalg.qr(a, mode="r")

    def backward(self, g):
        raise RuntimeError("The derivative of linalg.qr depends on Q, which is not computed when mode='r'. Please "
                           "use linalg.qr(A, mode='reduced') if you are going to differentiate through linalg.qr.")


def qr(A, mode="reduced"):
    """``torch.linalg.qr``: ``(Q, R)`` with ``A = Q R`` for ``A`` of shape ``(*, m, n)``, ``k = min(m, n)``:
    ``'reduced'`` gives Q ``(*, m, k)`` and R ``(*, k, n)``, ``'complete'`` Q ``(*, m, m)`` and R ``(*, m, n)``,
    ``'r'`` an empty Q and the reduced R. ``A`` may be complex."""
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), 'r', "
                           f"or 'complete'")
    a = unwrap(A)
    a = a if hasattr(a, "ndim") else np.asarray(a)
    check_matrix(a, "linalg.qr")
    check_float(a, "linalg.qr", complex_ok=True)
    xp = get_array_module(a)
    if mode == "r":
        return linalg_qr(Tensor(xp.empty((0,), dtype=a.dtype)), RFactor.apply(A))
    m, n = a.shape[-2:]
    k = m if mode == "complete" else min(m, n)
    batch = tuple(a.shape[:-2])
    packed = (_QRWide if m < n else QR).apply(A, mode=mode)
    q, r = unpack(packed, [batch + (m, k), batch + (k, n)])
    return linalg_qr(q, r)
