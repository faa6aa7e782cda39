"""``eigh`` and ``eigvalsh``: eigenvalues (real, ascending) and orthonormal eigenvectors of symmetric (or complex
Hermitian) matrices, read from the lower (``UPLO='L'``) or upper triangle, with PyTorch's gradient:

    g_A = V (diag(g_L) + skew(V^H g_V) / E) V^H,   skew(X) = (X - X^H) / 2,   E_ij = L_j - L_i (diagonal: 1)

Eigenvectors are defined up to sign, or a phase ``e^{i phi}`` for complex ones (and, for repeated eigenvalues,
up to a rotation): as PyTorch's docs say, only a loss that does not depend on that choice has a well-defined
gradient (and E has zeros where eigenvalues repeat). For complex eigenvectors the backward checks it as
PyTorch's does (``Im(diag(V^H g_V)) = 0``) and raises otherwise.
"""
from __future__ import annotations

from collections import namedtuple

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._common import mH, pack, square_float, unpack, unpack_grad
from .eig import check_phase_invariant

linalg_eigh = namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])

_PHASE = ("linalg_eigh_backward: The eigenvectors in the complex case are specified up to multiplication by "
          "e^{i phi}. The specified loss function depends on this quantity, so it is ill-defined.")


def _check_uplo(UPLO):  # noqa: N803 - PyTorch's name
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")


class Eigh(Function):
    """Eigenvalues and eigenvectors packed in one output (see ``_common.pack``; complex when A is, the real
    eigenvalues then taken back out by ``eigh``)."""

    reads = ((OUTPUT,),)
    supports_complex = True  # (written with conjugate transposes: one formula for both)

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
        gw = gw.real  # (a complex packed output: the eigenvalues' gradient is real, as they are)
        if not xp.any(gv):  # eigenvectors unused: torch's V diag(g_L) V^H, finite where eigenvalues repeat (0/0)
            return ((v * gw[..., None, :]) @ mH(v),)
        vhgv = mH(v) @ gv
        if vhgv.dtype.kind == "c":
            check_phase_invariant(xp, vhgv, _PHASE)
        inner = 0.5 * (vhgv - mH(vhgv))
        e = w[..., None, :] - w[..., :, None]
        i = xp.arange(w.shape[-1])
        e[..., i, i] = 1
        inner = inner / e
        inner[..., i, i] = gw
        return (v @ inner @ mH(v),)


class Eigvalsh(Function):
    """Eigenvalues only; the eigenvectors are computed too when a gradient is needed (it reads them)."""

    reads = ((OUTPUT,),)
    supports_complex = True

    def forward(self, a, uplo="L"):
        xp = get_array_module(a)
        if not self.needs_input_grad[0]:
            return xp.linalg.eigvalsh(a, UPLO=uplo)
        self.a, self.uplo = a, uplo  # (the double backward differentiates the eigenvectors again)
        w, self.v = xp.linalg.eigh(a, UPLO=uplo)
        return w

    def backward(self, g):
        v = self.v
        return ((v * g[..., None, :]) @ mH(v),)


def eigh(A, UPLO="L"):  # noqa: N803 - PyTorch's name
    """``torch.linalg.eigh``: ``(eigenvalues, eigenvectors)`` of each symmetric (complex: Hermitian) matrix of
    ``A`` (only the triangle ``UPLO`` is read), eigenvalues real and ascending, eigenvectors as columns."""
    a = square_float(A, "linalg.eigh", complex_ok=True)
    _check_uplo(UPLO)
    batch, n = tuple(a.shape[:-2]), a.shape[-1]
    w, v = unpack(Eigh.apply(A, uplo=UPLO), [batch + (n,), batch + (n, n)])
    return linalg_eigh(w.real if a.dtype.kind == "c" else w, v)


def eigvalsh(A, UPLO="L") -> Tensor:  # noqa: N803
    """``torch.linalg.eigvalsh``: the real eigenvalues (ascending) of each symmetric (complex: Hermitian) matrix
    of ``A``."""
    square_float(A, "linalg.eigvalsh", complex_ok=True)
    _check_uplo(UPLO)
    return Eigvalsh.apply(A, uplo=UPLO)
