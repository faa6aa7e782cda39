"""Fractional max pooling (Graham, "Fractional Max-Pooling"): PyTorch's ``F.fractional_max_pool2d/3d`` and
their ``*_with_indices`` forms.

Each (sample, channel) plane is pooled with k-wide windows whose starts advance by a pseudo-random step of
about (input - k) / (output - 1), so the output has any size ``output_size`` (or ``output_ratio`` times the
input's). The starts are aten's ``generate_intervals``, computed in the input's dtype as PyTorch's kernel
does (float32 arithmetic for a float32 input, so the same samples give the same windows)::

    alpha = (input - k) / (output - 1)
    start[i] = int((i + u) * alpha) - int(u * alpha)   for i < output - 1
    start[output - 1] = input - k

with one sample ``u`` in [0, 1) per (sample, channel, axis): ``_random_samples[n, c]`` holds (W, H) for 2-D
(PyTorch's order: the width's sample first) and (T, H, W) for 3-D. Without ``_random_samples`` they are
drawn as RReLU draws its slopes (:func:`unit_uniform`): by default distnn's per-thread generator, under the
trainer the per-sample generator, so N data-parallel ranks pool a sample as one process does.

Each window is gathered (N, C, *output, K) and its maximum taken as PyTorch's kernel scans it
(``val > max or isnan(val)``: the first maximum wins ties, the last NaN wins a window holding NaN); the
backward adds each output's gradient to its winner (windows may overlap).
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._pool_common import max_pool_grad

_LAYOUT = {2: ("(C, H, W)", "(N, C, H, W)"), 3: ("(C, T, H, W)", "(N, C, T, H, W)")}
_AXIS = {2: ("height", "width"), 3: ("time", "height", "width")}
# which sample of _random_samples[n, c] each spatial axis takes (aten: 2-D reads [0] for W, [1] for H)
_SAMPLE_OF_AXIS = {2: (1, 0), 3: (0, 1, 2)}


def _starts(samples, size, out, k):
    """aten's ``generate_intervals`` for every sample at once: ``samples`` (...) -> int64 (..., out) window
    starts, in the samples' dtype (``int()`` truncates toward zero, as C++'s cast)."""
    seq = np.empty(samples.shape + (out,), dtype=np.int64)
    if out > 1:
        t = samples.dtype.type
        alpha = t(size - k) / t(out - 1)
        i = np.arange(out - 1).astype(samples.dtype)
        seq[..., :-1] = (np.trunc((i + samples[..., None]) * alpha)
                         - np.trunc(samples * alpha)[..., None]).astype(np.int64)
    if out > 0:
        seq[..., -1] = size - k
    return seq


class FractionalMaxPool(Function):
    """x (N, C, *spatial) -> (N, C, *output): each output the maximum of its k-window, the window starts per
    (n, c, axis) given (host int64 arrays, (N, C, o_a) each)."""

    # PyTorch's backward takes the input and its indices: the input is declared, the indices are its own
    reads = ((0,),)

    def forward(self, x, starts, kernel, indices_to=None):
        xp = get_array_module(x)
        N, C = x.shape[:2]
        spatial, nd = x.shape[2:], len(kernel)
        outs = tuple(s.shape[-1] for s in starts)
        self.xshape = x.shape
        if not all(outs) or not N:  # (no windows to search)
            self.indices = xp.empty((N, C) + outs, dtype=np.int64)
            out = xp.empty((N, C) + outs, dtype=x.dtype)
        else:
            # per axis a: its positions start + j, broadcast over (N, C, o_1, ..., o_nd, k_1, ..., k_nd)
            pos = []
            for a, (s, k) in enumerate(zip(starts, kernel)):
                p = s.reshape((N, C) + (1,) * a + (outs[a],) + (1,) * (nd - 1 - a) + (1,) * nd)
                p = p + np.arange(k).reshape((1,) * (2 + nd + a) + (k,) + (1,) * (nd - 1 - a))
                pos.append(xp.asarray(p))
            n = xp.arange(N).reshape((N,) + (1,) * (1 + 2 * nd))
            c = xp.arange(C).reshape((1, C) + (1,) * (2 * nd))
            K = int(np.prod(kernel))
            win = x[(n, c) + tuple(pos)].reshape((N, C) + outs + (K,))
            # row-major scan keeping ``val > max or isnan(val)``: argmax's first maximum, else the last NaN
            arg = xp.argmax(win, axis=-1)
            nan = xp.isnan(win)
            if bool(nan.any()):
                last_nan = K - 1 - xp.argmax(nan[..., ::-1], axis=-1)
                arg = xp.where(nan.any(axis=-1), last_nan, arg)
            out = xp.take_along_axis(win, arg[..., None], axis=-1)[..., 0]
            strides = np.cumprod((1,) + tuple(spatial[:0:-1]))[::-1]  # of the flat index: (H * W, W, 1) for 3-D
            flat = sum(p * int(st) for p, st in zip(pos, strides))
            flat = xp.broadcast_to(flat, win.shape[:-1] + tuple(kernel)).reshape(win.shape)
            self.indices = xp.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
        if indices_to is not None:  # (return_indices: the indices found here, not a second search)
            indices_to.append(self.indices)
        return out

    def backward(self, g):
        return max_pool_grad(g, self.indices, self.xshape),


def _tuple(v, nd, name, op):
    """An int for every axis, or a sequence of 1 or ``nd`` ints (PyTorch's ``_pair``/``_triple``)."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return (int(v),) * nd
    try:
        t = tuple(v)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int or a tuple of {nd} ints, got {v!r}") from None
    if len(t) == 1:
        t = t * nd
    if len(t) != nd or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in t):
        raise RuntimeError(f"{op}: {name} must either be a single Int or tuple of Ints, got {v!r}")
    return tuple(int(a) for a in t)


