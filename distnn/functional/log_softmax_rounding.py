"""log_softmax's values as PyTorch's CPU kernels round them (float16: the last-axis kernel keeps the sum of the
exponentials and its log in float16, the other-axis one in float32)."""
from __future__ import annotations

from distnn.autograd.half_accumulate import widened
from distnn.autograd.half_rounding import narrowed

from ._elementwise_common import _quiet


def log_softmax_values(xp, x, axis, kernel_axis_last=None):
    """``x - logsumexp(x)`` along ``axis`` of a non-empty array, float16 rounded where PyTorch's CPU kernel is:
    its last-axis kernel keeps the sum of exponentials and its log in float16, its other-axis one in float32
    (``kernel_axis_last``: which PyTorch's takes, where ``x`` is a rearranged copy; None: whether ``axis`` is)."""
    wide = widened(x)
    last = kernel_axis_last
    if last is None:  # (axis None: every element as one flat row, as a 0-d array's one element)
        last = axis is None or x.ndim == 0 or axis % x.ndim == x.ndim - 1
    narrow = wide is not x and last
    with _quiet(xp):  # (a row whose maximum is infinite: NaN, as PyTorch's, without numpy's warning)
        shifted = wide - wide.max(axis=axis, keepdims=True)
        total = xp.exp(shifted).sum(axis=axis, keepdims=True)
        log_total = _through(xp.log(_through(total, x.dtype)), x.dtype) if narrow else xp.log(total)
    return narrowed(shifted - log_total, x.dtype)


def _through(a, dtype):
    """``a`` rounded to ``dtype`` and back to its own dtype."""
    return a.astype(dtype).astype(a.dtype)
