"""3-D pooling as fused Functions: ``max_pool3d`` (with ``return_indices``) and ``avg_pool3d``, over
(N, C, D, H, W) or unbatched (C, D, H, W) inputs, with PyTorch's arguments and output sizes.

Both loop over the kd*kh*kw kernel offsets only; each step is one vectorized op on a strided view of the
padded input covering every (batch, channel, output cell). Max pooling keeps, per output, the flat index
``d * H * W + h * W + w`` of the input PyTorch picks (see :class:`MaxPool3d`); its backward scatter-adds
the gradient there (windows overlap when the stride is below the kernel). Average pooling's backward adds
each output's share back over its window.
"""
from __future__ import annotations

import itertools

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._pool_common import _unbatched, max_pool_grad, pooled_length
from .conv3d import _triple


def _arguments(who, input, kernel_size, stride, padding, dilation, ceil_mode):
    """(kernel, stride, padding, dilation, output size, extra): PyTorch's geometry per axis. ``extra`` is how
    far a ceil_mode window runs past the high padding (its missing cells count as padding)."""
    if input.ndim != 5:
        raise ValueError(f"{who}: expected a 5-D input (N, C, D, H, W) or a 4-D one (C, D, H, W), got shape "
                         f"{tuple(input.shape)}")
    kernel = _triple(kernel_size, "kernel_size", who)
    stride = kernel if stride is None or stride == [] else _triple(stride, "stride", who)
    padding, dilation = _triple(padding, "padding", who), _triple(dilation, "dilation", who)
    out, extra = [], []
    for size, k, s, p, d in zip(input.shape[2:], kernel, stride, padding, dilation):
        if k < 1 or s < 1 or d < 1:
            raise ValueError(f"{who}: kernel_size, stride and dilation must be >= 1, got {kernel}, {stride}, "
                             f"{dilation}")
        if p < 0 or p > k // 2:
            raise ValueError(f"{who}: padding {padding} should be at least 0 and at most half of the kernel size "
                             f"{kernel}")
        eff = d * (k - 1) + 1
        n = pooled_length(size, k, s, p, d, ceil_mode)
        if n < 1:
            raise ValueError(f"{who}: kernel size {kernel} (dilation {dilation}) is larger than the padded input "
                             f"(input shape {tuple(input.shape)}, padding {padding}, ceil_mode={ceil_mode})")
        out.append(n)
        extra.append(max(0, (n - 1) * s + eff - (size + 2 * p)))
    return kernel, stride, padding, dilation, tuple(out), tuple(extra)


def _padded(x, padding, extra, fill):
    """x padded by ``padding`` on each side of its 3 spatial axes plus ``extra`` on the high side, with ``fill``."""
    if not any(padding) and not any(extra):
        return x
    xp = get_array_module(x)
    spatial = x.shape[2:]
    out = xp.full(x.shape[:2] + tuple(n + 2 * p + e for n, p, e in zip(spatial, padding, extra)), fill,
                  dtype=x.dtype)
    out[(slice(None), slice(None)) + tuple(slice(p, p + n) for n, p in zip(spatial, padding))] = x
    return out


def _views(a, kernel, stride, dilation, out):
    """Per kernel offset (row-major), the view v of padded ``a`` with v[n, c, o...] its cell at that offset in
    window o."""
    for offset in itertools.product(*(range(k) for k in kernel)):
        yield offset, a[(slice(None), slice(None)) + tuple(
            slice(i * d, i * d + s * (o - 1) + 1, s) for i, d, s, o in zip(offset, dilation, stride, out))]


def _window_starts(n, s, p):
    return np.arange(n) * s - p  # (unpadded coordinates: negative in the padding)


def _flat(xp, per_axis, spatial):
    """The flat index d * H * W + h * W + w of per-axis positions ((Do,), (Ho,), (Wo,)), as (Do, Ho, Wo)."""
    D, H, W = spatial
    a, b, c = per_axis
    return xp.asarray(a[:, None, None] * (H * W) + b[None, :, None] * W + c[None, None, :]).astype(np.int64)


