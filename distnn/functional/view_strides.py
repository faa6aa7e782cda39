"""``Tensor.view``, ``is_contiguous`` and ``contiguous`` with PyTorch's stride rules.

A view reinterprets the same memory, so it exists only where the new shape can be laid over the old strides:
PyTorch's ``computeStride`` (aten/src/ATen/TensorUtils.cpp), here on numpy's strides in elements. The old
dims are cut into chunks that are contiguous among themselves (``stride[d-1] == size[d] * stride[d]``); each
chunk must be covered exactly by consecutive new dims. So ``view`` of a diagonal, of a transpose or of a
stepped slice as one dim is refused, as PyTorch refuses it, while splitting or merging within a chunk (and
any view of a contiguous tensor) is allowed. ``reshape`` copies where ``view`` would refuse.
"""
from __future__ import annotations

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from .shape import Reshape

_VIEW_REFUSED = ("view size is not compatible with input tensor's size and stride (at least one dimension spans "
                 "across two contiguous subspaces). Use .reshape(...) instead.")


def element_strides(a):
    """numpy's strides of ``a`` in elements (PyTorch's ``stride()``)."""
    return tuple(int(s) // a.dtype.itemsize for s in a.strides)


def view_strides(shape, strides, new_shape):
    """PyTorch's ``computeStride``: the strides of ``new_shape`` over memory laid out as ``shape``/``strides``,
    or None where no view exists (the sizes have the same product)."""
    shape, strides, new_shape = tuple(shape), tuple(strides), tuple(new_shape)
    if not shape:
        return (1,) * len(new_shape)
    numel = 1
    for s in shape:
        numel *= s
    if numel == 0:  # (any layout: the strides are arbitrary, PyTorch's too)
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


def _contiguous_strides(shape):
    out, step = [], 1
    for s in reversed(shape):
        out.append(step)
        step *= max(s, 1)
    return tuple(reversed(out))


def is_contiguous_layout(a) -> bool:
    """PyTorch's ``is_contiguous``: row-major strides, ignoring dims of size 1 (and any empty tensor)."""
    if a.size == 0:
        return True
    expected = 1
    for size, stride in zip(reversed(a.shape), reversed(element_strides(a))):
        if size != 1:
            if stride != expected:
                return False
            expected *= size
    return True


def _resolved(shape, numel):
    """``shape`` with its one -1 worked out (None: a shape that Reshape refuses with its own message)."""
    shape = tuple(int(s) for s in shape)
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if shape.count(-1) == 1 and known and numel % known == 0:
        return tuple(numel // known if s == -1 else s for s in shape)
    return shape if shape.count(-1) == 0 and known == numel else None


def view(t, shape):
    """``Tensor.view``: ``t`` seen with ``shape``, sharing its memory; refused, as PyTorch refuses it, where
    the strides allow no such view (``reshape`` copies there)."""
    a = t.data
    new_shape = _resolved(shape, a.size)
    if new_shape is not None and view_strides(a.shape, element_strides(a), new_shape) is None:
        raise RuntimeError(_VIEW_REFUSED)
    return Reshape.apply(t, shape=tuple(shape))


class Contiguous(Function):
    """``Tensor.contiguous``: a row-major copy of a tensor that is not laid out so (the gradient passes)."""

    saves_tensors = False

    def forward(self, a):
        return get_array_module(a).ascontiguousarray(a)

    def backward(self, g):
        return (g,)


def contiguous(t):
    """``t`` itself when it is contiguous (PyTorch's rule), else a row-major copy in the graph."""
    return t if is_contiguous_layout(t.data) else Contiguous.apply(t)
