"""``BasicBlock``: the two-conv residual block of ResNet-18/34, as torchvision builds it.

    out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))

``conv1`` (3x3, stride ``stride``) and ``conv2`` (3x3) have no bias (the batch norms
supply it). The shortcut is the identity, or ``downsample`` = Sequential(1x1 conv
with the same stride, BatchNorm2d) when the shape changes: names
``downsample.0.weight``, ``downsample.1.running_mean``, ... as in torchvision.
"""
from __future__ import annotations

from distnn.functional import activation as A

from .conv import Conv2d
from .containers import Sequential
from .module import Module
from .normalization import BatchNorm2d


def conv3x3(in_planes, out_planes, stride=1, generator=None):
    return Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False, generator=generator)


def conv1x1(in_planes, out_planes, stride=1, generator=None):
    return Conv2d(in_planes, out_planes, 1, stride=stride, bias=False, generator=generator)


class BasicBlock(Module):
    """``BasicBlock(inplanes, planes, stride=1, downsample=None)``.

    torchvision expects the caller to pass ``downsample``; here it is built
    automatically (1x1 conv + BatchNorm2d) when ``stride != 1`` or
    ``inplanes != planes`` and none is given. Pass ``downsample=False`` to forbid it.
    """

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, generator=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride, generator)
        self.bn1 = BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, 1, generator)
        self.bn2 = BatchNorm2d(planes)
        if downsample is None and (stride != 1 or inplanes != planes):
            downsample = Sequential(conv1x1(inplanes, planes, stride, generator), BatchNorm2d(planes))
        if downsample is False:
            if stride != 1 or inplanes != planes:
                raise ValueError(f"BasicBlock({inplanes}, {planes}, stride={stride}) changes the shape and needs "
                                 "a downsample shortcut")
            downsample = None
        self.downsample = downsample
        self.inplanes, self.planes, self.stride = inplanes, planes, stride

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.inplanes:
            raise ValueError(f"{self.where()}: expected input (N, {self.inplanes}, H, W), got {tuple(x.shape)}")
        identity = x if self.downsample is None else self.downsample(x)
        out = A.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return A.relu(out + identity)

    def extra_repr(self):
        return f"{self.inplanes}, {self.planes}, stride={self.stride}"
