"""3-D convolution as one fused Function: conv2d's im2col + GEMM (``conv.py``) one dimension up.

``cols[n, g, c*kd*kh*kw + ..., L]`` is one strided copy of the zero-padded input
(L = Do*Ho*Wo), the output one batched GEMM with the (G, O/G, K) weight; backward
forms the weight gradient from the same columns and the input gradient by
adding the columns of ``W^T g`` back over their windows (col2im: one strided
add per kernel offset). Padding is per side, so 'same' with an even dilated
kernel puts the extra cell on the high side, as PyTorch.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from . import shape as S
from ._dtype_checks import check_conv
from ._into import destinations, sum_into
from .conv import _as_strided, _out_size


def _triple(v, name, who="conv3d"):
    """An int (a numpy one too, as PyTorch takes it) for all three axes, or a sequence of 1 or 3 ints."""
    if isinstance(v, (int, np.integer)):
        return (int(v),) * 3
    t = tuple(int(a) for a in v)
    if len(t) == 1:
        return t * 3
    if len(t) != 3:
        raise ValueError(f"{who}: {name} must be an int or a triple, got {tuple(v)}")
    return t


def _im2col3d(xp, x, k, stride, pad, dilation, out):
    N, C, D, H, W = x.shape
    if any(lo or hi for lo, hi in pad):
        xpad = xp.zeros((N, C) + tuple(n + lo + hi for n, (lo, hi) in zip((D, H, W), pad)), dtype=x.dtype)
        xpad[:, :, pad[0][0]:pad[0][0] + D, pad[1][0]:pad[1][0] + H, pad[2][0]:pad[2][0] + W] = x
    else:
        xpad = xp.ascontiguousarray(x)
    s = xpad.strides
    win = _as_strided(xp, xpad, (N, C) + tuple(k) + tuple(out),
                      s[:2] + tuple(s[2 + a] * dilation[a] for a in range(3)) + tuple(s[2 + a] * stride[a] for a in range(3)))
    return xp.ascontiguousarray(win).reshape(N, C * k[0] * k[1] * k[2], out[0] * out[1] * out[2])


class Conv3d(Function):
    """x (N, C, D, H, W), weight (O, C/groups, kd, kh, kw), bias (O,) -> (N, O, Do, Ho, Wo)."""
    autocast = "lower"  # under distnn.autocast: the matmul family runs in the lower dtype

    reads = ((0, 1), (0, 1), (0, 1))  # (as conv2d's: PyTorch's convolution saves the input and the weight)

    def forward(self, x, weight, bias=None, stride=(1, 1, 1), padding=((0, 0),) * 3, dilation=(1, 1, 1), groups=1):
        check_conv(x, weight, bias)
        xp = get_array_module(x)
        N, C = x.shape[:2]
        O, Cg = weight.shape[:2]
        k = weight.shape[2:]
        out = tuple(_out_size(n, kk, s, lo, hi, d)
                    for n, kk, s, (lo, hi), d in zip(x.shape[2:], k, stride, padding, dilation))
        G, K, L = groups, Cg * k[0] * k[1] * k[2], out[0] * out[1] * out[2]
        cols = _im2col3d(xp, x, k, stride, padding, dilation, out).reshape(N, G, K, L)
        w2 = weight.reshape(G, O // G, K)
        y = xp.matmul(w2, cols).reshape(N, O, L)
        if bias is not None:
            y += bias[:, None]
        need = self.needs_input_grad
        self.cols = cols if len(need) > 1 and need[1] else None
        self.w2 = w2 if need[0] else None
        self.geom = (x.shape, weight.shape, out, stride, padding, dilation, G)
        self.has_bias = bias is not None
        return y.reshape((N, O) + out)

    def backward(self, g):
        xp = get_array_module(g)
        xshape, wshape, out, stride, padding, dilation, G = self.geom
        N, C = xshape[:2]
        O = wshape[0]
        k = wshape[2:]
        L = out[0] * out[1] * out[2]
        need = self.needs_input_grad
        dest = destinations(self, 3)
        g4 = g.reshape(N, G, O // G, L)
        gx = gw = gb = None
        if len(need) > 1 and need[1]:
            gw = xp.matmul(g4, self.cols.swapaxes(-1, -2)).sum(axis=0).reshape(wshape)  # (G, O/G, K)
            if dest[1] is not None and dest[1].dtype == gw.dtype:
                dest[1][...] = gw
                gw = dest[1]
        if self.has_bias and len(need) > 2 and need[2]:
            gb = sum_into(g, (0, 2, 3, 4), dest[2])
        if need[0]:
            gcols = xp.matmul(self.w2.transpose(0, 2, 1), g4).reshape((N, C) + tuple(k) + out)
            padded = tuple(n + lo + hi for n, (lo, hi) in zip(xshape[2:], padding))
            gxp = xp.zeros((N, C) + padded, dtype=g.dtype)
            spans = tuple(s * (o - 1) + 1 for s, o in zip(stride, out))
            for a in range(k[0]):
                for b in range(k[1]):
                    for c in range(k[2]):
                        o = (a * dilation[0], b * dilation[1], c * dilation[2])
                        gxp[:, :, o[0]:o[0] + spans[0]:stride[0], o[1]:o[1] + spans[1]:stride[1],
                            o[2]:o[2] + spans[2]:stride[2]] += gcols[:, :, a, b, c]
            (d0, _), (h0, _), (w0, _) = padding
            gx = xp.ascontiguousarray(gxp[:, :, d0:d0 + xshape[2], h0:h0 + xshape[3], w0:w0 + xshape[4]])
        return gx, gw, gb


def resolve_padding3d(padding, kernel, dilation, stride, who="conv3d"):
    """Padding as ((lo, hi),) * 3 from an int, a triple, 'valid' or 'same' (stride 1)."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * 3
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{who}: padding='same' is not supported for strided convolutions")
            return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation))
        raise ValueError(f"{who}: padding must be an int, a triple, 'valid' or 'same', got {padding!r}")
    p = _triple(padding, "padding")
    if min(p) < 0:
        raise ValueError(f"{who}: padding must be non-negative, got {padding}")
    return tuple((a, a) for a in p)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D cross-correlation with PyTorch's arguments; input (N, C, D, H, W) or (C, D, H, W), weight
    (O, C/groups, kd, kh, kw)."""
    stride, dilation = _triple(stride, "stride"), _triple(dilation, "dilation")
    if input.ndim not in (4, 5) or weight.ndim != 5:
        raise ValueError(f"conv3d: expected input (N, C, D, H, W) or (C, D, H, W) and weight "
                         f"(O, C/groups, kd, kh, kw), got {tuple(input.shape)} and {tuple(weight.shape)}")
    if min(stride) < 1 or min(dilation) < 1:
        raise ValueError(f"conv3d: stride and dilation must be >= 1, got stride={stride}, dilation={dilation}")
    pad = resolve_padding3d(padding, tuple(weight.shape[2:]), dilation, stride)
    unbatched = input.ndim == 4
    x = S.Unsqueeze.apply(input, axis=0) if unbatched else input
    C, O, Cg = x.shape[1], weight.shape[0], weight.shape[1]
    if groups < 1 or C != Cg * groups or O % groups:
        raise ValueError(f"conv3d: input of {C} channels and weight {tuple(weight.shape)} do not fit groups={groups}")
    for n, k, d, (lo, hi) in zip(x.shape[2:], weight.shape[2:], dilation, pad):
        if d * (k - 1) + 1 > n + lo + hi:
            raise ValueError(f"conv3d: kernel size {tuple(weight.shape[2:])} (dilation {dilation}) is larger than "
                             f"the padded input (input shape {tuple(input.shape)}, padding {pad})")
    out = Conv3d.apply(x, weight, bias, stride=stride, padding=pad, dilation=dilation, groups=groups)
    return S.Squeeze.apply(out, axis=0) if unbatched else out
