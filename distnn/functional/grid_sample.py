"""``affine_grid`` and ``grid_sample`` (PyTorch's spatial-transformer pair), forward and backward.

``affine_grid(theta, size)`` maps the output's normalized coordinates (x along W, y along H, z along D,
each in [-1, 1]) through the affine matrices ``theta``: (N, 2, 3) for a 4-D ``size`` (N, C, H, W), giving
a grid (N, H, W, 2); (N, 3, 4) for a 5-D size, giving (N, D, H, W, 3). The base coordinates are
PyTorch's: ``linspace(-1, 1, n)``, times ``(n - 1) / n`` without align_corners, and 0 for n == 1.

``grid_sample(input, grid)`` reads ``input`` (N, C, H, W) at the grid's (N, Ho, Wo, 2) points, as
PyTorch's CPU kernel (GridSamplerKernel.cpp) (5-D inputs: grid_sample3d.py; 'bicubic': grid_sample_bicubic.py):

* unnormalize: ``(g + 1) / 2 * (size - 1)`` with align_corners, else ``(g + 1) * size / 2 - 0.5``;
* padding 'border' clips to [0, size - 1]; 'reflection' reflects about -0.5 and size - 0.5 (about 0
  and size - 1 with align_corners; a size of 1 then gives 0) and then clips; 'zeros' reads 0 outside;
* 'bilinear' weighs the four corners around the point; 'nearest' takes the nearest pixel, ties
  rounded half to even (C's nearbyint, numpy's ``rint``).

The gradient to the grid (bilinear) is the interpolation's slope times the unnormalization's scale,
times the padding's: 0 where the clip is active or the point lies exactly on a border (PyTorch counts
the borders as out of bounds there), -1 where the reflection flips the direction. 'nearest' gives the
grid a zero gradient, as PyTorch. The input's gradient scatter-adds each output's gradient, times its
weight, into the pixels it read (repeated pixels add up).
"""
from __future__ import annotations

import warnings

import numpy as np

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from .indexing import scatter_add

_MODES = ("bilinear", "nearest", "bicubic")
_PADDINGS = ("zeros", "border", "reflection")
# PyTorch's F.GRID_SAMPLE_* tables: the modes' enum values in its kernels
GRID_SAMPLE_INTERPOLATION_MODES = {m: i for i, m in enumerate(_MODES)}
GRID_SAMPLE_PADDING_MODES = {p: i for i, p in enumerate(_PADDINGS)}
_DEFAULT_WARNING = ("Default grid_sample and affine_grid behavior has changed to align_corners=False since 1.3.0. "
                    "Please specify align_corners=True if the old behavior is desired. See the documentation of "
                    "grid_sample for details.")


def _base_line(n, align_corners, dtype):
    """PyTorch's linspace_from_neg_one: n points in [-1, 1] (pulled in to pixel centres without
    align_corners); a single point is 0."""
    if n <= 1:
        return np.zeros(max(n, 0), dtype=dtype)
    line = np.linspace(-1.0, 1.0, n, dtype=dtype)
    return line if align_corners else line * dtype.type((n - 1) / n)


class AffineGrid(Function):
    """theta (N, k, k + 1) -> grid (N, *spatial, k): base (*spatial, k + 1) @ theta^T per sample."""

    reads = ((),)  # (the gradient is base^T @ g: it reads no tensor, only the base kept here)

    def forward(self, theta, spatial=(), align_corners=False):
        xp = get_array_module(theta)
        k = len(spatial)
        dtype = np.dtype(theta.dtype)
        # the coordinate of the last spatial axis (W) comes first, then H (then D), then the 1 of the offset
        lines = [_base_line(n, align_corners, dtype) for n in spatial]
        mesh = np.meshgrid(*lines, indexing="ij")
        base = np.stack([mesh[k - 1 - j] for j in range(k)] + [np.ones(tuple(spatial), dtype=dtype)], axis=-1)
        self.base = xp.asarray(base.reshape(-1, k + 1))
        self.out_shape = (theta.shape[0],) + tuple(spatial) + (k,)
        return xp.matmul(self.base, xp.swapaxes(theta, 1, 2)).reshape(self.out_shape)

    def backward(self, g):
        xp = get_array_module(g)
        g = g.reshape(g.shape[0], -1, g.shape[-1])  # (N, P, k)
        return (xp.swapaxes(xp.matmul(self.base.T, g), 1, 2),)  # (N, k, k + 1)


