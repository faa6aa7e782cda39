"""``svd_lowrank`` and ``pca_lowrank``: PyTorch's randomized low-rank SVD (Halko, Martinsson and Tropp 2009,
algorithms 4.4 and 5.1, as ``torch/_lowrank.py``), composed of distnn's differentiable ``matmul``, ``linalg.qr``
and ``linalg.svd``, so the gradients are the composition's, as PyTorch's.

A random ``(n, q)`` Gaussian matrix (distnn's generator, so ``distnn.manual_seed`` repeats it) is multiplied by
``A`` and orthonormalized; ``niter`` subspace iterations (products with ``A^T`` and ``A``, each orthonormalized)
sharpen the basis ``Q``; the SVD of the small ``Q^T A`` gives the result. A wide ``A`` is handled through its
transpose. ``M``: the factorization is of ``A - M`` (``M`` broadcast to ``A``'s shape) without forming it.
The random matrix differs from PyTorch's, so results agree with PyTorch's where they do not depend on it: the
singular values and the product ``U diag(S) V^T`` when ``A - M`` has rank at most ``q``.
"""
from __future__ import annotations

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._common import as_tensor
from .qr import qr
from .svd import svd


def _float_dtype(t):
    return t.dtype if t.data.dtype.kind == "f" else "float32"  # (PyTorch's get_floating_dtype)


def get_approximate_basis(A, q, niter=2, M=None) -> Tensor:  # noqa: N803 - PyTorch's names
    """An orthonormal ``(*, m, q)`` basis ``Q`` with ``Q Q^T (A - M)`` close to ``A - M`` (PyTorch's, from
    ``torch._lowrank``)."""
    from distnn import random

    niter = 2 if niter is None else niter
    A = as_tensor(A)
    xp = get_array_module(A.data)
    draw = random.default_generator().standard_normal((A.shape[-1], q))
    R = Tensor(xp.asarray(draw.astype(_float_dtype(A))))  # noqa: N806
    X = A @ R  # noqa: N806
    if M is not None:
        X = X - M @ R  # noqa: N806
    Q = qr(X).Q  # noqa: N806
    for _ in range(niter):
        X = A.mT @ Q  # noqa: N806
        if M is not None:
            X = X - M.mT @ Q  # noqa: N806
        Q = qr(X).Q  # noqa: N806
        X = A @ Q  # noqa: N806
        if M is not None:
            X = X - M @ Q  # noqa: N806
        Q = qr(X).Q  # noqa: N806
    return Q


def svd_lowrank(A, q=6, niter=2, M=None):  # noqa: N803
    """``torch.svd_lowrank``: ``(U, S, V)``, an approximate rank-``q`` SVD ``A - M ~ U diag(S) V^T`` of ``A``
    ``(*, m, n)``; ``U`` ``(*, m, q)``, ``S`` ``(*, q)``, ``V`` ``(*, n, q)`` (``V``, not ``Vh``)."""
    q = 6 if q is None else q
    A = as_tensor(A)
    m, n = A.shape[-2:]
    if M is not None:
        M = as_tensor(M).expand(*A.shape)
    if m < n:  # (the algorithm assumes a tall matrix)
        A = A.mT
        M = M.mT if M is not None else None
    Q = get_approximate_basis(A, q, niter=niter, M=M)  # noqa: N806
    B = Q.mT @ A  # noqa: N806
    if M is not None:
        B = B - Q.mT @ M  # noqa: N806
    U, S, Vh = svd(B, full_matrices=False)  # noqa: N806
    V, U = Vh.mT, Q @ U  # noqa: N806
    return (V, S, U) if m < n else (U, S, V)


def pca_lowrank(A, q=None, center=True, niter=2):  # noqa: N803
    """``torch.pca_lowrank``: ``(U, S, V)``, the ``svd_lowrank`` of ``A`` with its column means taken off
    (``center``); ``q`` defaults to ``min(6, m, n)``."""
    A = as_tensor(A)
    m, n = A.shape[-2:]
    if q is None:
        q = min(6, m, n)
    elif not (q >= 0 and q <= min(m, n)):
        raise ValueError(f"q(={q}) must be non-negative integer and not greater than min(m, n)={min(m, n)}")
    if not (niter >= 0):
        raise ValueError(f"niter(={niter}) must be non-negative integer")
    if not center:
        return svd_lowrank(A, q, niter=niter, M=None)
    return svd_lowrank(A - A.mean(-2, keepdim=True), q, niter=niter, M=None)