class MaxPool3d(Function):
    """x (N, C, D, H, W) -> (N, C, Do, Ho, Wo), the maximum of each (dilated) window.

    As PyTorch's CPU kernel, a window is scanned in row-major order from its first in-bounds cell keeping
    ``val > max or isnan(val)``: the first maximum wins ties, the last NaN wins a window holding NaN, and a
    window of -inf keeps its first real cell (padding, filled with -inf, never wins).
    """

    # PyTorch's max_pool3d backward takes the input and its indices: so distnn declares the input and keeps
    # the indices; an in-place change of the output is fine in both
    reads = ((0,),)

    def forward(self, x, kernel, stride, padding, dilation, out, extra, indices_to=None):
        xp = get_array_module(x)
        spatial = x.shape[2:]
        starts = [_window_starts(n, s, p) for n, s, p in zip(out, stride, padding)]
        # each window's first in-bounds cell (clamped: a dilated window may hold none, then its output is -inf)
        first = [np.minimum(st + d * (-(-np.maximum(-st, 0) // d)), n - 1)
                 for st, d, n in zip(starts, dilation, spatial)]
        best = xp.full(x.shape[:2] + out, -np.inf, dtype=x.dtype)
        idx = xp.broadcast_to(_flat(xp, first, spatial), best.shape).copy()
        for offset, v in _views(_padded(x, padding, extra, -np.inf), kernel, stride, dilation, out):
            take = (v > best) | xp.isnan(v)
            xp.copyto(best, v, where=take)
            at = [st + i * d for st, i, d in zip(starts, offset, dilation)]
            xp.copyto(idx, xp.broadcast_to(_flat(xp, at, spatial), idx.shape), where=take)
        self.indices, self.xshape = idx, x.shape
        if indices_to is not None:  # (return_indices: the indices found here, not a second search)
            indices_to.append(idx)
        return best

    def backward(self, g):
        return max_pool_grad(g, self.indices, self.xshape),


class AvgPool3d(Function):
    """x (N, C, D, H, W) -> (N, C, Do, Ho, Wo), the mean of each window (see :func:`avg_pool3d`'s divisor)."""

    # linear: backward reads neither the input nor the output, but PyTorch's avg_pool3d backward takes the
    # input: declared so that both refuse a change of it after the forward alike
    reads = ((0,),)

    def forward(self, x, kernel, stride, padding, out, extra, count_include_pad, divisor_override):
        xp = get_array_module(x)
        xpad = _padded(x, padding, extra, 0)
        views = _views(xpad, kernel, stride, (1, 1, 1), out)
        total = next(views)[1].copy()
        for _, v in views:
            total += v
        self.div = self._divisor(xp, x, kernel, stride, padding, out, count_include_pad, divisor_override)
        total /= self.div
        self.geom = (x.shape, xpad.shape, kernel, stride, padding, out)
        return total

    @staticmethod
    def _divisor(xp, x, kernel, stride, padding, out, count_include_pad, divisor_override):
        """PyTorch's divisor per output: the window's cells inside the padded input (count_include_pad; the
        kernel's size unless a ceil_mode window runs past the padding), or inside the input alone."""
        if divisor_override is not None:
            return x.dtype.type(divisor_override)
        counts = []  # per axis; the 3-D counts multiply
        for size, k, s, p, n in zip(x.shape[2:], kernel, stride, padding, out):
            start = _window_starts(n, s, p)
            if count_include_pad:
                counts.append(np.minimum(start + k, size + p) - start)
            else:
                counts.append(np.minimum(start + k, size) - np.maximum(start, 0))
        if all((c == k).all() for c, k in zip(counts, kernel)):
            return x.dtype.type(np.prod(kernel))
        return xp.asarray(np.multiply.outer(np.multiply.outer(counts[0], counts[1]), counts[2]).astype(x.dtype))

    def backward(self, g):
        xp = get_array_module(g)
        xshape, pshape, kernel, stride, padding, out = self.geom
        gpad = xp.zeros(pshape, dtype=g.dtype)
        gd = g / self.div
        for _, v in _views(gpad, kernel, stride, (1, 1, 1), out):
            v += gd
        inner = (slice(None), slice(None)) + tuple(slice(p, p + n) for n, p in zip(xshape[2:], padding))
        return (gpad[inner] if gpad.shape != xshape else gpad),


@_unbatched(5)
def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over (dilated) kd x kh x kw windows of (N, C, D, H, W) or (C, D, H, W); padding counts as -inf and
    ``stride`` defaults to ``kernel_size``, as PyTorch's.

    With ``return_indices``, returns ``(output, indices)``: ``indices`` (int64, no gradient, the output's
    shape) holds for each output the flat index ``d * H * W + h * W + w`` of its input in its (N, C) volume.
    """
    kernel, stride, padding, dilation, out, extra = _arguments("max_pool3d", input, kernel_size, stride, padding,
                                                               dilation, ceil_mode)
    indices = [] if return_indices else None
    result = MaxPool3d.apply(input, kernel=kernel, stride=stride, padding=padding, dilation=dilation, out=out,
                             extra=extra, indices_to=indices)
    if not return_indices:
        return result
    return result, Tensor(indices[0].copy())  # (a copy: changing it cannot move the node's gradient)


@_unbatched(5)
def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over kd x kh x kw windows of (N, C, D, H, W) or (C, D, H, W) (zero padding counted when
    ``count_include_pad``), as PyTorch's.

    With ``ceil_mode`` the last window may run past the padded input; as in PyTorch its divisor counts only
    its cells inside the padded input (or the input, without ``count_include_pad``). ``divisor_override``
    replaces every divisor.
    """
    if divisor_override is not None and not divisor_override > 0:
        raise ValueError(f"avg_pool3d: divisor_override must be positive, got {divisor_override}")
    kernel, stride, padding, _, out, extra = _arguments("avg_pool3d", input, kernel_size, stride, padding, 1,
                                                        ceil_mode)
    spatial = tuple(input.shape[2:])
    if any(n < k for n, k in zip(spatial, kernel)):  # (PyTorch's check, padding or not)
        raise ValueError(f"avg_pool3d: the input's (D, H, W) = {spatial} is smaller than the kernel size {kernel}")
    return AvgPool3d.apply(input, kernel=kernel, stride=stride, padding=padding, out=out, extra=extra,
                           count_include_pad=count_include_pad, divisor_override=divisor_override)


__all__ = ["max_pool3d", "avg_pool3d"]
