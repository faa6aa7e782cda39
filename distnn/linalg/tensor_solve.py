"""``tensorinv`` and ``tensorsolve``: :func:`inv` and :func:`solve` of a tensor read as one square matrix, as
PyTorch's (``linalg_tensorinv``/``linalg_tensorsolve`` in ATen reshape and call ``inv``/``solve``), so values,
gradients and errors are those of :func:`inv` and :func:`solve`.

``tensorinv(A, ind)``: ``A``'s first ``ind`` dims index the rows, the rest the columns; the result has shape
``A.shape[ind:] + A.shape[:ind]``. ``tensorsolve(A, B, dims)``: ``dims`` of ``A`` are moved to the end first;
then ``A``'s first ``B.ndim`` dims are the rows (only their product is checked against ``B``'s size, as
PyTorch's) and the result has the shape of the remaining dims.
"""
from __future__ import annotations

import math

from distnn.autograd.tensor import Tensor

from ._common import as_tensor, check_float
from .inverse import Inv, solve


def tensorinv(A, ind=2) -> Tensor:
    """``torch.linalg.tensorinv``: the inverse of ``A`` for :func:`distnn.tensordot` over ``ind`` dims."""
    if ind <= 0:
        raise RuntimeError(f"Expected a strictly positive integer for 'ind', but got {ind}")
    t = as_tensor(A)
    shape = tuple(t.shape)
    rows, cols = math.prod(shape[:ind]), math.prod(shape[ind:])
    if rows != cols:
        raise RuntimeError(f"Expected self to satisfy the requirement prod(self.shape[ind:]) == "
                           f"prod(self.shape[:ind]), but got {cols} != {rows}")
    check_float(t.data, "linalg.inv")  # (PyTorch: linalg.inv_ex's check)
    return Inv.apply(t.reshape(rows, rows), op="inv").reshape(shape[ind:] + shape[:ind])  # (PyTorch names it "inv")


def tensorsolve(A, B, dims=None) -> Tensor:
    """``torch.linalg.tensorsolve``: ``X`` with ``tensordot(A, X, X.ndim) = B``; ``dims``: dims of ``A`` moved
    to the end first."""
    t, b = as_tensor(A), as_tensor(B)
    if dims is not None:
        dims = [d % t.ndim for d in ((dims,) if isinstance(dims, int) else dims)]
        rest = [d for d in range(t.ndim) if d not in dims]
        t = t.permute(*rest, *dims)
    result_shape = tuple(t.shape[b.ndim:])
    n, size = math.prod(result_shape), math.prod(tuple(b.shape))
    if n != size:
        raise RuntimeError(f"Expected self to satisfy the requirement prod(self.shape[other.ndim:]) == "
                           f"prod(self.shape[:other.ndim]), but got {n} != {size}")
    return solve(t.reshape(n, n), b.reshape(size)).reshape(result_shape)
