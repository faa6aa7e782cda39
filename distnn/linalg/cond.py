"""``cond``: the condition number of each matrix, as PyTorch computes it (``linalg_cond`` in ATen), so that its
gradient is PyTorch's too (the derivative of the composition below):

    p None, 2, -2:  s_max / s_min (-2: s_min / s_max) from ``svdvals``; any shape of matrix
    'nuc':          sum(s) * sum(1 / s)  (PyTorch does not go through ``matrix_norm`` for it)
    'fro', +-1, +-inf:  ``matrix_norm(A, p) * matrix_norm(inv(A), p)``, square matrices only; a singular matrix's
                    inverse counts as all inf, so its condition number is inf (a 0 * inf NaN is inf too).

Empty matrices have condition number 0 (NumPy leaves it undefined; PyTorch returns 0).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module
from distnn.functional.elementwise_choice import where

from ._common import as_tensor, check_float, check_square
from .ex import inv_ex
from .norms import matrix_norm
from .svd import svdvals

_NUMBER_ORDS = (2, -2, 1, -1, math.inf, -math.inf)


def _name(p) -> str:
    """The order as PyTorch's messages print it (C++'s ``std::to_string``: a float with six decimals)."""
    if isinstance(p, str):
        return p
    return f"{p:f}" if isinstance(p, float) else str(p)


def cond(A, p=None) -> Tensor:
    """``torch.linalg.cond``: the condition number of each matrix of ``A`` ``(*, m, n)`` in the norm ``p`` (None
    or 2, -2, 'fro', 'nuc', inf, -inf, 1, -1); only None and +-2 accept non-square matrices."""
    t = as_tensor(A)
    a = t.data
    xp = get_array_module(a)
    if isinstance(p, str):
        check_square(a, f"linalg.cond(ord={p})")
        if p not in ("fro", "nuc"):
            raise RuntimeError(f"linalg.cond got an invalid norm type: {p}")
    else:
        if a.ndim < 2:
            raise RuntimeError("linalg.cond: The input tensor must have at least 2 dimensions.")
        p = 2 if p is None else p
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or p not in _NUMBER_ORDS:
            raise RuntimeError(f"linalg.cond got an invalid norm type: {_name(p)}")
    check_float(a, "linalg.cond")
    if a.size == 0:  # (0 per matrix of the batch)
        return Tensor(xp.zeros(a.shape[:-2], dtype=a.dtype))
    if p == "nuc":
        s = svdvals(t)
        return s.sum(-1) * (1.0 / s).sum(-1)
    if not isinstance(p, str) and abs(p) == 2:
        s = svdvals(t)
        top, bottom = s[..., 0], s[..., -1]
        return bottom / top if p == -2 else top / bottom
    check_square(a, f"linalg.cond(ord={_name(p)})")
    inverse, info = inv_ex(t)
    failed = xp.broadcast_to((info.data > 0)[..., None, None], a.shape)
    inverse = where(failed, Tensor(xp.full(a.shape, np.inf, dtype=a.dtype)), inverse)
    out = matrix_norm(t, p) * matrix_norm(inverse, p)
    return where(xp.isnan(out.data), Tensor(xp.asarray(np.inf, dtype=a.dtype)), out)
