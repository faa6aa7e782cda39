"""torch.fft's helpers: the sample frequencies (``fftfreq``, ``rfftfreq``) and the zero-frequency shifts
(``fftshift``, ``ifftshift``), with PyTorch's arguments and values."""
from __future__ import annotations

import numbers

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.autograd.tensor_inplace_methods import torch_dtype_name
from distnn.backend import default_dtype, to_device
from distnn.default_device import place
from distnn.functional._dims import wrap_dim
from distnn.functional.select import roll
from distnn.functional.shape_more import as_tensor

from ._args import write_out

__all__ = ["fftfreq", "rfftfreq", "fftshift", "ifftshift"]


def _frequencies(name, n, d, out, dtype, device, requires_grad, steps):
    if not isinstance(n, numbers.Integral) or isinstance(n, bool):
        raise TypeError(f"fft_{name}(): argument 'n' must be int, not {type(n).__name__}")
    if n < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}]")
    if out is not None and dtype is not None and np.dtype(dtype) != out.dtype:
        raise RuntimeError(f"dtype {torch_dtype_name(dtype)} does not match dtype of out parameter "
                           f"({torch_dtype_name(out.dtype)})")
    dtype = np.dtype(dtype if dtype is not None else out.dtype if out is not None else default_dtype())
    if dtype.kind != "f":
        raise RuntimeError(f"{name} requires a floating point dtype, got {torch_dtype_name(dtype)} (PyTorch's "
                           "CPU arange refuses complex dtypes too)")
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.float64(1.0) / (np.float64(n) * np.float64(d))  # (d = 0: inf, as PyTorch's double division)
        # (PyTorch multiplies the integers, in the dtype, by the scale in that dtype)
        values = steps.astype(dtype) * dtype.type(scale)
    result = Tensor(to_device(values, device) if device is not None else values)
    if out is not None:
        n_out = result.numel()  # (PyTorch computes into out with arange, which warns in its own words)
        return write_out(name, result, out, warning=None if out.numel() == n_out else (
            f"The number of elements in the out tensor of shape {list(out.shape)} is {out.numel()} which does not "
            f"match the computed number of elements {n_out}. Note that this may occur as a result of rounding "
            f"error. The out tensor will be resized to a tensor of shape ({n_out},)."))
    result = result if device is not None else place(result)
    return result.requires_grad_(True) if requires_grad else result


def fftfreq(n, d=1.0, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    """``torch.fft.fftfreq``: the frequencies of :func:`~distnn.fft.fft`'s ``n`` bins for sample spacing ``d``:
    ``[0, 1, ..., (n - 1) // 2, -(n // 2), ..., -1] / (d * n)``, in ``dtype`` (a float; default: the default
    dtype). ``layout`` is accepted for PyTorch's signature (strided is the only one)."""
    steps = np.concatenate([np.arange((n - 1) // 2 + 1), np.arange(-(n // 2), 0)]) if isinstance(n, int) and n > 0 \
        else np.zeros(0, dtype=np.int64)
    return _frequencies("fftfreq", n, d, out, dtype, device, requires_grad, steps)


def rfftfreq(n, d=1.0, *, out=None, dtype=None, layout=None, device=None, requires_grad=False):
    """``torch.fft.rfftfreq``: the frequencies of :func:`~distnn.fft.rfft`'s ``n // 2 + 1`` bins:
    ``[0, 1, ..., n // 2] / (d * n)``."""
    steps = np.arange(n // 2 + 1) if isinstance(n, int) and n >= 0 else np.zeros(0, dtype=np.int64)
    return _frequencies("rfftfreq", n, d, out, dtype, device, requires_grad, steps)


def _shift(name, input, dim, inverse):  # noqa: A002
    x = as_tensor(input)
    if dim is None:
        if x.ndim == 0:
            raise RuntimeError(f"{name}: `shifts` required (a 0-dimensional tensor has no dimension to shift)")
        dims = tuple(range(x.ndim))
    else:
        dims = tuple(wrap_dim(d, x.ndim, f"fft.{name}")
                     for d in ((dim,) if isinstance(dim, numbers.Integral) else dim))
    # fftshift moves bin 0 to the middle (index n // 2); ifftshift undoes it (rolls by the rest)
    shifts = tuple((x.shape[d] + 1) // 2 if inverse else x.shape[d] // 2 for d in dims)
    return roll(x, shifts, dims)


def fftshift(input, dim=None):  # noqa: A002
    """``torch.fft.fftshift``: the spectrum reordered with the zero frequency in the middle (of every dim, or
    of ``dim``); differentiable (a roll)."""
    return _shift("fftshift", input, dim, False)


def ifftshift(input, dim=None):  # noqa: A002
    """``torch.fft.ifftshift``: the inverse of :func:`fftshift`."""
    return _shift("ifftshift", input, dim, True)