def affine_grid(theta, size, align_corners=None):
    """The sampling grid of the affine maps ``theta`` for an output of ``size`` (PyTorch's ``F.affine_grid``).

    ``theta`` (N, 2, 3) with ``size`` (N, C, H, W) gives (N, H, W, 2); (N, 3, 4) with (N, C, D, H, W) gives
    (N, D, H, W, 3); the last axis holds (x, y[, z]), x along W. ``align_corners=None`` warns as PyTorch
    and means False. Differentiable in ``theta``.
    """
    if align_corners is None:
        warnings.warn(_DEFAULT_WARNING, UserWarning, stacklevel=2)
        align_corners = False
    if not np.issubdtype(np.dtype(theta.dtype), np.floating):
        raise ValueError(f"Expected theta to have floating point type, but got {theta.dtype}")
    size = [int(s) for s in size]
    shape = tuple(theta.shape)
    if len(size) in (4, 5):
        k = len(size) - 2
        if len(shape) != 3 or shape[1:] != (k, k + 1):
            raise ValueError(f"Expected a batch of {k}D affine matrices of shape Nx{k}x{k + 1} for size {size}. "
                             f"Got {shape}.")
    else:
        raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
                                  f"respectively. Got size {size}.")
    spatial = size[2:]
    if align_corners and min(spatial) == 1:
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size grids when "
                      "align_corners=True. This is not an intended use case of affine_grid. See the "
                      "documentation of affine_grid for details.", UserWarning, stacklevel=2)
    elif min(size) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {size}")
    if size[0] != shape[0]:  # (PyTorch's affine_grid_generator refuses it in its view of the output)
        raise RuntimeError(f"affine_grid: theta holds {shape[0]} matrices but size asks for a batch of {size[0]}")
    return AffineGrid.apply(theta, spatial=tuple(spatial), align_corners=bool(align_corners))


def _unnormalize(g, size, align_corners):
    """Normalized ``g`` in [-1, 1] -> pixel coordinate along an axis of ``size`` pixels, and its slope."""
    dtype = g.dtype.type
    if align_corners:
        scale = dtype((size - 1) / 2)
        return (g + dtype(1)) * scale, scale
    scale = dtype(size / 2)
    return (g + dtype(1)) * scale - dtype(0.5), scale


def _pad(xp, x, mult, size, padding, align_corners):
    """PyTorch's padding of pixel coordinates ``x`` along an axis of ``size`` pixels (ComputeLocation's
    compute_coordinates) and ``mult`` times its slope: 0 where the clip is active, flipped by a reflection."""
    dtype = x.dtype.type
    if padding == "zeros":
        return x, mult
    if padding == "reflection":
        if align_corners:
            low, twice_span, empty = dtype(0), dtype(2 * (size - 1)), size <= 1
        else:
            low, twice_span, empty = dtype(-0.5), dtype(2 * size), False
        if empty:  # (align_corners on one pixel: everything reflects to 0, with a zero gradient)
            return xp.zeros_like(x), xp.zeros_like(x)
        shifted = x - low
        flips = xp.trunc(xp.abs(shifted) / twice_span)
        extra = xp.abs(shifted) - flips * twice_span
        reflected = twice_span - extra
        more = extra > reflected
        x = xp.where(more, reflected, extra) + low
        mult = xp.where(more ^ (shifted < 0), -mult, mult)
    # the clip (border, and reflection after reflecting): a point on a border or beyond has no gradient
    hi = dtype(size - 1)
    x = xp.where(x > 0, x, dtype(0))  # (a NaN clamps to 0, as PyTorch's clamp_min(0, in))
    inside = (x != 0) & (x < hi)
    return xp.minimum(x, hi), xp.where(inside, mult, dtype(0))


