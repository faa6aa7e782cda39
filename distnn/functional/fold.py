"""``unfold`` (im2col) and ``fold`` (col2im), PyTorch's ``F.unfold`` / ``F.fold``.

``unfold`` copies every (dilated) kh x kw block of the zero-padded input into a
column: (N, C, H, W) -> (N, C*kh*kw, L), the row index ``c*kh*kw + i*kw + j``
as PyTorch's, L the blocks in row-major order. It is conv2d's own im2col
(``conv._im2col``: one strided copy). ``fold`` is its adjoint: it adds every
column back over its block, (N, C*kh*kw, L) -> (N, C, H, W), overlaps summed:
one strided add per kernel offset. So each is the other's backward, and
neither backward reads an input (nor does PyTorch's). Unbatched inputs
((C, H, W) for unfold, (C*kh*kw, L) for fold) give unbatched results.
"""
from __future__ import annotations

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from .conv import _im2col, _out_size


def _col2im(xp, cols, C, H, W, geom):
    """The sum of the columns ``cols`` (N, C*kh*kw, Ho*Wo) over their blocks of a (N, C, H, W) plane."""
    kh, kw, (sh, sw), (ph, pw), (dh, dw), Ho, Wo = geom
    N = cols.shape[0]
    c6 = cols.reshape(N, C, kh, kw, Ho, Wo)
    out = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    hspan, wspan = sh * (Ho - 1) + 1, sw * (Wo - 1) + 1
    for i in range(kh):
        for j in range(kw):
            out[:, :, i * dh:i * dh + hspan:sh, j * dw:j * dw + wspan:sw] += c6[:, :, i, j]
    return xp.ascontiguousarray(out[:, :, ph:ph + H, pw:pw + W]) if ph or pw else out


def _unfold(xp, x, geom):
    kh, kw, stride, (ph, pw), dilation, Ho, Wo = geom
    return _im2col(xp, x, kh, kw, stride, ((ph, ph), (pw, pw)), dilation, Ho, Wo)


class Unfold(Function):
    """x (N, C, H, W) -> (N, C*kh*kw, Ho*Wo); ``geom`` is (kh, kw, stride, padding, dilation, Ho, Wo)."""

    reads = ((),)  # (backward is fold of the gradient: sizes only, as PyTorch's im2col backward)

    def forward(self, x, geom=None):
        self.geom, self.in_shape = geom, x.shape
        return _unfold(get_array_module(x), x, geom)

    def backward(self, g):
        _, C, H, W = self.in_shape
        return (_col2im(get_array_module(g), g, C, H, W, self.geom),)


class Fold(Function):
    """cols (N, C*kh*kw, Ho*Wo) -> (N, C, H, W), overlapping blocks summed; ``geom`` as Unfold's."""

    reads = ((),)  # (backward is unfold of the gradient: sizes only, as PyTorch's col2im backward)

    def forward(self, cols, size=None, geom=None):
        kh, kw = geom[:2]
        C, (H, W) = cols.shape[1] // (kh * kw), size
        self.geom = geom
        return _col2im(get_array_module(cols), cols, C, H, W, geom)

    def backward(self, g):
        return (_unfold(get_array_module(g), g, self.geom),)


def _pair(v, name, who):
    if isinstance(v, int):
        return (v, v)
    t = tuple(int(a) for a in v)
    if len(t) != 2:
        raise ValueError(f"{who}: {name} must be an int or a pair, got {tuple(v)}")
    return t


def _geometry(who, H, W, kernel_size, dilation, padding, stride):
    """(kh, kw, stride, padding, dilation, Ho, Wo) of the blocks of an (H, W) plane, checked as PyTorch's."""
    (kh, kw), d = _pair(kernel_size, "kernel_size", who), _pair(dilation, "dilation", who)
    p, s = _pair(padding, "padding", who), _pair(stride, "stride", who)
    if min(kh, kw) < 1 or min(d) < 1 or min(s) < 1 or min(p) < 0:
        raise ValueError(f"{who}: kernel_size, dilation and stride must be positive and padding non-negative, got "
                         f"kernel_size={(kh, kw)}, dilation={d}, padding={p}, stride={s}")
    Ho = _out_size(H, kh, s[0], p[0], p[0], d[0])
    Wo = _out_size(W, kw, s[1], p[1], p[1], d[1])
    if Ho < 1 or Wo < 1:
        raise ValueError(f"{who}: given spatial size {(H, W)}, kernel_size={(kh, kw)}, dilation={d}, padding={p} "
                         f"and stride={s}, the array of sliding blocks would be {(Ho, Wo)}: it must be at least 1 "
                         "in each dimension")
    return kh, kw, s, p, d, Ho, Wo


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding blocks of ``input`` (N, C, H, W) or (C, H, W) as columns: (N, C*kh*kw, L) or (C*kh*kw, L)."""
    if input.ndim not in (3, 4) or 0 in tuple(input.shape[-3:]):
        raise ValueError(f"unfold: expected a 3-D or 4-D (batch mode) input with non-zero sizes but the batch's, "
                         f"got shape {tuple(input.shape)}")
    geom = _geometry("unfold", input.shape[-2], input.shape[-1], kernel_size, dilation, padding, stride)
    if input.ndim == 3:
        return Unfold.apply(input.unsqueeze(0) if hasattr(input, "unsqueeze") else input[None], geom=geom)[0]
    return Unfold.apply(input, geom=geom)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Sum columns ``input`` (N, C*kh*kw, L) or (C*kh*kw, L) over their blocks of an ``output_size`` plane:
    (N, C, H, W) or (C, H, W). The adjoint of ``unfold``."""
    if input.ndim not in (2, 3) or 0 in tuple(input.shape[-2:]):
        raise ValueError(f"fold: expected a 2-D or 3-D (batch mode) input with non-zero sizes but the batch's, "
                         f"got shape {tuple(input.shape)}")
    H, W = _pair(output_size, "output_size", "fold")
    geom = _geometry("fold", H, W, kernel_size, dilation, padding, stride)
    kh, kw, Ho, Wo = geom[0], geom[1], geom[5], geom[6]
    rows, L = input.shape[-2:]
    if rows % (kh * kw):
        raise ValueError(f"fold: expected size of input's dimension {input.ndim - 2} to be divisible by the product "
                         f"of kernel_size {(kh, kw)}, got {rows} (input shape {tuple(input.shape)})")
    if L != Ho * Wo:
        raise ValueError(f"fold: given output_size={(H, W)}, kernel_size={(kh, kw)}, dilation={geom[4]}, "
                         f"padding={geom[3]} and stride={geom[2]}, the input's last dimension must be the number of "
                         f"sliding blocks {Ho} * {Wo} = {Ho * Wo}, got {L} (input shape {tuple(input.shape)})")
    if input.ndim == 2:
        return Fold.apply(input.unsqueeze(0) if hasattr(input, "unsqueeze") else input[None], size=(H, W),
                          geom=geom)[0]
    return Fold.apply(input, size=(H, W), geom=geom)
