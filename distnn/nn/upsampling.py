"""``Upsample``, ``UpsamplingNearest2d`` and ``UpsamplingBilinear2d``: PyTorch's modules over
``distnn.functional.interpolate`` (see there for the modes and the index arithmetic)."""
from __future__ import annotations

from distnn.functional.interpolate import interpolate

from .module import Module


class Upsample(Module):
    """``Upsample(size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None)``:
    ``F.interpolate`` of its input with these arguments (exactly one of size and scale_factor)."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                           recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self):
        info = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return info + f", mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """``UpsamplingNearest2d(size=None, scale_factor=None)``: ``Upsample`` with mode 'nearest'."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """``UpsamplingBilinear2d(size=None, scale_factor=None)``: ``Upsample`` with mode 'bilinear' and
    align_corners=True."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
