"""Transposed 2-D convolution as one Function (GEMM + col2im), and conv_transpose1d on top of it.

A transposed convolution is the input gradient of a convolution with the same arguments, so forward
and backward swap the roles of conv2d's (conv.py):

    forward   cols[n] = W^T[O*kh*kw, C] @ x[n]      then col2im: each kernel offset's plane added, with
                                                   the stride, into the (uncropped) output; then
                                                   ``padding`` cropped off each side
    backward  gx[n]   = W[C, O*kh*kw] @ im2col(g)[n]     (g padded back by ``padding``)
              gW      = sum_n x[n] @ im2col(g)[n]^T

Shapes as PyTorch: x (N, C_in, H, W), weight (C_in, C_out/groups, kh, kw), bias (C_out,), output
H_out = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1. ``output_padding``
adds cells on the high side only (where no input reaches them but a bias does).
"""
from __future__ import annotations

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from . import shape as S
from ._dtype_checks import check_conv
from ._into import destinations, sum_into
from .conv import _im2col, _pair, _single


class ConvTranspose2d(Function):
    """x (N, C, H, W), weight (C, O/groups, kh, kw), bias (O,) -> (N, O, Ho, Wo).

    A 3-D weight (C, O/groups, k) is a kernel of height 1 (conv_transpose1d's), as for Conv2d.
    """
    autocast = "lower"  # under distnn.autocast: the matmul family runs in the lower dtype

    # x's gradient reads the weight, the weight's x; PyTorch's convolution saves the input and the weight
    # whichever needs a gradient, never the bias: so do we
    reads = ((0, 1), (0, 1), (0, 1))

    def forward(self, x, weight, bias=None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0), dilation=(1, 1),
                groups=1):
        check_conv(x, weight, bias, check_bias=False)  # (PyTorch's 1-D/2-D transposed convs take any bias dtype)
        xp = get_array_module(x)
        N, C, H, W = x.shape
        Cw, Og, kh, kw = weight.shape if weight.ndim == 4 else weight.shape[:2] + (1,) + weight.shape[2:]
        G = groups
        O = Og * G
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        Hf = (H - 1) * sh + dh * (kh - 1) + 1 + output_padding[0]  # before cropping the padding
        Wf = (W - 1) * sw + dw * (kw - 1) + 1 + output_padding[1]
        K = Og * kh * kw
        w2 = weight.reshape(G, C // G, K)
        x4 = x.reshape(N, G, C // G, H * W)
        cols = xp.matmul(w2.swapaxes(-1, -2), x4).reshape(N, O, kh, kw, H, W)  # (N, G, K, HW): channel-major
        full = xp.zeros((N, O, Hf, Wf), dtype=cols.dtype)
        hspan, wspan = sh * (H - 1) + 1, sw * (W - 1) + 1
        for i in range(kh):
            for j in range(kw):
                full[:, :, i * dh:i * dh + hspan:sh, j * dw:j * dw + wspan:sw] += cols[:, :, i, j]
        out = full[:, :, ph:Hf - ph, pw:Wf - pw]
        if ph or pw:
            out = xp.ascontiguousarray(out)
        if bias is not None:
            out += bias[:, None, None]
        self.x4 = x4 if self.needs_input_grad[1] else None
        self.w2 = w2 if self.needs_input_grad[0] else None
        self.geom = (N, C, H, W, O, kh, kw, stride, padding, dilation, G)
        self.weight_shape, self.has_bias = weight.shape, bias is not None
        return out

    def backward(self, g):
        xp = get_array_module(g)
        N, C, H, W, O, kh, kw, stride, (ph, pw), dilation, G = self.geom
        need = self.needs_input_grad
        K = (O // G) * kh * kw
        # gcols[n, o*kh*kw + i*kw + j, h*W + w] = g[n, o, h*sh + i*dh - ph, w*sw + j*dw - pw] (0 outside g)
        gcols = _im2col(xp, g, kh, kw, stride, ((ph, ph), (pw, pw)), dilation, H, W).reshape(N, G, K, H * W)
        gx = gw = gb = None
        dest = destinations(self, 3)
        if need[0]:
            gx = xp.matmul(self.w2, gcols).reshape(N, C, H, W)
        if need[1]:
            gw = xp.matmul(self.x4, gcols.swapaxes(-1, -2)).sum(axis=0).reshape(self.weight_shape)
        if self.has_bias and len(need) > 2 and need[2]:
            gb = sum_into(g, (0, 2, 3), dest[2])
        return gx, gw, gb


def _check(xshape, wshape, stride, padding, output_padding, dilation, groups, who):
    """PyTorch's refusals, as ValueErrors naming ``who``; returns the output's spatial size."""
    xs, ws = {1: ("L", "k"), 2: ("H, W", "kh, kw"), 3: ("D, H, W", "kd, kh, kw")}[len(stride)]  # (1-D: in the caller's terms, not conv2d's)
    if len(xshape) != len(stride) + 2 or len(wshape) != len(stride) + 2:
        raise ValueError(f"{who}: expected an input (N, C_in, {xs}) and a weight (C_in, C_out/groups, {ws}), got "
                         f"shapes {tuple(xshape)} and {tuple(wshape)}")
    if groups < 1:
        raise ValueError(f"{who}: groups must be positive, got {groups}")
    if xshape[1] != wshape[0] or wshape[0] % groups:
        raise ValueError(f"{who}: input has {xshape[1]} channels but the weight {tuple(wshape)} expects {wshape[0]} "
                         f"(divisible by groups={groups})")
    if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0 or min(output_padding) < 0:
        raise ValueError(f"{who}: stride and dilation must be >= 1, padding and output_padding >= 0, got "
                         f"stride={stride}, dilation={dilation}, padding={padding}, output_padding={output_padding}")
    for op, s, d in zip(output_padding, stride, dilation):
        if op >= s and op >= d:
            raise ValueError(f"{who}: output padding must be smaller than either stride or dilation, got "
                             f"output_padding={output_padding}, stride={stride}, dilation={dilation}")
    size = tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1
                 for n, s, p, d, k, op in zip(xshape[2:], stride, padding, dilation, wshape[2:], output_padding))
    if min(size) < 0:  # (0 is an empty output, as PyTorch's)
        raise ValueError(f"{who}: the output size {size} is negative (input shape {tuple(xshape)}, weight "
                         f"{tuple(wshape)}, stride={stride}, padding={padding}, dilation={dilation})")
    return size


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 2-D convolution ("deconvolution") with PyTorch's arguments (note: ``groups`` before
    ``dilation``); input (N, C_in, H, W) or (C_in, H, W), weight (C_in, C_out/groups, kh, kw)."""
    stride, padding, dilation = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    output_padding = _pair(output_padding, "output_padding")
    if input.ndim == 3:  # unbatched: a batch of one (Unsqueeze.apply: the input may be a raw array)
        return conv_transpose2d(S.Unsqueeze.apply(input, axis=0), weight, bias, stride, padding, output_padding,
                                groups, dilation).squeeze(0)
    _check(tuple(input.shape), tuple(weight.shape), stride, padding, output_padding, dilation, groups,
           "conv_transpose2d")
    return ConvTranspose2d.apply(input, weight, bias, stride=stride, padding=padding, output_padding=output_padding,
                                 dilation=dilation, groups=groups)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 1-D convolution; input (N, C_in, L) or (C_in, L), weight (C_in, C_out/groups, k). Runs as
    conv_transpose2d with height 1."""
    if input.ndim == 2:
        return conv_transpose1d(S.Unsqueeze.apply(input, axis=0), weight, bias, stride, padding, output_padding,
                                groups, dilation).squeeze(0)
    if input.ndim != 3 or weight.ndim != 3:
        raise ValueError(f"conv_transpose1d: expected input (N, C_in, L) and weight (C_in, C_out/groups, k), got "
                         f"{tuple(input.shape)} and {tuple(weight.shape)}")
    s, p, d = (_single(v, name, "conv_transpose1d") for v, name in
               ((stride, "stride"), (padding, "padding"), (dilation, "dilation")))
    op = _single(output_padding, "output_padding", "conv_transpose1d")
    _check(tuple(input.shape), tuple(weight.shape), (s,), (p,), (op,), (d,), groups, "conv_transpose1d")
    out = ConvTranspose2d.apply(S.Unsqueeze.apply(input, axis=2), weight, bias, stride=(1, s), padding=(0, p),
                                output_padding=(0, op), dilation=(1, d), groups=groups)
    return out.squeeze(2)


def transposed_output_padding(xshape, output_size, stride, padding, kernel, dilation, who):
    """PyTorch's ``output_size`` argument of ConvTranspose's forward: the output_padding giving that size
    (``output_size`` holds the spatial sizes, or also the leading (N, C) / (C,) of ``xshape``)."""
    nd = len(kernel)
    size = [int(s) for s in output_size]
    lead = len(xshape) - nd
    if len(size) == len(xshape):
        size = size[lead:]
    if len(size) != nd:
        raise ValueError(f"{who}: for a {len(xshape)}-D input, output_size must have {nd} or {len(xshape)} elements "
                         f"(got {len(size)})")
    lo = [(xshape[lead + d] - 1) * stride[d] - 2 * padding[d] + dilation[d] * (kernel[d] - 1) + 1 for d in range(nd)]
    hi = [lo[d] + stride[d] - 1 for d in range(nd)]
    if any(not lo[d] <= size[d] <= hi[d] for d in range(nd)):
        raise ValueError(f"{who}: requested an output size of {size}, but valid sizes range from {lo} to {hi} (for "
                         f"an input of {list(xshape[lead:])})")
    return tuple(size[d] - lo[d] for d in range(nd))


__all__ = ["conv_transpose1d", "conv_transpose2d"]
