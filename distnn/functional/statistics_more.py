"""PyTorch's ``cov``, ``corrcoef``, ``dist``, ``renorm``, ``addr`` and ``histogram``, composed of distnn's
differentiable ops the way PyTorch composes them (so the gradients are PyTorch's), ``histogram`` on numpy's
(no gradient, as PyTorch's).
"""
from __future__ import annotations

import numbers
from collections import namedtuple

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import default_dtype, get_array_module

from .shape_more import as_tensor

HistogramResult = namedtuple("histogram", ["hist", "bin_edges"])


def cov(input, *, correction=1, fweights=None, aweights=None):  # noqa: A002
    """``torch.cov``: the covariance of the variables in ``input``'s rows (observations in its columns; a 1-D
    input is one variable), with ``correction`` (1: Bessel's) and integer frequency / float observation weights."""
    x = as_tensor(input)
    if x.ndim > 2:
        raise RuntimeError(f"cov(): expected input to have two or fewer dimensions but got an input with {x.ndim} "
                         "dimensions")
    x = x.reshape(1, -1) if x.ndim < 2 else x
    if x.data.dtype.kind == "b":
        raise RuntimeError("cov(): bool dtype is not supported for input")
    if x.data.dtype.kind in "iu":  # (PyTorch's: integers are averaged in the default float dtype, not float64)
        x = x.astype(default_dtype())
    n = x.shape[1]
    w = None
    if fweights is not None:
        fweights = as_tensor(fweights)
        if fweights.data.dtype.kind not in "iu":
            raise RuntimeError(f"cov(): expected fweights to have integral dtype but got fweights with "
                               f"{_torch_name(fweights.dtype)} dtype")
        _check_weights("fweights", fweights, n)
        w = fweights
    if aweights is not None:
        aweights = as_tensor(aweights)
        if aweights.data.dtype.kind != "f":
            raise RuntimeError(f"cov(): expected aweights to have floating point dtype but got aweights with "
                               f"{_torch_name(aweights.dtype)} dtype")
        _check_weights("aweights", aweights, n)
        w = aweights if w is None else w * aweights
    if w is None:
        w_sum = n
        avg = x.mean(1)
        norm = n - correction
    else:
        w_sum = w.sum()
        avg = (x * w).sum(1) / w_sum
        if correction == 0:
            norm = w_sum
        elif aweights is None:
            norm = w_sum - correction
        else:
            norm = w_sum - correction * (w * aweights).sum() / w_sum
    if isinstance(norm, Tensor):
        norm = norm.clamp(min=0)
    else:
        norm = max(norm, 0)
    xm = x - avg.unsqueeze(1)
    c = xm.matmul((xm if w is None else xm * w).t())
    return (c / norm).squeeze()


def _check_weights(name: str, w: Tensor, n: int) -> None:
    if w.ndim > 1:
        raise RuntimeError(f"cov(): expected {name} to have one or fewer dimensions but got {name} with {w.ndim} "
                           "dimensions")
    if w.numel() != n:
        raise RuntimeError(f"cov(): expected {name} to have the same numel as there are observations in the input "
                           f"but got {w.numel()} != {n}")
    if w.numel() and bool((w.data < 0).any()):
        raise RuntimeError(f"cov(): {name} cannot be negative")


def _torch_name(dtype) -> str:
    from distnn.autograd.tensor_inplace_methods import torch_dtype_name

    return torch_dtype_name(dtype)


def corrcoef(input):  # noqa: A002
    """``torch.corrcoef``: Pearson's correlation coefficients of ``input``'s rows, clipped to [-1, 1]."""
    c = cov(input)
    if c.ndim == 0:
        return c / c
    std = c.diagonal().sqrt()
    c = c / std.unsqueeze(1)
    c = c / std.unsqueeze(0)
    return c.clamp(-1, 1)


def dist(input, other, p=2):  # noqa: A002
    """``torch.dist``: the ``p``-norm of ``input - other`` (broadcast), over all elements."""
    from distnn.linalg import vector_norm

    return vector_norm(as_tensor(input) - other, ord=p)


def renorm(input, p, dim, maxnorm):  # noqa: A002
    """``torch.renorm``: each slice along ``dim`` whose ``p``-norm exceeds ``maxnorm`` scaled down to it (the
    norm gets PyTorch's 1e-7 in the denominator)."""
    from distnn.functional import where
    from distnn.linalg import vector_norm

    x = as_tensor(input)
    if x.ndim <= 1:
        raise RuntimeError(f"renorm: input needs at least 2 dimensions, got {x.ndim} dimensions")
    if not isinstance(p, numbers.Real) or p <= 0:
        raise RuntimeError("renorm: non-positive-norm not supported")
    if maxnorm < 0:
        raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
    d = dim % x.ndim
    norm = vector_norm(x, ord=p, dim=tuple(i for i in range(x.ndim) if i != d), keepdim=True)
    xp = get_array_module(norm.data)
    over = Tensor(norm.data > maxnorm)
    factor = where(over, maxnorm / (norm + 1e-7), Tensor(xp.ones((), dtype=norm.dtype)))
    return x * factor


def addr(input, vec1, vec2, *, beta=1, alpha=1):  # noqa: A002
    """``torch.addr``: ``beta * input + alpha * outer(vec1, vec2)`` (with ``beta = 0`` ``input`` is ignored,
    NaN included, as PyTorch's)."""
    from .matrix_more import addmm

    for name, v in (("vec1", vec1), ("vec2", vec2)):
        if as_tensor(v).ndim != 1:
            raise RuntimeError(f"addr: Expected 1-D argument {name}, but got {as_tensor(v).ndim}-D")
    return addmm(input, as_tensor(vec1).unsqueeze(1), as_tensor(vec2).unsqueeze(0), beta=beta, alpha=alpha)


def histogram(input, bins=100, *, range=None, weight=None, density=False):  # noqa: A002
    """``torch.histogram``: ``(hist, bin_edges)`` of a floating-point ``input`` with ``bins`` equal bins over
    ``range`` (default: the data's min and max) or the edges ``bins`` (a 1-D tensor); optional ``weight`` per
    element and ``density`` normalisation. No gradient, as PyTorch's."""
    x = as_tensor(input)
    if x.data.dtype.kind != "f":
        raise RuntimeError(f"torch.histogram: input tensor and bins tensors should have the same dtype, but got "
                           f"input {_torch_name(x.dtype).lower()} and bins float")
    data = np.asarray(x.numpy()).reshape(-1)
    w = None if weight is None else np.asarray(as_tensor(weight).numpy())
    if w is not None and w.shape != x.shape:
        raise RuntimeError("torch.histogram: if weight tensor is provided, it should have the same shape as the "
                           "input tensor")
    edges = as_tensor(bins).numpy() if isinstance(bins, (Tensor, np.ndarray)) else int(bins)
    if isinstance(edges, int) and edges <= 0:
        raise RuntimeError(f"torch.histogram(): bins must be > 0, but got {edges} for dimension 0")
    if range is not None and not range[0] <= range[1]:
        raise ValueError("torch.histogram(): max must be larger than min")
    hist, out_edges = np.histogram(data, bins=edges, range=range,
                                   weights=None if w is None else w.reshape(-1), density=density)
    xp = get_array_module(x.data)
    return HistogramResult(Tensor(xp.asarray(hist.astype(x.dtype))), Tensor(xp.asarray(out_edges.astype(x.dtype))))


__all__ = ["cov", "corrcoef", "dist", "renorm", "addr", "histogram"]
