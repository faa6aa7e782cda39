"""``LeNet``: LeNet-5 style convnet for small grey images (8x8 digits, 28x28 MNIST)."""
from __future__ import annotations

import math

from distnn import nn
from distnn.functional import activation as A

from . import arguments as argspec
from .inputs import as_real
from .registry import register_model


@register_model("lenet", "cnn")
class LeNet(nn.Module):
    """``LeNet(in_channels=1, num_classes=10, image_size=28)``.

    conv1 -> relu -> maxpool2 -> conv2 -> relu -> maxpool2 -> fc1 (120) -> relu ->
    fc2 (84) -> relu -> fc3. For images of 20 pixels or more the convs are 5x5
    (conv1 padded by 2, the classic 28x28 layout: 28 -> 14 -> 10 -> 5); smaller
    images (8x8 digits) use 3x3 convs padded by 1 (8 -> 4 -> 2).
    ``input_shape`` (C, H, W) overrides in_channels and image_size; a flat
    (H*W,) shape means a square single-channel image, reshaped on the fly.
    """

    arguments = argspec.Arguments({
        "in_channels": argspec.integer(),
        "image_size": argspec.integer_or_pair(),
        "channels": argspec.integers(length=2),  # conv1, conv2 output channels
        "hidden": argspec.integers(length=2),    # fc1, fc2 widths
    }, from_data=("in_channels", "image_size"))

    def __init__(self, in_channels=1, num_classes=10, image_size=28, input_shape=None, channels=(6, 16),
                 hidden=(120, 84), generator=None):
        super().__init__()
        self.arguments.check("LeNet", in_channels=in_channels, image_size=image_size, channels=channels,
                             hidden=hidden)
        self.flat_input = False
        if input_shape is not None:
            shape = tuple(int(s) for s in input_shape)
            if len(shape) == 1:
                side = math.isqrt(shape[0])
                if side * side != shape[0]:
                    raise ValueError(f"LeNet: flat input_shape {shape} is not a square image")
                shape, self.flat_input = (1, side, side), True
            if len(shape) == 2:
                shape = (1,) + shape
            if len(shape) != 3:
                raise ValueError(f"LeNet: input_shape must be (C, H, W), (H, W) or (H*W,), got {tuple(input_shape)}")
            in_channels, image_size = shape[0], shape[1:]
        h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        k, p1, p2 = (5, 2, 0) if min(h, w) >= 20 else (3, 1, 1)
        c1, c2 = channels
        self.conv1 = nn.Conv2d(in_channels, c1, k, padding=p1, generator=generator)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(c1, c2, k, padding=p2, generator=generator)

        def out_size(s):
            s = (s + 2 * p1 - k + 1) // 2
            return (s + 2 * p2 - k + 1) // 2

        fh, fw = out_size(h), out_size(w)
        if fh < 1 or fw < 1:
            raise ValueError(f"LeNet: image size {(h, w)} is too small")
        self.fc1 = nn.Linear(c2 * fh * fw, hidden[0], generator=generator)
        self.fc2 = nn.Linear(hidden[0], hidden[1], generator=generator)
        self.fc3 = nn.Linear(hidden[1], num_classes, generator=generator)
        self.in_channels, self.image_size = in_channels, (h, w)

    def forward(self, x):
        x = as_real(self, x)
        c, (h, w) = self.in_channels, self.image_size
        if self.flat_input and x.ndim == 2:
            x = x.reshape(x.shape[0], c, h, w)
        if x.ndim != 4 or tuple(x.shape[1:]) != (c, h, w):
            raise ValueError(f"{self.where()}: expected input (N, {c}, {h}, {w}), got {tuple(x.shape)}")
        x = self.pool(A.relu(self.conv1(x)))
        x = self.pool(A.relu(self.conv2(x)))
        x = x.flatten(1)
        x = A.relu(self.fc1(x))
        x = A.relu(self.fc2(x))
        return self.fc3(x)
