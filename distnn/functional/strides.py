"""PyTorch's stride arithmetic on numpy's arrays: ``Tensor.stride()``'s values and ``computeStride`` (the strides of
a view of other sizes over the same memory, or none), in elements. Pure functions of shapes and strides, with no
import of the ops, so that the shape ops can import them once with their module (see :mod:`.view_strides` for
the rules' use).
"""
from __future__ import annotations

from functools import lru_cache
from math import prod


def element_strides(a):
    """numpy's strides of ``a`` in elements."""
    size = a.itemsize
    return tuple([s // size for s in a.strides])  # (numpy's and cupy's strides are Python ints)


def torch_strides(a) -> tuple:
    """``Tensor.stride()``: numpy's strides in elements, with PyTorch's values where numpy's carry no information.
    A dim of size 1 is never stepped over, and numpy gives the ones it adds (``x[None]``, ``x[:, None]``, a new
    leading dim of ``expand``) stride 0, where PyTorch's ``unsqueeze`` gives ``size * stride`` of the dim after it
    (1 for the last dim); numpy's empty arrays have all strides 0, PyTorch's new empty tensors row-major ones.
    (Not recoverable: a size-1 slice of an expanded dim, stride 0 in PyTorch, is reported as an unsqueezed one.)"""
    strides = element_strides(a)
    if 0 not in strides:
        return strides
    shape = a.shape
    if a.size == 0 and not any(strides):
        return _contiguous_strides(shape)
    out, after = list(strides), 1  # (after: what a size-1 dim before the current one would get)
    for d in range(len(shape) - 1, -1, -1):
        if shape[d] == 1 and out[d] == 0:
            out[d] = after
        after = shape[d] * out[d]
    return tuple(out)


def view_strides(shape, strides, new_shape):
    """PyTorch's ``computeStride``: the strides of ``new_shape`` over memory laid out as ``shape``/``strides``,
    or None where no view exists (the sizes have the same product)."""
    shape, strides, new_shape = tuple(shape), tuple(strides), tuple(new_shape)
    if not shape:
        return (1,) * len(new_shape)
    if prod(shape) == 0:  # (any layout: the strides are arbitrary, PyTorch's too)
        return strides if shape == new_shape else _contiguous_strides(new_shape)
    new_strides = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_base_stride = strides[-1]
    tensor_numel = view_numel = 1
    for tensor_d in range(len(shape) - 1, -1, -1):
        tensor_numel *= shape[tensor_d]
        # the end of a chunk: the first dim, or a dim before it that does not continue it
        if tensor_d == 0 or (shape[tensor_d - 1] != 1 and strides[tensor_d - 1] != tensor_numel * chunk_base_stride):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_strides[view_d] = view_numel * chunk_base_stride
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if tensor_d > 0:
                chunk_base_stride = strides[tensor_d - 1]
                tensor_numel = view_numel = 1
    return None if view_d != -1 else tuple(new_strides)


#: view_strides of tuples, remembered: a model reshapes the same few layouts on every step, and the stride walk
#: costs ~1 us where a lookup costs ~0.1 (the results are tuples or None, safe to share)
cached_view_strides = lru_cache(maxsize=1024)(view_strides)


def _contiguous_strides(shape):
    out, step = [], 1
    for s in reversed(shape):
        out.append(step)
        step *= max(s, 1)
    return tuple(reversed(out))
