"""PyTorch's window functions: ``hann_window``, ``hamming_window``, ``blackman_window``, ``bartlett_window``,
``kaiser_window``.

Same formulas, arguments and defaults as PyTorch's: a ``periodic`` window (the default) is the symmetric
window of length ``window_length + 1`` without its last value (the form ``stft`` wants); length 0 is empty
and length 1 is ``[1.]``. Values are computed in float64 and given in ``dtype`` (the default dtype unless
set), which must be a floating dtype. They are constants: ``requires_grad=True`` makes a leaf, as PyTorch's.
"""
from __future__ import annotations

import numbers

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import default_dtype

__all__ = ["hann_window", "hamming_window", "blackman_window", "bartlett_window", "kaiser_window"]


def _window(name, window_length, periodic, dtype, requires_grad, formula):
    """``formula(n, m)``, ``n = 0 .. m - 1``, over the symmetric length ``m`` behind the window asked for."""
    if not isinstance(window_length, numbers.Integral) or isinstance(window_length, bool):
        raise TypeError(f"{name}(): argument 'window_length' must be int, not {type(window_length).__name__}")
    if window_length < 0:
        raise RuntimeError(f"{name} requires non-negative window_length, got window_length={window_length}")
    dtype = np.dtype(dtype or default_dtype())
    if dtype.kind != "f":
        raise RuntimeError(f"{name} expects floating point dtypes, got: {dtype}")
    if window_length <= 1:
        return Tensor(np.ones(window_length, dtype=dtype), requires_grad=requires_grad)
    m = window_length + 1 if periodic else window_length
    values = formula(np.arange(m, dtype=np.float64), m)[:window_length]
    return Tensor(values.astype(dtype), requires_grad=requires_grad)


def _cosines(n, m, *coefficients):
    """The generalized cosine window ``sum_k (-1)^k a_k cos(2 pi k n / (m - 1))``."""
    phase = 2.0 * np.pi * n / (m - 1)
    return sum((-1) ** k * a * np.cos(k * phase) for k, a in enumerate(coefficients))


def hann_window(window_length, periodic=True, *, dtype=None, requires_grad=False):
    """``torch.hann_window``: ``0.5 - 0.5 cos(2 pi n / (N - 1))``."""
    return _window("hann_window", window_length, periodic, dtype, requires_grad,
                   lambda n, m: _cosines(n, m, 0.5, 0.5))


def hamming_window(window_length, periodic=True, alpha=0.54, beta=0.46, *, dtype=None, requires_grad=False):
    """``torch.hamming_window``: ``alpha - beta cos(2 pi n / (N - 1))``."""
    return _window("hamming_window", window_length, periodic, dtype, requires_grad,
                   lambda n, m: _cosines(n, m, float(alpha), float(beta)))


def blackman_window(window_length, periodic=True, *, dtype=None, requires_grad=False):
    """``torch.blackman_window``: ``0.42 - 0.5 cos(2 pi n / (N - 1)) + 0.08 cos(4 pi n / (N - 1))``."""
    return _window("blackman_window", window_length, periodic, dtype, requires_grad,
                   lambda n, m: _cosines(n, m, 0.42, 0.5, 0.08))


def bartlett_window(window_length, periodic=True, *, dtype=None, requires_grad=False):
    """``torch.bartlett_window``: the triangle ``1 - |2 n / (N - 1) - 1|``."""
    return _window("bartlett_window", window_length, periodic, dtype, requires_grad,
                   lambda n, m: 1.0 - np.abs(2.0 * n / (m - 1) - 1.0))


def kaiser_window(window_length, periodic=True, beta=12.0, *, dtype=None, requires_grad=False):
    """``torch.kaiser_window``: ``I0(beta sqrt(1 - ((n - (N - 1) / 2) / ((N - 1) / 2))^2)) / I0(beta)``."""
    def kaiser(n, m):
        half = (m - 1) / 2.0
        ratio = np.clip((n - half) / half, -1.0, 1.0)
        return np.i0(float(beta) * np.sqrt(1.0 - ratio * ratio)) / np.i0(float(beta))
    return _window("kaiser_window", window_length, periodic, dtype, requires_grad, kaiser)
