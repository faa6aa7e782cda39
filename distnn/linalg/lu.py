"""``lu_factor``, ``lu_factor_ex``, ``lu`` and ``lu_unpack``: ``A = P L U`` with partial pivoting (LAPACK's getrf
convention, as PyTorch's: ``LU`` holds ``L``'s strict lower triangle and ``U``, ``pivots`` (int32, 1-based) says
that row ``i`` was swapped with row ``pivots[i] - 1``, in order), for square and rectangular ``(*, m, n)``.

numpy and cupy have no LU, so the factorization is written here: a loop over the ``k = min(m, n)`` columns, each
step on the whole batch at once (the pivot is the first largest ``|a|`` of the column, as LAPACK's ``idamax``). A
column with no non-zero pivot is left as it is and counted in ``info`` (its 1-based index, the first one), as
LAPACK: the factorization of a singular matrix succeeds. PyTorch's gradient (``linalg_lu_backward``), with
``k = min(m, n)``, ``L1``/``U1`` the square ``k x k`` blocks and ``L2``/``U2`` the rest:

    m == n:  g_A = P L^{-T} [tril(L^T g_L, -1) + triu(g_U U^T)] U^{-T}
    m < n:   g_A = P L^{-T} [X + triu(g_U1) | g_U2],   X = tril(L^T g_L - triu(g_U) U^T, -1) U1^{-T}
    m > n:   g_A = P [X + tril(g_L1, -1); g_L2] U^{-T},   X = L1^{-T} triu(g_U U^T - L^T g_L)
"""
from __future__ import annotations

import warnings
from collections import namedtuple

import numpy as np

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, unwrap

from ._common import LinAlgError, as_tensor, batch_prefix, check_matrix, dtype_name, mT
from .triangular import _solve_left

linalg_lu_factor = namedtuple("linalg_lu_factor", ["LU", "pivots"])
linalg_lu_factor_ex = namedtuple("linalg_lu_factor_ex", ["LU", "pivots", "info"])
linalg_lu = namedtuple("linalg_lu", ["P", "L", "U"])
lu_unpack_out = namedtuple("lu_unpack", ["P", "L", "U"])


def getrf(xp, a):
    """``(LU, pivots, info)`` of the stack ``a`` (``(*, m, n)``): partial pivoting, one column at a time over the
    whole batch. ``info`` is the 1-based index of the first zero pivot (0: none)."""
    batch, (m, n) = a.shape[:-2], a.shape[-2:]
    k = min(m, n)
    lu = xp.array(a.reshape((int(np.prod(batch)), m, n)), copy=True)  # (sizes spelled out: empty batch)
    nb = lu.shape[0]
    rows = xp.arange(nb)
    pivots = xp.zeros((nb, k), dtype=np.int32)
    info = xp.zeros((nb,), dtype=np.int32)
    for j in range(k):
        p = j + xp.argmax(xp.abs(lu[:, j:, j]), axis=-1)
        pivots[:, j] = (p + 1).astype(np.int32)
        row_j = lu[rows, j].copy()
        lu[rows, j] = lu[rows, p]
        lu[rows, p] = row_j
        pivot = lu[:, j, j]
        zero = pivot == 0
        info = xp.where(zero & (info == 0), xp.asarray(j + 1, dtype=np.int32), info)
        # a zero pivot: its column below is all zero too (it is the largest), so nothing to eliminate
        lu[:, j + 1:, j] /= xp.where(zero, xp.ones((), dtype=lu.dtype), pivot)[:, None]
        lu[:, j + 1:, j + 1:] -= lu[:, j + 1:, j, None] * lu[:, j, None, j + 1:]
    return lu.reshape(a.shape), pivots.reshape(batch + (k,)), info.reshape(batch)


def permutation(xp, pivots, m):
    """For each matrix, ``perm`` with ``(P^T A)[i] = A[perm[i]]`` (``A = P L U``), from LAPACK's row swaps."""
    batch, k = pivots.shape[:-1], pivots.shape[-1]
    piv = pivots.reshape((int(np.prod(batch)), k)).astype(np.int64) - 1
    rows = xp.arange(piv.shape[0])
    perm = xp.broadcast_to(xp.arange(m), (piv.shape[0], m)).copy()
    for i in range(k):
        other = perm[rows, piv[:, i]].copy()
        perm[rows, piv[:, i]] = perm[:, i]
        perm[:, i] = other
    return perm.reshape(batch + (m,))


