"""``interpolate`` (PyTorch's ``F.interpolate``): resampling of (N, C, *spatial) by 'nearest',
'nearest-exact', 'linear' (3-D), 'bilinear' (4-D), 'bicubic' (4-D), 'trilinear' (5-D) and 'area'
(adaptive average pooling); bilinear and bicubic also with ``antialias=True``.

The interpolating modes are separable: each spatial axis is resampled on its own
(the last axis first, as PyTorch's kernels nest their sums), one output position
reading a few input positions, its taps, each with a weight (nearest: one position,
weight 1; linear: two; bicubic: four; antialiased: a window that widens with the
downsampling). So one Function, ``Resample``, takes per axis those index and weight
vectors, computed once on the host with PyTorch's index arithmetic (bicubic and
antialias: _interp_taps.py):

* nearest: ``min(floor(i * s), in - 1)`` in float32 (PyTorch's ``floorf`` on a float
  scale), ``s = 1 / scale_factor`` when one is given (and not recomputed), else
  ``in / out``. So a scale_factor of 1.01 on 5 values keeps 5 and shifts them, as
  PyTorch's forward does for 3-D and 5-D inputs; for 4-D inputs its forward takes
  an output as long as the input for a copy and one twice as long for ``i >> 1``,
  whatever the scale, and so does distnn. (PyTorch's backward takes those shortcuts
  for every dimension, so for 3-D and 5-D inputs its gradient is not that of its
  forward there; distnn's is.) nearest-exact: ``floor((i + 0.5) * s)``, no shortcut.
* linear: the source ``s * (i + 0.5) - 0.5`` clamped at 0 (``s * i`` with
  align_corners, where ``s = (in - 1) / (out - 1)``), split into ``floor`` (taken in
  float32, as PyTorch's ``floorf``) and a fraction clamped to [0, 1]; an output as
  large as the input is a copy.
* bicubic and antialias: see _interp_taps.py. PyTorch's gradient there is not always
  that of its forward, and distnn's is: its bicubic backward copies when the whole
  output is as large as the input, which its forward does not (a scale_factor of 1.1
  on 5 values); its antialiased forward copies an axis whose length does not change,
  which its backward does not. Its antialiased forward (CPU, 2.13) also gives every
  output row the first row's values when the output is one column wide and the height
  changes; its backward, and distnn, resample each row.

Backward adds each output's gradient, times its weight, back into its input
positions. The indices along an axis never decrease, so the outputs sharing an
input position are a run: the k-th outputs of all runs go to distinct positions
and are added with one indexed add per k (a few for an upsampling), which needs
neither numpy's slow ``add.at`` nor a dense matrix (whose zeros would carry a NaN
gradient to every input position). Backward reads no input, as PyTorch's.
"""
from __future__ import annotations

import math

import numpy as np

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from ._interp_taps import antialias_taps, area_scale, cubic_taps

_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")
_LINEAR_DIM = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}  # (the one spatial rank each takes)


def _nearest_index(in_size, out_size, scale, exact, shortcut):
    """PyTorch's nearest_idx / nearest_exact_idx for every output position (``shortcut``: see the docstring)."""
    i = np.arange(out_size)
    if shortcut and out_size == in_size:
        return i
    if shortcut and out_size == 2 * in_size:
        return i >> 1
    s = np.float32(1.0 / scale) if scale is not None and scale > 0 else np.float32(in_size) / np.float32(out_size)
    # (nearest: int * float in float32; nearest-exact: (i + 0.5) * s in double, then floorf's float argument)
    src = i.astype(np.float32) * s if not exact else ((i + 0.5) * np.float64(s)).astype(np.float32)
    return np.minimum(np.floor(src).astype(np.int64), in_size - 1)


