"""PyTorch's numerical integration and differentiation of sampled values (``torch.trapezoid``, ``torch.trapz``,
``torch.cumulative_trapezoid``, ``torch.gradient``) and ``torch.histogramdd``.

The first four are composed of distnn's differentiable slicing and arithmetic, so their gradients with respect
to the samples ``y`` come from those ops (and match PyTorch's); sample coordinates given as tensors are
constants to ``gradient`` (their gradient is not computed). ``histogramdd`` counts, and has no gradient.
"""
from __future__ import annotations

import builtins

import numpy as np

from .autograd.grad_mode import is_grad_enabled
from .autograd.tensor import Tensor
from .backend import as_array, get_array_module, to_numpy, unwrap


def _as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(as_array(x))  # (a raw device array as it is)


def _dim(dim, ndim, who):
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"{who}: Dimension out of range (expected to be in range of [{-max(ndim, 1)}, "
                         f"{max(ndim, 1) - 1}], but got {dim})")
    return dim % max(ndim, 1)


def _slices(y, dim, n):
    """``y`` at the left and right ends of each of the ``n - 1`` intervals along ``dim``."""
    return y.narrow(dim, 0, n - 1), y.narrow(dim, 1, n - 1)


def _steps(y, x, dx, dim, who):
    """The interval widths along ``dim``: ``dx``, or the differences of ``x`` (1-D: broadcast along ``dim``;
    else of ``y``'s shape, or broadcasting with it)."""
    n = y.shape[dim]
    if x is None:
        return 1.0 if dx is None else dx
    x = _as_tensor(x)
    if len(x.shape) == 1:
        if x.shape[0] != n:
            raise RuntimeError(f"{who}: There must be one `x` value for each sample point")
        left, right = _slices(x, 0, n)
        return (right - left).reshape((n - 1,) + (1,) * (len(y.shape) - dim - 1))
    xdim = dim - len(y.shape) + len(x.shape)  # (the same dim counted from the end)
    left, right = _slices(x, xdim, x.shape[xdim])
    return right - left


def _segments(y, x, dx, dim, who):
    y = _as_tensor(y)
    if x is not None and dx is not None:
        raise TypeError(f"{who}(): pass either x or dx, not both")
    d = _dim(dim, len(y.shape), who)
    n = y.shape[d]
    if n == 0:
        return y, d, None
    left, right = _slices(y, d, n)
    return y, d, (left + right) * _steps(y, x, dx, d, who) / 2.0


def trapezoid(y, x=None, *, dx=None, dim=-1):
    """``torch.trapezoid``: the trapezoidal rule along ``dim``, sample points ``x`` (1-D along ``dim``, or
    broadcasting with ``y``) or a constant spacing ``dx`` (default 1). No samples: zeros."""
    y, d, seg = _segments(y, x, dx, dim, "trapezoid")
    if seg is None:
        return y.sum(d) * 0.0
    return seg.sum(d)


def trapz(y, x=None, *, dx=None, dim=-1):
    """``torch.trapz``: :func:`trapezoid`."""
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1):
    """``torch.cumulative_trapezoid``: the running trapezoidal integral along ``dim`` (one fewer entry)."""
    y, d, seg = _segments(y, x, dx, dim, "cumulative_trapezoid")
    if seg is None:
        return y * 1.0
    return seg.cumsum(d)


class _Steps(np.ndarray):
    """Coordinates made from a scalar spacing: unlike a coordinate tensor, they leave the input's dtype."""


def _coordinates(spacing, dims, shape, who):
    """Per dim, the sample coordinates along it as a float64 host array (``spacing`` a scalar, a scalar per
    dim, or a 1-D tensor of coordinates per dim, as ``torch.gradient``'s)."""
    if spacing is None:
        spacing = 1.0
    if not isinstance(spacing, (tuple, list)):
        spacing = [spacing] * len(dims)
    if len(spacing) != len(dims):
        raise RuntimeError(f"{who} expected spacing to be unspecified, a scalar, or a list of length equal to "
                           f"'self.dim() = {len(shape)}', since dim argument was not given, but got a list of "
                           f"length {len(spacing)}" if len(dims) == len(shape) else
                           f"{who} expected spacing to be unspecified, a scalar or it's spacing and dim arguments "
                           f"to have the same length, but got a spacing argument of length {len(spacing)} and a "
                           f"dim argument of length {len(dims)}.")
    out = []
    for s, d in zip(spacing, dims):
        if isinstance(s, Tensor) or hasattr(s, "shape") and np.ndim(to_numpy(unwrap(s))) > 0:
            c = np.asarray(to_numpy(unwrap(s)))
            if c.ndim != 1 or c.shape[0] != shape[d]:
                raise RuntimeError(f"{who} expected each tensor to be on the same device and each coordinate "
                                   f"tensor to be 1-D with as many entries as dimension {d} ({shape[d]}), "
                                   f"got shape {tuple(c.shape)}")
            if isinstance(s, Tensor) and s.requires_grad and is_grad_enabled():
                c = s  # (PyTorch's coefficients are tensor ops on the coordinates: the result has their gradient)
        else:
            c = (np.arange(shape[d], dtype=np.float64) * float(to_numpy(unwrap(s)))).view(_Steps)
        out.append(c)
    return out


