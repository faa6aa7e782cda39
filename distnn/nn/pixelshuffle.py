"""``PixelShuffle``, ``PixelUnshuffle`` and ``ChannelShuffle``: PyTorch's modules over
``F.pixel_shuffle``, ``F.pixel_unshuffle`` and ``F.channel_shuffle`` (see there for the layouts)."""
from __future__ import annotations

from distnn.functional.pixel_shuffle import channel_shuffle, pixel_shuffle, pixel_unshuffle

from .module import Module


class PixelShuffle(Module):
    """``PixelShuffle(upscale_factor)``: (*, C r^2, H, W) -> (*, C, H r, W r)."""

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input):
        return pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """``PixelUnshuffle(downscale_factor)``: (*, C, H r, W r) -> (*, C r^2, H, W), PixelShuffle's inverse."""

    def __init__(self, downscale_factor: int):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input):
        return pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"


class ChannelShuffle(Module):
    """``ChannelShuffle(groups)``: the channels of an (N, C, *) input split into ``groups`` groups and
    interleaved (ShuffleNet's shuffle)."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, input):
        return channel_shuffle(input, self.groups)

    def extra_repr(self):
        return f"groups={self.groups}"
