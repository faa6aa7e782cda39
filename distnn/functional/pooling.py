"""Pooling as fused Functions: ``max_pool2d``, ``avg_pool2d``, ``adaptive_avg_pool2d``.

Max and average pooling loop over the kh*kw kernel offsets only; each step is
one vectorized op on a strided view covering every (batch, channel, output
pixel). Max pooling's backward finds, per output, the first offset holding the
maximum (as PyTorch), so the gradient goes to exactly one input even when a
window holds ties (common after ReLU, where many values are 0); padding never
wins, even in a window of -inf.
Adaptive average pooling is two small matrix products with averaging matrices.
"""
from __future__ import annotations

import functools

import numpy as np

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from .conv import _pair


def _geometry(shape, kernel, stride, padding, dilation, ceil_mode, who):
    if len(shape) != 4:
        raise ValueError(f"{who}: expected a 4-D input (N, C, H, W) or a 3-D one (C, H, W), got shape "
                         f"{tuple(shape)}")
    N, C, H, W = shape
    out = []
    for size, k, s, p, d in zip((H, W), kernel, stride, padding, dilation):
        if k < 1 or s < 1 or d < 1:
            raise ValueError(f"{who}: kernel_size, stride and dilation must be >= 1")
        if p > k // 2:
            raise ValueError(f"{who}: padding {p} should be at most half of the kernel size {k}")
        eff = d * (k - 1) + 1
        if eff > size + 2 * p:
            raise ValueError(
                f"{who}: kernel size {tuple(kernel)} (dilated extent {eff}) is larger than the padded input "
                f"{(H + 2 * padding[0], W + 2 * padding[1])} (input shape {tuple(shape)})"
            )
        span = size + 2 * p - eff
        n = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (n - 1) * s >= size + p:  # the last window must start inside input or left padding
            n -= 1
        out.append(n)
    return out


