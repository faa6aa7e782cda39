"""Dropout's relatives: channel dropout (dropout1d/2d/3d), alpha dropout and feature alpha dropout.

All follow PyTorch's ``_dropout_impl``: the identity when not training, when ``p == 0`` or on an empty
input; zeros (``x * 0``) when ``p == 1``; otherwise a keep mask with probability ``1 - p``. Channel dropout
draws one mask value per (sample, channel) pair, shaped ``(N, C, 1, ...)`` and broadcast over the feature
map, and scales kept channels by 1/(1-p). Alpha dropout (Klambauer et al., for SELU networks) sets dropped
units to SELU's negative saturation value ``-alpha'`` (alpha' = SELU's scale * alpha) and applies the
affine map ``a x + b`` that keeps a zero-mean, unit-variance input so:
``a = ((1 - p) (1 + p alpha'^2))^-1/2`` and ``b = a alpha' p``, i.e. kept units become ``a x + a alpha' p``
and dropped ones ``a alpha' (p - 1)``. Feature alpha dropout does that per channel.

The masks come from :func:`keep_mask`, as :func:`dropout`'s do: by default distnn's per-thread generator,
under the trainer the per-sample generator whose masks are the same on any number of ranks (the samples
are on axis 0 of a batched input, as PyTorch defines these ops).
"""
from __future__ import annotations

import math
import warnings

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from .activation import Dropout, _float_kind, keep_mask
from .in_place_activation import apply_activation
ALPHA_PRIME = 1.7580993408473766  # SELU's scale * alpha = -SELU(-inf): PyTorch's alpha in _dropout_impl


class AlphaDropout(Function):
    """x * scale + shift; scale and shift hold a (0 where dropped) and the affine shift per mask value,
    broadcast over the input. Only the input has a gradient: g * scale."""

    saves_tensors = False  # (its own scale; PyTorch's mul saves the noise, not the input)

    def forward(self, x, scale, shift):
        self.scale = scale
        return x * scale + shift

    def backward(self, g):
        return g * self.scale, None, None


def _check_p(p):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _noise_dropout(x, p, training, inplace, generator, *, feature, alpha, batched=True, batch_dim=None):
    """PyTorch's ``_dropout_impl``. ``feature``: one mask value per (sample, channel); ``batched`` False:
    ``x`` lacks the batch axis (its mask is made for ``x[None]`` and the axis dropped again, as
    PyTorch's unsqueeze/squeeze); ``batch_dim``: the samples' axis of an elementwise mask (None: guessed)."""
    _check_p(p)
    xp = get_array_module(x)
    data = x.data if isinstance(x, Tensor) else xp.asarray(x)
    if not training or p == 0.0 or data.size == 0:
        return x
    if data.dtype.kind in "biu":  # (the scaled mask is fractional: PyTorch refuses to store it, too)
        raise RuntimeError(f"result type Float can't be cast to the desired output type {data.dtype} "
                           "(dropout of an integer tensor; convert it to a floating dtype first)")
    if p == 1.0:  # PyTorch's input * zeros({}): zeros, NaN stays NaN, no draw
        return apply_activation(Dropout, x, inplace, xp.zeros((), dtype=data.dtype))
    from distnn import random as drandom

    rng = generator if generator is not None else drandom.default_generator()
    shape = data.shape if batched else (1,) + data.shape
    if feature:
        if len(shape) < 2:
            raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
        keep = keep_mask(rng, shape[:2], p, _float_kind(data.dtype), batch_dim=0)
        keep = keep.reshape(shape[:2] + (1,) * (len(shape) - 2))  # broadcast over the feature map
    else:
        keep = keep_mask(rng, shape, p, _float_kind(data.dtype), batch_dim=batch_dim)
    if not batched:
        keep = keep.reshape(keep.shape[1:])
    keep = keep.astype(data.dtype)
    if alpha:
        a = 1.0 / math.sqrt((ALPHA_PRIME * ALPHA_PRIME * p + 1) * (1 - p))  # (PyTorch's formula, to the bit)
        scale = keep * data.dtype.type(a)
        shift = (keep - 1) * data.dtype.type(ALPHA_PRIME * a) + data.dtype.type(ALPHA_PRIME * a * p)
        if xp.__name__ != "numpy":
            scale, shift = xp.asarray(scale), xp.asarray(shift)
        return apply_activation(AlphaDropout, x, inplace, scale, shift)
    mask = keep * data.dtype.type(1.0 / (1.0 - p))
    if xp.__name__ != "numpy":
        mask = xp.asarray(mask)
    return apply_activation(Dropout, x, inplace, mask)