def _source(xp, g, size, padding, align_corners):
    """The unnormalized, padded pixel coordinate of normalized ``g`` along an axis of ``size`` pixels, and
    d(coordinate)/d(g) (PyTorch's ComputeLocation::apply_get_grad)."""
    x, scale = _unnormalize(g, size, align_corners)
    return _pad(xp, x, xp.full(g.shape, scale, dtype=g.dtype), size, padding, align_corners)


def _input_grad(g, shape, taps):
    """The gradient to a sampled input of ``shape`` (N, C, ...): ``g`` (N, C, P) added at each tap's flat
    index within its (sample, channel) plane, times the tap's weight (None: 1), where the tap lies inside."""
    xp = get_array_module(g)
    N, C = shape[:2]
    plane = int(np.prod(shape[2:]))
    gin = xp.zeros(N * C * plane, dtype=g.dtype)
    planes = (xp.arange(N * C, dtype=np.int64) * plane).reshape(N, C, 1)
    for flat, inside, weight in taps:
        gw = g if weight is None else g * weight[:, None, :]
        gw = xp.where(inside[:, None, :], gw, xp.zeros((), dtype=g.dtype))
        scatter_add(gin, (planes + flat[:, None, :]).ravel(), gw.ravel())
    return gin.reshape(shape)