def _views(xp_arr, kernel, stride, dilation, Ho, Wo):
    """Yield (i, j, view) with view[n, c, oh, ow] = xp_arr[n, c, oh*sh + i*dh, ow*sw + j*dw]."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    hspan, wspan = sh * (Ho - 1) + 1, sw * (Wo - 1) + 1
    for i in range(kh):
        for j in range(kw):
            yield xp_arr[:, :, i * dh:i * dh + hspan:sh, j * dw:j * dw + wspan:sw]


def _padded(x, padding, extra, fill):
    """x padded by ``padding`` on each side plus ``extra`` on the high side (ceil_mode), with ``fill``."""
    (ph, pw), (eh, ew) = padding, extra
    if not (ph or pw or eh or ew):
        return x
    xp = get_array_module(x)
    N, C, H, W = x.shape
    out = xp.full((N, C, H + 2 * ph + eh, W + 2 * pw + ew), fill, dtype=x.dtype)
    out[:, :, ph:ph + H, pw:pw + W] = x
    return out


class MaxPool2d(Function):
    def forward(self, x, kernel, stride, padding, dilation, Ho, Wo, extra):
        xp = get_array_module(x)
        xpad = _padded(x, padding, extra, -xp.inf)
        views = _views(xpad, kernel, stride, dilation, Ho, Wo)
        out = next(views).copy()
        for v in views:
            xp.maximum(out, v, out=out)
        # Backward finds the winners again from the input and the output: cheaper than
        # tracking an argmax here (masked copies are slow in numpy).
        self.xpad, self.out, self.extra = xpad, out, extra
        self.geom = (x.shape, kernel, stride, padding, dilation, Ho, Wo)
        return out

    def backward(self, g):
        xp = get_array_module(g)
        xshape, kernel, stride, padding, dilation, Ho, Wo = self.geom
        xpad, out = self.xpad, self.out
        pshape = xpad.shape
        (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
        overlap = sh < dh * (kh - 1) + 1 or sw < dw * (kw - 1) + 1
        exact = not overlap and dh * (kh - 1) + 1 == sh and dw * (kw - 1) + 1 == sw \
            and Ho * sh == pshape[2] and Wo * sw == pshape[3] and dh == 1 and dw == 1
        # With non-overlapping windows tiling the input, every element is written exactly once.
        gpad = (xp.empty if exact else xp.zeros)(pshape, dtype=g.dtype)
        found = xp.zeros(out.shape, dtype=bool)
        hit = xp.empty(out.shape, dtype=bool)
        gviews = _views(gpad, kernel, stride, dilation, Ho, Wo)
        nan_windows = bool(xp.isnan(out).any())  # their maximum is a NaN, which equals nothing
        # A window whose maximum is -inf also "finds" it in the padding (filled with -inf), which comes
        # first in a top or left window: there only real cells may win, as in PyTorch (the first in-bounds
        # one). Rare, so the mask of real cells is built only then.
        real = None
        if pshape != xshape and bool((out == -xp.inf).any()):
            real = _views(_padded(xp.ones(xshape, dtype=bool), padding, self.extra, False),
                          kernel, stride, dilation, Ho, Wo)
        for q, (xv, gv) in enumerate(zip(_views(xpad, kernel, stride, dilation, Ho, Wo), gviews)):
            xp.equal(xv, out, out=hit)
            if nan_windows:  # the first NaN wins, as in PyTorch
                hit |= xp.isnan(xv)
            if real is not None:
                hit &= next(real)
            if q:
                xp.greater(hit, found, out=hit)  # hit and not found: the first maximum wins ties, as PyTorch
            xp.logical_or(found, hit, out=found)
            if overlap:
                gv += g * hit
            else:
                xp.multiply(g, hit, out=gv)
        ph, pw = padding
        H, W = xshape[2], xshape[3]
        return (gpad[:, :, ph:ph + H, pw:pw + W] if gpad.shape != xshape else gpad),


class AvgPool2d(Function):
    def forward(self, x, kernel, stride, padding, Ho, Wo, count_include_pad=True, divisor_override=None):
        xp = get_array_module(x)
        xpad = _padded(x, padding, (0, 0), 0)
        views = _views(xpad, kernel, stride, (1, 1), Ho, Wo)
        out = next(views).copy()
        for v in views:
            out += v
        div = self._divisor(xp, x.shape, kernel, stride, padding, Ho, Wo, count_include_pad, divisor_override, x.dtype)
        out /= div
        self.div = div
        self.geom = (x.shape, xpad.shape, kernel, stride, padding, Ho, Wo)
        return out

    @staticmethod
    def _divisor(xp, xshape, kernel, stride, padding, Ho, Wo, count_include_pad, divisor_override, dtype):
        if divisor_override is not None:
            return dtype.type(divisor_override)
        if count_include_pad or padding == (0, 0):
            return dtype.type(kernel[0] * kernel[1])
        # Count only the real (unpadded) inputs in each window: per-axis counts multiply.
        counts = []
        for size, k, s, p, n in zip(xshape[2:], kernel, stride, padding, (Ho, Wo)):
            start = np.arange(n) * s - p
            counts.append(np.minimum(start + k, size) - np.maximum(start, 0))
        return xp.asarray(np.outer(counts[0], counts[1]).astype(dtype))

    def backward(self, g):
        xp = get_array_module(g)
        xshape, pshape, kernel, stride, padding, Ho, Wo = self.geom
        gpad = xp.zeros(pshape, dtype=g.dtype)
        gd = g / self.div
        for v in _views(gpad, kernel, stride, (1, 1), Ho, Wo):
            v += gd
        ph, pw = padding
        H, W = xshape[2], xshape[3]
        return (gpad[:, :, ph:ph + H, pw:pw + W] if gpad.shape != xshape else gpad),


def _unbatched_as_one(pool):
    """Let ``pool`` take an unbatched (C, H, W) input as well, as PyTorch (and Conv2d) do: a batch of one."""
    @functools.wraps(pool)
    def wrapper(input, *args, **kwargs):
        if input.ndim == 3:
            return pool(input.reshape((1,) + tuple(input.shape)), *args, **kwargs)[0]
        return pool(input, *args, **kwargs)
    return wrapper


@_unbatched_as_one
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max over (dilated) kh x kw windows; padding counts as -inf. ``stride`` defaults to ``kernel_size``."""
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None or stride == [] else _pair(stride, "stride")
    padding, dilation = _pair(padding, "padding"), _pair(dilation, "dilation")
    Ho, Wo = _geometry(tuple(input.shape), kernel, stride, padding, dilation, ceil_mode, "max_pool2d")
    H, W = input.shape[2], input.shape[3]
    # ceil_mode may need a few -inf columns past the right/bottom padding.
    extra = tuple(max(0, (n - 1) * s + d * (k - 1) + 1 - (size + 2 * p))
                  for n, s, d, k, size, p in zip((Ho, Wo), stride, dilation, kernel, (H, W), padding))
    return MaxPool2d.apply(input, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                           Ho=Ho, Wo=Wo, extra=extra)


