"""Randomized leaky ReLU (Xu et al.), PyTorch's ``F.rrelu``.

Training: each element ``x <= 0`` is multiplied by its own slope drawn uniformly from ``[lower, upper]``,
and the gradient is ``g`` times that slope (1 where ``x > 0``; a NaN passes ``g``, as PyTorch's noise is 1
there). Evaluation: leaky ReLU with the fixed slope ``(lower + upper) / 2``.

The slopes come from the same random streams as dropout's masks (:func:`unit_uniform`): by default distnn's
per-thread generator, under the trainer the per-sample generator, so N data-parallel ranks draw what one
process draws for the same samples.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from .activation import _float_kind, unit_uniform
from .activation_of_result import NEGATIVE_LEAKY_SLOPE
from .in_place_activation import apply_activation, refuse_integers


class RReLU(Function):
    """rrelu's node, PyTorch's RreluWithNoiseBackward0 in training and in evaluation alike: it keeps the noise (the
    slope where x <= 0, 1 elsewhere) and the input, in PyTorch's order, as saved_tensors_hooks see them. The noise is
    a keyword, not an input: the node's one input is x, as PyTorch's. Training: backward ``g * noise``. Evaluation
    (``eval_slope``, the fixed slope): PyTorch's leaky_relu_backward of the input (a NaN takes the slope, where the
    noise would pass it); the noise is then the slope everywhere (PyTorch leaves its noise unwritten there)."""

    torch_name = "RreluWithNoiseBackward0"
    reads = ((0,),)

    def forward(self, x, slopes, eval_slope=None):
        xp = get_array_module(x)
        self.eval_slope = eval_slope
        if eval_slope is None:
            self.noise = xp.where(x <= 0, slopes, x.dtype.type(1))
            self.x = x
            return x * self.noise
        self.noise, self.x = slopes, x
        return xp.where(x > 0, x, x * eval_slope)

    def backward(self, g):
        if self.eval_slope is None:
            return (g * self.noise,)
        return (get_array_module(g).where(self.x > 0, g, g * self.eval_slope),)


class RReLUOfResult(RReLU):
    """rrelu_'s node (PyTorch's RreluWithNoiseBackward1), in training and in evaluation alike: it keeps the noise and
    the result (the tensor itself, so a later in-place change of it is refused at backward). ``eval_slope``: the
    fixed slope of evaluation, whose backward PyTorch refuses when negative (as ``leaky_relu_``'s)."""

    torch_name = "RreluWithNoiseBackward1"
    reads = ((OUTPUT,),)

    def forward(self, x, slopes, eval_slope=None):
        xp = get_array_module(x)
        self.eval_slope = eval_slope
        self.noise = xp.where(x <= 0, slopes, x.dtype.type(1))  # (in evaluation too: the product reads it)
        self.out = x * self.noise
        return self.out

    def backward(self, g):
        slope = self.eval_slope
        if slope is None:
            return (g * self.noise,)
        if slope < 0:
            raise RuntimeError(NEGATIVE_LEAKY_SLOPE)
        # (PyTorch's leaky_relu_backward of the result: a NaN takes the slope, where the noise would pass it)
        return (get_array_module(g).where(self.out > 0, g, g * slope),)


RReLU.in_place_form = RReLUOfResult


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False, *, generator=None, batch_dim=None):
    """max(0, x) + a * min(0, x): ``a`` drawn uniformly from [lower, upper] per element while ``training``
    (note PyTorch's default ``training=False``), ``(lower + upper) / 2`` otherwise. ``generator``: a
    ``numpy.random.Generator`` for the slopes (default: distnn's, as dropout's masks); ``batch_dim``: the
    samples' axis, for the trainer's per-sample draws (None: guessed from the shape, see ``keep_mask``)."""
    if not lower <= upper:
        raise RuntimeError(f"rrelu: Lower bound should be less than or equal to the upper bound "
                           f"(lower={lower}, upper={upper})")
    xp = get_array_module(input)
    data = input.data if isinstance(input, Tensor) else xp.asarray(input)
    refuse_integers("rrelu_with_noise_out" if training else "leaky_relu", data)  # (PyTorch's kernels' words)
    if not training:
        slope = (lower + upper) / 2
        # (PyTorch leaves its node's noise unwritten in evaluation: the slope, everywhere, a zero-stride view, which
        # out of place nothing reads)
        slopes = xp.broadcast_to(xp.asarray(slope, dtype=data.dtype), data.shape)
        return apply_activation(RReLU, input, inplace, slopes=slopes, eval_slope=slope)
    from distnn import random as drandom

    rng = generator if generator is not None else drandom.default_generator()
    u = unit_uniform(rng, data.shape, _float_kind(data.dtype), batch_dim=batch_dim)
    slopes = (lower + (upper - lower) * np.asarray(u, dtype=np.float64)).astype(data.dtype)
    if xp.__name__ != "numpy":
        slopes = xp.asarray(slopes)
    return apply_activation(RReLU, input, inplace, slopes=slopes)


__all__ = ["rrelu"]
