"""``LinearCrossEntropyLoss``: PyTorch's (2.13) module over ``F.linear_cross_entropy``, a loss that owns the
final linear layer (a vocabulary head), so that the chunked path can avoid holding the (N, C) logits."""
from __future__ import annotations

import math

from distnn.functional.linear_cross_entropy import linear_cross_entropy
from distnn.functional.linear_cross_entropy_options import LinearCrossEntropyOptions

from .linear import Linear
from .loss import _WeightedLoss

__all__ = ["LinearCrossEntropyLoss", "LinearCrossEntropyOptions"]


class LinearCrossEntropyLoss(_WeightedLoss):
    """``LinearCrossEntropyLoss(in_features, num_classes, *, out_features=(), bias=False, device=None, dtype=None,
    reduction="mean", weight=None, ignore_index=None, label_smoothing=0.0, options=None)``;
    forward(input, target) is ``F.linear_cross_entropy(input, W, target, ...)``.

    As PyTorch's, the projection is a child ``linear`` (``Linear(in_features, num_classes * prod(out_features))``,
    so the state_dict keys are ``linear.weight``, ``linear.bias`` with ``bias=True``, and ``weight`` when class
    weights are given); forward views its flat weight as (C, d1, ..., dK, F) for a K-dimensional loss.
    A class weight not of shape (num_classes,) and a label smoothing outside [0, 1] are refused when built.
    """

    def __init__(self, in_features: int, num_classes: int, *, out_features: tuple = (), bias: bool = False,
                 device=None, dtype=None, reduction: str = "mean", weight=None, ignore_index: int | None = None,
                 label_smoothing: float = 0.0, options: LinearCrossEntropyOptions | None = None):
        if weight is not None and tuple(weight.shape) != (num_classes,):
            raise RuntimeError(f"expected weight shape to be {(num_classes,)}, got {tuple(weight.shape)}")
        if label_smoothing < 0 or label_smoothing > 1.0:
            raise RuntimeError(f"expected label_smoothing to be in range [0, 1], got {label_smoothing}")
        super().__init__(weight, reduction)
        self.num_classes, self.out_features = num_classes, tuple(out_features)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing
        # Linear's weight is 2-D; the K-dimensional view is taken in forward (PyTorch's layout)
        self.linear = Linear(in_features, math.prod(self.out_features, start=num_classes), bias=bias,
                             device=device, dtype=dtype)
        self.options = options

    def forward(self, input, target):
        linear_weight = self.linear.weight.reshape((self.num_classes, *self.out_features, self.linear.in_features))
        linear_bias = (self.linear.bias.reshape((self.num_classes, *self.out_features))
                       if self.linear.bias is not None else None)
        return linear_cross_entropy(input, linear_weight, target, linear_bias=linear_bias, weight=self.weight,
                                    reduction=self.reduction, ignore_index=self.ignore_index,
                                    label_smoothing=self.label_smoothing, options=self.options)

    def extra_repr(self):
        return (f"in_features={self.linear.in_features}, num_classes={self.num_classes}, "
                f"out_features={self.out_features}, bias={self.linear.bias is not None}, "
                f"reduction={self.reduction}, ignore_index={self.ignore_index}, "
                f"label_smoothing={self.label_smoothing}, options={self.options}")