def dropout1d(input, p=0.5, training=True, inplace=False, *, generator=None):
    """Zero whole channels of a ``(N, C, L)`` or unbatched ``(C, L)`` input, each with probability ``p``,
    and scale the rest by 1/(1-p) (PyTorch's ``F.dropout1d``; another rank: RuntimeError, as PyTorch's).
    ``generator``: a ``numpy.random.Generator`` for the masks (default: distnn's, see :func:`dropout`)."""
    _check_p(p)
    ndim = len(input.shape)
    if ndim not in (2, 3):
        raise RuntimeError(f"dropout1d: Expected 2D or 3D input, but received a {ndim}D input. Note that "
                           "dropout1d exists to provide channel-wise dropout on inputs with 1 spatial dimension, "
                           "a channel dimension, and an optional batch dimension (i.e. 2D or 3D inputs).")
    return _noise_dropout(input, p, training, inplace, generator, feature=True, alpha=False, batched=ndim == 3)


def dropout2d(input, p=0.5, training=True, inplace=False, *, generator=None):
    """Zero whole channels of a ``(N, C, H, W)`` input, each with probability ``p``, and scale the rest by
    1/(1-p) (PyTorch's ``F.dropout2d``). As PyTorch's: a 3-D input is taken as ``(N, C, L)`` (channel-wise
    1-D dropout, with its warning), other ranks than 3 and 4 warn that they are deprecated (and, when the
    mask is drawn, fewer than 2 dimensions are an error)."""
    _check_p(p)
    ndim = len(input.shape)
    if ndim not in (3, 4):
        warnings.warn(f"dropout2d: Received a {ndim}-D input to dropout2d, which is deprecated and will result "
                      "in an error in a future release. To retain the behavior and silence this warning, please "
                      "use dropout instead. Note that dropout2d exists to provide channel-wise dropout on inputs "
                      "with 2 spatial dimensions, a channel dimension, and an optional batch dimension (i.e. 3D "
                      "or 4D inputs).", stacklevel=2)
    if ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
                      "behavior is desired - input is interpreted as shape (N, C, L), where C is the channel "
                      "dim. This behavior will change in a future release to interpret the input as one without "
                      "a batch dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise dropout "
                      "behavior, please switch to using dropout1d instead.", stacklevel=2)
    return _noise_dropout(input, p, training, inplace, generator, feature=True, alpha=False)


def dropout3d(input, p=0.5, training=True, inplace=False, *, generator=None):
    """Zero whole channels of a ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)`` input, each with
    probability ``p``, and scale the rest by 1/(1-p) (PyTorch's ``F.dropout3d``). As PyTorch's, other ranks
    than 4 and 5 warn that they are deprecated and are taken as unbatched (axis 0 the channels)."""
    _check_p(p)
    ndim = len(input.shape)
    if ndim not in (4, 5):
        warnings.warn(f"dropout3d: Received a {ndim}-D input to dropout3d, which is deprecated and will result "
                      "in an error in a future release. To retain the behavior and silence this warning, please "
                      "use dropout instead. Note that dropout3d exists to provide channel-wise dropout on inputs "
                      "with 3 spatial dimensions, a channel dimension, and an optional batch dimension (i.e. 4D "
                      "or 5D inputs).", stacklevel=2)
    return _noise_dropout(input, p, training, inplace, generator, feature=True, alpha=False, batched=ndim == 5)


def alpha_dropout(input, p=0.5, training=False, inplace=False, *, generator=None, batch_dim=None):
    """Alpha dropout (PyTorch's ``F.alpha_dropout``; note its default ``training=False``): each element is
    dropped with probability ``p`` to SELU's saturation value and the result mapped by ``a x + b`` so that a
    zero-mean, unit-variance input keeps its mean and variance (module docstring). ``batch_dim``: the axis
    of the samples, for the trainer's per-sample masks, as :func:`dropout`'s."""
    return _noise_dropout(input, p, training, inplace, generator, feature=False, alpha=True, batch_dim=batch_dim)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False, *, generator=None):
    """Alpha dropout of whole channels of an ``(N, C, ...)`` input (PyTorch's ``F.feature_alpha_dropout``,
    default ``training=False``): one mask value per (sample, channel), the rest as :func:`alpha_dropout`."""
    return _noise_dropout(input, p, training, inplace, generator, feature=True, alpha=True)


__all__ = ["dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"]
