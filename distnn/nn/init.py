"""Parameter initializers (``distnn.nn.init``), with PyTorch's names, formulas and gains.

Each initializer fills a Tensor in place and returns it. Randomness comes from an
explicit ``generator`` (a ``numpy.random.Generator``; by default distnn's
per-thread generator, ``distnn.random.default_generator()``), so runs are
reproducible and checkpointable. Values are drawn on the host in float64 and
cast to the tensor's dtype and device.
"""
from __future__ import annotations

import math

import numpy as np

from distnn.backend import get_array_module

__all__ = [
    "calculate_gain", "constant_", "ones_", "zeros_", "normal_", "uniform_", "trunc_normal_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
    "eye_", "_calculate_fan_in_and_fan_out",
]


def _gen(generator):
    if generator is not None:
        return generator
    from distnn import random as drandom

    return drandom.default_generator()


def _fill(tensor, values):
    """Write host ``values`` into ``tensor.data`` in place (keeping dtype and device)."""
    data = tensor.data
    xp = get_array_module(data)
    data[...] = xp.asarray(np.asarray(values).astype(data.dtype, copy=False))
    _bump(tensor)
    return tensor


def _bump(tensor):
    if hasattr(tensor, "_bump_version"):  # (init functions also take raw arrays)
        tensor._bump_version()


def calculate_gain(nonlinearity: str, param=None) -> float:
    """Recommended gain for ``nonlinearity`` (as ``torch.nn.init.calculate_gain``)."""
    linear_fns = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d", "sigmoid")
    if nonlinearity in linear_fns:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} is not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    shape = tuple(tensor.shape)
    if len(shape) < 2:
        raise ValueError(
            f"fan in and fan out cannot be computed for a tensor with fewer than 2 dimensions (shape {shape})"
        )
    receptive = 1
    for s in shape[2:]:
        receptive *= s
    return shape[1] * receptive, shape[0] * receptive


def _calculate_correct_fan(tensor, mode):
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode!r} not supported, use 'fan_in' or 'fan_out'")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def constant_(tensor, val):
    tensor.data[...] = val
    _bump(tensor)
    return tensor


def ones_(tensor):
    return constant_(tensor, 1)


def zeros_(tensor):
    return constant_(tensor, 0)


def eye_(tensor):
    if tensor.ndim != 2:
        raise ValueError(f"eye_ needs a 2-D tensor, got shape {tuple(tensor.shape)}")
    return _fill(tensor, np.eye(*tensor.shape))


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    return _fill(tensor, _gen(generator).uniform(a, b, size=tensor.shape))


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    return _fill(tensor, _gen(generator).normal(mean, std, size=tensor.shape))


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Normal(mean, std) restricted to [a, b] by resampling the values outside."""
    gen = _gen(generator)
    vals = gen.normal(mean, std, size=tensor.shape)
    bad = (vals < a) | (vals > b)
    while bad.any():
        vals[bad] = gen.normal(mean, std, size=int(bad.sum()))
        bad = (vals < a) | (vals > b)
    return _fill(tensor, vals)


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    a = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator=None):
    """U(-bound, bound), bound = gain * sqrt(3 / fan) (He et al.); ``a`` is the leaky_relu slope."""
    fan = _calculate_correct_fan(tensor, mode)
    if fan == 0:
        return tensor
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator=None):
    """N(0, std^2), std = gain / sqrt(fan)."""
    fan = _calculate_correct_fan(tensor, mode)
    if fan == 0:
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor, gain: float = 1.0, generator=None):
    """A (semi-)orthogonal matrix from the QR decomposition of a Gaussian one, times ``gain``."""
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_ needs at least 2 dimensions, got shape {tuple(tensor.shape)}")
    rows = tensor.shape[0]
    cols = int(np.prod(tensor.shape[1:]))
    flat = _gen(generator).normal(0.0, 1.0, size=(rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))  # make the decomposition unique (uniform over orthogonal matrices)
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape))
