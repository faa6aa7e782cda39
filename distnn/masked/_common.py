"""What every ``distnn.masked`` operation shares, as torch.masked's ``_ops.py``: the canonical dims, the
canonical (broadcast, boolean) mask, and each reduction's identity, the value masked-out elements take so that
the plain reduction of the filled input is the masked reduction.

Filling goes through ``distnn.where``, so the gradient of a masked-out element is exactly 0 (``where``'s
backward selects, never multiplies, so not even a NaN upstream gradient reaches it), as torch's.
"""
from __future__ import annotations

import numpy as np

import distnn as dn
from distnn import backend
from distnn.autograd import Tensor

from .maskedtensor import MaskedTensor

# torch's sum/prod promote these to int64 when no dtype is given
_PROMOTED_TO_INT64 = {np.dtype(t) for t in (np.uint8, np.bool_, np.int8, np.int16, np.int32)}


def is_floating(dtype) -> bool:
    return np.dtype(dtype).kind == "f"


def is_float_or_complex(dtype) -> bool:
    return np.dtype(dtype).kind in "fc"


def as_input(input, op: str):
    """``input``, a Tensor or a MaskedTensor; anything else is refused, naming ``op``."""
    if isinstance(input, (Tensor, MaskedTensor)):
        return input
    raise TypeError(f"masked {op}(): input must be a Tensor or a MaskedTensor, got {type(input).__name__}")


def array_of(input):
    """The array under a Tensor or a MaskedTensor's data."""
    return input.get_data().data if isinstance(input, MaskedTensor) else input.data


def canonical_dim(dim, ndim: int) -> tuple:
    """``dim`` as a sorted tuple of non-negative dims; None and ``()`` are every dim (torch's _canonical_dim)."""
    if dim == ():  # (torch's reductions still read dim=() as "all dims")
        dim = None
    if dim is None:
        return tuple(range(ndim))
    ndim = max(ndim, 1)
    dims = []
    for d in ((dim,) if isinstance(dim, (int, np.integer)) else dim):
        d = int(d)
        if d in dims:
            raise RuntimeError(f"dim={d} appears multiple times in the list of dims")
        if d >= ndim or d < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {d})")
        dims.append(d % ndim)
    return tuple(sorted(dims))


def input_mask(input: Tensor, mask) -> Tensor:
    """The boolean mask of ``input``'s shape: ``mask`` broadcast to it (a mask of more dims than the input is
    refused: masks never shrink) and cast to bool, as torch's _input_mask."""
    if mask is None:
        raise ValueError("_input_mask requires explicit mask")
    mask = mask if isinstance(mask, Tensor) else dn.tensor(backend.as_array(mask))  # (a raw cupy mask too)
    # (on the input's device: a host mask beside a GPU input, as distnn's ops take host index data)
    mask = dn.tensor(backend.to_device(mask.data, backend.device_of(array_of(input))))
    if tuple(mask.shape) != tuple(input.shape):
        if mask.ndim > input.ndim:
            raise IndexError("_input_mask expected broadcastable mask (got mask dimensionality higher than of the "
                             "input)")
        mask = dn.broadcast_to(mask, tuple(input.shape))
    return mask.to(np.bool_)


def reduction_identity(op: str, input: Tensor, *args):
    """The value that leaves ``op``'s reduction unchanged, as a 0-d array of the input's dtype (torch's
    _reduction_identity), or None where it is not defined (mean, var, std: their masked-out results are NaN)."""
    dtype = np.dtype(input.dtype)
    kind = dtype.kind
    if op in ("sum", "cumsum"):
        return np.asarray(0, dtype)
    if op in ("prod", "cumprod"):
        return np.asarray(1, dtype)
    if op in ("amax", "argmax", "logaddexp", "logsumexp"):
        if kind in "fc" and (kind == "f" or op == "logsumexp"):
            return np.asarray(-np.inf, dtype)
        if kind == "i" or dtype == np.uint8:
            return np.asarray(np.iinfo(dtype).min, dtype)
    elif op in ("amin", "argmin"):
        if kind == "f":
            return np.asarray(np.inf, dtype)
        if kind == "i" or dtype == np.uint8:
            return np.asarray(np.iinfo(dtype).max, dtype)
    elif op in ("mean", "var", "std"):
        return None
    elif op == "norm":
        if (args[0] if args else 2) == float("-inf"):
            if kind != "f":
                raise AssertionError(f"input must be floating point, got {dtype}")
            return np.asarray(np.inf, dtype)
        return np.asarray(0, dtype)
    elif op == "median":
        # (torch's masked median is nanmedian over the filled input, so NaN is the identity)
        return np.asarray(np.nan, dtype if kind == "f" else np.float32)
    raise NotImplementedError(f"identity of {op} on {dtype} input")


def combine(op: str, input, mask, *args) -> Tensor:
    """``input`` with its masked-out elements replaced by ``op``'s identity (itself when there is no mask). A
    MaskedTensor's own mask is used, and ``mask`` is not, as torch's _combine_input_and_mask."""
    if isinstance(input, MaskedTensor):
        data = input.get_data()
        return dn.where(input.get_mask(), data, reduction_identity(op, data, *args))
    if mask is None:
        return input
    return dn.where(input_mask(input, mask), input, reduction_identity(op, input, *args))


def sum_dtype(input: Tensor, dtype):
    """torch's masked sum/prod dtype: the given one, else the input's with small integers and bool as int64."""
    if dtype is not None:
        return np.dtype(dtype)
    dt = np.dtype(input.dtype)
    return np.dtype(np.int64) if dt in _PROMOTED_TO_INT64 else dt