@_unbatched_as_one
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over kh x kw windows (zero padding counted when ``count_include_pad``, as PyTorch)."""
    if ceil_mode:
        raise NotImplementedError("avg_pool2d: ceil_mode=True is not supported")
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None or stride == [] else _pair(stride, "stride")
    padding = _pair(padding, "padding")
    if divisor_override is not None and not divisor_override > 0:  # 0 once meant "no override"
        raise ValueError(f"avg_pool2d: divisor_override must be positive, got {divisor_override}")
    Ho, Wo = _geometry(tuple(input.shape), kernel, stride, padding, (1, 1), False, "avg_pool2d")
    return AvgPool2d.apply(input, kernel=kernel, stride=stride, padding=padding, Ho=Ho, Wo=Wo,
                           count_include_pad=count_include_pad, divisor_override=divisor_override)


def _adaptive_matrix(size, out):
    """(out, size) averaging matrix: row i averages inputs floor(i*size/out) .. ceil((i+1)*size/out) - 1."""
    m = np.zeros((out, size))
    for i in range(out):
        a, b = (i * size) // out, -(-((i + 1) * size) // out)
        m[i, a:b] = 1.0 / (b - a)
    return m


class AdaptiveAvgPool2d(Function):
    def forward(self, x, output_size):
        xp = get_array_module(x)
        N, C, H, W = x.shape
        Ho, Wo = output_size
        if H % Ho == 0 and W % Wo == 0:  # equal windows: a reshape and a mean
            self.fast = True
            self.geom = (x.shape, H // Ho, W // Wo)
            return x.reshape(N, C, Ho, H // Ho, Wo, W // Wo).mean(axis=(3, 5))
        self.fast = False
        self.ph = xp.asarray(_adaptive_matrix(H, Ho).astype(x.dtype))
        self.pw = xp.asarray(_adaptive_matrix(W, Wo).astype(x.dtype))
        return xp.matmul(xp.matmul(self.ph, x), self.pw.T)

    def backward(self, g):
        xp = get_array_module(g)
        if self.fast:
            (N, C, H, W), kh, kw = self.geom
            Ho, Wo = g.shape[2], g.shape[3]
            gx = xp.broadcast_to((g / (kh * kw))[:, :, :, None, :, None], (N, C, Ho, kh, Wo, kw))
            return (gx.reshape(N, C, H, W),)
        return (xp.matmul(xp.matmul(self.ph.T, g), self.pw),)


@_unbatched_as_one
def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed ``output_size`` (int or pair; None keeps that input size)."""
    if input.ndim != 4:
        raise ValueError(f"adaptive_avg_pool2d: expected a 4-D input (N, C, H, W) or a 3-D one (C, H, W), got "
                         f"shape {tuple(input.shape)}")
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    if len(output_size) != 2:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be an int or a pair, got {tuple(output_size)}")
    H, W = input.shape[2], input.shape[3]
    size = (H if output_size[0] is None else int(output_size[0]), W if output_size[1] is None else int(output_size[1]))
    if min(size) < 1:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be positive, got {output_size}")
    return AdaptiveAvgPool2d.apply(input, output_size=size)


__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"]
