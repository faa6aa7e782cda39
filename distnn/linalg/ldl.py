"""``ldl_factor``, ``ldl_factor_ex`` and ``ldl_solve``: the Bunch-Kaufman factorization ``A = L D L^T`` of a
symmetric (possibly indefinite) matrix, in LAPACK ``sytrf``'s format, which PyTorch returns, and the solve with it
(``sytrs``). numpy and cupy have no ``sytrf``: it is written here (LAPACK's unblocked ``sytf2``, lower triangle),
batched: one Python step per column, every matrix of the batch at once.

Format (as PyTorch's, 1-based ``pivots``, int32): ``LD``'s strict lower triangle holds ``L``'s columns, its
diagonal (and, for a 2 by 2 block, the entry below it) ``D``; its upper triangle is zero. ``pivots[k] = p > 0``:
a 1 by 1 block at ``k``, rows and columns ``k`` and ``p`` of the trailing matrix swapped first; ``pivots[k] =
pivots[k+1] = -p``: a 2 by 2 block at ``k, k+1``, ``k+1`` and ``p`` swapped. The swaps touch only the trailing
matrix (not the columns of ``L`` already computed), so ``L`` is LAPACK's product of elementary factors.

Only the lower triangle of ``A`` is read (``hermitian`` is the same for real matrices). PyTorch has no gradient for
either op: the results require grad when an input does, and a backward through them raises, as PyTorch's.
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, to_numpy, unwrap

from ._common import LinAlgError, batch_prefix, check_float, check_square, dtype_name

linalg_ldl_factor = namedtuple("linalg_ldl_factor", ["LD", "pivots"])
linalg_ldl_factor_ex = namedtuple("linalg_ldl_factor_ex", ["LD", "pivots", "info"])

_ALPHA = (1 + math.sqrt(17)) / 8  # (Bunch-Kaufman's growth bound, LAPACK's)


def _sym_lower(xp, s):
    """The symmetric matrices whose lower triangles are those of ``s`` (what LAPACK's lower storage means)."""
    low = xp.tril(s)
    return low + xp.tril(s, -1).swapaxes(-1, -2)


def sytrf(xp, a):
    """LAPACK ``sytrf`` (lower) on a stack ``a`` (b, n, n): ``(LD, pivots, info)``, info 1-based, 0 when D has no
    zero block."""
    nb, n = a.shape[0], a.shape[-1]
    a = _sym_lower(xp, a.astype(a.dtype, copy=True))
    piv = xp.zeros((nb, n), dtype=np.int32)
    info = xp.zeros(nb, dtype=np.int32)
    skip = xp.zeros(nb, dtype=bool)  # (column k is the second of a 2 by 2 block done at k - 1)
    for k in range(n):
        act = xp.nonzero(~skip)[0]
        skip[:] = False
        if act.size == 0:
            continue
        s = a[act, k:, k:]  # (the trailing matrices of the active elements, symmetric)
        m = n - k
        i = xp.arange(act.size)
        absakk = xp.abs(s[:, 0, 0])
        if m > 1:
            col = xp.abs(s[:, 1:, 0])
            imax = xp.argmax(col, axis=1) + 1  # (the first largest, as LAPACK's idamax)
            colmax = col[i, imax - 1]
        else:
            imax, colmax = xp.zeros(act.size, dtype=np.int64), xp.zeros(act.size, dtype=a.dtype)
        zero = (xp.maximum(absakk, colmax) == 0) | xp.isnan(absakk)
        info[act] = xp.where(zero & (info[act] == 0), k + 1, info[act])
        row = xp.abs(s[i, imax, :])
        row[i, imax] = 0
        rowmax = row.max(axis=1) if m > 1 else xp.zeros(act.size, dtype=a.dtype)
        safe_rowmax = xp.where(rowmax == 0, 1, rowmax)
        keep = zero | (absakk >= _ALPHA * colmax) | (absakk >= _ALPHA * colmax * (colmax / safe_rowmax))
        one_at_imax = ~keep & (xp.abs(s[i, imax, imax]) >= _ALPHA * rowmax)
        two = ~keep & ~one_at_imax
        kp = xp.where(keep, 0, imax)
        kk = xp.where(two, 1, 0)
        # swap rows and columns kk and kp of the trailing matrices (a symmetric permutation)
        perm = xp.broadcast_to(xp.arange(m), (act.size, m)).copy()
        perm[i, kk] = kp
        perm[i, kp] = kk
        s = s[i[:, None, None], perm[:, :, None], perm[:, None, :]]
        one = ~two & ~zero
        if m > 1:  # 1 by 1 block: L's column x / d, the trailing matrix less x x^T / d
            d_inv = 1 / xp.where(one, s[:, 0, 0], 1)
            x = s[:, 1:, 0]
            upd = x[:, :, None] * (d_inv[:, None] * x)[:, None, :]
            s[:, 1:, 1:] -= xp.where(one[:, None, None], upd, 0)
            s[:, 1:, 0] = xp.where(one[:, None], x * d_inv[:, None], x)
        if m > 2 and bool(two.any()):  # 2 by 2 block D: L's columns X D^{-1} (LAPACK's arithmetic)
            d21 = xp.where(two, s[:, 1, 0], 1)
            d11, d22 = s[:, 1, 1] / d21, s[:, 0, 0] / d21
            t = 1 / xp.where(two, d11 * d22 - 1, 1)
            d21 = t / d21
            x0, x1 = s[:, 2:, 0], s[:, 2:, 1]
            wk = d21[:, None] * (d11[:, None] * x0 - x1)
            wkp1 = d21[:, None] * (d22[:, None] * x1 - x0)
            upd = x0[:, :, None] * wk[:, None, :] + x1[:, :, None] * wkp1[:, None, :]
            s[:, 2:, 2:] -= xp.where(two[:, None, None], upd, 0)
            s[:, 2:, 0] = xp.where(two[:, None], wk, x0)
            s[:, 2:, 1] = xp.where(two[:, None], wkp1, x1)
        a[act, k:, k:] = _sym_lower(xp, s)
        p = (kp + k + 1).astype(np.int32)
        piv[act, k] = xp.where(two, -p, p)
        if k + 1 < n:
            piv[act, k + 1] = xp.where(two, -p, piv[act, k + 1])
        skip[act] = two
    return xp.tril(a), piv, info


class _NoDerivative(Function):
    """A result computed outside (``out``), recorded so that it requires grad when an input does; PyTorch has no
    derivative for it, and neither has this: a backward through it raises PyTorch's error."""

    def forward(self, *arrays, out=None, op=""):
        self.op = op
        return out

    def backward(self, g):
        raise RuntimeError(f"derivative for aten::{self.op} is not implemented")


def _raise_singular(info, op):
    host = to_numpy(info)
    flat = host.reshape(-1)
    index = int(np.flatnonzero(flat)[0])
    j = int(flat[index])
    raise LinAlgError(f"{op}: {batch_prefix(host.shape + (0, 0), index)}The factorization could not be completed "
                      f"because the block diagonal matrix D is exactly singular: its diagonal element {j} is zero "
                      f"(LAPACK sytrf's info = {j}).")


def ldl_factor_ex(A, *, hermitian=False, check_errors=False, _op="torch.linalg.ldl_factor_ex"):  # noqa: N803
    """``torch.linalg.ldl_factor_ex``: ``(LD, pivots, info)`` of the symmetric matrices ``A`` ``(*, n, n)`` (lower
    triangle read); ``info`` > 0: that diagonal element of ``D`` is exactly zero (raises if ``check_errors``)."""
    a = unwrap(A)
    a = a if hasattr(a, "ndim") else np.asarray(a)
    check_square(a, "torch.linalg.ldl_factor_ex")
    check_float(a, "torch.linalg.ldl_factor_ex")
    xp = get_array_module(a)
    batch, n = tuple(a.shape[:-2]), a.shape[-1]
    ld, piv, info = sytrf(xp, a.reshape((math.prod(batch), n, n)))  # (sizes spelled out: -1 is ambiguous if empty)
    info = info.reshape(batch)
    if check_errors and bool((info != 0).any()):
        _raise_singular(info, _op)
    out = _NoDerivative.apply(A, out=ld.reshape(a.shape), op="linalg_ldl_factor_ex")
    return linalg_ldl_factor_ex(out, Tensor(piv.reshape(batch + (n,))), Tensor(info))


def ldl_factor(A, *, hermitian=False):  # noqa: N803
    """``torch.linalg.ldl_factor``: ``(LD, pivots)``; a matrix whose ``D`` is singular raises (a RuntimeError, as
    PyTorch's)."""
    ld, piv, _ = ldl_factor_ex(A, hermitian=hermitian, check_errors=True, _op="torch.linalg.ldl_factor")
    return linalg_ldl_factor(ld, piv)


def _block_kinds(piv):
    """Per matrix and column (host arrays): 1 for a 1 by 1 block, 2 for the first column of a 2 by 2 one, 0 for
    its second."""
    kinds = np.zeros(piv.shape, dtype=np.int8)
    second = np.zeros(piv.shape[0], dtype=bool)
    for k in range(piv.shape[1]):
        kinds[:, k] = np.where(second, 0, np.where(piv[:, k] > 0, 1, 2))
        second = kinds[:, k] == 2
    return kinds


def sytrs(xp, ld, piv, b):
    """LAPACK ``sytrs`` (lower) on stacks: ``X`` with ``A X = B`` for ``A``'s ``(LD, pivots)``; ``ld`` (s, n, n),
    ``piv`` (s, n) 1-based, ``b`` (s, n, k)."""
    ns, n = ld.shape[0], ld.shape[-1]
    b = b.astype(b.dtype, copy=True)
    host = to_numpy(piv).astype(np.int64)
    kinds = xp.asarray(_block_kinds(host))
    target = xp.asarray(np.abs(host) - 1)
    r = xp.arange(ns)

    def swap(rows_a, rows_b):
        top = b[r, rows_a].copy()
        b[r, rows_a] = b[r, rows_b]
        b[r, rows_b] = top

    for k in range(n):  # L D Y = B, forward
        one, two = kinds[:, k] == 1, kinds[:, k] == 2
        row = xp.where(two, k + 1, k)
        swap(row, xp.where(one | two, target[:, k], row))
        bk = b[:, k]
        b[:, k + 1:] -= xp.where(one[:, None, None], ld[:, k + 1:, k, None] * bk[:, None, :], 0)
        if k + 1 < n and bool(two.any()):
            bk1 = b[:, k + 1]
            b[:, k + 2:] -= xp.where(two[:, None, None], ld[:, k + 2:, k, None] * bk[:, None, :]
                                     + ld[:, k + 2:, k + 1, None] * bk1[:, None, :], 0)
            akm1k = xp.where(two, ld[:, k + 1, k], 1)[:, None]
            akm1, ak = ld[:, k, k, None] / akm1k, ld[:, k + 1, k + 1, None] / akm1k
            denom = akm1 * ak - 1
            bkm1, bk1 = bk / akm1k, bk1 / akm1k
            b[:, k] = xp.where(two[:, None], (ak * bkm1 - bk1) / xp.where(two[:, None], denom, 1), b[:, k])
            b[:, k + 1] = xp.where(two[:, None], (akm1 * bk1 - bkm1) / xp.where(two[:, None], denom, 1), b[:, k + 1])
        b[:, k] = xp.where(one[:, None], b[:, k] / xp.where(one, ld[:, k, k], 1)[:, None], b[:, k])
    for k in range(n - 1, -1, -1):  # L^T X = Y, backward
        one, second = kinds[:, k] == 1, kinds[:, k] == 0
        tail = xp.einsum("si,sij->sj", ld[:, k + 1:, k], b[:, k + 1:])
        b[:, k] -= xp.where((one | second)[:, None], tail, 0)
        if k > 0 and bool(second.any()):
            tail = xp.einsum("si,sij->sj", ld[:, k + 1:, k - 1], b[:, k + 1:])
            b[:, k - 1] -= xp.where(second[:, None], tail, 0)
        swap(xp.full(ns, k), xp.where(one | second, target[:, k], k))
    return b


def ldl_solve(LD, pivots, B, *, hermitian=False):  # noqa: N803
    """``torch.linalg.ldl_solve``: ``X`` with ``A X = B`` from ``ldl_factor``'s ``(LD, pivots)`` of ``A``;
    ``LD`` ``(*, n, n)``, ``pivots`` ``(*, n)`` (``LD``'s batch shape), ``B`` ``(*, n, k)``; batch dims of ``LD``
    and ``B`` broadcast."""
    op = "torch.linalg.ldl_solve"
    ld, piv, b = (x if hasattr(x, "ndim") else np.asarray(x) for x in (unwrap(LD), unwrap(pivots), unwrap(B)))
    check_square(ld, op)
    if b.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor B must have at least 2 dimensions.")
    if tuple(piv.shape) != tuple(ld.shape[:-1]):
        raise RuntimeError(f"{op}: Expected LD.shape[:-1] and pivots.shape to be the same, but got pivots with shape "
                           f"{list(piv.shape)} instead")
    if piv.dtype.kind not in "iu":
        raise RuntimeError(f"{op}: Expected pivots to be integers. Got {dtype_name(piv.dtype)}")
    check_float(ld, op)
    if ld.dtype != b.dtype:
        raise RuntimeError(f"Expected b and A to have the same dtype, but found b of type {dtype_name(b.dtype)} and A "
                           f"of type {dtype_name(ld.dtype)} instead.")
    n = ld.shape[-1]
    if b.shape[-2] != n:
        raise RuntimeError(f"Incompatible matrix sizes for {op}: each A matrix is {n} by {n} but each b matrix is "
                           f"{b.shape[-2]} by {b.shape[-1]}")
    xp = get_array_module(ld)
    batch = tuple(np.broadcast_shapes(ld.shape[:-2], b.shape[:-2]))
    size = math.prod(batch)
    ld_s = xp.broadcast_to(ld, batch + ld.shape[-2:]).reshape((size, n, n))
    piv_s = xp.broadcast_to(piv, batch + (n,)).reshape((size, n))
    b_s = xp.broadcast_to(b, batch + b.shape[-2:]).reshape((size,) + b.shape[-2:])
    x = sytrs(xp, ld_s, piv_s, b_s).reshape(batch + b.shape[-2:])
    return _NoDerivative.apply(LD, B, out=x, op="linalg_ldl_solve")
