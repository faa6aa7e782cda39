"""``gumbel_softmax``: a differentiable sample of a categorical distribution, PyTorch's F.gumbel_softmax.

softmax((logits + g) / tau) along ``dim``, g ~ Gumbel(0, 1) drawn per element; with ``hard`` the one-hot
vector of its largest entry, with the soft sample's gradient (straight-through: PyTorch's
``y_hard - y_soft.detach() + y_soft``, computed the same way). The noise comes from distnn's generators
(the trainer's per-sample streams when it runs, the logits' first dimension holding the samples), not
from PyTorch's, so only its distribution matches PyTorch's: the argmax of a sample is category i with
probability softmax(logits)_i (the Gumbel-max trick).
"""
from __future__ import annotations

import warnings

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._dims import wrap_dim
from .activation import softmax


def _gumbel_noise(rng, shape, dtype, xp):
    """-log(E), E ~ Exponential(1) (PyTorch's ``-empty_like(logits).exponential_().log()``), drawn in float64
    (a float32 uniform is 0 once in 2^24 draws) from the uniforms ``rng.random`` gives, then cast."""
    u = rng.random(shape, dtype=np.float64)  # [0, 1)
    e = np.maximum(-np.log1p(-u), np.finfo(np.float64).tiny)  # (u = 0: E = 0, an infinite g; 2^-53 per draw)
    return xp.asarray((-np.log(e)).astype(dtype))


def gumbel_softmax(logits, tau=1, hard=False, eps=1e-10, dim=-1, *, generator=None):
    """A sample of softmax((logits + Gumbel noise) / tau) along ``dim``; ``hard``: its one-hot argmax, with the
    soft sample's gradient. ``eps`` is deprecated and has no effect (a warning when given), as in PyTorch.
    ``generator``: a numpy Generator for the noise (default: distnn's, see :mod:`distnn.random`)."""
    from distnn import random as drandom

    if eps != 1e-10:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=2)
    raw = logits.data if isinstance(logits, Tensor) else logits
    if raw.dtype.kind != "f":
        raise TypeError(f"gumbel_softmax: logits must be floating point (the noise is continuous), got {raw.dtype}")
    shape = tuple(raw.shape)
    d = wrap_dim(dim, len(shape), "gumbel_softmax")
    xp = get_array_module(raw)
    rng = generator if generator is not None else drandom.default_generator()
    gumbels = Tensor(_gumbel_noise(rng, shape, raw.dtype, xp))
    y_soft = softmax((logits + gumbels) / tau, dim=dim)
    if not hard:
        return y_soft
    if shape and shape[d] == 0:
        raise IndexError(f"gumbel_softmax: max(): expected reduction dim {d} to have non-zero size (shape {shape})")
    if not shape:  # (one category: the sample is 1)
        y_hard = xp.ones((), dtype=raw.dtype)
    else:
        index = xp.expand_dims(xp.argmax(y_soft.data, axis=d), d)  # (the first of equal maxima, as PyTorch's max)
        positions = xp.arange(shape[d]).reshape((-1,) + (1,) * (len(shape) - 1 - d))
        y_hard = (positions == index).astype(raw.dtype)
    return Tensor(y_hard) - y_soft.detach() + y_soft
