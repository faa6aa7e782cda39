"""PyTorch's channel rearrangements: ``pixel_shuffle``, ``pixel_unshuffle``, ``channel_shuffle`` (and
``native_channel_shuffle``, its values with no derivative, as PyTorch's).

Each is a reshape, a transpose and a reshape (the differentiable ops of :mod:`.shape`), so the gradient
is the inverse permutation of the upstream gradient, and any dtype is taken, as PyTorch's. An empty input
gets the shape the layout gives (PyTorch's pixel_unshuffle returns an empty input unchanged, of the wrong
shape, and so pixel_shuffle's backward there refuses its own gradient).
"""
from __future__ import annotations

import numbers

from distnn.autograd.function import Function

from .shape import reshape, transpose


def _factor(x, value, name, who):
    """``value`` as a positive int, with PyTorch's refusals in its order: a non-int (bool included) is a
    TypeError, then an input of fewer than 3 dims, then a factor below 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{who}(): argument '{name}' must be int, not {type(value).__name__}")
    if x.ndim < 3:
        raise ValueError(f"{who} expects input to have at least 3 dimensions, but got input with {x.ndim} "
                         "dimension(s)")
    if value <= 0:
        raise ValueError(f"{who} expects a positive {name}, but got {value}")
    return int(value)


def pixel_shuffle(input, upscale_factor):
    """PyTorch's ``F.pixel_shuffle``: (*, C r^2, H, W) -> (*, C, H r, W r), channel ``c r^2 + i r + j``
    going to row offset i and column offset j of the r x r block of output channel c."""
    r = _factor(input, upscale_factor, "upscale_factor", "pixel_shuffle")
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise ValueError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of "
                         f"upscale_factor, but input.size(-3)={c} is not divisible by {r * r}")
    k = len(lead)
    x = reshape(input, (*lead, c // (r * r), r, r, h, w))
    x = transpose(x, axes=(*range(k), k, k + 3, k + 1, k + 4, k + 2))  # (*, C, H, r, W, r)
    return reshape(x, (*lead, c // (r * r), h * r, w * r))


def pixel_unshuffle(input, downscale_factor):
    """PyTorch's ``F.pixel_unshuffle``, the inverse of ``pixel_shuffle``: (*, C, H r, W r) -> (*, C r^2, H, W)."""
    r = _factor(input, downscale_factor, "downscale_factor", "pixel_unshuffle")
    *lead, c, h, w = input.shape
    for size, name, dim in ((h, "height", -2), (w, "width", -1)):
        if size % r:
            raise ValueError(f"pixel_unshuffle expects {name} to be divisible by downscale_factor, but "
                             f"input.size({dim})={size} is not divisible by {r}")
    k = len(lead)
    x = reshape(input, (*lead, c, h // r, r, w // r, r))
    x = transpose(x, axes=(*range(k), k, k + 2, k + 4, k + 1, k + 3))  # (*, C, r, r, H, W)
    return reshape(x, (*lead, c * r * r, h // r, w // r))


def _groups(input, groups, who):  # noqa: A002
    """``groups`` checked against ``input`` (N, C, *) as PyTorch's channel_shuffle checks it, as an int."""
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral):
        raise TypeError(f"{who}(): argument 'groups' must be int, not {type(groups).__name__}")
    if input.ndim <= 2:
        raise ValueError(f"channel_shuffle expects input with > 2 dims, but got input with sizes {list(input.shape)}")
    if groups <= 0:
        raise ValueError(f"Number of groups to divide channels in must be positive. Value of groups:{groups}")
    c = input.shape[1]
    if c % groups:
        raise ValueError(f"Number of channels must be divisible by groups. Got {c} channels and {groups} groups.")
    return int(groups)


def channel_shuffle(input, groups):
    """PyTorch's ``F.channel_shuffle``: the C channels of an (N, C, *) input (more than 2 dims) split into
    ``groups`` groups and interleaved: output channel ``i groups + g`` is input channel ``g (C / groups) + i``."""
    groups = _groups(input, groups, "channel_shuffle")
    n, c, *rest = input.shape
    x = reshape(input, (n, groups, c // groups, *rest))
    x = transpose(x, axes=(0, 2, 1, *range(3, input.ndim + 1)))
    return reshape(x, (n, c, *rest))


class NativeChannelShuffle(Function):
    """``torch.native_channel_shuffle``'s kernel: channel_shuffle's values in a new array, and, as PyTorch's, no
    derivative: an input that requires grad gives an output that requires grad (PyTorch's ``NotImplemented``
    node), and a backward that reaches it is refused."""

    saves_tensors = False

    def forward(self, x, groups):
        n, c, *rest = x.shape
        moved = x.reshape(n, groups, c // groups, *rest).swapaxes(1, 2)
        return moved.copy().reshape(x.shape)  # (a copy even where the transpose is trivial: never a view)

    def backward(self, grad):
        raise RuntimeError("derivative for aten::native_channel_shuffle is not implemented")


def native_channel_shuffle(input, groups):
    """``torch.native_channel_shuffle`` (``F.native_channel_shuffle``): :func:`channel_shuffle`'s values and
    refusals, but with no gradient, as PyTorch's: its backward raises "derivative for
    aten::native_channel_shuffle is not implemented" (use ``channel_shuffle`` to differentiate)."""
    return NativeChannelShuffle.apply(input, groups=_groups(input, groups, "native_channel_shuffle"))