def permutation_matrix(xp, pivots, m, dtype):
    """``P`` (``(*, m, m)``) with ``A = P L U``: column ``i`` of ``P`` is ``e_{perm[i]}``."""
    perm = permutation(xp, pivots, m)
    return (perm[..., None, :] == xp.arange(m)[:, None]).astype(dtype)


def split_lu(xp, lu):
    """``L`` (``(*, m, k)``, unit lower triangular) and ``U`` (``(*, k, n)``, upper) of a packed ``LU``."""
    m, n = lu.shape[-2:]
    k = min(m, n)
    low = xp.tril(lu[..., :, :k], -1) + xp.eye(m, k, dtype=lu.dtype)
    return low, xp.triu(lu[..., :k, :])


def lu_backward(xp, gl, gu, p, low, up):
    """PyTorch's ``linalg_lu_backward`` (real case), ``gl``/``gu`` the gradients of ``L`` and ``U``."""
    m, n = low.shape[-2], up.shape[-1]
    k = min(m, n)
    right_ut = lambda x, u: mT(_solve_left(xp, u, mT(x), True))  # noqa: E731  (x U^{-T})
    left_lt = lambda lo, x: _solve_left(xp, mT(lo), x, True)  # noqa: E731  (L^{-T} x)
    if m == n:
        ga = left_lt(low, right_ut(xp.tril(mT(low) @ gl, -1) + xp.triu(gu @ mT(up)), up))
    elif m < n:
        x = right_ut(xp.tril(mT(low) @ gl - xp.triu(gu) @ mT(up), -1), up[..., :k])
        ga = left_lt(low, xp.concatenate([x + xp.triu(gu[..., :k]), gu[..., k:]], axis=-1))
    else:
        x = left_lt(low[..., :k, :], xp.triu(gu @ mT(up) - mT(low) @ gl))
        ga = right_ut(xp.concatenate([x + xp.tril(gl[..., :k, :], -1), gl[..., k:, :]], axis=-2), up)
    return p @ ga


class LUFactor(Function):
    """The packed ``LU`` of ``A``, computed before (``getrf``) and handed in, so that its pivots and info come
    back to the caller beside this one differentiable output. The backward reads that output (as PyTorch's, which
    saves LU): an in-place change of it before the backward is refused."""

    reads = ((OUTPUT,),)

    def forward(self, a, lu=None, pivots=None):
        self.lu, self.pivots = lu, pivots
        return lu

    def backward(self, g):
        xp = get_array_module(g)
        m, n = g.shape[-2:]
        k = min(m, n)
        low, up = split_lu(xp, self.lu)
        p = permutation_matrix(xp, self.pivots, m, g.dtype)
        return (lu_backward(xp, xp.tril(g[..., :, :k], -1), xp.triu(g[..., :k, :]), p, low, up),)


def _checked(A, pivot):
    a = unwrap(A)
    a = a if hasattr(a, "ndim") else np.asarray(a)
    if a.ndim < 2:
        raise RuntimeError(f"torch.lu_factor: Expected tensor with 2 or more dimensions. Got size: {list(a.shape)} "
                           f"instead")
    if a.dtype.kind != "f" or a.dtype == np.float16:
        raise NotImplementedError(f"\"lu_cpu\" not implemented for '{dtype_name(a.dtype)}'")
    if not pivot:  # (PyTorch: only its CUDA kernels factor without pivoting; here there is no such kernel at all)
        raise RuntimeError("linalg.lu_factor: LU without pivoting is not implemented on the CPU")
    return a


def _raise_zero_pivot(op, info):
    host = np.asarray(info.get() if hasattr(info, "get") else info)
    flat = host.reshape(-1)
    index = int(np.flatnonzero(flat)[0])
    j = int(flat[index])
    prefix = batch_prefix(host.shape + (0, 0), index)
    raise LinAlgError(f"torch.{op}: {prefix}U[{j},{j}] is zero and using it on lu_solve would result in a division "
                      f"by zero. If you still want to perform the factorization, consider calling linalg.lu(A, pivot) "
                      f"or linalg.lu_factor_ex(A, pivot)")


def lu_factor_ex(A, *, pivot=True, check_errors=False, _op="linalg.lu_factor_ex"):
    """``torch.linalg.lu_factor_ex``: ``(LU, pivots, info)``; ``info`` (int32, per matrix) is the 1-based index of
    the first zero pivot of ``U`` (0: none). A singular matrix is factored all the same; ``check_errors=True``
    raises :class:`LinAlgError` for it, as PyTorch. ``LU`` is differentiable (PyTorch's formula)."""
    a = _checked(A, pivot)
    xp = get_array_module(a)
    lu, pivots, info = getrf(xp, a)
    if check_errors and bool((info != 0).any()):
        _raise_zero_pivot(_op, info)
    return linalg_lu_factor_ex(LUFactor.apply(as_tensor(A), lu=lu, pivots=pivots), Tensor(pivots), Tensor(info))