def _ratios(v, nd, op):
    t = tuple(v) if isinstance(v, (tuple, list)) else (v,)
    if len(t) == 1:
        t = t * nd
    if len(t) != nd:
        raise ValueError(f"{op} requires output_ratio to either be a single number or a tuple of {nd}, got {v!r}")
    return tuple(float(r) for r in t)


def _samples(data, samples, nd, op):
    """``_random_samples`` as a host (N, C, nd) array of the input's dtype: checked as aten checks them, or
    drawn (per sample along the batch axis: see the module docstring)."""
    N, C = data.shape[:2]
    if samples is None:
        from distnn import random as drandom

        from .activation import _float_kind, unit_uniform

        u = np.asarray(unit_uniform(drandom.default_generator(), (N, C, nd), _float_kind(data.dtype), batch_dim=0))
        u = u.astype(data.dtype)
        # (a float64 draw just below 1 rounds to 1.0 in float32: kept below 1, as torch.rand's)
        return np.minimum(u, np.nextafter(data.dtype.type(1), data.dtype.type(0)))
    s = samples.data if isinstance(samples, Tensor) else samples
    s = s.get() if hasattr(s, "get") and not isinstance(s, np.ndarray) else np.asarray(s)
    if s.dtype != data.dtype:
        raise RuntimeError(f"{op}: Expect _random_samples to have the same dtype as input ({s.dtype} vs "
                           f"{data.dtype})")
    if s.ndim != 3:
        raise RuntimeError(f"{op}: Expect _random_samples to have 3 dimensions, got {s.ndim}")
    if s.shape[0] < N:
        raise RuntimeError(f"{op}: Expect _random_samples.size(0) no less than input batch size ({s.shape[0]} < {N})")
    if s.shape[1] != C:
        raise RuntimeError(f"{op}: Expect _random_samples.size(1) equals to input channel size ({s.shape[1]} vs {C})")
    if s.shape[2] != nd:
        raise RuntimeError(f"{op}: Expect _random_samples.size(2) equals to {nd}; got {s.shape[2]}.")
    return s[:N]


