"""``Tensor.view(dtype)``: the same bytes read as another dtype, as PyTorch's ``view.dtype``.

The result shares the tensor's memory and version counter (a write through either is seen by the other, and
bumps both). A dtype of the same item size keeps the shape and strides; a smaller one multiplies the last dim
(and every other stride) by the ratio, a larger one divides them, under PyTorch's conditions (checked in its
order, with its messages, aten/src/ATen/native/TensorConversions.cpp ``view_dtype``): a tensor with dims, the
last dim's stride 1, and for a larger item size the last size, the storage offset and the other strides divisible
by the ratio.

Autograd: PyTorch 2.13's ``view(dtype)`` is not differentiable, to any dtype, its own included: the result never
requires grad and has no ``grad_fn``, even from a tensor that requires grad (as a ``detach()``, which it also is
for in-place changes: writing through it is allowed on a leaf that requires grad). distnn's does the same.

The strides checked are ``stride()``'s (PyTorch's for the size-1 dims numpy adds with stride 0, see
:func:`.view_strides.torch_strides`). One leniency: a last dim of size 1 has its stride not checked, as it is never
stepped over.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.tensor_inplace_methods import torch_dtype_name
from distnn.backend import get_array_module

from .strides import torch_strides


def as_dtype(dtype) -> np.dtype:
    """``dtype`` as distnn takes dtypes elsewhere (``Tensor.to``): distnn's (numpy's) dtype types, numpy dtypes,
    their names; refused with a TypeError when it names no dtype a tensor can hold."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.kind not in "biufc":
        raise TypeError(f"view(): expected a dtype (distnn.int32, numpy.float16, 'uint8', ...), got {dtype!r}")
    return resolved


def storage_root(a):
    """The numpy array whose memory ``a`` views: the last array up ``a``'s chain of ``base`` (through the holders
    numpy's ``as_strided`` puts between a strided view and its array)."""
    root, link = a, a.base
    while link is not None:
        if isinstance(link, np.ndarray):
            root = link
        link = getattr(link, "base", None)
    return root


def storage_offset(a) -> int:
    """PyTorch's ``storage_offset()`` of array ``a``: where it starts in the memory it views, in its own items."""
    xp = get_array_module(a)
    if xp is np:
        start = a.__array_interface__["data"][0] - storage_root(a).__array_interface__["data"][0]
    else:  # (cupy: the offset of its pointer in the allocation)
        start = a.data.ptr - a.data.mem.ptr if a.data.mem is not None else 0
    return int(start) // a.dtype.itemsize


def check_view_dtype(a, new: np.dtype) -> None:
    """Raise PyTorch's RuntimeError where ``a`` cannot be read as ``new``."""
    old = a.dtype
    if old.itemsize == new.itemsize:
        return
    what = f"to view {torch_dtype_name(old)} as {torch_dtype_name(new)} (different element sizes)"
    if a.ndim == 0:
        raise RuntimeError(f"self.dim() cannot be 0 {what}")
    strides = torch_strides(a)
    last_stride = 1 if a.shape[-1] == 1 else strides[-1]
    if old.itemsize > new.itemsize:
        if last_stride != 1:
            raise RuntimeError(f"self.stride(-1) must be 1 {what}, but got {strides[-1]}")
        return
    ratio = new.itemsize // old.itemsize
    if a.shape[-1] % ratio:
        raise RuntimeError(f"self.size(-1) must be divisible by {ratio} {what}, but got {a.shape[-1]}")
    offset = storage_offset(a)
    if offset % ratio:
        raise RuntimeError(f"self.storage_offset() must be divisible by {ratio} {what}, but got {offset}")
    if last_stride != 1:
        raise RuntimeError(f"self.stride(-1) must be 1 {what}, but got {strides[-1]}")
    for d in range(a.ndim - 1):
        if strides[d] % ratio:
            raise RuntimeError(f"self.stride({d}) must be divisible by {ratio} {what}, but got {strides[d]}")


def _reinterpret(a, new: np.dtype):
    """``a``'s memory as ``new`` (the checks passed): numpy's ``view``; on cupy, an array over the same pointer
    with the rescaled shape and strides (cupy's ``view`` asks the whole array to be contiguous)."""
    xp = get_array_module(a)
    if xp is np or a.dtype.itemsize == new.itemsize:
        return a.view(new)
    shape = (*a.shape[:-1], a.shape[-1] * a.dtype.itemsize // new.itemsize)
    strides = (*a.strides[:-1], new.itemsize)
    return xp.ndarray(shape, dtype=new, memptr=a.data, strides=strides)


def view_dtype(t, dtype):
    """``t``'s memory read as ``dtype`` (see the module docstring): a tensor that requires no grad, sharing
    ``t``'s memory and version counter."""
    from distnn.autograd.tensor import Tensor
    from distnn.autograd.versions import _share

    new = as_dtype(dtype)
    check_view_dtype(t.data, new)
    out = Tensor._make(_reinterpret(t.data, new), None)
    _share(t, out)
    out.__dict__["_alias"] = object()  # (cut from the graph, as a detach(): see versions._shared_with_another)
    return out
