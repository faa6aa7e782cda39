"""``lstsq``: the least-squares (minimum-norm) solution of ``A X = B``, with PyTorch's CPU results and gradient.

PyTorch's CPU default driver 'gelsy' (QR with column pivoting) gives the minimum-norm solution of the rank it
finds with ``rcond``; so does the pseudoinverse with ``rtol = rcond``, which is what is computed here
(``X = pinv(A) B``, batched; numpy's and cupy's own ``lstsq`` take one matrix at a time). PyTorch's gradient is
that of ``pinv(A) B`` too (``linalg_lstsq_backward``: ``pinv_backward`` for A, ``pinv(A)^T g`` for B), so the
solution is differentiated through :func:`pinv`. The other outputs follow the driver, as PyTorch's: ``rank``
('gelsy', 'gelsd', 'gelss'; empty for 'gels'), ``singular_values`` ('gelsd', 'gelss'; else empty) and
``residuals`` (the squared residual norms, for every driver but 'gelsy' when ``m > n`` and every matrix has
full rank; else empty). ``residuals`` is differentiable (as PyTorch's), ``rank`` and ``singular_values`` not.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, unwrap

from ._common import as_tensor, check_float, check_matrix
from .pinv import Pinv, matrix_rank
from .svd import svdvals

linalg_lstsq = namedtuple("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])
_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


def lstsq(A, B, rcond=None, *, driver=None):
    """``torch.linalg.lstsq``: ``(solution, residuals, rank, singular_values)`` for ``A`` ``(*, m, n)`` and ``B``
    ``(*, m, k)`` (or ``(*, m)``, a batch of vectors), batch dims broadcast; see the module docstring."""
    driver = "gelsy" if driver is None else driver
    if driver not in _DRIVERS:
        raise RuntimeError("torch.linalg.lstsq: parameter `driver` should be one of (gels, gelsy, gelsd, gelss)")
    a, b = unwrap(A), unwrap(B)
    a, b = (x if hasattr(x, "ndim") else np.asarray(x) for x in (a, b))
    check_matrix(a, "torch.linalg.lstsq", "input")
    check_float(a, "torch.linalg.lstsq")
    check_float(b, "torch.linalg.lstsq", "other")
    vector = b.ndim == 1 or (b.ndim == a.ndim - 1 and b.shape == a.shape[:-1])
    if b.ndim > a.ndim or a.ndim - b.ndim > 1:
        raise RuntimeError("torch.linalg.lstsq: input.dim() must be greater or equal to other.dim() and "
                           "(input.dim() - other.dim()) <= 1")
    if b.ndim == a.ndim - 1 and not vector:  # (PyTorch reads it as a batch of vectors, whose sizes then differ)
        raise RuntimeError(f"torch.linalg.lstsq: B of shape {tuple(b.shape)} with one dim fewer than A must be a "
                           f"batch of vectors of shape {tuple(a.shape[:-1])}: the size of tensor a must match the "
                           f"size of tensor b")
    if (b.shape[-1] if vector else b.shape[-2]) != a.shape[-2]:
        raise RuntimeError("torch.linalg.lstsq: input.size(-2) should match other.size(-2)")
    xp = get_array_module(a)
    m, n = a.shape[-2:]
    tb = as_tensor(B)
    bm = tb.reshape(tuple(b.shape) + (1,)) if vector else tb
    x = Pinv.apply(A, rtol=rcond) @ bm
    empty = Tensor(xp.empty((0,), dtype=a.dtype))
    rank = (matrix_rank(a, rtol=rcond) if driver != "gels" else Tensor(xp.empty((0,), dtype=np.int64)))
    values = Tensor(svdvals(a).data) if driver in ("gelsd", "gelss") else empty
    residuals = empty
    if driver != "gelsy" and m > n:
        full = matrix_rank(a, rtol=rcond).data if driver == "gels" else rank.data
        if bool((full == n).all()):  # (differentiable, as PyTorch's: through the solution too)
            res = as_tensor(A) @ x - bm
            residuals = (res * res).sum(-2)
    if vector:  # (the vectors' column dim dropped again from the solution; PyTorch's residuals keep it)
        x = x.reshape(tuple(x.shape[:-1]))
    return linalg_lstsq(x, residuals, rank, values)
