"""The products of ``torch.linalg``: ``cross``, ``multi_dot``, ``matrix_power``, ``vander``, ``vecdot`` and the
``diagonal`` and ``matmul`` aliases. ``multi_dot`` and ``matrix_power`` are chains of distnn's differentiable
matmul, ``vecdot`` a product and a sum (their gradients); ``cross``, ``vander`` and ``diagonal`` are Functions
with their gradients beside them.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, unwrap

from ._common import as_tensor, check_square, dtype_name


class Cross(Function):
    """``a x b`` along ``axis``: ``g_a = b x g``, ``g_b = g x a`` (broadcast back by the engine)."""

    reads = ((1,), (0,))

    def forward(self, a, b, axis=-1):
        xp = get_array_module(a, b)
        self.a, self.b, self.axis = a, b, axis
        return xp.cross(a, b, axis=axis)

    def backward(self, g):
        xp = get_array_module(g)
        ga = xp.cross(self.b, g, axis=self.axis) if self.needs_input_grad[0] else None
        gb = xp.cross(g, self.a, axis=self.axis) if self.needs_input_grad[1] else None
        return ga, gb


def cross(input, other, *, dim=-1) -> Tensor:  # noqa: A002 - PyTorch's name
    """``torch.linalg.cross``: the cross product of 3-vectors along ``dim`` (batch dims broadcast)."""
    a, b = unwrap(input), unwrap(other)
    a, b = (x if hasattr(x, "ndim") else np.asarray(x) for x in (a, b))
    if a.ndim != b.ndim:
        raise RuntimeError(f"linalg.cross: inputs must have the same number of dimensions. Got {a.ndim} and {b.ndim}")
    if a.shape[dim] != 3 or b.shape[dim] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got {a.shape[dim]} and "
                           f"{b.shape[dim]}")
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise RuntimeError(f"linalg.cross: the shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast") from None
    return Cross.apply(input, other, axis=dim % a.ndim)


def _chain_order(dims):
    """The cheapest parenthesization of a chain of matrices of ``dims[i] x dims[i+1]`` (the textbook dynamic
    program, as PyTorch's multi_dot): split[i][j] is where the product of matrices i..j splits."""
    n = len(dims) - 1
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = None
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if cost[i][j] is None or c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k
    return split


def multi_dot(tensors) -> Tensor:
    """``torch.linalg.multi_dot``: the product of the matrices ``tensors`` in the cheapest order; the first may
    be a 1-D row vector and the last a 1-D column vector (the result then has that dim removed)."""
    tensors = [as_tensor(t) for t in tensors]
    n = len(tensors)
    if n < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {n}")
    for i, t in enumerate(tensors):
        if i == 0 and t.ndim not in (1, 2):
            raise RuntimeError(f"multi_dot(): the first tensor must be 1D or 2D but got {t.ndim}D")
        if i == n - 1 and t.ndim not in (1, 2):
            raise RuntimeError(f"multi_dot(): the last tensor must be 1D or 2D but got {t.ndim}D")
        if 0 < i < n - 1 and t.ndim != 2:
            raise RuntimeError(f"multi_dot(): tensor {i} must be 2D but got {t.ndim}D")
    first_vector, last_vector = tensors[0].ndim == 1, tensors[-1].ndim == 1
    mats = list(tensors)
    if first_vector:
        mats[0] = mats[0].reshape(1, -1)
    if last_vector:
        mats[-1] = mats[-1].reshape(-1, 1)
    for i in range(n - 1):
        if mats[i].shape[1] != mats[i + 1].shape[0]:
            raise RuntimeError(f"multi_dot(): tensors {i} and {i + 1} with shapes {list(tensors[i].shape)} and "
                               f"{list(tensors[i + 1].shape)} cannot be multiplied")
    split = _chain_order([m.shape[0] for m in mats] + [mats[-1].shape[1]])

    def product(i, j):
        return mats[i] if i == j else product(i, split[i][j]) @ product(split[i][j] + 1, j)

    out = product(0, n - 1)
    if first_vector and last_vector:
        return out.reshape(())
    if first_vector:
        return out.reshape(-1)
    if last_vector:
        return out.reshape(-1)
    return out


def matrix_power(A, n: int) -> Tensor:
    """``torch.linalg.matrix_power``: ``A`` times itself ``n`` times (by repeated squaring); ``n = 0`` gives the
    identity, a negative ``n`` the power of ``inv(A)``."""
    a = unwrap(A)
    a = a if hasattr(a, "ndim") else np.asarray(a)
    check_square(a, "linalg.matrix_power")
    if isinstance(n, bool) or int(n) != n:
        raise TypeError(f"linalg.matrix_power: n must be an integer, got {n!r}")
    n = int(n)
    xp = get_array_module(a)
    t = as_tensor(A)
    if n == 0:  # the identity, still in the graph (a zero gradient), as PyTorch's copy into a clone of A
        from distnn.functional.elementwise_choice import where

        eye = xp.broadcast_to(xp.eye(a.shape[-1], dtype=a.dtype), a.shape)
        return where(xp.ones(a.shape, dtype=bool), Tensor(eye.copy()), t) if t.requires_grad else Tensor(eye.copy())
    if n < 0:
        from .inverse import inv

        t, n = inv(t), -n
    result, base = None, t
    while n:  # (binary exponentiation: O(log n) matmuls, each one recorded)
        if n & 1:
            result = base if result is None else result @ base
        n >>= 1
        if n:
            base = base @ base
    return result if result is not t else t * 1


class Vander(Function):
    """``x^0, x^1, ..., x^(N-1)`` along a new last dim: ``g_x = sum_j j x^(j-1) g_j``."""

    reads = ((0,),)

    def forward(self, x, n=None):
        xp = get_array_module(x)
        self.out = xp.power(x[..., None], xp.arange(n, dtype=np.int64).astype(x.dtype))
        return self.out

    def backward(self, g):
        xp = get_array_module(g)
        out = self.out
        j = xp.arange(1, out.shape[-1], dtype=out.dtype)
        return ((g[..., 1:] * j * out[..., :-1]).sum(axis=-1),)


def vander(x, *, N=None) -> Tensor:  # noqa: N803 - PyTorch's name
    """``torch.linalg.vander``: the Vandermonde matrix of increasing powers ``x^0 ... x^(N-1)`` (``N`` defaults to
    ``x``'s last dim), shape ``(*, n, N)``."""
    a = unwrap(x)
    a = a if hasattr(a, "ndim") else np.asarray(a)
    if a.ndim == 0:
        raise RuntimeError("linalg.vander: x must have at least one dimension")
    n = a.shape[-1] if N is None else int(N)
    if n <= 1:
        raise RuntimeError("N must be greater than 1.")
    return Vander.apply(x, n=n)


class Diagonal(Function):
    saves_tensors = False

    def forward(self, a, offset=0, dim1=-2, dim2=-1):
        self.shape, self.args = a.shape, (offset, dim1, dim2)
        return get_array_module(a).diagonal(a, offset, dim1, dim2).copy()

    def backward(self, g):
        xp = get_array_module(g)
        offset, dim1, dim2 = self.args
        out = xp.zeros(self.shape, dtype=g.dtype)
        moved = xp.moveaxis(out, (dim1, dim2), (-2, -1))  # (a view: writes reach ``out``)
        k = g.shape[-1]
        rows = xp.arange(k) + max(-offset, 0)
        moved[..., rows, rows + offset] = g
        return (out,)


def diagonal(A, *, offset=0, dim1=-2, dim2=-1) -> Tensor:
    """``torch.linalg.diagonal``: the diagonals (``offset`` above the main one) of the matrices in dims
    ``dim1`` and ``dim2``, as a new last dim."""
    return Diagonal.apply(A, offset=offset, dim1=dim1, dim2=dim2)


def vecdot(x, y, *, dim=-1) -> Tensor:
    """``torch.linalg.vecdot``: the dot product of the vectors along ``dim`` of ``x`` and ``y`` (broadcast; real
    tensors: no conjugate to take)."""
    tx, ty = as_tensor(x), as_tensor(y)
    if tx.dtype != ty.dtype:
        raise RuntimeError(f"linalg.vecdot: Expected x and y to have the same dtype, but found x of type "
                           f"{dtype_name(tx.data.dtype)} and y of type {dtype_name(ty.data.dtype)} instead")
    if tx.data.dtype.kind != "f":
        raise RuntimeError(f"linalg.vecdot: Expected a floating point or complex tensor as input. Got "
                           f"{dtype_name(tx.data.dtype)}")
    return (tx * ty).sum(dim)


def matmul(input, other, *, out=None) -> Tensor:  # noqa: A002 - PyTorch's names
    """``torch.linalg.matmul``: an alias of :func:`distnn.matmul`; ``out``: its rules (:mod:`.matmul_out`), the
    parser's refusal naming ``linalg_matmul``."""
    from distnn.functional.matrix_multiply import matmul as _matmul

    if out is not None:
        from distnn.functional.matmul_out import matmul_into_out

        return matmul_into_out(_matmul, input, other, out, parser_name="linalg_matmul")
    return _matmul(input, other)
