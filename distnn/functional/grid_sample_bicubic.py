"""``grid_sample(mode='bicubic')`` on 4-D inputs, forward and backward, as PyTorch's CPU kernel
(GridSamplerKernel.cpp, ApplyGridSample<..., Bicubic>).

Unlike 'bilinear', the sampling point is only unnormalized (no padding): ``x = (g + 1) / 2 * (W - 1)``
with align_corners, else ``(g + 1) * W / 2 - 0.5``. With ``i = floor(x)`` and ``t = x - i`` the output
weighs the 4 x 4 pixels ``i - 1 .. i + 2`` (each axis) by the cubic convolution weights of A = -0.75 at
distances ``1 + t``, ``t``, ``1 - t``, ``2 - t`` (interpolate's bicubic weights). The padding applies to
each of those integer pixel positions: 'border' clips it into the image, 'reflection' reflects it (about
-0.5 and W - 0.5, or 0 and W - 1 with align_corners) then clips, 'zeros' reads 0 outside.

The gradient to the grid is the weights' slope in ``t`` times the unnormalization's scale (the padding
of integer positions has no slope); the input's gradient scatter-adds into the (padded) pixels read.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from ._interp_taps import CUBIC_A
from .grid_sample import _input_grad, _pad, _unnormalize


def _cubic_weights(t):
    """The 4 weights at distances 1 + t, t, 1 - t, 2 - t, and their derivatives in t."""
    a = CUBIC_A

    def near(s):  # |s| <= 1, and its slope in s
        return ((a + 2) * s - (a + 3)) * s * s + 1, (3 * (a + 2) * s - 2 * (a + 3)) * s

    def far(s):  # 1 < |s| < 2
        return ((a * s - 5 * a) * s + 8 * a) * s - 4 * a, (3 * a * s - 10 * a) * s + 8 * a

    (w0, d0), (w1, d1), (w2, d2), (w3, d3) = far(t + 1), near(t), near(1 - t), far(2 - t)
    return (w0, w1, w2, w3), (d0, d1, -d2, -d3)


class GridSampleBicubic2d(Function):
    """input (N, C, H, W), grid (N, Ho, Wo, 2) -> (N, C, Ho, Wo), bicubic."""

    reads = ((1,), (0, 1))  # (the input's gradient reads the grid; the grid's reads both)

    def forward(self, x, grid, padding="zeros", align_corners=False):
        xp = get_array_module(x)
        N, C, H, W = x.shape
        axes = []  # per axis (y, x): the 4 (padded position, inside) taps, weights, slopes and the scale
        self.t = []  # per axis (y, x): the fraction t (for the graph backward)
        for comp, n in ((1, H), (0, W)):
            s, scale = _unnormalize(grid[..., comp].reshape(N, -1), n, align_corners)
            low = xp.floor(s)
            self.t.append(s - low)
            weights, slopes = _cubic_weights(self.t[-1])
            taps = []
            for k in range(4):
                pos, _ = _pad(xp, low + (k - 1), s.dtype.type(1), n, padding, align_corners)
                taps.append((pos, (pos > -1) & (pos < n)))  # (compared as floats: no overflow far away)
            axes.append((taps, weights, slopes, scale))
        (ty, wy, sy, self.scale_y), (tx, wx, sx, self.scale_x) = axes
        self.wy, self.wx, self.sy, self.sx = wy, wx, sy, sx
        self.taps = []  # (flat pixel index, inside) for each of the 16 pixels, row-major over (j, i)
        for py, iny in ty:
            for px, inx in tx:
                inside = iny & inx
                self.taps.append((xp.where(inside, py * W + px, 0).astype(np.int64), inside))
        self.shape, self.grid_shape, self.x, self.grid = x.shape, grid.shape, x, grid
        out = None
        for n, v in enumerate(self._gather(x)):
            t = (wy[n // 4] * wx[n % 4])[:, None, :] * v
            out = t if out is None else out + t
        return out.reshape(N, C, grid.shape[1], grid.shape[2])

    def _gather(self, x):
        """Each tap's (N, C, P) values of ``x``, 0 outside (PyTorch reads nothing there)."""
        xp = get_array_module(x)
        N, C = x.shape[:2]
        xf = x.reshape(N, C, -1)
        rows, chans = xp.arange(N)[:, None, None], xp.arange(C)[None, :, None]
        for flat, inside in self.taps:
            yield xp.where(inside[:, None, :], xf[rows, chans, flat[:, None, :]], xp.zeros((), dtype=x.dtype))

    def backward(self, g):
        xp = get_array_module(g)
        N, C, H, W = self.shape
        g = g.reshape(N, C, -1)
        grads = [None, None]
        if self.needs_input_grad[0]:
            grads[0] = _input_grad(g, self.shape, ((flat, inside, self.wy[n // 4] * self.wx[n % 4])
                                                   for n, (flat, inside) in enumerate(self.taps)))
        if self.needs_input_grad[1]:
            dx = dy = None
            for n, v in enumerate(self._gather(self.x)):
                vg = (v * g).sum(axis=1)  # (N, P)
                j, i = divmod(n, 4)
                tx, ty = vg * self.sx[i] * self.wy[j], vg * self.wx[i] * self.sy[j]
                dx = tx if dx is None else dx + tx
                dy = ty if dy is None else dy + ty
            grads[1] = xp.stack([dx * self.scale_x, dy * self.scale_y], axis=-1).reshape(self.grid_shape)
        return tuple(grads)
