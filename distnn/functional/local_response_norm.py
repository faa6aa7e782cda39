"""Local response normalization across channels, as PyTorch's: ``local_response_norm`` (nn.LocalResponseNorm)
and ``cross_map_lrn2d`` (nn.CrossMapLRN2d, PyTorch's legacy Lua-torch port with its own backward).

Both divide each value by ``(k + alpha / size * s) ** beta``, ``s`` a sum of squares over nearby channels
(axis 1). They differ in that window and in the gradient:

* ``local_response_norm`` is composed as PyTorch composes it (square, zero-pad the channel axis by
  ``size // 2`` before and ``(size - 1) // 2`` after, average pool of ``size`` channels with the padding
  counted, so the divisor is ``size`` even at the borders), and its gradient is that composition's.
* ``cross_map_lrn2d`` reproduces PyTorch's running-sum forward, window quirk included: its window for
  channel c is ``[c - pre + 1, c + pre - 1]`` with ``pre = int((size - 1) / 2 + 1)``, but channel 0 is
  never taken out of the running sum, so it stays in every later channel's sum. Its backward is PyTorch's
  hand-written one (not the exact derivative of that forward; see ``_CrossMapLRN2d.backward``).
"""
from __future__ import annotations

import numbers

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module


def _window_add(out, a, shift):
    """``out[:, c] += a[:, c + shift]`` wherever channel ``c + shift`` exists (zero padding elsewhere)."""
    C = a.shape[1]
    lo, hi = max(0, -shift), min(C, C - shift)
    if lo < hi:
        out[:, lo:hi] += a[:, lo + shift:hi + shift]


def _window_sum(a, before, width):
    """``out[:, c] = sum(a[:, c - before + i] for i in range(width))`` over the existing channels: a sliding
    sum along axis 1 with zero padding, added in the window's order (as an average pool adds). Only the
    shifts that reach a channel are visited: at most 2 C - 1 of them, whatever ``width``."""
    xp = get_array_module(a)
    out = xp.zeros_like(a)
    C = a.shape[1]
    for i in range(max(0, before - C + 1), min(width, before + C)):
        _window_add(out, a, i - before)
    return out


class ChannelWindowSum(Function):
    """The sliding sum ``out[:, c] = sum(a[:, c - before : c - before + width])`` along the channel axis, zero
    padded; its gradient is the same sum over the mirrored window (each input feeds ``width`` outputs)."""

    reads = ((),)

    def forward(self, a, before, width):
        self.before, self.width = before, width
        return _window_sum(a, before, width)

    def backward(self, g):
        # input j feeds outputs c = j + before - i, i in [0, width): the window that starts width - 1 - before
        # channels back
        return (_window_sum(g, self.width - 1 - self.before, self.width),)


def _check_size(who, size):
    if isinstance(size, bool) or not isinstance(size, numbers.Integral):
        raise TypeError(f"{who}: size must be an int, got {size!r}")
    if size < 1:
        raise ValueError(f"{who}: size must be greater than zero, got {size}")


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """``input / (k + alpha / size * sum of input**2 over size channels) ** beta``, as PyTorch's
    ``F.local_response_norm``: any input of 3 or more dimensions, channels on axis 1.

    The window of channel c is ``[c - size // 2, c + (size - 1) // 2]``; channels outside the input count as
    zeros, and the sum is divided by ``size`` everywhere (PyTorch's zero padding then average pool with the
    padding counted). An empty input is returned as it is, as PyTorch's. ``size`` < 1 is refused (PyTorch's
    pooling refuses a kernel of 0 or less).
    """
    if not isinstance(input, Tensor):
        input = Tensor(input)
    if input.ndim < 3:
        raise ValueError(f"local_response_norm: expected 3D or higher dimensionality input (got {input.ndim} "
                         f"dimensions)")
    _check_size("local_response_norm", size)
    if input.size == 0:
        return input
    div = ChannelWindowSum.apply(input * input, before=size // 2, width=size) / size
    return input / (div * alpha + k) ** beta


class _CrossMapLRN2d(Function):
    """PyTorch's legacy CrossMapLRN2d: its forward and its hand-written backward."""

    reads = ((0, OUTPUT),)

    def forward(self, x, size, alpha, beta, k):
        xp = get_array_module(x)
        C = x.shape[1]
        pre = int((size - 1) / 2 + 1)  # (PyTorch's pre_pad, float arithmetic and all)
        sq = x * x
        total = _window_sum(sq, pre - 1, 2 * pre - 1)
        if C > pre:
            # PyTorch's running sum starts with channels [0, pre) and from channel pre + 1 on takes out channel
            # c - pre, so channel 0 is never taken out: it stays in the sums of channels pre onward, whose
            # window [c - pre + 1, c + pre - 1] no longer holds it
            total[:, pre:] += sq[:, :1]
        scale = total * (alpha / size) + k
        self.x, self.scale, self.size, self.alpha, self.beta = x, scale, size, alpha, beta
        self.out = xp.power(scale, -beta) * x
        return self.out

    def backward(self, g):
        xp = get_array_module(g)
        size = self.size
        # PyTorch's: g * scale^-beta - 2 alpha beta / size * x[c] * sum of r over channels [c - ipp, c - ipp +
        # size), r = g * out / scale, with its inversePrePad ipp = int(size - (size - 1) / 2); not the
        # derivative of the forward above (its window differs), but PyTorch's gradient
        ipp = int(size - (size - 1) / 2)
        ratio = g * self.out / self.scale
        accum = _window_sum(ratio, ipp, size)
        coef = 2 * self.alpha * self.beta / size
        return (xp.power(self.scale, -self.beta) * g - coef * self.x * accum,)


def cross_map_lrn2d(input, size, alpha=1e-4, beta=0.75, k=1):
    """PyTorch's ``nn.CrossMapLRN2d`` as a function: the legacy cross-channel LRN of a 4-D (N, C, H, W)
    input, forward and gradient PyTorch's (see the module docstring for its window).

    Differences, both where PyTorch fails: ``size`` < 1 is refused with a ValueError (PyTorch divides by
    it: a ZeroDivisionError for 0), and ``size`` 1 has a gradient (PyTorch's backward raises there), the
    same formula as for any other size.
    """
    if not isinstance(input, Tensor):
        input = Tensor(input)
    if input.ndim != 4:
        raise ValueError(f"CrossMapLRN2d: Expected input to be 4D, got {input.ndim}D instead.")
    _check_size("CrossMapLRN2d", size)
    if input.shape[1] == 0:
        raise IndexError(f"CrossMapLRN2d: expected at least one channel, got an input of shape {tuple(input.shape)}")
    return _CrossMapLRN2d.apply(input, size=size, alpha=alpha, beta=beta, k=k)


__all__ = ["local_response_norm", "cross_map_lrn2d"]