class GridSample2d(Function):
    """input (N, C, H, W), grid (N, Ho, Wo, 2) -> (N, C, Ho, Wo)."""

    reads = ((1,), (0, 1))  # (the input's gradient reads the grid; the grid's reads both)

    def forward(self, x, grid, mode="bilinear", padding="zeros", align_corners=False):
        xp = get_array_module(x)
        N, C, H, W = x.shape
        Ho, Wo = grid.shape[1:3]
        gx = grid[..., 0].reshape(N, -1)
        gy = grid[..., 1].reshape(N, -1)
        ix, mx = _source(xp, gx, W, padding, align_corners)
        iy, my = _source(xp, gy, H, padding, align_corners)
        if mode == "nearest":
            ix, iy = xp.rint(ix), xp.rint(iy)  # (C's nearbyint: half to even)
            corners = [(iy, ix, None)]
        else:
            x0, y0 = xp.floor(ix), xp.floor(iy)
            w, n = ix - x0, iy - y0
            e, s = 1 - w, 1 - n
            corners = [(y0, x0, s * e), (y0, x0 + 1, s * w), (y0 + 1, x0, n * e), (y0 + 1, x0 + 1, n * w)]
            self.frac = (n, s, w, e)
        # per corner: the flat pixel index (0 where outside) and whether it is inside (compared as floats:
        # a far-away point does not overflow the integer cast)
        self.taps = []
        for cy, cx, weight in corners:
            inside = (cx > -1) & (cx < W) & (cy > -1) & (cy < H)
            flat = xp.where(inside, cy * W + cx, 0).astype(np.int64)
            self.taps.append((flat, inside, weight))
        self.shape, self.mode, self.mult, self.grid_shape = x.shape, mode, (mx, my), grid.shape
        self.grid = grid  # (for the graph backward: the fractions as Tensors of the grid)
        self.x = x if mode == "bilinear" else None  # (the grid's gradient reads the input's corner values)
        out = None
        for v, (_, _, weight) in zip(self._gather(x), self.taps):
            t = v if weight is None else weight[:, None, :] * v
            out = t if out is None else out + t
        return out.reshape(N, C, Ho, Wo)

    def _gather(self, x):
        """Each tap's (N, C, P) values of ``x``, 0 outside (PyTorch reads nothing there: no inf * 0)."""
        xp = get_array_module(x)
        N, C = x.shape[:2]
        xf = x.reshape(N, C, -1)
        rows, chans = xp.arange(N)[:, None, None], xp.arange(C)[None, :, None]
        for flat, inside, _ in self.taps:
            v = xf[rows, chans, flat[:, None, :]]
            yield xp.where(inside[:, None, :], v, xp.zeros((), dtype=x.dtype))

    def backward(self, g):
        xp = get_array_module(g)
        N, C, H, W = self.shape
        g = g.reshape(N, C, -1)
        grads = [None, None]
        if self.needs_input_grad[0]:
            grads[0] = _input_grad(g, self.shape, self.taps)
        if self.needs_input_grad[1]:
            P = g.shape[-1]
            if self.mode == "nearest":
                grads[1] = xp.zeros((N, P, 2), dtype=g.dtype)
            else:
                nw, ne, sw, se = self._gather(self.x)
                n, s, w, e = self.frac
                dx = (((ne - nw) * s[:, None, :] + (se - sw) * n[:, None, :]) * g).sum(axis=1)
                dy = (((sw - nw) * e[:, None, :] + (se - ne) * w[:, None, :]) * g).sum(axis=1)
                grads[1] = xp.stack([dx * self.mult[0], dy * self.mult[1]], axis=-1)
            grads[1] = grads[1].reshape(self.grid_shape)
        return tuple(grads)


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """Sample ``input`` (N, C, H, W) at the points of ``grid`` (N, Ho, Wo, 2), normalized to [-1, 1]
    (PyTorch's ``F.grid_sample``; see the module docstring for the arithmetic), giving (N, C, Ho, Wo);
    or a 5-D ``input`` (N, C, D, H, W) at a grid (N, Do, Ho, Wo, 3), giving (N, C, Do, Ho, Wo).

    ``mode``: 'bilinear' (trilinear on 5-D inputs), 'nearest' or 'bicubic' (4-D only, as PyTorch);
    ``padding_mode``: 'zeros', 'border' or 'reflection'; ``align_corners=None`` warns as PyTorch and
    means False. Differentiable in ``input`` and (bilinear, bicubic) in ``grid``.
    """
    if mode not in _MODES:
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', "
                         f"but got: '{mode}'")
    if padding_mode not in _PADDINGS:
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: '{padding_mode}'")
    if align_corners is None:
        warnings.warn(_DEFAULT_WARNING, UserWarning, stacklevel=2)
        align_corners = False
    si, sg = tuple(input.shape), tuple(grid.shape)
    if input.dtype != grid.dtype:
        raise RuntimeError(f"grid_sampler(): input and grid must have the same dtype: expected scalar type "
                           f"{input.dtype} but found {grid.dtype}")
    if len(si) != len(sg) or len(si) not in (4, 5):
        raise RuntimeError(f"grid_sampler(): expected 4D or 5D input and grid with same number of dimensions, "
                           f"but got input with sizes {list(si)} and grid with sizes {list(sg)}")
    if si[0] != sg[0]:
        raise RuntimeError(f"grid_sampler(): expected grid and input to have same batch size, but got input with "
                           f"sizes {list(si)} and grid with sizes {list(sg)}")
    if sg[-1] != len(si) - 2:
        raise RuntimeError(f"grid_sampler(): expected grid to have size {len(si) - 2} in last dimension, but got "
                           f"grid with sizes {list(sg)}")
    if any(n <= 0 for n in si[2:]):
        raise RuntimeError(f"grid_sampler(): expected input to have non-empty spatial dimensions, but input has "
                           f"sizes {list(si)} with dimension {next(i for i in range(2, len(si)) if si[i] <= 0)} "
                           f"being empty")
    if mode == "bicubic":
        if len(si) != 4:
            raise RuntimeError("grid_sampler(): bicubic interpolation only supports 4D input")
        from .grid_sample_bicubic import GridSampleBicubic2d  # (here: it imports this module's helpers)

        return GridSampleBicubic2d.apply(input, grid, padding=padding_mode, align_corners=bool(align_corners))
    if len(si) == 5:
        from .grid_sample3d import GridSample3d

        return GridSample3d.apply(input, grid, mode=mode, padding=padding_mode, align_corners=bool(align_corners))
    return GridSample2d.apply(input, grid, mode=mode, padding=padding_mode, align_corners=bool(align_corners))
