"""PyTorch's padding modules: ``ConstantPad{1,2,3}d``, ``ZeroPad{1,2,3}d``, ``ReflectionPad{1,2,3}d``,
``ReplicationPad{1,2,3}d`` and ``CircularPad{1,2,3}d``, each ``F.pad`` of its input in its mode.

``padding`` is an int (every side of the last 1, 2 or 3 dims) or PyTorch's flat tuple
``(left, right[, top, bottom[, front, back]])``, the last dimension first; a negative amount crops.
As PyTorch's ``_ntuple``, a sequence is kept as given (a 2-tuple to ``ReflectionPad2d`` pads the last
dimension only). The reflect, replicate and circular modules take PyTorch's inputs only, (C, *spatial)
or (N, C, *spatial) for as many spatial dims as the padding covers, with its errors (``F.pad`` itself
pads any dims in these modes).
"""
from __future__ import annotations

from collections.abc import Iterable

from distnn.functional.padding import pad

from .module import Module


def _ntuple(padding, n):
    """PyTorch's ``_ntuple(n)``: a sequence as a tuple (its length unchecked), an int repeated n times."""
    return tuple(padding) if isinstance(padding, Iterable) else (padding,) * n


class _PadNd(Module):
    """``F.pad(input, self.padding, self.mode)``; the subclasses set ``mode`` and the number of dims."""

    mode = "constant"
    dims = 1

    def __init__(self, padding):
        super().__init__()
        self.padding = _ntuple(padding, 2 * self.dims)

    def forward(self, input):
        _check_supported(self.mode, len(self.padding), input.ndim)
        return pad(input, self.padding, self.mode)

    def extra_repr(self):
        return f"{self.padding}"


def _check_supported(mode, length, ndim):
    """PyTorch's refusal of a non-constant padding of other than the last dims of a batched or unbatched
    input: 2 amounts for a 2-D or 3-D input, 4 for 3-D or 4-D, 6 for 4-D or 5-D (NotImplementedError). An odd
    or too long padding is left to ``F.pad``'s errors (PyTorch checks those first)."""
    if mode == "constant" or length % 2 or length > 2 * ndim:
        return
    if length // 2 not in (1, 2, 3) or ndim not in (length // 2 + 1, length // 2 + 2):
        raise NotImplementedError(
            f"Padding size {length} is not supported for {ndim}D input tensor. Supported combinations for "
            "non-constant padding: 2D or 3D input with padding size 2, 3D or 4D input with padding size 4, "
            "4D or 5D input with padding size 6")


# ---------------------------------------------------------------------------- constant and zero
class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value):
        super().__init__(padding)
        self.value = value

    def forward(self, input):
        return pad(input, self.padding, "constant", self.value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """``ConstantPad1d(padding, value)``: pads the last dimension with ``value``; ``padding`` an int or
    (left, right)."""

    dims = 1


class ConstantPad2d(_ConstantPadNd):
    """``ConstantPad2d(padding, value)``: pads the last two dimensions with ``value``; ``padding`` an int or
    (left, right, top, bottom)."""

    dims = 2


class ConstantPad3d(_ConstantPadNd):
    """``ConstantPad3d(padding, value)``: pads the last three dimensions with ``value``; ``padding`` an int or
    (left, right, top, bottom, front, back)."""

    dims = 3


class ZeroPad1d(ConstantPad1d):
    """``ZeroPad1d(padding)``: ``ConstantPad1d(padding, 0.0)``."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """``ZeroPad2d(padding)``: ``ConstantPad2d(padding, 0.0)``."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad3d(ConstantPad3d):
    """``ZeroPad3d(padding)``: ``ConstantPad3d(padding, 0.0)``."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


# ---------------------------------------------------------------------------- reflect and replicate
class ReflectionPad1d(_PadNd):
    """``ReflectionPad1d(padding)``: the last dimension of a (C, W) or (N, C, W) input mirrored about its
    edge cells (each amount smaller than the dimension)."""

    mode, dims = "reflect", 1


class ReflectionPad2d(_PadNd):
    """``ReflectionPad2d(padding)``: the last two dimensions of a (C, H, W) or (N, C, H, W) input mirrored
    about their edge cells (each amount smaller than its dimension)."""

    mode, dims = "reflect", 2


class ReflectionPad3d(_PadNd):
    """``ReflectionPad3d(padding)``: the last three dimensions of a (C, D, H, W) or (N, C, D, H, W) input
    mirrored about their edge cells (each amount smaller than its dimension)."""

    mode, dims = "reflect", 3


class ReplicationPad1d(_PadNd):
    """``ReplicationPad1d(padding)``: the edge cells of the last dimension of a (C, W) or (N, C, W) input
    repeated."""

    mode, dims = "replicate", 1


class ReplicationPad2d(_PadNd):
    """``ReplicationPad2d(padding)``: the edge cells of the last two dimensions of a (C, H, W) or
    (N, C, H, W) input repeated."""

    mode, dims = "replicate", 2


class ReplicationPad3d(_PadNd):
    """``ReplicationPad3d(padding)``: the edge cells of the last three dimensions of a (C, D, H, W) or
    (N, C, D, H, W) input repeated."""

    mode, dims = "replicate", 3


# ---------------------------------------------------------------------------- circular
class _CircularPadNd(_PadNd):
    mode = "circular"

    def forward(self, input):
        # (PyTorch's circular modules check the input's dims themselves, with a ValueError, before F.pad)
        if input.ndim not in (self.dims + 1, self.dims + 2):
            raise ValueError(f"expected {self.dims + 1}D or {self.dims + 2}D input (got {input.ndim}D input)")
        return super().forward(input)


class CircularPad1d(_CircularPadNd):
    """``CircularPad1d(padding)``: the last dimension of a (C, W) or (N, C, W) input wrapped around (each
    amount at most the dimension)."""

    dims = 1


class CircularPad2d(_CircularPadNd):
    """``CircularPad2d(padding)``: the last two dimensions of a (C, H, W) or (N, C, H, W) input wrapped
    around (each amount at most its dimension)."""

    dims = 2


class CircularPad3d(_CircularPadNd):
    """``CircularPad3d(padding)``: the last three dimensions of a (C, D, H, W) or (N, C, D, H, W) input
    wrapped around (each amount at most its dimension)."""

    dims = 3
