"""``ResNet``: a small CIFAR-style residual network of ``BasicBlock`` stages."""
from __future__ import annotations

import math

from distnn import nn
from distnn.functional import activation as A
from distnn.nn.residual import BasicBlock

from . import arguments as argspec
from .inputs import as_real
from .registry import register_model


@register_model("resnet")
class ResNet(nn.Module):
    """``ResNet(layers=(2, 2, 2), widths=(16, 32, 64), in_channels=3, num_classes=10)``.

    Stem: 3x3 conv (no bias) -> BatchNorm2d -> relu, at full resolution (no
    max-pool, as for 32x32 CIFAR). Then one stage ``layer{i}`` per entry of
    ``layers``: that many ``BasicBlock``s of width ``widths[i]``, the first of each
    stage after the first with stride 2. Global average pool, then ``fc``.
    Names follow torchvision (``conv1, bn1, layer1.0.conv1, ..., fc``);
    ``layers=(2, 2, 2, 2), widths=(64, 128, 256, 512)`` is ResNet-18 minus its
    7x7/max-pool stem. Init as torchvision: kaiming_normal_(fan_out, relu) convs.
    ``input_shape`` (C, H, W) sets in_channels; a flat (H*W,) shape means a
    square single-channel image, reshaped on the fly.
    """

    arguments = argspec.Arguments({
        "layers": argspec.integers(),   # BasicBlocks per stage
        "widths": argspec.integers(),   # channels per stage
        "in_channels": argspec.integer(),
    }, relations=[argspec.same_length("layers", "widths", "one width per stage")], from_data=("in_channels",))

    def __init__(self, layers=(2, 2, 2), widths=(16, 32, 64), in_channels=3, num_classes=10, input_shape=None,
                 generator=None):
        super().__init__()
        self.arguments.check("ResNet", layers=layers, widths=widths, in_channels=in_channels)
        self.image_shape = None
        if input_shape is not None:
            shape = tuple(int(s) for s in input_shape)
            if len(shape) == 1:
                side = math.isqrt(shape[0])
                if side * side != shape[0]:
                    raise ValueError(f"ResNet: flat input_shape {shape} is not a square image")
                shape = (1, side, side)
            if len(shape) != 3:
                raise ValueError(f"ResNet: input_shape must be (C, H, W) or (H*W,), got {tuple(input_shape)}")
            self.image_shape = shape
            in_channels = shape[0]
        self.in_channels = in_channels
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False, generator=generator)
        self.bn1 = nn.BatchNorm2d(widths[0])
        inplanes = widths[0]
        for i, (n, w) in enumerate(zip(layers, widths)):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(inplanes, w, stride, generator=generator))
                inplanes = w
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_stages = len(layers)
        self.fc = nn.Linear(inplanes, num_classes, generator=generator)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=generator)

    def forward(self, x):
        x = as_real(self, x)
        if x.ndim == 2 and self.image_shape is not None:
            x = x.reshape((x.shape[0],) + self.image_shape)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self.where()}: expected input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        x = A.relu(self.bn1(self.conv1(x)))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        x = x.mean(axis=(2, 3))  # global average pool
        return self.fc(x)
