"""Binary cross-entropy, on logits (stable for large |logit|) and on probabilities."""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from .activation import sigmoid_array, softplus_array
from ._loss_common import _raw, _reduce, _saved


class _BCEWithLogits(Function):
    """loss = (1 - y) x + L softplus(-x), L = 1 + (pos_weight - 1) y; differentiable in x and y (as PyTorch)."""

    torch_name = "BinaryCrossEntropyWithLogitsBackward0"
    autocast = "float32"  # under distnn.autocast: needs float32's range

    # both gradients read x, y and the weights (as PyTorch's, whose formulas take all four), not the result
    reads = ((0, 1, 2, 3), (0, 1, 2, 3), (), ())

    def forward(self, x, y, weight=None, pos_weight=None, reduction="mean"):
        if y.shape != x.shape:
            raise ValueError(f"binary_cross_entropy_with_logits: target shape {tuple(y.shape)} != input shape {tuple(x.shape)}")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        for name, w in (("weight", weight), ("pos_weight", pos_weight)):
            if w is not None and np.broadcast_shapes(x.shape, w.shape) != x.shape:
                # (a larger broadcast loss would be averaged over more terms than the input has: PyTorch refuses too)
                raise ValueError(f"binary_cross_entropy_with_logits: {name} of shape {tuple(w.shape)} must broadcast "
                                 f"to the input's shape {tuple(x.shape)}, not enlarge it")
        dt = x.dtype
        y = y.astype(dt, copy=False)
        weight = None if weight is None else weight.astype(dt, copy=False)
        pos_weight = None if pos_weight is None else pos_weight.astype(dt, copy=False)
        L = 1 + (pos_weight - 1) * y if pos_weight is not None else 1
        # softplus(-x) = log(1 + e^-x), computed stably (never forms log(sigmoid(x))).
        sp = softplus_array(-x)
        loss = (1 - y) * x + L * sp
        if weight is not None:
            loss = loss * weight
        self.x, self.y, self.L, self.sp = x, y, L, sp
        self.weight, self.pos_weight, self.reduction = weight, pos_weight, reduction
        return _reduce(loss, reduction).astype(dt, copy=False)

    def backward(self, g):
        need_x, need_y = self.needs_input_grad[0], self.needs_input_grad[1]
        scale = g / self.x.size if self.reduction == "mean" else g
        if self.weight is not None:
            scale = scale * self.weight
        gx = gy = None
        if need_x:
            sig = sigmoid_array(self.x)
            gx = ((1 - self.y) - self.L * (1 - sig)) * scale
        if need_y:
            dy = -self.x if self.pos_weight is None else (self.pos_weight - 1) * self.sp - self.x
            gy = dy * scale
        return gx, gy, None, None


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction="mean"):
    """Binary cross-entropy on logits, stable for large |logit| (never forms log(sigmoid))."""
    if not isinstance(target, Tensor):
        target = get_array_module(_raw(input)).asarray(target)
    return _BCEWithLogits.apply(input, target, _saved(input, weight), _saved(input, pos_weight), reduction=reduction)


# PyTorch's floor under p (1 - p) in BCE's gradient is the float 1e-12 (9.99999996e-13 as a double), in
# every dtype: 1e-12 itself gives a float64 gradient at p = 0 or 1 that is 4e-9 (relative) off PyTorch's.
_BCE_GRAD_FLOOR = float(np.float32(1e-12))


class _BCE(Function):
    """-w (y log p + (1 - y) log(1 - p)) on probabilities p, each log clamped at -100 (PyTorch's BCELoss).

    The lecture notes' binary cross-entropy as written. On a sigmoid's output it loses the tails: p
    rounds to 0 or 1 (float32: |logit| > 17), so prefer binary_cross_entropy_with_logits (the notes'
    softplus form) when the logits are at hand. The clamp keeps p = 0 or 1 finite (a loss of at most 100).
    """

    torch_name = "BinaryCrossEntropyBackward0"
    autocast = "float32"  # under distnn.autocast: needs float32's range

    # p's gradient reads p, y and the weight, y's p and the weight; PyTorch's formulas both take
    # the input, the target and the weight: declared as those, so that both refuse alike
    reads = ((0, 1, 2), (0, 1, 2), ())

    def forward(self, p, y, weight=None, reduction="mean"):
        xp = get_array_module(p)
        if y.shape != p.shape:
            raise ValueError(f"binary_cross_entropy: target shape {tuple(y.shape)} != input shape {tuple(p.shape)}")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        if weight is not None and np.broadcast_shapes(p.shape, weight.shape) != p.shape:
            raise ValueError(f"binary_cross_entropy: weight of shape {tuple(weight.shape)} must broadcast to the "
                             f"input's shape {tuple(p.shape)}, not enlarge it")
        if p.size and not bool(((p >= 0) & (p <= 1)).all()):  # (NaN fails too, as in PyTorch)
            raise ValueError("binary_cross_entropy: every input must be a probability in [0, 1] (for logits use "
                             "binary_cross_entropy_with_logits)")
        dt = p.dtype
        y = y.astype(dt, copy=False)
        weight = None if weight is None else weight.astype(dt, copy=False)
        with np.errstate(divide="ignore"):  # log(0) = -inf, clamped just below
            log_p = xp.maximum(xp.log(p), -100)
            log_q = xp.maximum(xp.log1p(-p), -100)
        loss = -(y * log_p + (1 - y) * log_q)
        if weight is not None:
            loss = loss * weight
        self.p, self.y, self.weight, self.reduction = p, y, weight, reduction
        return _reduce(loss, reduction).astype(dt, copy=False)

    def backward(self, g):
        xp = get_array_module(g)
        scale = g / self.p.size if self.reduction == "mean" else g
        if self.weight is not None:
            scale = scale * self.weight
        gp = gy = None
        if self.needs_input_grad[0]:  # (p - y) / (p (1 - p)), its denominator kept >= PyTorch's floor
            p = self.p
            gp = (p - self.y) / xp.maximum(p * (1 - p), _BCE_GRAD_FLOOR) * scale
        if self.needs_input_grad[1]:  # PyTorch's: -logit(p) * grad, unclamped (+-inf at p = 0 or 1), in its order
            p = self.p
            gy = -xp.log(p / (1 - p)) * g
            if self.weight is not None:
                gy = gy * self.weight
            if self.reduction == "mean":
                gy = gy / p.size
        return gp, gy, None


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """Binary cross-entropy of probabilities ``input`` in [0, 1] against ``target`` (same shape)."""
    if not isinstance(target, Tensor):
        target = get_array_module(_raw(input)).asarray(target)
    return _BCE.apply(input, target, _saved(input, weight), reduction=reduction)
