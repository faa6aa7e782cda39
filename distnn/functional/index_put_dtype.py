"""PyTorch's dtype rule for writes through an advanced index (``y[idx] = v``, ``index_put_``, ``index_put``).

PyTorch writes those with ``index_put_``, whose kernel refuses a source tensor of another dtype than the
destination ("Index put requires the source and destination dtypes match, got Float for the destination and
Double for the source.") after checking that the value broadcasts to the indexed shape. It casts where another
kernel runs: a Python number becomes a tensor of the destination's dtype; an index of ints and slices only is a
``copy_`` into a view; and a lone bool mask (beside ``:`` and ints) with a one-element value is ``masked_fill_``
(``_index_put_impl_``'s dispatch, never with ``accumulate``), which takes the value as a number of the destination's
dtype, refusing one it cannot hold (an imaginary part, a float's overflow, an integer's NaN or overflow). distnn's numpy assignment casts everywhere, so
the rule is checked here first.
"""
from __future__ import annotations

import numpy as np

__all__ = ["check_index_put_dtype", "refuse_number_source"]


def refuse_number_source(name: str, argument: str, position: int, value) -> None:
    """``index_put``/``put`` (and their in-place forms) take their values as a Tensor only: a Python number is
    refused as PyTorch's parser refuses it (``x[idx] = number`` is the way to write one)."""
    if isinstance(value, (bool, int, float, complex)):
        raise TypeError(f"{name}(): argument '{argument}' (position {position}) must be Tensor, not "
                        f"{type(value).__name__}")


def _tensor_indices(index) -> list:
    """The items of ``index`` that PyTorch's indexing turns into index tensors (lists, arrays with dims, bool
    arrays; a Python bool or 0-d int array in a tuple is a bool index or a select)."""
    items = index if isinstance(index, tuple) else (index,)
    found = []
    for item in items:
        if isinstance(item, list):
            found.append(item)
        elif isinstance(item, (bool, np.bool_)):
            if isinstance(index, tuple):  # (a bool in a tuple: a long index of one or no position)
                found.append(np.asarray(0))
        elif hasattr(item, "dtype") and hasattr(item, "ndim") and (item.ndim > 0 or item.dtype.kind == "b"):
            found.append(np.asarray(0) if item.ndim == 0 else item)  # (a 0-d bool array: a long index)
    return found


def _is_mask(item) -> bool:
    if isinstance(item, list):
        return bool(item) and all(isinstance(b, (bool, np.bool_)) for b in item)
    return getattr(item, "dtype", None) is not None and item.dtype.kind == "b" and item.ndim > 0


def _masked_fill(indices, value, accumulate: bool) -> bool:
    """Whether PyTorch writes this with ``masked_fill_`` (its dispatch: one mask, one value, no accumulate)."""
    return not accumulate and int(np.prod(value.shape)) == 1 and len(indices) == 1 and _is_mask(indices[0])


_FLOAT_C_NAMES = {"float16": "c10::Half", "float32": "float", "float64": "double"}


def _check_fill_value(dtype, value) -> None:
    """PyTorch's ``masked_fill_`` takes its one value as a number of ``dtype`` (``c10::checked_convert``): refused
    with an imaginary part, outside a float dtype's finite range, or NaN or outside an integer's range (bool and
    complex destinations take anything)."""
    from .checked_scalar import integer_scalar

    if dtype.kind in "bc":
        return
    if dtype.kind in "iu":
        integer_scalar(complex(value) if np.iscomplexobj(value) else float(value), dtype)
        return
    real = float(value.real)
    if value.imag != 0 or (np.isfinite(real) and abs(real) > float(np.finfo(dtype).max)):
        raise RuntimeError(f"value cannot be converted to type {_FLOAT_C_NAMES.get(dtype.name, dtype.name)} "
                           "without overflow")


def _broadcasts(value_shape, target_shape) -> bool:
    try:
        return np.broadcast_shapes(tuple(value_shape), tuple(target_shape)) == tuple(target_shape)
    except ValueError:
        return False


def check_index_put_dtype(dst, index, value, accumulate: bool = False, indexed_shape=None) -> bool | None:
    """Raise PyTorch's RuntimeError where writing tensor ``value`` into array ``dst`` at ``index`` (raw, as numpy
    takes it; ``indices`` as ``index_put_`` takes them when ``indexed_shape`` is given: a function giving the
    indexed shape) goes through ``index_put_`` with mismatched dtypes. A value that does not broadcast is left
    to the caller's shape error, PyTorch's order; so is anything that is not a tensor. True where PyTorch writes
    with ``masked_fill_`` (the value a number: no ``copy_``, so no warning of a dropped imaginary part)."""
    from distnn.autograd.tensor import Tensor
    from distnn.autograd.tensor_inplace_methods import torch_dtype_name

    if not isinstance(value, Tensor) or value.dtype == dst.dtype:
        return
    indices = _tensor_indices(index) if indexed_shape is None else [
        getattr(i, "data", i) for i in index if i is not None]
    if not indices:
        return
    if _masked_fill(indices, value, accumulate):
        _check_fill_value(dst.dtype, value.data.reshape(-1)[0])
        return True
    try:
        target = dst[index].shape if indexed_shape is None else indexed_shape()
    except (IndexError, ValueError, TypeError):
        return  # (the caller's own error for a bad index)
    if not _broadcasts(value.shape, target):
        return
    raise RuntimeError("Index put requires the source and destination dtypes match, got "
                       f"{torch_dtype_name(dst.dtype)} for the destination and {torch_dtype_name(value.dtype)} "
                       "for the source.")
