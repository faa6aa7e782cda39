"""``inv_ex``, ``cholesky_ex`` and ``solve_ex``: ``inv``, ``cholesky`` and ``solve`` that report failure in
``info`` (int32, one per matrix: 0 when it worked, else LAPACK's index: the zero diagonal element of the LU
factorization, the order of the leading minor that is not positive-definite) instead of raising, unless
``check_errors=True``.

Where a matrix failed PyTorch leaves LAPACK's partial results; here its result is NaN. The matrices that worked
get the same values and gradients as from :func:`inv`, :func:`cholesky` and :func:`solve`.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, to_numpy, unwrap
from distnn.functional.elementwise_choice import where

from ._common import LinAlgError, as_tensor, first_zero_pivot, square_float
from .cholesky import Cholesky, _failed_minor
from .inverse import Inv, solve

linalg_inv_ex = namedtuple("linalg_inv_ex", ["inverse", "info"])
linalg_cholesky_ex = namedtuple("linalg_cholesky_ex", ["L", "info"])
linalg_solve_ex = namedtuple("linalg_solve_ex", ["result", "info"])


def _info(a, per_matrix):
    """``per_matrix`` of each matrix of ``a`` (on the host), as an int32 array of the batch shape."""
    host = to_numpy(a)
    stack = host.reshape((-1,) + host.shape[-2:])
    info = np.array([per_matrix(m) for m in stack], dtype=np.int32).reshape(host.shape[:-2])
    return get_array_module(a).asarray(info)


def _guarded(fn, A, a, info):
    """``fn`` of ``A`` with the failed matrices replaced by the identity (so it runs), their results NaN."""
    xp = get_array_module(a)
    failed = (info != 0)[..., None, None]
    if not bool(failed.any()):
        return fn(A)
    eye = xp.broadcast_to(xp.eye(a.shape[-1], dtype=a.dtype), a.shape)
    safe = where(xp.broadcast_to(failed, a.shape), Tensor(eye.copy()), as_tensor(A))
    nan = Tensor(xp.full(a.shape, xp.nan, dtype=a.dtype))
    return where(xp.broadcast_to(failed, a.shape), nan, fn(safe))


def inv_ex(A, *, check_errors=False):
    """``torch.linalg.inv_ex``: ``(inverse, info)``; a singular matrix gives ``info`` > 0 (and a NaN inverse)."""
    a = square_float(A, "linalg.inv_ex")
    try:
        return linalg_inv_ex(Inv.apply(A, op="linalg.inv_ex"), Tensor(get_array_module(a).zeros(a.shape[:-2],
                                                                                              dtype=np.int32)))
    except RuntimeError:
        if check_errors:
            raise
    info = _info(a, first_zero_pivot)
    return linalg_inv_ex(_guarded(lambda t: Inv.apply(t), A, a, info), Tensor(info))


def cholesky_ex(A, *, upper=False, check_errors=False):
    """``torch.linalg.cholesky_ex``: ``(L, info)``; a matrix that is not positive-definite gives ``info`` = the
    order of its first such leading minor (and a NaN ``L``)."""
    a = square_float(A, "linalg.cholesky_ex")
    try:
        low = Cholesky.apply(A, upper=bool(upper), op="linalg.cholesky_ex")
        return linalg_cholesky_ex(low, Tensor(get_array_module(a).zeros(a.shape[:-2], dtype=np.int32)))
    except RuntimeError:
        if check_errors:
            raise
    read = a.swapaxes(-1, -2) if upper else a  # (the triangle the factorization reads)
    info = _info(read, _failed_minor)
    return linalg_cholesky_ex(_guarded(lambda t: Cholesky.apply(t, upper=bool(upper)), A, a, info), Tensor(info))


def solve_ex(A, B, *, left=True, check_errors=False):
    """``torch.linalg.solve_ex``: ``(result, info)``, ``result`` as :func:`solve`'s; ``info`` has ``A``'s batch
    shape: 0, or for a singular matrix the zero diagonal element of its LU factorization (its results NaN)."""
    a = square_float(A, "linalg.solve_ex")
    xp = get_array_module(a)
    try:
        x = solve(A, B, left=left, _op="torch.linalg.solve_ex")
        return linalg_solve_ex(x, Tensor(xp.zeros(a.shape[:-2], dtype=np.int32)))
    except LinAlgError:
        if check_errors:
            raise
    info = _info(a, first_zero_pivot)
    failed = info != 0
    eye = xp.broadcast_to(xp.eye(a.shape[-1], dtype=a.dtype), a.shape)
    safe = where(xp.broadcast_to(failed[..., None, None], a.shape), Tensor(eye.copy()), as_tensor(A))
    x = solve(safe, B, left=left)
    b = unwrap(B)
    vector = b.ndim == 1 or (b.ndim == a.ndim - 1 and tuple(b.shape) == tuple(a.shape[:-1]))
    # (A's batch dims sit just before the solution's last dim (B a batch of vectors) or last two)
    mask = failed.reshape(failed.shape + (1,) * (1 if vector else 2))
    nan = Tensor(xp.full(x.shape, xp.nan, dtype=a.dtype))
    return linalg_solve_ex(where(xp.broadcast_to(mask, x.shape), nan, x), Tensor(info))
