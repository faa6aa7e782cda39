"""More of PyTorch's creation functions: ``vander``, ``scalar_tensor``, ``empty_strided`` and the deprecated
``range`` (an inclusive end), with PyTorch's dtypes and refusals."""
from __future__ import annotations

import builtins
import math
import numbers
import warnings

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import default_complex_dtype, default_dtype, get_array_module

from .join import concat
from .shape_more import as_tensor


def vander(x, N=None, increasing=False):  # noqa: N803 - PyTorch's name
    """``torch.vander``: the (n, N) matrix of powers of a 1-D ``x``, ``x^(N-1) ... x^0`` per row (``increasing``:
    ``x^0 ... x^(N-1)``, the order of ``linalg.vander``); ``N`` defaults to n. Bool and integer inputs give
    int64. Built as PyTorch's, a cumulative product of [1, x, x, ...], so the gradient at x = 0 is exact."""
    x = as_tensor(x)
    if x.ndim != 1:
        raise RuntimeError("x must be a one-dimensional tensor.")
    n = x.shape[0] if N is None else int(N)
    if n < 0:
        raise RuntimeError("N must be non-negative.")
    if x.dtype.kind in "biu":
        x = Tensor(x.data.astype(np.int64))
    xp = get_array_module(x.data)
    ones = Tensor(xp.ones((x.shape[0], min(n, 1)), dtype=x.dtype))
    if n <= 1:
        return ones
    powers = concat([ones, x.reshape(-1, 1).expand(x.shape[0], n - 1)], 1).cumprod(1)
    return powers if increasing else powers.flip(1)


def scalar_tensor(s, *, dtype=None, requires_grad=False):
    """``torch.scalar_tensor``: a 0-d tensor holding the number ``s``, in the default dtype unless ``dtype``
    (a bool or an int too, as PyTorch's). A 0-d tensor is taken as its number."""
    if isinstance(s, Tensor) and s.ndim == 0:
        s = s.item()
    if not isinstance(s, numbers.Number):
        raise TypeError(f"scalar_tensor(): argument 's' (position 1) must be Number, not {type(s).__name__}")
    if dtype is None:
        dtype = default_complex_dtype() if isinstance(s, numbers.Complex) and not isinstance(s, numbers.Real) \
            else default_dtype()
    return Tensor(np.asarray(s, dtype=dtype), requires_grad=requires_grad)


def empty_strided(size, stride, *, dtype=None, requires_grad=False):
    """``torch.empty_strided``: a tensor of ``size`` laid out in memory with ``stride`` (in elements, as
    ``Tensor.stride()``), over the smallest buffer that holds it. Its values are zeros (PyTorch leaves them
    uninitialized: never read them before writing)."""
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride):
        raise RuntimeError(f"dimensionality of sizes ({len(size)}) must match dimensionality of strides "
                           f"({len(stride)})")
    if any(s < 0 for s in size):
        bad = next(s for s in size if s < 0)
        raise RuntimeError(f"Trying to create tensor with negative dimension {bad}: {list(size)}")
    if any(s < 0 for s in stride):
        raise RuntimeError(f"Storage size calculation overflowed with sizes={list(size)} and "
                           f"strides={list(stride)} (empty_strided: strides must be non-negative)")
    dtype = np.dtype(default_dtype() if dtype is None else dtype)
    storage = 0 if 0 in size else 1 + builtins.sum((n - 1) * s for n, s in zip(size, stride))
    buffer = np.zeros(storage, dtype=dtype)
    data = np.lib.stride_tricks.as_strided(buffer, size, tuple(s * dtype.itemsize for s in stride))
    return Tensor(data, requires_grad=requires_grad)


def _number(v):
    return v.item() if isinstance(v, Tensor) else v


def range(start, end, step=1, *, dtype=None, requires_grad=False):  # noqa: A001 - PyTorch's name
    """``torch.range`` (deprecated, as PyTorch's, with its warning; use ``arange``): ``start, start + step, ...``
    up to and including ``end``, ``floor((end - start) / step) + 1`` values, in the default dtype unless
    ``dtype`` (an integer ``dtype`` truncates the bounds and the step first, as PyTorch's)."""
    warnings.warn("torch.range is deprecated and will be removed in a future release because its behavior is "
                  "inconsistent with Python's range builtin. Instead, use torch.arange, which produces values in "
                  "[start, end).", UserWarning, stacklevel=2)
    dtype = np.dtype(default_dtype() if dtype is None else dtype)
    start, end, step = (_number(v) for v in (start, end, step))
    if dtype.kind in "iub":
        start, end, step = (builtins.int(v) for v in (start, end, step))
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (step > 0 and end < start) or (step < 0 and end > start):
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    count = builtins.int(math.floor((end - start) / step)) + 1 if dtype.kind in "fc" else (end - start) // step + 1
    values = start + np.arange(count, dtype=np.float64 if dtype.kind in "fc" else np.int64) * step
    return Tensor(values.astype(dtype), requires_grad=requires_grad)


__all__ = ["vander", "scalar_tensor", "empty_strided", "range"]