def _linear_index(in_size, out_size, scale, align_corners):
    """The taps ``((i0, w0), (i1, w1))`` of PyTorch's linear interpolation (compute_source_index_and_lambda)
    along one axis."""
    i = np.arange(out_size)
    if out_size == in_size:  # (a copy, whatever the scale: PyTorch's shortcut)
        return (i, np.ones(out_size)), (i, np.zeros(out_size))
    if align_corners:
        s = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    else:
        s = area_scale(in_size, out_size, scale, False)
    if align_corners:
        src = s * i
    else:
        src = np.maximum(s * (i + 0.5) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), in_size - 1)
    w1 = np.clip(src - i0, 0.0, 1.0)
    i1 = i0 + (i0 < in_size - 1)
    return (i0, 1.0 - w1), (i1, w1)


def _runs(idx):
    """For non-decreasing ``idx``: [(positions, idx[positions])] where each group's indices are distinct."""
    rank = np.arange(len(idx)) - np.searchsorted(idx, idx, side="left")
    return [(sel, idx[sel]) for sel in (np.flatnonzero(rank == r) for r in range(int(rank.max()) + 1))]


class Resample(Function):
    """x (N, C, *spatial) -> (N, C, *out): per spatial axis ``d``, ``plans[d]`` is a tuple of taps
    ``(index, weight)``, numpy vectors over the output positions along that axis (weight None: 1; index -1:
    no tap there); the output is the taps' weighted reads, added in order."""

    reads = ((),)  # (backward reads only the sizes and its own index plans, as PyTorch's upsample backward)

    def forward(self, x, plans=()):
        xp = get_array_module(x)
        self.plans, self.in_shape = plans, x.shape
        y = x
        for d in range(len(plans) - 1, -1, -1):  # (the last axis first: PyTorch's kernels nest their sums so)
            axis, out = d + 2, None
            shape = (-1,) + (1,) * (y.ndim - axis - 1)
            for idx, w in plans[d]:
                valid = idx >= 0
                t = xp.take(y, xp.asarray(np.where(valid, idx, 0)), axis=axis)
                if not valid.all():  # (PyTorch reads nothing outside an antialiasing window: no inf * 0 there)
                    t = xp.where(xp.asarray(valid.reshape(shape)), t, xp.zeros((), dtype=t.dtype))
                if w is not None:
                    t = t * xp.asarray(w.astype(x.dtype, copy=False).reshape(shape))
                out = t if out is None else out + t
            y = out
        return y  # (a new array: every axis is resampled, by a copy at least)

    def backward(self, g):
        xp = get_array_module(g)
        plans = self.plans
        for d in range(len(plans)):  # (the reverse of forward's order)
            axis = d + 2
            gx = xp.zeros(g.shape[:axis] + (self.in_shape[axis],) + g.shape[axis + 1:], dtype=g.dtype)
            lead = (slice(None),) * axis
            shape = (-1,) + (1,) * (g.ndim - axis - 1)
            for idx, w in plans[d]:
                gw = g if w is None else g * xp.asarray(w.astype(g.dtype, copy=False).reshape(shape))
                used = np.flatnonzero(idx >= 0)
                for sel, pos in _runs(idx[used]):
                    gx[lead + (xp.asarray(pos),)] += gw[lead + (xp.asarray(used[sel]),)]
            g = gx
        return (g,)


