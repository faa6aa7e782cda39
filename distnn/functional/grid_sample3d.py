"""``grid_sample`` on 5-D inputs: input (N, C, D, H, W) read at a grid (N, Do, Ho, Wo, 3), forward and backward.

The arithmetic is the 4-D sampler's (grid_sample.py: unnormalize, pad, read 0 outside with 'zeros'),
along three axes, as PyTorch's CPU kernel (GridSampler.cpp, grid_sampler_3d_cpu): the grid's last axis
holds (x, y, z), x along W, y along H, z along D;

* 'bilinear' (trilinear in fact) weighs the eight corners of the cell around the point, each by the
  product of its three one-axis weights (``1 - frac`` for the lower corner, ``frac`` for the upper);
* 'nearest' reads the nearest voxel, ties rounded half to even (C's nearbyint), and gives the grid a
  zero gradient, as PyTorch.

The gradient to the grid along an axis is the sum over the corners of value times the other two axes'
weights, signed -1 for the lower corner and +1 for the upper, times the axis's unnormalize-and-pad slope.
The input's gradient scatter-adds each output's gradient, times the corner's weight, into the voxels read.
"""
from __future__ import annotations

import itertools

import numpy as np

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from .grid_sample import _input_grad, _source


class GridSample3d(Function):
    """input (N, C, D, H, W), grid (N, Do, Ho, Wo, 3) -> (N, C, Do, Ho, Wo)."""

    reads = ((1,), (0, 1))  # (the input's gradient reads the grid; the grid's reads both)

    def forward(self, x, grid, mode="bilinear", padding="zeros", align_corners=False):
        xp = get_array_module(x)
        N, C = x.shape[:2]
        sizes = x.shape[2:]  # (D, H, W): axis a is read by the grid's component 2 - a
        coords, mults = [], []
        for a, n in enumerate(sizes):
            c, m = _source(xp, grid[..., 2 - a].reshape(N, -1), n, padding, align_corners)
            coords.append(c)
            mults.append(m)
        if mode == "nearest":
            corners = [(tuple(xp.rint(c) for c in coords), None, None)]  # (C's nearbyint: half to even)
        else:
            low = [xp.floor(c) for c in coords]
            # per axis, the weight of the (lower, upper) corner
            self.axis_weights = [(1 - (c - lo), c - lo) for c, lo in zip(coords, low)]
            corners = []
            for bits in itertools.product((0, 1), repeat=3):
                idx = tuple(lo + b for lo, b in zip(low, bits))
                w = self.axis_weights
                corners.append((idx, w[0][bits[0]] * w[1][bits[1]] * w[2][bits[2]], bits))
        D, H, W = sizes
        # per corner: the flat voxel index (0 where outside), whether it is inside (compared as floats: a
        # far-away point does not overflow the integer cast), its weight and which corner of the cell it is
        self.taps = []
        for (cz, cy, cx), weight, bits in corners:
            inside = (cx > -1) & (cx < W) & (cy > -1) & (cy < H) & (cz > -1) & (cz < D)
            flat = xp.where(inside, (cz * H + cy) * W + cx, 0).astype(np.int64)
            self.taps.append((flat, inside, weight, bits))
        self.shape, self.mode, self.mults, self.grid_shape = x.shape, mode, mults, grid.shape
        self.grid = grid  # (for the graph backward: the fractions as Tensors of the grid)
        self.x = x if mode == "bilinear" else None  # (the grid's gradient reads the input's corner values)
        out = None
        for v, (_, _, weight, _) in zip(self._gather(x), self.taps):
            t = v if weight is None else weight[:, None, :] * v
            out = t if out is None else out + t
        return out.reshape((N, C) + tuple(grid.shape[1:4]))

    def _gather(self, x):
        """Each tap's (N, C, P) values of ``x``, 0 outside (PyTorch reads nothing there: no inf * 0)."""
        xp = get_array_module(x)
        N, C = x.shape[:2]
        xf = x.reshape(N, C, -1)
        rows, chans = xp.arange(N)[:, None, None], xp.arange(C)[None, :, None]
        for flat, inside, _, _ in self.taps:
            v = xf[rows, chans, flat[:, None, :]]
            yield xp.where(inside[:, None, :], v, xp.zeros((), dtype=x.dtype))

    def backward(self, g):
        xp = get_array_module(g)
        N, C = self.shape[:2]
        g = g.reshape(N, C, -1)
        grads = [None, None]
        if self.needs_input_grad[0]:
            grads[0] = _input_grad(g, self.shape, ((flat, inside, weight) for flat, inside, weight, _ in self.taps))
        if self.needs_input_grad[1]:
            P = g.shape[-1]
            if self.mode == "nearest":
                grads[1] = xp.zeros((N, P, 3), dtype=g.dtype)
            else:
                w = self.axis_weights
                slope = [None, None, None]  # d(out)/d(coordinate) along D, H, W, summed over the channels
                for v, (_, _, _, bits) in zip(self._gather(self.x), self.taps):
                    vg = (v * g).sum(axis=1)  # (N, P)
                    for a in range(3):
                        others = [w[b][bits[b]] for b in range(3) if b != a]
                        t = vg * others[0] * others[1]
                        t = t if bits[a] else -t
                        slope[a] = t if slope[a] is None else slope[a] + t
                # the grid's components are (x, y, z) = (W, H, D)
                grads[1] = xp.stack([slope[2 - j] * self.mults[2 - j] for j in range(3)], axis=-1)
            grads[1] = grads[1].reshape(self.grid_shape)
        return tuple(grads)