def _derivative(f, d, c, edge_order):
    """Second-order central differences inside, first or second order one-sided at the ends (numpy's and
    PyTorch's formulas for uneven spacing ``c``), along axis ``d`` of ``f``. ``c`` is a host array (the
    coefficients computed in float64), or a coordinate tensor that requires grad (computed with recorded ops,
    in ``f``'s dtype, so that the result carries the coordinates' gradient, as PyTorch's)."""
    xp = get_array_module(f.data)
    n, nd = f.shape[d], len(f.shape)
    if isinstance(c, Tensor):
        c = c.astype(f.dtype) if c.dtype != f.dtype else c
        h = c[1:] - c[:-1]

        def coef(v):  # a column of coefficients, broadcast along d
            return v.reshape((-1,) + (1,) * (nd - d - 1))
    else:
        h = np.diff(c.astype(np.float64))

        def coef(v):  # a host column of coefficients, broadcast along d, in f's dtype, on f's device
            return xp.asarray(np.asarray(v).reshape((-1,) + (1,) * (nd - d - 1)).astype(f.dtype))

    hs, hd = h[:-1], h[1:]
    inner = (f.narrow(d, 0, n - 2) * coef(-hd / (hs * (hd + hs)))
             + f.narrow(d, 1, n - 2) * coef((hd - hs) / (hd * hs))
             + f.narrow(d, 2, n - 2) * coef(hs / (hd * (hd + hs))))

    def taps(start, weights):  # sum_i weights[i] * f[start + i], one entry along d (each weight a 1-entry slice)
        return sum(f.narrow(d, start + i, 1) * coef(w) for i, w in enumerate(weights))

    if edge_order == 1:
        first = taps(0, [-1.0 / h[:1], 1.0 / h[:1]])
        last = taps(n - 2, [-1.0 / h[-1:], 1.0 / h[-1:]])
    else:
        a, b = h[:1], h[1:2]
        first = taps(0, [-(2 * a + b) / (a * (a + b)), (a + b) / (a * b), -a / (b * (a + b))])
        a, b = h[-2:-1], h[-1:]
        last = taps(n - 3, [b / (a * (a + b)), -(a + b) / (a * b), (2 * b + a) / (b * (a + b))])
    from . import cat

    return cat([first, inner, last], d)


def gradient(input, *, spacing=1, dim=None, edge_order=1):  # noqa: A002 - PyTorch's name
    """``torch.gradient``: a tuple with the estimated derivative of ``input`` along each dim of ``dim``
    (default all), central differences inside and ``edge_order`` (1 or 2) one-sided ones at the ends.
    ``spacing``: a scalar step, one per dim, or per dim a 1-D tensor of the sample coordinates."""
    f = _as_tensor(input)
    who = "torch.gradient"
    if edge_order not in (1, 2):
        raise RuntimeError(f"{who} only supports edge_order=1 and edge_order=2.")
    nd = len(f.shape)
    dims = list(range(nd)) if dim is None else [dim] if isinstance(dim, int) else list(dim)
    dims = [_dim(d, nd, who) for d in dims]
    if len(set(dims)) != len(dims):
        raise RuntimeError(f"{who}: dim {dims} appears multiple times in the list of dims")
    for d in dims:
        if f.shape[d] < edge_order + 1:
            raise RuntimeError(f"{who} expected each dimension size to be at least edge_order+1")
    if f.dtype.kind in "biu":
        f = f.astype(np.float32)  # (PyTorch's result for integer samples is float)
    coords = _coordinates(spacing, dims, f.shape, who)
    wide = [c.dtype for c in coords if not isinstance(c, _Steps) and c.dtype.kind == "f"]
    if wide:  # (coordinate tensors take part in the result's dtype, as in PyTorch's arithmetic)
        f = f.astype(np.result_type(f.dtype, *wide))
    return tuple(_derivative(f, d, c, edge_order) for d, c in zip(dims, coords))


def histogramdd(input, bins, range=None, weight=None, density=False):  # noqa: A002 - PyTorch's names
    """``torch.histogramdd``: ``(hist, bin_edges)`` of the points, the rows of ``input`` ``(*, D)`` in D
    dimensions; ``bins`` an int, one int per dimension, or per dimension a tensor of increasing edges;
    ``range`` ``[lo_1, hi_1, ..., lo_D, hi_D]``. numpy's ``histogramdd``; no gradient."""
    pts = np.asarray(to_numpy(unwrap(input)))
    if pts.dtype.kind != "f":
        raise RuntimeError(f"torch.histogramdd: input tensor and bins tensors should have the same dtype, "
                           f"floating point, but got {pts.dtype}")
    dcount = pts.shape[-1] if pts.ndim else 0
    pts = pts.reshape(-1, dcount)
    if isinstance(bins, (tuple, list)) and bins and not isinstance(bins[0], (int, np.integer)):
        bins = [np.asarray(to_numpy(unwrap(b)), dtype=np.float64) for b in bins]
    rng = None if range is None else [(range[2 * i], range[2 * i + 1]) for i in builtins.range(dcount)]
    w = None if weight is None else np.asarray(to_numpy(unwrap(weight))).reshape(-1)
    hist, edges = np.histogramdd(pts, bins=bins, range=rng, weights=w, density=density)
    xp = get_array_module(unwrap(input))
    return (Tensor(xp.asarray(hist.astype(pts.dtype))), [Tensor(xp.asarray(e.astype(pts.dtype))) for e in edges])


__all__ = ["trapezoid", "trapz", "cumulative_trapezoid", "gradient", "histogramdd"]
