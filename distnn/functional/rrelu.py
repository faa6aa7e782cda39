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

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from .activation import LeakyReLU, _float_kind, _in_place, unit_uniform


class RReLU(Function):
    """x * noise, noise = the drawn slope where x <= 0, else 1; backward g * noise."""

    reads = ((0,),)  # (its own noise; PyTorch's saves the input with it, so both refuse the same changes)

    def forward(self, x, slopes):
        xp = get_array_module(x)
        self.noise = xp.where(x <= 0, slopes, x.dtype.type(1))
        return x * self.noise

    def backward(self, g):
        return g * self.noise, None


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
        return _in_place(input, lambda: LeakyReLU.apply(input, negative_slope=(lower + upper) / 2), inplace)
    from distnn import random as drandom

    rng = generator if generator is not None else drandom.default_generator()
    u = unit_uniform(rng, data.shape, _float_kind(data.dtype), batch_dim=batch_dim)
    slopes = (lower + (upper - lower) * np.asarray(u, dtype=np.float64)).astype(data.dtype)
    if xp.__name__ != "numpy":
        slopes = xp.asarray(slopes)
    return _in_place(input, lambda: RReLU.apply(input, slopes), inplace)


__all__ = ["rrelu"]