def _spatial(v, dim, what, kind):
    """size or scale_factor as a list of ``dim`` values."""
    if isinstance(v, (list, tuple)):
        if len(v) != dim:
            raise ValueError(f"interpolate: input and {what} must have the same number of spatial dimensions, got "
                             f"{dim} and {what} {tuple(v)}")
        if kind is int and not all(isinstance(a, (int, np.integer)) for a in v):
            raise TypeError(f"interpolate: expected size to be ints, got {[type(a).__name__ for a in v]}")
        return [kind(a) for a in v]
    return [kind(v)] * dim


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resample ``input`` (N, C, *spatial) to ``size`` or by ``scale_factor`` (PyTorch's ``F.interpolate``).

    Modes: 'nearest', 'nearest-exact', 'linear' (3-D input), 'bilinear' (4-D), 'bicubic' (4-D: PyTorch's
    cubic convolution, A = -0.75, border positions repeated, output not clamped), 'trilinear' (5-D) and
    'area' (3-D, 4-D or 5-D: adaptive average pooling). ``align_corners`` is for the interpolating modes
    only (None means False). ``recompute_scale_factor=True`` interpolates as for the size the scale gives
    (``floor(in * scale)``); otherwise the scale itself sets the source positions. ``antialias=True``
    (bilinear and bicubic, 4-D input) resamples with PyTorch's antialiasing filters: a triangle or a cubic
    (a = -0.5) widened by the scale when downsampling, with weights normalized to sum to 1.
    """
    if mode not in _MODES:
        raise NotImplementedError(f"interpolate: mode must be one of {', '.join(_MODES)}, got {mode!r}")
    if mode in ("nearest", "nearest-exact", "area") and align_corners is not None:
        raise ValueError("interpolate: align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if input.ndim not in (3, 4, 5):
        raise NotImplementedError(f"interpolate: expected a 3-D, 4-D or 5-D input (N, C, *spatial), got "
                                  f"{input.ndim}-D input of shape {tuple(input.shape)}")
    dim = input.ndim - 2
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: " + ("only one of size or scale_factor should be defined" if size is not None
                                            else "either size or scale_factor should be defined"))
    if recompute_scale_factor and size is not None:
        raise ValueError("interpolate: recompute_scale_factor is not meaningful with an explicit size")
    if antialias and not (mode in ("bilinear", "bicubic") and input.ndim == 4):  # (PyTorch's check, a ValueError)
        raise ValueError(f"interpolate: antialias=True is for the bilinear and bicubic modes on a 4-D input "
                         f"(N, C, H, W), got mode {mode!r} and {input.ndim}-D input")
    if mode in _LINEAR_DIM and _LINEAR_DIM[mode] != dim:
        raise NotImplementedError(f"interpolate: got {input.ndim}-D input, but {mode} mode needs "
                                  f"{_LINEAR_DIM[mode] + 2}-D input")
    spatial = tuple(input.shape[2:])
    scales = [None] * dim
    if size is not None:
        out = _spatial(size, dim, "size", int)
    else:
        factors = _spatial(scale_factor, dim, "scale_factor", float)
        out = [int(math.floor(n * f)) if math.isfinite(n * f) else -1 for n, f in zip(spatial, factors)]
        if not (recompute_scale_factor or mode == "area"):
            scales = factors
    if mode != "area" and (min(spatial) <= 0 or min(out) <= 0):  # (area: the pooling's own checks)
        raise ValueError(f"interpolate: input and output sizes should be greater than 0, got input {spatial} and "
                         f"output {tuple(out)}")
    if mode == "area":
        from . import adaptive_pooling as pooling  # (area is adaptive average pooling, PyTorch's way too)
        pool = {1: pooling.adaptive_avg_pool1d, 2: pooling.adaptive_avg_pool2d, 3: pooling.adaptive_avg_pool3d}[dim]
        return pool(input, out[0] if dim == 1 else tuple(out))
    if mode in ("nearest", "nearest-exact"):
        exact, shortcut = mode == "nearest-exact", mode == "nearest" and dim == 2
        plans = tuple(((_nearest_index(n, o, s, exact, shortcut), None),) for n, o, s in zip(spatial, out, scales))
    elif antialias:
        plans = tuple(antialias_taps(n, o, s, bool(align_corners), mode == "bicubic")
                      for n, o, s in zip(spatial, out, scales))
    elif mode == "bicubic":
        plans = tuple(cubic_taps(n, o, s, bool(align_corners)) for n, o, s in zip(spatial, out, scales))
    else:
        plans = tuple(_linear_index(n, o, s, bool(align_corners)) for n, o, s in zip(spatial, out, scales))
    return Resample.apply(input, plans=plans)