def _fractional(op, nd):
    def pool(input, kernel_size, output_size=None, output_ratio=None, return_indices=False, _random_samples=None):
        if input.ndim not in (nd + 1, nd + 2):
            unbatched, batched = _LAYOUT[nd]
            raise RuntimeError(f"{op}: non-empty {nd + 1}D or {nd + 2}D (batch mode) tensor expected for input "
                               f"{unbatched} or {batched}, got shape {tuple(input.shape)}")
        if output_size is None and output_ratio is None:
            raise ValueError(f"{op} requires specifying either an output_size or an output_ratio")
        kernel = _tuple(kernel_size, nd, "kernel_size", op)
        spatial = tuple(input.shape[-nd:])
        if output_size is None:
            output_size = tuple(int(s * r) for s, r in zip(spatial, _ratios(output_ratio, nd, op)))
        size = _tuple(output_size, nd, "output_size", op)
        if min(kernel) < 1:  # (PyTorch pools empty windows to -inf: refused)
            raise RuntimeError(f"{op}: kernel_size must be positive, got {kernel_size!r}")
        if min(size) < 0:
            raise RuntimeError(f"{op}: output_size must be non-negative, got {output_size!r}")
        if input.ndim == nd + 1:  # unbatched: a batch of one (samples (1, C, nd), as PyTorch's)
            input = input.reshape((1,) + tuple(input.shape))
            result = pool(input, kernel, size, None, return_indices, _random_samples)
            return tuple(r[0] for r in result) if isinstance(result, tuple) else result[0]
        for axis, n in enumerate(input.shape[1:], start=1):
            if n == 0:
                raise RuntimeError(f"{op}: Expected input to have non-zero size for non-batch dimensions, but got "
                                   f"{list(input.shape)} with dimension {axis} being empty.")
        for name, o, k, s in zip(_AXIS[nd], size, kernel, spatial):
            # (aten's 3-D check is strict: an output as large as the input with a kernel of 1 is refused there)
            if o + k - 1 > s or (nd == 3 and o + k - 1 == s):
                need = "<" if nd == 3 else "<="
                raise RuntimeError(f"{op}: pool {name} {k} too large relative to input {name} {s} "
                                   f"(output {name} {o} needs output + kernel - 1 {need} input)")
        xp = get_array_module(input)
        data = input.data if isinstance(input, Tensor) else xp.asarray(input)
        samples = _samples(data, _random_samples, nd, op)
        # finite samples give starts in [0, size - k] (the step alpha is >= 1); a NaN or inf one does not (aten
        # then reads out of bounds)
        if not np.isfinite(samples).all():
            raise RuntimeError(f"{op}: _random_samples must be finite, in [0, 1)")
        starts = tuple(_starts(samples[..., j], s, o, k)
                       for j, s, o, k in zip(_SAMPLE_OF_AXIS[nd], spatial, size, kernel))
        indices = [] if return_indices else None
        out = FractionalMaxPool.apply(input, starts=starts, kernel=kernel, indices_to=indices)
        if not return_indices:
            return out
        return out, Tensor(indices[0].copy())  # (a copy: changing it cannot move the node's gradient)
    return pool


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None):
    """Fractional max pooling of (N, C, H, W) or (C, H, W) (PyTorch's ``F.fractional_max_pool2d``): kH x kW
    windows at pseudo-random starts (module docstring) giving ``output_size`` (int or pair), or
    ``output_ratio`` times the input's size (each ``int(size * ratio)``). ``_random_samples``: (N, C, 2) in
    [0, 1) of the input's dtype, (W, H) per plane; None: drawn. With ``return_indices``, also the flat index
    ``h * W + w`` of each maximum in its (N, C) plane (int64, no gradient), as ``max_unpool2d`` takes it."""
    return _fractional("fractional_max_pool2d", 2)(input, kernel_size, output_size, output_ratio, return_indices,
                                                   _random_samples)


def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None):
    """Fractional max pooling of (N, C, T, H, W) or (C, T, H, W) (PyTorch's ``F.fractional_max_pool3d``), as
    :func:`fractional_max_pool2d` with triples; ``_random_samples`` (N, C, 3) holds (T, H, W) per volume;
    indices are flat ``t * H * W + h * W + w``."""
    return _fractional("fractional_max_pool3d", 3)(input, kernel_size, output_size, output_ratio, return_indices,
                                                   _random_samples)


def fractional_max_pool2d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):
    """``fractional_max_pool2d(..., return_indices=True)``: ``(output, indices)``."""
    return fractional_max_pool2d(input, kernel_size, output_size, output_ratio, True, _random_samples)


def fractional_max_pool3d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):
    """``fractional_max_pool3d(..., return_indices=True)``: ``(output, indices)``."""
    return fractional_max_pool3d(input, kernel_size, output_size, output_ratio, True, _random_samples)


__all__ = ["fractional_max_pool2d", "fractional_max_pool3d", "fractional_max_pool2d_with_indices",
           "fractional_max_pool3d_with_indices"]
