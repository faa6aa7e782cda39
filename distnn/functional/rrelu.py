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

from .activation import LeakyReLU, _float_kind, unit_uniform
from .activation_of_result import NEGATIVE_LEAKY_SLOPE
from .in_place_activation import apply_activation


class RReLU(Function):
    """x * noise, noise = the drawn slope where x <= 0, else 1; backward g * noise."""

    reads = ((0,),)  # (its own noise; PyTorch's saves the input with it, so both refuse the same changes)

    def forward(self, x, slopes):
        xp = get_array_module(x)
        self.noise = xp.where(x <= 0, slopes, x.dtype.type(1))
        return x * self.noise

    def backward(self, g):
        return g * self.noise, None


class RReLUOfResult(RReLU):
    """rrelu_'s node (PyTorch's RreluWithNoiseBackward1), in training and in evaluation alike: it keeps the noise and
    the result (the tensor itself, so a later in-place change of it is refused at backward). ``eval_slope``: the
    fixed slope of evaluation, whose backward PyTorch refuses when negative (as ``leaky_relu_``'s)."""

    torch_name = "RreluWithNoiseBackward1"
    reads = ((OUTPUT,), ())

    def forward(self, x, slopes, eval_slope=None):
        self.eval_slope = eval_slope
        self.out = super().forward(x, slopes)
        return self.out

    def backward(self, g):
        slope = self.eval_slope
        if slope is None:
            return super().backward(g)
        if slope < 0:
            raise RuntimeError(NEGATIVE_LEAKY_SLOPE)
        # (PyTorch's leaky_relu_backward of the result: a NaN takes the slope, where the noise would pass it)
        return get_array_module(g).where(self.out > 0, g, g * slope), None


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
    if data.dtype.kind in "biu":
        raise NotImplementedError(f"rrelu: not implemented for {data.dtype} tensors (PyTorch's neither); "
                                  "convert to a floating dtype first")
    if not training:
        slope = (lower + upper) / 2
        if not (inplace and isinstance(input, Tensor)):
            return LeakyReLU.apply(input, negative_slope=slope)
        # (in place, PyTorch's node is rrelu_'s in evaluation too: the noise, the slope where x <= 0, is kept)
        slopes = xp.full(data.shape, slope, dtype=data.dtype)
        return apply_activation(RReLUOfResult, input, True, slopes, eval_slope=slope)
    from distnn import random as drandom

    rng = generator if generator is not None else drandom.default_generator()
    u = unit_uniform(rng, data.shape, _float_kind(data.dtype), batch_dim=batch_dim)
    slopes = (lower + (upper - lower) * np.asarray(u, dtype=np.float64)).astype(data.dtype)
    if xp.__name__ != "numpy":
        slopes = xp.asarray(slopes)
    return apply_activation(RReLU, input, inplace, slopes)


__all__ = ["rrelu"]
