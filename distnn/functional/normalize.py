"""``normalize``: vectors scaled to unit p-norm, as ``torch.nn.functional.normalize``."""
from __future__ import annotations

import math

from distnn.autograd.function import OUTPUT, Function
from distnn.backend import get_array_module

from .elementwise import Clip
from .reduce import _axes, norm


class NormP(Function):
    """The p-norm over ``axis`` for any p > 0: ``sum(|x|^p)^(1/p)``. Its gradient, PyTorch's, is
    ``sign(x) |x|^(p-1) / norm^(p-1)``, and 0 where the norm is 0."""

    reads = ((0, OUTPUT),)

    def forward(self, a, p, axis=None, keepdims=False):
        xp = get_array_module(a)
        self.axes, self.keepdims, self.a, self.p = _axes(axis, a.ndim), keepdims, a, p
        self.n = (xp.abs(a) ** p).sum(axis=self.axes, keepdims=True) ** (1.0 / p)
        return self.n if keepdims else self.n.reshape([s for i, s in enumerate(a.shape) if i not in self.axes])

    def backward(self, g):
        xp = get_array_module(g)
        if not self.keepdims and self.a.ndim:
            g = xp.expand_dims(g, self.axes)
        p, n = self.p, self.n
        safe = xp.where(n == 0, 1, n)
        d = xp.sign(self.a) * (xp.abs(self.a) / safe) ** (p - 1)
        return (g * xp.where(n == 0, 0, d),)


def p_norm(input, p, dim, keepdim=False):  # noqa: A002
    """The ``p``-norm over ``dim``: 1, 2 and inf as ``Tensor.norm``, any other p > 0 by :class:`NormP`."""
    if p in (1, 2, math.inf):
        return norm(input, p, dim, keepdim)
    if not p > 0:
        raise ValueError(f"normalize: p must be > 0, got {p!r}")
    return NormP.apply(input, p=float(p), axis=dim, keepdims=keepdim)


def normalize(input, p=2.0, dim=1, eps=1e-12):  # noqa: A002 - PyTorch's name
    """``input / max(||input||_p, eps)`` over ``dim`` (the rows of a batch by default), as PyTorch's: the norm's
    gradient is included, and vectors of norm below ``eps`` are divided by ``eps``."""
    denom = Clip.apply(p_norm(input, p, dim, keepdim=True), eps, None)
    return input / denom
