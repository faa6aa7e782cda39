"""PyTorch's memory formats for ``is_contiguous(memory_format=)`` and ``contiguous(memory_format=)``.

``contiguous_format`` is row-major (NCHW for images). ``channels_last`` keeps a 4-D tensor's shape (N, C, H, W)
but lays its memory out as (N, H, W, C), so the channels of one pixel are neighbours; ``channels_last_3d`` is the
same for 5-D (N, C, D, H, W). As in PyTorch, whether a tensor is in a format is a pure test of its strides, and
``contiguous(memory_format=channels_last)`` copies into NHWC memory seen as NCHW (the same values and shape, other
strides). distnn's ops take any layout, so the format changes speed only, never results. ``preserve_format`` is
taken as PyTorch 2.13 takes it here: ``is_contiguous`` tests row-major strides, ``contiguous`` gives a contiguous
tensor itself and refuses any other (PyTorch's "preserve memory format is unsupported by the contiguous
operator").
"""
from __future__ import annotations

from distnn.autograd.function import Function
from distnn.backend import get_array_module


class memory_format:  # noqa: N801 - PyTorch's name
    """A memory layout (``distnn.contiguous_format``, ``distnn.channels_last``, ...); compared by identity."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self):
        return f"distnn.{self.name}"

    def __reduce__(self):  # (pickled as the module constant, so identity survives)
        return self.name


contiguous_format = memory_format("contiguous_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")
preserve_format = memory_format("preserve_format")

# the order of the dims from the fastest-moving in memory, and the rank each channels-last format needs
_CHANNELS_LAST = {channels_last: ((1, 3, 2, 0), 4), channels_last_3d: ((1, 4, 3, 2, 0), 5)}


def check_memory_format(fmt, op: str):
    """``fmt`` (None: ``contiguous_format``), refused as PyTorch refuses what is not a memory format."""
    if fmt is None:
        return contiguous_format
    if not isinstance(fmt, memory_format):
        raise TypeError(f"{op}(): argument 'memory_format' must be distnn.memory_format, not {type(fmt).__name__}")
    return fmt


def is_channels_last(shape, strides, fmt) -> bool:
    """PyTorch's ``compute_channels_last_contiguous_2d/3d``: strides that step 1 along C, then W, H(, D), N (dims of
    size 1 skipped); a tensor of another rank is never in the format."""
    order, rank = _CHANNELS_LAST[fmt]
    if len(shape) != rank:
        return False
    expected = 1
    for d in order:
        if shape[d] != 1:
            if strides[d] != expected:
                return False
            expected *= shape[d]
    return True


class ToChannelsLast(Function):
    """A copy of ``a`` with the same shape and values whose memory runs in the format's order (the gradient
    passes as it is)."""

    saves_tensors = False

    def forward(self, a, order):
        xp = get_array_module(a)
        to_memory = tuple(reversed(order))  # (N, H, W, C): the slowest dim first
        back = [0] * len(order)
        for i, d in enumerate(to_memory):
            back[d] = i
        out = xp.ascontiguousarray(a.transpose(to_memory)).transpose(back)
        if out.size == 0:  # (numpy gives an empty array strides 0: PyTorch's are the format's, there is no memory)
            strides, step = [0] * a.ndim, a.itemsize
            for d in order:
                strides[d] = step
                step *= max(a.shape[d], 1)
            out = xp.lib.stride_tricks.as_strided(out, shape=out.shape, strides=tuple(strides))
        return out

    def backward(self, g):
        return (g,)


def to_channels_last(t, fmt, strides):
    """``t`` itself where its strides are already in ``fmt``, else the copy; refused for a tensor of another rank
    with PyTorch's message."""
    order, rank = _CHANNELS_LAST[fmt]
    if t.ndim != rank:
        raise RuntimeError(f"required rank {rank} tensor to use {fmt.name} format")
    return t if is_channels_last(t.shape, strides, fmt) else ToChannelsLast.apply(t, order=order)
