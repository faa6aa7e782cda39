"""Graph backwards of ``grid_sample``: 2-D nearest and bilinear (:class:`GridSample2d`), 3-D nearest and
trilinear (:class:`GridSample3d`) and 2-D bicubic (:class:`GridSampleBicubic2d`); and of ``affine_grid``, which
is linear in theta (its backward, ``base^T @ g``, as a recorded matmul).

Each sampler is ``out[n, c, p] = sum over taps t of W_t(f[n, p]) * x[n, c, i_t[n, p]]``: the taps' pixel
indices ``i_t`` (and whether each lies inside) are piecewise constant in the grid, the weights ``W_t`` are
polynomials in the point's fractional position ``f`` along each axis (the multilinear ``f`` / ``1 - f``
products; the cubic convolution weights), and ``f`` is linear in the grid, with the slope the forward
computed (the unnormalization's scale, 0 where a border clip is active, negated by a reflection). So, as
Tensors, ``f = (grid - grid.value) * slope + f.value``: its value is the forward's exactly and its derivative
the slope, which is how PyTorch's sampler differentiates its coordinates.

The graph backward is the first backward written on those Tensors: the input's gradient scatter-adds
``g * W_t`` at the taps (a recorded :class:`~.structure.IndexBackward`, whose backward is the gather), the
grid's gradient is ``sum_t sum_c g * x[taps] * dW_t/df * slope`` (the gather a recorded indexing). Every
piece has a graph backward of its own, so second and third derivatives follow, in the input, the grid and
the output's gradient, as PyTorch's (GridSampler2DBackwardBackward0). 'nearest' has one tap of weight 1 and
gives the grid zeros, as the first backward does.
"""
from __future__ import annotations

import itertools
import math

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module
from distnn.functional.grid_sample import AffineGrid, GridSample2d
from distnn.functional.grid_sample3d import GridSample3d
from distnn.functional.grid_sample_bicubic import GridSampleBicubic2d, _cubic_weights
from distnn.functional.join import concat, stack

from . import register, saved_input
from .structure import IndexBackward


def _const(array):
    return Tensor._make(array, None)


def _fractions(node, axes):
    """Per (grid component, fraction value (N, P), slope (N, P)) in ``axes``: the fraction as a Tensor of
    the grid (a constant where the grid needs no gradient)."""
    if not node.needs_input_grad[1]:
        return [_const(f) for _, f, _ in axes]
    grid = node.grid
    N = grid.shape[0]
    grid_t = saved_input(node, 1, grid)
    return [(grid_t[..., c].reshape(N, -1) - grid[..., c].reshape(N, -1)) * slope + f for c, f, slope in axes]


def _multilinear(fractions, bits_list):
    """Per tap (its corner ``bits``, one per axis): the weight prod(f or 1 - f) and its slope in each f."""
    out = []
    for bits in bits_list:
        factors = [f if b else 1 - f for f, b in zip(fractions, bits)]
        weight = factors[0]
        for f in factors[1:]:
            weight = weight * f
        slopes = []
        for a, b in enumerate(bits):
            s = None
            for k, f in enumerate(factors):
                if k != a:
                    s = f if s is None else s * f
            slopes.append(s if b else -s)
        out.append((weight, slopes))
    return out


def _2d(node):
    """(axes, per tap (flat, inside), per tap (weight, slopes) of the fractions) of a GridSample2d node."""
    taps = [(flat, inside) for flat, inside, _ in node.taps]
    if node.mode == "nearest":
        return [], taps, None
    n, _, w, _ = node.frac
    axes = [(1, n, node.mult[1]), (0, w, node.mult[0])]  # (the taps' corners are (y, x))
    return axes, taps, lambda fr: _multilinear(fr, itertools.product((0, 1), repeat=2))


def _3d(node):
    taps = [(flat, inside) for flat, inside, _, _ in node.taps]
    if node.mode == "nearest":
        return [], taps, None
    # axis a (D, H, W) is read by the grid's component 2 - a
    axes = [(2 - a, node.axis_weights[a][1], node.mults[a]) for a in range(3)]
    return axes, taps, lambda fr: _multilinear(fr, [bits for _, _, _, bits in node.taps])


def _bicubic(node):
    xp = get_array_module(node.t[0])
    ty, tx = node.t
    axes = [(1, ty, xp.full(ty.shape, node.scale_y, dtype=ty.dtype)),
            (0, tx, xp.full(tx.shape, node.scale_x, dtype=tx.dtype))]

    def weights(fr):
        (wy, sy), (wx, sx) = _cubic_weights(fr[0]), _cubic_weights(fr[1])
        return [(wy[j] * wx[i], [sy[j] * wx[i], wy[j] * sx[i]]) for j in range(4) for i in range(4)]
    return axes, node.taps, weights


def _graph(describe):
    def graph_backward(node, g):
        xp = get_array_module(g.data)
        axes, taps, weigh = describe(node)
        shape = node.shape
        N, C = shape[:2]
        g3 = g.reshape(N, C, -1)
        P, T = g3.shape[2], len(taps)
        # all taps side by side along the points' axis: one gather and one scatter-add
        flat = xp.concatenate([f for f, _ in taps], axis=1)  # (N, T P)
        inside = xp.concatenate([m for _, m in taps], axis=1).astype(g.dtype)
        index = (xp.arange(N)[:, None, None], xp.arange(C)[None, :, None], flat[:, None, :])
        fractions = _fractions(node, axes)
        weights = None if weigh is None else weigh(fractions)
        grads = [None, None]
        if node.needs_input_grad[0]:
            gw = concat([g3] * T, axis=2) if T > 1 else g3
            if weights is not None:
                gw = gw * concat([w for w, _ in weights], axis=1)[:, None, :]
            gw = gw * inside[:, None, :]
            plane = math.prod(shape[2:])
            grads[0] = IndexBackward.apply(gw, index=index, shape=(N, C, plane)).reshape(shape)
        if node.needs_input_grad[1]:
            if weights is None:  # (nearest: the grid's gradient is 0)
                grads[1] = _const(xp.zeros(node.grid_shape, dtype=g.dtype))
            else:
                x = saved_input(node, 0, node.x)
                x = x if isinstance(x, Tensor) else _const(x)
                values = x.reshape(N, C, -1)[index] * inside[:, None, :]  # (N, C, T P), 0 outside
                vg = (values * concat([g3] * T, axis=2)).sum(axis=1).reshape(N, T, P)
                comps = {}
                for a, (comp, _, slope) in enumerate(axes):
                    dw = stack([s[a] for _, s in weights], axis=1)  # (N, T, P)
                    comps[comp] = (vg * dw).sum(axis=1) * slope
                grads[1] = stack([comps[c] for c in range(len(axes))], axis=-1).reshape(node.grid_shape)
        return tuple(grads)
    return graph_backward


register(GridSample2d)(_graph(_2d))
register(GridSample3d)(_graph(_3d))
register(GridSampleBicubic2d)(_graph(_bicubic))


@register(AffineGrid)
def _affine_grid(node, g):
    g = g.reshape(g.shape[0], -1, g.shape[-1])  # (N, P, k)
    return ((_const(node.base.T) @ g).mT,)  # (N, k, k + 1)
