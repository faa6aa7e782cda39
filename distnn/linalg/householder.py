"""Householder reflections, LAPACK's way, as PyTorch's: ``geqrf`` (``A = Q R`` with ``Q = H_1 ... H_k`` kept as
reflectors), ``householder_product`` (LAPACK's orgqr: the first columns of ``Q``) and ``ormqr`` (``Q`` or
``Q^T`` times a matrix), ``H_i = I - tau_i v_i v_i^T`` with ``v_i`` = ``e_i`` plus column ``i`` of ``A`` below
the diagonal.

numpy and cupy expose no reflectors on stacks of matrices, so they are written here: a loop over the ``k``
reflectors, each step on the whole batch at once. ``geqrf`` follows LAPACK's dlarfg (``beta = -sign(alpha)
||x||``, ``tau = 0`` when there is nothing below the diagonal to reflect), so its values are LAPACK's and
PyTorch's up to rounding. ``householder_product``'s gradient goes back through the same loop (the products it
saved on the way), in ``A`` (below the diagonal of its first ``k`` columns) and ``tau``; ``ormqr`` is built on it.
``geqrf`` has no gradient in PyTorch; here neither, with its error.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from distnn.autograd.function import OUTPUT, Function
from distnn.backend import get_array_module, unwrap

from ._common import as_tensor, dtype_name, mT, pack, unpack

geqrf_out = namedtuple("geqrf", ["a", "tau"])


def _array(x):
    a = unwrap(x)
    return a if hasattr(a, "ndim") else np.asarray(a)


def _check_float(a, kernel):
    if a.dtype.kind != "f" or a.dtype == np.float16:
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{dtype_name(a.dtype)}'")


def _reflectors(xp, a, k):
    """``V`` (``(*, m, k)``): column ``i`` is ``v_i`` (1 at row ``i``, ``a``'s column below it)."""
    return xp.tril(a[..., :, :k], -1) + xp.eye(a.shape[-2], k, dtype=a.dtype)


def _geqrf(xp, a):
    m, n = a.shape[-2:]
    k = min(m, n)
    r = a.copy()
    tau = xp.zeros(a.shape[:-2] + (k,), dtype=a.dtype)
    one = xp.ones((), dtype=a.dtype)
    for j in range(k):
        alpha = r[..., j, j]
        xnorm = xp.sqrt((r[..., j + 1:, j] ** 2).sum(-1))
        reflect = xnorm != 0  # (LAPACK: nothing below the diagonal, no reflection: tau = 0, H = I)
        beta = -xp.where(alpha >= 0, one, -one) * xp.hypot(alpha, xnorm)
        beta = xp.where(reflect, beta, alpha)
        tau[..., j] = xp.where(reflect, (beta - alpha) / xp.where(reflect, beta, one), 0)
        r[..., j + 1:, j] /= xp.where(reflect, alpha - beta, one)[..., None]
        r[..., j, j] = beta
        v = xp.concatenate([xp.ones_like(alpha)[..., None], r[..., j + 1:, j]], axis=-1)  # (*, m - j)
        block = r[..., j:, j + 1:]
        r[..., j:, j + 1:] = block - (tau[..., j, None] * v)[..., :, None] * (v[..., None, :] @ block)
    return r, tau


class Geqrf(Function):
    """``a`` and ``tau`` packed in one output (``_common.pack``); no gradient, as PyTorch."""

    saves_tensors = False

    def forward(self, a):
        xp = get_array_module(a)
        r, tau = _geqrf(xp, a)
        return pack(xp, r, tau, batch=a.shape[:-2])

    def backward(self, g):
        raise NotImplementedError("the derivative for 'geqrf' is not implemented.")


def geqrf(input):  # noqa: A002 - PyTorch's name
    """``torch.geqrf``: ``(a, tau)``, LAPACK's QR: ``R`` in the upper triangle of ``a``, the reflectors' vectors
    below it and their scales in ``tau`` ``(*, min(m, n))``. Not differentiable (as PyTorch)."""
    a = _array(input)
    if a.ndim < 2:
        raise RuntimeError("torch.geqrf: input must have at least 2 dimensions.")
    _check_float(a, "geqrf_cpu")
    m, n = a.shape[-2:]
    batch = tuple(a.shape[:-2])
    return geqrf_out(*unpack(Geqrf.apply(as_tensor(input)), [batch + (m, n), batch + (min(m, n),)]))


class HouseholderProduct(Function):
    """The first ``cols`` columns of ``H_1 ... H_k``; the products on the way are kept for the backward. It reads
    ``tau``; in-place changes are checked on what PyTorch's saves (input, tau, result)."""

    reads = ((0, 1, OUTPUT), (0, 1, OUTPUT))

    def forward(self, a, tau, cols=None):
        xp = get_array_module(a, tau)
        m, k = a.shape[-2], tau.shape[-1]
        v = _reflectors(xp, a, k)
        q = xp.broadcast_to(xp.eye(m, cols, dtype=a.dtype), a.shape[:-2] + (m, cols))
        self.v, self.tau, self.steps, self.n = v, tau, [], a.shape[-1]
        for i in range(k - 1, -1, -1):  # Q_i = H_i Q_{i+1}
            self.steps.append(q)
            vi = v[..., :, i:i + 1]
            q = q - tau[..., i, None, None] * vi * (mT(vi) @ q)
        self.steps.reverse()  # (steps[i] = Q_{i+1}, the input of H_i)
        return q

    def backward(self, g):
        xp = get_array_module(g)
        v, tau = self.v, self.tau
        k = tau.shape[-1]
        gv = xp.zeros_like(v)
        gtau = xp.zeros_like(tau)
        for i in range(k):  # back from Q_0 = H_0 Q_1: g, the gradient of Q_i, becomes that of Q_{i+1}
            vi, qn, t = v[..., :, i:i + 1], self.steps[i], tau[..., i, None, None]
            w = mT(vi) @ g  # (*, 1, cols)
            s = mT(vi) @ qn
            gtau[..., i] = -(w * s).sum((-1, -2))
            gv[..., :, i:i + 1] = -t * (g @ mT(s) + qn @ mT(w))
            g = g - t * vi * w
        ga = xp.zeros(v.shape[:-1] + (self.n,), dtype=v.dtype)
        ga[..., :, :k] = xp.tril(gv, -1)
        return ga, gtau


def _check_reflectors(a, tau, op):
    if a.ndim < 2:
        raise RuntimeError(f"torch.{op}: input must have at least 2 dimensions.")
    if tau.ndim != a.ndim - 1:
        raise RuntimeError(f"torch.{op}: Expected tau to have one dimension less than input, but got tau.ndim equal "
                           f"to {tau.ndim} and input.ndim is equal to {a.ndim}")
    if tau.shape[:-1] != a.shape[:-2]:
        raise RuntimeError(f"torch.{op}: Expected batch dimensions of tau to be equal to input.shape[:-2], but got "
                           f"{list(tau.shape[:-1])}")


def householder_product(A, tau):  # noqa: N803 - PyTorch's name
    """``torch.linalg.householder_product`` (LAPACK's orgqr; ``distnn.orgqr``): the first ``n`` columns of
    ``H_1 ... H_k`` for ``A`` ``(*, m, n)``, ``m >= n``, ``tau`` ``(*, k)``, ``k <= n`` (e.g. ``geqrf``'s output:
    ``Q``). Differentiable in ``A`` and ``tau``."""
    a, t = _array(A), _array(tau)
    op = "linalg.householder_product"
    _check_reflectors(a, t, op)
    if t.dtype != a.dtype:
        raise RuntimeError(f"torch.{op}: tau dtype {dtype_name(t.dtype)} does not match input dtype "
                           f"{dtype_name(a.dtype)}")
    _check_float(a, "orgqr_cpu")
    if a.shape[-2] < a.shape[-1]:
        raise RuntimeError(f"torch.{op}: input.shape[-2] must be greater than or equal to input.shape[-1]")
    if a.shape[-1] < t.shape[-1]:
        raise RuntimeError(f"torch.{op}: input.shape[-1] must be greater than or equal to tau.shape[-1]")
    return HouseholderProduct.apply(as_tensor(A), as_tensor(tau), cols=a.shape[-1])


def ormqr(input, tau, other, left=True, transpose=False):  # noqa: A002 - PyTorch's names
    """``torch.ormqr``: ``Q other`` (``left=False``: ``other Q``; ``transpose``: ``Q^T``), ``Q = H_1 ... H_k``
    the ``mn x mn`` product of the reflectors in ``input`` ``(*, mn, k)`` and ``tau`` (``geqrf``'s output),
    ``mn`` the rows (``left``) or columns of ``other``. Differentiable in all three (as PyTorch)."""
    a, t, c = _array(input), _array(tau), _array(other)
    op = "ormqr"
    _check_reflectors(a, t, op)
    if c.ndim < 2:
        raise RuntimeError(f"torch.{op}: other must have at least 2 dimensions.")
    if c.ndim != a.ndim:
        raise RuntimeError(f"torch.{op}: Expected other to have the same number of dimensions as input, but got "
                           f"other.ndim equal to {c.ndim} and input.ndim is equal to {a.ndim}")
    for what, x in (("tau", t), ("other", c)):
        if x.dtype != a.dtype:
            raise RuntimeError(f"torch.{op}: Expected input and {what} to have the same dtype, but input has dtype"
                               f"{dtype_name(a.dtype)} and {what} has dtype {dtype_name(x.dtype)}")
    _check_float(a, "ormqr_cpu")
    mn = c.shape[-2] if left else c.shape[-1]
    if mn != a.shape[-2]:
        raise RuntimeError(f"torch.{op}: other.shape[{-2 if left else -1}] must be equal to input.shape[-2]")
    if t.shape[-1] != min(mn, a.shape[-1]):
        raise RuntimeError(f"torch.{op}: tau.shape[-1] must be equal to min(other.shape[{-2 if left else -1}], "
                           f"input.shape[-1])")
    q = HouseholderProduct.apply(as_tensor(input), as_tensor(tau), cols=mn)
    q = q.mT if transpose else q
    other = as_tensor(other)
    return q @ other if left else other @ q


def orgqr(input, tau):  # noqa: A002
    """``torch.orgqr``: :func:`householder_product`."""
    return householder_product(input, tau)

