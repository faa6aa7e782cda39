"""Max unpooling, the partial inverse of max pooling: ``max_unpool1d``, ``max_unpool2d``, ``max_unpool3d``
with PyTorch's arguments, output sizes and refusals.

Each input value goes to its index (from ``max_pool*d(..., return_indices=True)``: the flat index of the
chosen input in its (N, C) plane or volume) in a zeroed output of the unpooled size; every other cell is 0.
One Function serves every dimension: it works on the (N * C, cells) planes. Its backward gathers the
output's gradient at the same indices.
"""
from __future__ import annotations

import math

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from .conv import _pair, _single
from .conv3d import _triple

#: the spatial axes' names, by the number of them
_AXES = {1: "L", 2: "H, W", 3: "D, H, W"}


class MaxUnpool(Function):
    """Each input value goes to its index in a zeroed plane of ``size`` cells; backward gathers there."""

    # backward reads only the indices (a Tensor of them is version-checked: changed in place before backward,
    # the gradient would be gathered at the new places; PyTorch's saves them too), never the input
    reads = ((1,), ())

    def forward(self, x, indices, size):
        xp = get_array_module(x)
        planes_n = x.shape[0] * x.shape[1]
        cells = math.prod(x.shape[2:])  # (sizes spelled out, not -1: an empty batch has N * C = 0)
        planes = xp.arange(planes_n)[:, None]
        flat_idx = indices.reshape(planes_n, cells)
        out = xp.zeros((planes_n, math.prod(size)), dtype=x.dtype)
        out[planes, flat_idx] = x.reshape(planes_n, cells)  # repeated indices: one of the values (PyTorch: the same)
        self.planes, self.flat_idx, self.xshape = planes, flat_idx, x.shape
        return out.reshape(x.shape[:2] + tuple(size))

    def backward(self, g):
        planes_n = self.xshape[0] * self.xshape[1]
        return g.reshape(planes_n, math.prod(g.shape[2:]))[self.planes, self.flat_idx].reshape(self.xshape), None


def _unpool_output_size(who, shape, kernel, stride, padding, output_size):
    """PyTorch's rule: (size - 1) * stride - 2 * padding + kernel per axis, or ``output_size`` (the spatial
    sizes, or with N and C in front) when each is within one stride of that (the sizes a max pool with these
    arguments could have come from)."""
    nd = len(kernel)
    default = [(shape[-nd + d] - 1) * stride[d] - 2 * padding[d] + kernel[d] for d in range(nd)]
    if output_size is None:
        size = default
    else:
        size = [int(s) for s in ((output_size,) if isinstance(output_size, int) else output_size)]
        if len(size) == nd + 2:
            size = size[2:]
        if len(size) != nd:
            raise ValueError(f"{who}: output_size must be ({_AXES[nd]}) or (N, C, {_AXES[nd]}), got "
                             f"{tuple(output_size) if not isinstance(output_size, int) else output_size}")
        for d in range(nd):
            if not default[d] - stride[d] < size[d] < default[d] + stride[d]:
                raise ValueError(
                    f"{who}: invalid output_size {tuple(output_size)}: dim {d} must be strictly between "
                    f"{default[d] - stride[d]} and {default[d] + stride[d]} for an input of shape {tuple(shape)}"
                )
    if min(size) < 0:
        raise ValueError(f"{who}: the output size {tuple(size)} is negative (input shape {tuple(shape)}, "
                         f"kernel_size {kernel}, stride {stride}, padding {padding})")
    return tuple(size)


def _max_unpool(who, nd, input, indices, kernel, stride, padding, output_size):
    """max_unpool{nd}d, its arguments already tuples of ``nd`` ints."""
    if min(kernel) < 1 or min(stride) < 1:
        raise ValueError(f"{who}: kernel_size and stride must be >= 1, got {kernel} and {stride}")
    shape = tuple(input.shape)
    if len(shape) not in (nd + 1, nd + 2):
        raise ValueError(f"{who}: expected a {nd + 2}-D input (N, C, {_AXES[nd]}) or a {nd + 1}-D one "
                         f"(C, {_AXES[nd]}), got shape {shape}")
    xp = get_array_module(input.data if isinstance(input, Tensor) else input)
    idx = xp.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{who}: indices must be integers, got dtype {idx.dtype}")
    if tuple(idx.shape) != shape:
        raise ValueError(f"{who}: indices have shape {tuple(idx.shape)} but the input has shape {shape}; "
                         f"they must match")
    size = _unpool_output_size(who, shape, kernel, stride, padding, output_size)
    cells = math.prod(size)
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= cells):
        raise ValueError(
            f"{who}: indices out of range: they span [{int(idx.min())}, {int(idx.max())}] but an output "
            f"plane of size {size} has {cells} cells (valid indices 0 .. {cells - 1})"
        )
    if isinstance(indices, Tensor) and indices.data is idx:  # (the caller's memory: kept a Tensor, checked)
        idx = indices
    if len(shape) == nd + 1:  # unbatched: a batch of one
        return MaxUnpool.apply(input.reshape((1,) + shape), idx.reshape((1,) + shape), size=size)[0]
    return MaxUnpool.apply(input, idx, size=size)


def _defaults(kernel_size, stride, padding, as_tuple, who):
    kernel = as_tuple(kernel_size, "kernel_size", who)
    stride = kernel if stride is None or stride == [] else as_tuple(stride, "stride", who)
    return kernel, stride, as_tuple(padding, "padding", who)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of ``max_pool1d``: (N, C, L) or (C, L) values at their indices along L_out =
    (L - 1) * stride - 2 * padding + kernel_size (or ``output_size``: (L,) or (N, C, L), within one stride of
    that), zeros elsewhere, as PyTorch. ``stride`` defaults to ``kernel_size``."""
    kernel, stride, padding = _defaults(kernel_size, stride, padding,
                                        lambda v, name, who: (_single(v, name, who),), "max_unpool1d")
    return _max_unpool("max_unpool1d", 1, input, indices, kernel, stride, padding, output_size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of ``max_pool2d``: each value of ``input`` lands at its index (from
    ``max_pool2d(..., return_indices=True)``) in a zeroed (H_out, W_out) plane; every other cell is 0.

    ``input`` and ``indices`` are (N, C, H, W) or (C, H, W) of the same shape. ``stride`` defaults to
    ``kernel_size``; H_out = (H - 1) * stride - 2 * padding + kernel_size unless ``output_size`` ((H, W) or
    (N, C, H, W)) says otherwise, as PyTorch. The gradient of ``input`` is the output's gradient at the indices.
    """
    kernel, stride, padding = _defaults(kernel_size, stride, padding, lambda v, name, who: _pair(v, name),
                                        "max_unpool2d")
    return _max_unpool("max_unpool2d", 2, input, indices, kernel, stride, padding, output_size)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of ``max_pool3d``: (N, C, D, H, W) or (C, D, H, W) values at their flat indices
    ``d * H * W + h * W + w`` in a zeroed (D_out, H_out, W_out) volume, each size (size - 1) * stride -
    2 * padding + kernel_size (or ``output_size``, within one stride of that), as PyTorch."""
    kernel, stride, padding = _defaults(kernel_size, stride, padding, _triple, "max_unpool3d")
    return _max_unpool("max_unpool3d", 3, input, indices, kernel, stride, padding, output_size)


__all__ = ["max_unpool1d", "max_unpool2d", "max_unpool3d"]
