"""Transposed 3-D convolution as one Function: conv_transpose2d's GEMM + col2im (conv_transpose.py) one
dimension up, with conv3d's im2col (conv3d.py) for the backward.

    forward   cols[n] = W^T[O*kd*kh*kw, C] @ x[n]    then col2im: each kernel offset's volume added, with
                                                   the stride, into the (uncropped) output; then
                                                   ``padding`` cropped off each side
    backward  gx[n]   = W[C, O*kd*kh*kw] @ im2col(g)[n]     (g padded back by ``padding``)
              gW      = sum_n x[n] @ im2col(g)[n]^T

Shapes as PyTorch: x (N, C_in, D, H, W), weight (C_in, C_out/groups, kd, kh, kw), bias (C_out,), output
D_out = (D - 1) * stride - 2 * padding + dilation * (kd - 1) + output_padding + 1 (and so for H, W).
"""
from __future__ import annotations

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from . import shape as S
from ._dtype_checks import check_conv
from ._into import destinations, sum_into
from .conv3d import _im2col3d, _triple
from .conv_transpose import _check


class ConvTranspose3d(Function):
    """x (N, C, D, H, W), weight (C, O/groups, kd, kh, kw), bias (O,) -> (N, O, Do, Ho, Wo)."""
    autocast = "lower"  # under distnn.autocast: the matmul family runs in the lower dtype

    # (as conv_transpose2d's: PyTorch's convolution saves the input and the weight, never the bias)
    reads = ((0, 1), (0, 1), (0, 1))

    def forward(self, x, weight, bias=None, stride=(1, 1, 1), padding=(0, 0, 0), output_padding=(0, 0, 0),
                dilation=(1, 1, 1), groups=1):
        check_conv(x, weight, bias, bias_first=False)  # (PyTorch's 3-D transposed conv checks the weight first)
        xp = get_array_module(x)
        N, C = x.shape[:2]
        spatial = tuple(x.shape[2:])
        k = tuple(weight.shape[2:])
        G, Og = groups, weight.shape[1]
        O, L = Og * G, spatial[0] * spatial[1] * spatial[2]
        full = tuple((n - 1) * s + d * (kk - 1) + 1 + op  # before cropping the padding
                     for n, s, d, kk, op in zip(spatial, stride, dilation, k, output_padding))
        K = Og * k[0] * k[1] * k[2]
        w2 = weight.reshape(G, C // G, K)
        x4 = x.reshape(N, G, C // G, L)
        cols = xp.matmul(w2.swapaxes(-1, -2), x4).reshape((N, O) + k + spatial)  # (N, G, K, L): channel-major
        out_full = xp.zeros((N, O) + full, dtype=cols.dtype)
        spans = tuple(s * (n - 1) + 1 for s, n in zip(stride, spatial))
        for a in range(k[0]):
            for b in range(k[1]):
                for c in range(k[2]):
                    o = (a * dilation[0], b * dilation[1], c * dilation[2])
                    out_full[:, :, o[0]:o[0] + spans[0]:stride[0], o[1]:o[1] + spans[1]:stride[1],
                             o[2]:o[2] + spans[2]:stride[2]] += cols[:, :, a, b, c]
        p = padding
        out = out_full[:, :, p[0]:full[0] - p[0], p[1]:full[1] - p[1], p[2]:full[2] - p[2]]
        if any(p):
            out = xp.ascontiguousarray(out)
        if bias is not None:
            out += bias[:, None, None, None]
        self.x4 = x4 if self.needs_input_grad[1] else None
        self.w2 = w2 if self.needs_input_grad[0] else None
        self.geom = (x.shape, weight.shape, stride, padding, dilation, G)
        self.has_bias = bias is not None
        return out

    def backward(self, g):
        xp = get_array_module(g)
        xshape, wshape, stride, padding, dilation, G = self.geom
        N, C = xshape[:2]
        spatial, k = tuple(xshape[2:]), tuple(wshape[2:])
        K, L = wshape[1] * k[0] * k[1] * k[2], spatial[0] * spatial[1] * spatial[2]
        need = self.needs_input_grad
        # gcols[n, o*kvol + (a, b, c), (d, h, w)] = g[n, o, d*sd + a*dd - pd, ...] (0 outside g): conv3d's columns
        # of g, one window per input position
        gcols = _im2col3d(xp, g, k, stride, tuple((q, q) for q in padding), dilation, spatial).reshape(N, G, K, L)
        gx = gw = gb = None
        dest = destinations(self, 3)
        if need[0]:
            gx = xp.matmul(self.w2, gcols).reshape(xshape)
        if need[1]:
            gw = xp.matmul(self.x4, gcols.swapaxes(-1, -2)).sum(axis=0).reshape(wshape)
        if self.has_bias and len(need) > 2 and need[2]:
            gb = sum_into(g, (0, 2, 3, 4), dest[2])
        return gx, gw, gb


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 3-D convolution with PyTorch's arguments (``groups`` before ``dilation``); input
    (N, C_in, D, H, W) or (C_in, D, H, W), weight (C_in, C_out/groups, kd, kh, kw)."""
    who = "conv_transpose3d"
    stride, padding, dilation = (_triple(v, name, who) for v, name in
                                 ((stride, "stride"), (padding, "padding"), (dilation, "dilation")))
    output_padding = _triple(output_padding, "output_padding", who)
    if input.ndim == 4:  # unbatched: a batch of one (Unsqueeze.apply: the input may be a raw array)
        return conv_transpose3d(S.Unsqueeze.apply(input, axis=0), weight, bias, stride, padding, output_padding,
                                groups, dilation).squeeze(0)
    _check(tuple(input.shape), tuple(weight.shape), stride, padding, output_padding, dilation, groups, who)
    return ConvTranspose3d.apply(input, weight, bias, stride=stride, padding=padding, output_padding=output_padding,
                                 dilation=dilation, groups=groups)


__all__ = ["conv_transpose3d"]
