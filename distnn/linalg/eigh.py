"""``eigh`` and ``eigvalsh``: eigenvalues (ascending) and orthonormal eigenvectors of symmetric matrices, read
from the lower (``UPLO='L'``) or upper triangle, with PyTorch's gradient:

    g_A = V (diag(g_L) + skew(V^T g_V) / E) V^T,   skew(X) = (X - X^T) / 2,   E_ij = L_j - L_i (diagonal: 1)

Eigenvectors are defined up to sign (and, for repeated eigenvalues, up to a rotation): as PyTorch's docs say,
only a loss that does not depend on that choice has a well-defined gradient (and E has zeros where eigenvalues
repeat).
"""
from __future__ import annotations

from collections import namedtuple

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._common import mT, pack, square_float, unpack, unpack_grad

linalg_eigh = namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])


def _check_uplo(UPLO):  # noqa: N803 - PyTorch's name
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")


class Eigh(Function):
    """Eigenvalues and eigenvectors packed in one output (see ``_common.pack``)."""

    reads = ((OUTPUT,),)

    def forward(self, a, uplo="L"):
        xp = get_array_module(a)
        w, v = xp.linalg.eigh(a, UPLO=uplo)
        self.w, self.v = w, v
        self.shapes = (w.shape, v.shape)
        return pack(xp, w, v, batch=a.shape[:-2])

    def backward(self, g):
        xp = get_array_module(g)
        gw, gv = unpack_grad(xp, g, self.shapes)
        w, v = self.w, self.v
        if not xp.any(gv):  # eigenvectors unused: torch's V diag(g_L) V^T, finite where eigenvalues repeat (0/0)
            return ((v * gw[..., None, :]) @ mT(v),)
        vtgv = mT(v) @ gv
        inner = 0.5 * (vtgv - mT(vtgv))
        e = w[..., None, :] - w[..., :, None]
        i = xp.arange(w.shape[-1])
        e[..., i, i] = 1
        inner = inner / e
        inner[..., i, i] = gw
        return (v @ inner @ mT(v),)


class Eigvalsh(Function):
    """Eigenvalues only; the eigenvectors are computed too when a gradient is needed (it reads them)."""

    reads = ((OUTPUT,),)

    def forward(self, a, uplo="L"):
        xp = get_array_module(a)
        if not self.needs_input_grad[0]:
            return xp.linalg.eigvalsh(a, UPLO=uplo)
        self.a, self.uplo = a, uplo  # (the double backward differentiates the eigenvectors again)
        w, self.v = xp.linalg.eigh(a, UPLO=uplo)
        return w

    def backward(self, g):
        v = self.v
        return ((v * g[..., None, :]) @ mT(v),)


def eigh(A, UPLO="L"):  # noqa: N803 - PyTorch's name
    """``torch.linalg.eigh``: ``(eigenvalues, eigenvectors)`` of each symmetric matrix of ``A`` (only the
    triangle ``UPLO`` is read), eigenvalues ascending, eigenvectors as columns."""
    a = square_float(A, "linalg.eigh")
    _check_uplo(UPLO)
    batch, n = tuple(a.shape[:-2]), a.shape[-1]
    w, v = unpack(Eigh.apply(A, uplo=UPLO), [batch + (n,), batch + (n, n)])
    return linalg_eigh(w, v)


def eigvalsh(A, UPLO="L") -> Tensor:  # noqa: N803
    """``torch.linalg.eigvalsh``: the eigenvalues (ascending) of each symmetric matrix of ``A``."""
    square_float(A, "linalg.eigvalsh")
    _check_uplo(UPLO)
    return Eigvalsh.apply(A, uplo=UPLO)
