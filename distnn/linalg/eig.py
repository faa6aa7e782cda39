"""``eig`` and ``eigvals``: the eigenvalues and eigenvectors of general (non-symmetric) square matrices, always
complex (``A V = V diag(L)``), with PyTorch's gradient (``linalg_eig_backward``):

    g_A = V^{-H} (X / conj(E) + diag(g_L)) V^H,   X = V^H g_V - V^H V Re(diag(V^H g_V)),   E_ij = L_j - L_i

Eigenvectors are unit columns (LAPACK geev's normalization), defined only up to a phase ``e^{i phi}`` each: the
gradient exists only for a loss that does not depend on those phases, which is ``Im(diag(V^H g_V)) = 0``. As
PyTorch, a backward that finds it otherwise raises instead of returning a meaningless gradient; the projection
``X`` keeps only what the unit-norm columns can change. ``eigvals`` alone has ``g_A = V^{-H} diag(g_L) V^H``.

numpy's ``np.linalg.eig`` (LAPACK geev) computes on stacks of matrices; cupy has no general eigensolver, so on a
GPU the forward runs on the host and its results move back (the backward stays on the GPU). The dtypes are
PyTorch's: float32 and complex64 give complex64, float64 and complex128 give complex128.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import device_of, get_array_module, to_device, to_numpy

from ._common import mH, pack, square_float, unpack, unpack_grad

linalg_eig = namedtuple("linalg_eig", ["eigenvalues", "eigenvectors"])

_PHASE = ("linalg_eig_backward: The eigenvectors in the complex case are specified up to multiplication by "
          "e^{i phi}. The specified loss function depends on this quantity, so it is ill-defined.")


def complex_of(dtype):
    """PyTorch's complex dtype of a float or complex ``dtype`` (float32 -> complex64, float64 -> complex128)."""
    return np.result_type(dtype, np.complex64)


def check_phase_invariant(xp, vhgv, message):
    """PyTorch's check that the loss does not depend on the eigenvectors' phases: ``Im(diag(V^H g_V))`` zero,
    within its lax ``allclose(..., rtol=1e-2, atol=1e-2)`` (a NaN fails it, as there)."""
    im = xp.diagonal(vhgv, axis1=-2, axis2=-1).imag
    if not bool((xp.abs(im) <= 1e-2).all()):
        raise RuntimeError(message)


def _eig_arrays(a, vectors: bool):
    """numpy's eig of ``a`` on the host (cupy has none), as complex arrays on ``a``'s device. ``eig`` refuses a
    non-finite matrix as PyTorch; ``eigvals`` gives NaN eigenvalues for one (PyTorch's LAPACK garbage there)."""
    host = to_numpy(a)
    dtype = complex_of(host.dtype)
    finite = np.isfinite(host).all(axis=(-2, -1))
    if not finite.all():
        if vectors:
            raise RuntimeError("torch.linalg.eig: input tensor should not contain infs or NaNs.")
        host = np.where(finite[..., None, None], host, 0)
    if vectors:
        w, v = np.linalg.eig(host)
        out = (w.astype(dtype, copy=False), v.astype(dtype, copy=False))  # (numpy's are real when all L are)
    else:
        w = np.linalg.eigvals(host).astype(dtype, copy=False)
        out = (np.where(finite[..., None], w, np.asarray(np.nan + 1j * np.nan, dtype=dtype)),)
    if get_array_module(a) is not np:
        out = tuple(to_device(x, device_of(a)) for x in out)
    return out


def _eigvals_backward(xp, gl, v):
    """``V^{-H} diag(g_L) V^H``: the gradient through the eigenvalues alone."""
    vh = mH(v)
    return xp.linalg.solve(vh, gl[..., :, None] * vh)


class Eig(Function):
    """Eigenvalues and eigenvectors packed in one output (see ``_common.pack``); always a complex node."""

    reads = ((OUTPUT,),)
    supports_complex = True

    def forward(self, a):
        xp = get_array_module(a)
        w, v = _eig_arrays(a, vectors=True)
        self.w, self.v = w, v
        self.shapes = (w.shape, v.shape)
        return pack(xp, w, v, batch=a.shape[:-2])

    def backward(self, g):
        xp = get_array_module(g)
        gl, gv = unpack_grad(xp, g, self.shapes)
        w, v = self.w, self.v
        if not xp.any(gv):  # (eigenvectors unused: PyTorch's shortcut, no phase check)
            return (_eigvals_backward(xp, gl, v),)
        vh = mH(v)
        vhgv = vh @ gv
        check_phase_invariant(xp, vhgv, _PHASE)
        # project onto what unit-norm columns can change: remove V^H V Re(diag(V^H g_V))
        re_diag = xp.diagonal(vhgv, axis1=-2, axis2=-1).real
        x = vhgv - vh @ (v * re_diag[..., None, :])
        lc = w.conj()
        e = lc[..., None, :] - lc[..., :, None]
        i = xp.arange(w.shape[-1])
        e[..., i, i] = 1
        x = x / e
        x[..., i, i] = gl
        return (xp.linalg.solve(vh, x @ vh),)


class Eigvals(Function):
    """The eigenvalues; the eigenvectors are computed too when a gradient is needed (it reads them)."""

    reads = ((OUTPUT,),)
    supports_complex = True

    def forward(self, a):
        if not self.needs_input_grad[0]:
            return _eig_arrays(a, vectors=False)[0]
        w, self.v = _eig_arrays(a, vectors=True)
        return w

    def backward(self, g):
        return (_eigvals_backward(get_array_module(g), g, self.v),)


def eig(A):  # noqa: N803 - PyTorch's name
    """``torch.linalg.eig``: ``(eigenvalues, eigenvectors)`` of each square matrix of ``A`` (real or complex),
    both complex (complex64 for float32/complex64 input, else complex128), eigenvectors as unit-norm columns.

    Eigenvalues come in LAPACK's order (not sorted) and each eigenvector is defined up to a phase: a loss that
    depends on the phases has no gradient, and its backward raises as PyTorch's. A matrix with inf or NaN raises.
    On a GPU the decomposition is computed on the host (cupy has no general eigensolver) and moved back."""
    a = square_float(A, "linalg.eig", complex_ok=True)
    batch, n = tuple(a.shape[:-2]), a.shape[-1]
    w, v = unpack(Eig.apply(A), [batch + (n,), batch + (n, n)])
    return linalg_eig(w, v)


def eigvals(A) -> Tensor:  # noqa: N803
    """``torch.linalg.eigvals``: the complex eigenvalues of each square matrix of ``A`` (LAPACK's order), with
    ``g_A = V^{-H} diag(g_L) V^H``. On a GPU they are computed on the host and moved back."""
    square_float(A, "linalg.eigvals", complex_ok=True)
    return Eigvals.apply(A)
