"""``pdist``: the condensed pairwise distances between the rows of an (N, M) input, as PyTorch's
``F.pdist`` / ``torch.pdist``.

The output holds ``||x[i] - x[j]||_p`` for the pairs i < j in row-major order (``(0, 1), (0, 2), ...,
(N - 2, N - 1)``): N (N - 1) / 2 values, as scipy's condensed distance matrix. Forward and backward follow
PyTorch's kernels (aten Distance.cpp), whose gradient at a pair differs from that of a vector norm in two
places, both kept here:

* p = inf: every coordinate whose ``|x[i] - x[j]|`` equals the distance gets the whole gradient (ties are
  not shared, as they are in ``torch.linalg.vector_norm``);
* a pair at distance 0 (equal rows) gives no gradient for any p, and for p < 1 neither does a coordinate
  where the two rows agree (where ``|d|^(p - 1)`` is infinite). p = 0 (the count of differing coordinates)
  has no gradient anywhere.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from .elementwise import _quiet


def _pairs(xp, n):
    """The row indices (i, j), i < j, of the condensed output, in its order."""
    i, j = np.triu_indices(n, 1)
    return xp.asarray(i), xp.asarray(j)


class PDist(Function):
    """``||x[i] - x[j]||_p`` for i < j; see the module docstring for the gradient."""

    reads = ((0, OUTPUT),)

    def forward(self, x, p):
        xp = get_array_module(x)
        self.i, self.j = _pairs(xp, x.shape[0])
        diff = x[self.i] - x[self.j]  # (P, M)
        ad = xp.abs(diff)
        if p == 0:
            dist = (diff != 0).sum(axis=1).astype(x.dtype)
        elif p == 1:
            dist = ad.sum(axis=1)
        elif p == 2:
            dist = xp.sqrt((diff * diff).sum(axis=1))
        elif math.isinf(p):
            dist = ad.max(axis=1) if ad.shape[1] else xp.zeros(ad.shape[0], x.dtype)
        else:
            dist = (ad ** p).sum(axis=1) ** (1.0 / p)
        self.x, self.p, self.dist = x, p, dist
        return dist

    def backward(self, g):
        xp = get_array_module(g)
        p, x = self.p, self.x
        if p == 0 or x.shape[0] < 2:
            return (xp.zeros_like(x),)
        diff = x[self.i] - x[self.j]
        dist, g = self.dist[:, None], g[:, None]
        zero = dist == 0
        with _quiet(xp, over=True):  # (the inf and NaN of a pair at distance 0 are masked out)
            if p == 1:
                per = xp.sign(diff) * g
            elif p == 2:
                per = xp.where(zero, 0, g * diff / xp.where(zero, 1, dist))
            elif math.isinf(p):
                per = xp.sign(diff) * (xp.abs(diff) == dist) * g
            else:
                ad = xp.abs(diff)
                scaled = xp.sign(diff) * ad ** (p - 1) if p < 2 else diff * ad ** (p - 2)
                per = scaled * g / xp.where(zero, 1, dist ** (p - 1))
                per = xp.where(zero | ((diff == 0) & (p < 1)), 0, per)
        # pair (i, j) adds its gradient to row i and takes it from row j: laid out as an antisymmetric (N, N, M)
        # block (the size of ``diff`` twice) and summed over its second axis, rather than numpy's slow add.at
        n = x.shape[0]
        full = xp.zeros((n, n) + x.shape[1:], per.dtype)
        full[self.i, self.j] = per
        full[self.j, self.i] = -per
        return (full.sum(axis=1),)


def pdist(input, p=2):
    """The distances ``||input[i] - input[j]||_p`` between the rows of a 2-D (N, M) floating input, for the
    pairs i < j in row-major order (N (N - 1) / 2 of them), as PyTorch's ``F.pdist``. ``p`` >= 0 or inf; fewer
    than two rows give an empty output. Gradients are PyTorch's (see the module docstring).
    """
    if not isinstance(input, Tensor):
        input = Tensor(input)
    if input.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.ndim}D")
    if input.dtype.kind != "f":
        raise RuntimeError(f"pdist only supports floating-point dtypes, got {input.dtype}")
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"pdist: p must be a number, got {p!r}")
    if not p >= 0:  # (NaN too, as PyTorch)
        raise RuntimeError(f"pdist only supports non-negative p values, got {p}")
    return PDist.apply(input, p=float(p))


__all__ = ["pdist"]
