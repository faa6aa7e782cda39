"""torch.masked's normalizations and scans (torch 2.13): ``cumsum``, ``cumprod``, ``softmax``, ``log_softmax``,
``softmin``, ``normalize`` (``(input, dim, *, dtype, mask)``), and the binary ``logaddexp`` (``input_mask``,
``other_mask``). The output has the input's shape.

Masked-out elements take an identity before the plain op runs, as torch's: 0 in cumsum (so they repeat the
running sum), 1 in cumprod, -inf in softmax/log_softmax (probability 0; a row with nothing masked in is NaN),
inf in softmin, 0 in normalize's numerator and norm, -inf in logaddexp. Differentiable through ``input`` (and
``other``); a masked-out element's gradient is 0.
"""
from __future__ import annotations

import distnn as dn
from distnn.autograd import Tensor

from ._common import as_input, canonical_dim, combine
from .reductions import norm


def cumsum(input, dim, *, dtype=None, mask=None) -> Tensor:
    """``torch.masked.cumsum``: the running sum of the masked-in elements along ``dim``."""
    input = as_input(input, "cumsum")
    dtype = input.dtype if dtype is None else dtype
    d = canonical_dim(dim, input.ndim)[0]
    return dn.cumsum(combine("cumsum", input, mask), d, dtype=dtype).to(dtype)


def cumprod(input, dim, *, dtype=None, mask=None) -> Tensor:
    """``torch.masked.cumprod``: the running product of the masked-in elements along ``dim``."""
    input = as_input(input, "cumprod")
    dtype = input.dtype if dtype is None else dtype
    d = canonical_dim(dim, input.ndim)[0]
    return dn.cumprod(combine("cumprod", input, mask), d, dtype=dtype).to(dtype)


def softmax(input, dim, *, dtype=None, mask=None) -> Tensor:
    """``torch.masked.softmax``: softmax over the masked-in elements along ``dim``; masked-out ones get 0."""
    input = as_input(input, "softmax")
    dtype = input.dtype if dtype is None else dtype
    d = canonical_dim(dim, input.ndim)[0]
    return dn.special.softmax(combine("amax", input, mask), d, dtype=dtype)


def log_softmax(input, dim, *, dtype=None, mask=None) -> Tensor:
    """``torch.masked.log_softmax``: log-softmax over the masked-in elements; masked-out ones get -inf."""
    input = as_input(input, "log_softmax")
    dtype = input.dtype if dtype is None else dtype
    d = canonical_dim(dim, input.ndim)[0]
    return dn.special.log_softmax(combine("amax", input, mask), d, dtype=dtype)


def softmin(input, dim, *, dtype=None, mask=None) -> Tensor:
    """``torch.masked.softmin``: ``softmax(-input)`` over the masked-in elements; masked-out ones get 0."""
    input = as_input(input, "softmin")
    dtype = input.dtype if dtype is None else dtype
    d = canonical_dim(dim, input.ndim)[0]
    # (torch's softmin casts to dtype, then takes softmax of the negation)
    return dn.special.softmax(-combine("amin", input, mask).to(dtype), d)


def normalize(input, ord, dim, *, eps=1e-12, dtype=None, mask=None) -> Tensor:  # noqa: A002
    """``torch.masked.normalize``: the masked-in elements over their masked ``ord``-norm along ``dim`` (at least
    ``eps``); masked-out ones get 0."""
    input = as_input(input, "normalize")
    dtype = input.dtype if dtype is None else dtype
    numerator = combine("sum", input, mask)
    nrm = norm(input, ord, dim, keepdim=True, dtype=dtype, mask=mask)
    return numerator / dn.maximum(nrm, dn.full((), eps, dtype=nrm.dtype))


def logaddexp(input, other, *, dtype=None, input_mask=None, other_mask=None) -> Tensor:
    """``torch.masked.logaddexp``: ``log(exp(input) + exp(other))`` with each operand's masked-out elements as
    -inf (so a position masked out in both gives -inf)."""
    input, other = as_input(input, "logaddexp"), as_input(other, "logaddexp")
    dtype = input.dtype if dtype is None else dtype
    a = combine("logaddexp", input, input_mask)
    b = combine("logaddexp", other, other_mask)
    return dn.logaddexp(a, b).to(dtype)


__all__ = ["cumsum", "cumprod", "softmax", "log_softmax", "softmin", "normalize", "logaddexp"]
