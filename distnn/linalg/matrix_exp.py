"""``matrix_exp``: the exponential of square matrices by scaling and squaring with the degree-13 Padé
approximant (Higham 2005, as SciPy's ``expm`` and PyTorch's largest degree), each matrix of a batch scaled by
its own power of two; the gradient by PyTorch's block-matrix trick:

    g_A = the upper right block of exp([[A^T, g], [0, A^T]])
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._common import mT, square_float

# the coefficients of the degree-13 Padé approximant, and the 1-norm up to which it is accurate in float64
_B = (64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0, 129060195264000.0,
      10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0, 40840800.0, 960960.0, 16380.0, 182.0, 1.0)
_THETA13 = 5.371920351148152


def expm(xp, a):
    """``exp`` of each matrix of the raw array ``a``."""
    n = a.shape[-1]
    if n == 0:
        return a.copy()
    norm1 = xp.abs(a).sum(axis=-2).max(axis=-1)
    with np.errstate(divide="ignore"):
        s = xp.maximum(xp.ceil(xp.log2(norm1 / _THETA13)), 0)  # (a zero matrix: log2(0) = -inf, no scaling)
    s = xp.where(xp.isfinite(s), s, 0).astype(np.int64)
    a = a / (2.0 ** s).astype(a.dtype)[..., None, None]
    b = _B
    eye = xp.eye(n, dtype=a.dtype)
    a2 = a @ a
    a4 = a2 @ a2
    a6 = a4 @ a2
    u = a @ (a6 @ (b[13] * a6 + b[11] * a4 + b[9] * a2) + b[7] * a6 + b[5] * a4 + b[3] * a2 + b[1] * eye)
    v = a6 @ (b[12] * a6 + b[10] * a4 + b[8] * a2) + b[6] * a6 + b[4] * a4 + b[2] * a2 + b[0] * eye
    r = xp.linalg.solve(v - u, v + u)
    for k in range(int(s.max()) if s.size else 0):  # (squarings: each matrix its own count)
        r = xp.where((s > k)[..., None, None], r @ r, r)
    return r


class MatrixExp(Function):
    reads = ((0,),)

    def forward(self, a):
        self.a = a
        return expm(get_array_module(a), a)

    def backward(self, g):
        xp = get_array_module(g)
        at = mT(self.a)
        n = at.shape[-1]
        batch = np.broadcast_shapes(at.shape[:-2], g.shape[:-2])
        block = xp.zeros(batch + (2 * n, 2 * n), dtype=g.dtype)
        block[..., :n, :n] = at
        block[..., n:, n:] = at
        block[..., :n, n:] = g
        return (expm(xp, block)[..., :n, n:],)


def matrix_exp(A) -> Tensor:
    """``torch.linalg.matrix_exp``: ``exp(A) = sum_k A^k / k!`` for each square matrix of ``A``."""
    square_float(A, "linalg.matrix_exp")
    return MatrixExp.apply(A)