def lu_factor(A, *, pivot=True):
    """``torch.linalg.lu_factor``: ``(LU, pivots)`` of ``A`` ``(*, m, n)``: ``LU`` ``(*, m, n)``, ``pivots``
    ``(*, min(m, n))`` int32, 1-based. A singular matrix raises :class:`LinAlgError` (use ``lu_factor_ex`` or
    ``lu`` for those), as PyTorch."""
    lu, pivots, _ = lu_factor_ex(A, pivot=pivot, check_errors=True, _op="linalg.lu_factor")
    return linalg_lu_factor(lu, pivots)


def _check_pivots(xp, lu, pivots):
    if pivots.dtype != np.int32:
        raise RuntimeError("torch.lu_unpack: LU_pivots is expected to be a contiguous tensor of torch.int32 dtype.\n"
                           "Note: this function is intended to be used with the output produced by "
                           "torch.linalg.lu_factor")
    m, n = lu.shape[-2:]
    if pivots.shape != lu.shape[:-2] + (min(m, n),) or (pivots.size and not bool(
            ((pivots >= 1) & (pivots <= m)).all())):
        raise RuntimeError("pivots passed to lu_unpack must be between 1 and LU.size(-2) inclusive.Did you properly "
                           "pass the result of lu_factor?")


def lu_unpack(LU_data, LU_pivots, unpack_data=True, unpack_pivots=True):  # noqa: N803 - PyTorch's names
    """``torch.lu_unpack``: ``(P, L, U)`` from ``lu_factor``'s output, ``P`` ``(*, m, m)``, ``L`` ``(*, m, k)``
    (unit lower triangular), ``U`` ``(*, k, n)``; ``L`` and ``U`` are differentiable in ``LU_data``. Left out
    parts (``unpack_data``/``unpack_pivots`` False) are empty tensors, as PyTorch's."""
    lu, piv = unwrap(LU_data), unwrap(LU_pivots)
    check_matrix(lu, "torch.lu_unpack", "LU_data")
    xp = get_array_module(lu)
    _check_pivots(xp, lu, piv)
    empty = Tensor(xp.empty((0,), dtype=lu.dtype))
    m, n = lu.shape[-2:]
    k = min(m, n)
    p = Tensor(permutation_matrix(xp, piv, m, lu.dtype)) if unpack_pivots else empty
    if not unpack_data:
        return lu_unpack_out(p, empty, empty)
    from distnn.functional.shape_more import tril, triu

    t = as_tensor(LU_data)
    low = tril(t[..., :, :k], -1) + Tensor(xp.eye(m, k, dtype=lu.dtype))
    return lu_unpack_out(p, low, triu(t[..., :k, :]))


def lu(A, *, pivot=True):
    """``torch.linalg.lu``: ``(P, L, U)`` with ``A = P L U`` for ``A`` ``(*, m, n)``: ``P`` ``(*, m, m)``, ``L``
    ``(*, m, k)`` unit lower triangular, ``U`` ``(*, k, n)``, ``k = min(m, n)``; singular matrices too. ``L`` and
    ``U`` are differentiable (PyTorch's formula, square, wide and tall)."""
    lu_data, pivots, _ = lu_factor_ex(A, pivot=pivot, _op="linalg.lu")
    return linalg_lu(*lu_unpack(lu_data, pivots))


def lu_deprecated(A, pivot=True, get_infos=False, _stacklevel=2):
    """``torch.lu`` (deprecated in PyTorch for ``linalg.lu_factor``/``lu_factor_ex``): ``(LU, pivots)``, with
    ``get_infos`` ``(LU, pivots, infos)``. PyTorch 2.13's raises for no singular matrix: neither does this."""
    warnings.warn("torch.lu is deprecated in favor of torch.linalg.lu_factor / torch.linalg.lu_factor_ex and will be "
                  "removed in a future PyTorch release: distnn.lu(A, pivot) is distnn.linalg.lu_factor(A, pivot)",
                  UserWarning, stacklevel=_stacklevel)
    lu_data, pivots, info = lu_factor_ex(A, pivot=pivot, _op="lu")
    return (lu_data, pivots, info) if get_infos else (lu_data, pivots)
