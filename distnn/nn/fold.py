"""``Unfold`` and ``Fold``: PyTorch's modules over ``distnn.functional.unfold`` / ``fold`` (im2col and col2im)."""
from __future__ import annotations

from distnn.functional.fold import fold, unfold

from .module import Module


class Unfold(Module):
    """``Unfold(kernel_size, dilation=1, padding=0, stride=1)``: (N, C, H, W) -> (N, C*kh*kw, L), the sliding
    blocks as columns (see ``distnn.functional.unfold``)."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size, self.dilation, self.padding, self.stride = kernel_size, dilation, padding, stride

    def forward(self, input):
        return unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, "
                f"stride={self.stride}")


class Fold(Module):
    """``Fold(output_size, kernel_size, dilation=1, padding=0, stride=1)``: (N, C*kh*kw, L) -> (N, C, H, W),
    the columns added back over their blocks (see ``distnn.functional.fold``)."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, input):
        return fold(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")
