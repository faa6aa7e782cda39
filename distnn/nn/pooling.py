"""Pooling modules: ``MaxPool1d/2d/3d``, ``MaxUnpool1d/2d/3d``, ``AvgPool1d/2d/3d``, ``LPPool1d/2d/3d``,
``AdaptiveAvgPool1d/2d/3d``, ``AdaptiveMaxPool1d/2d/3d`` (PyTorch's arguments)."""
from __future__ import annotations

from distnn.functional.conv import _pair, _single
from distnn.functional.adaptive_pooling import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d,
                                               adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d)
from distnn.functional.conv3d import _triple
from distnn.functional.lp_pooling import lp_pool1d, lp_pool2d, lp_pool3d
from distnn.functional.pooling import avg_pool1d, avg_pool2d, max_pool1d, max_pool2d
from distnn.functional.pooling3d import avg_pool3d, max_pool3d
from distnn.functional.unpooling import max_unpool1d, max_unpool2d, max_unpool3d

from .module import Module


def _named(module, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as e:
        raise type(e)(f"{module.where()}: {e}") from None


class _MaxPoolNd(Module):
    """What MaxPool1d, MaxPool2d and MaxPool3d share (as PyTorch's ``_MaxPoolNd``); ``_pool`` is the functional
    op."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride if stride is not None else kernel_size, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def forward(self, x):
        return _named(self, type(self)._pool, x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                      self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool2d(_MaxPoolNd):
    """Max over kh x kw windows; ``stride`` defaults to ``kernel_size``; padding counts as -inf.

    With ``return_indices=True``, ``forward`` returns ``(output, indices)``: int64 flat indices
    ``h * W + w`` of the chosen inputs in each (N, C) plane, as PyTorch (``MaxUnpool2d`` takes them).
    """

    _pool = staticmethod(max_pool2d)


class _MaxUnpoolNd(Module):
    """What MaxUnpool1d, MaxUnpool2d and MaxUnpool3d share: ``forward(input, indices, output_size=None)``;
    ``_unpool`` is the functional op, ``_tuple`` makes the tuples PyTorch's modules keep (and show)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        as_tuple = type(self)._tuple
        self.kernel_size = as_tuple(kernel_size, "kernel_size")
        self.stride = as_tuple(stride if stride is not None else kernel_size, "stride")
        self.padding = as_tuple(padding, "padding")

    def forward(self, input, indices, output_size=None):
        return _named(self, type(self)._unpool, input, indices, self.kernel_size, self.stride, self.padding,
                      output_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool2d(_MaxUnpoolNd):
    """The partial inverse of ``MaxPool2d``: ``forward(input, indices, output_size=None)`` puts each value
    at its index (from ``MaxPool2d(..., return_indices=True)``) and zeros elsewhere.

    The output is (N, C, H_out, W_out) with H_out = (H - 1) * stride - 2 * padding + kernel_size, or
    ``output_size`` ((H, W) or (N, C, H, W), within one stride of that), as PyTorch.
    """

    _unpool = staticmethod(max_unpool2d)
    _tuple = staticmethod(_pair)  # (pairs, as PyTorch's MaxUnpool2d keeps them)


class MaxUnpool1d(_MaxUnpoolNd):
    """The partial inverse of ``MaxPool1d``: (N, C, L) or (C, L) values at their indices along L_out =
    (L - 1) * stride - 2 * padding + kernel_size (or ``output_size``), zeros elsewhere, as PyTorch."""

    _unpool = staticmethod(max_unpool1d)
    _tuple = staticmethod(lambda v, name: (_single(v, name, "MaxUnpool1d"),))


class MaxUnpool3d(_MaxUnpoolNd):
    """The partial inverse of ``MaxPool3d``: (N, C, D, H, W) or (C, D, H, W) values at their flat indices in
    each (D_out, H_out, W_out) volume (sizes as MaxUnpool2d's), zeros elsewhere, as PyTorch."""

    _unpool = staticmethod(max_unpool3d)
    _tuple = staticmethod(lambda v, name: _triple(v, name, "MaxUnpool3d"))


class _LPPoolNd(Module):
    """What LPPool1d, LPPool2d and LPPool3d share (PyTorch's ``_LPPoolNd``): ``_pool`` is the functional op."""

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode: bool = False):
        super().__init__()
        self.norm_type, self.kernel_size, self.stride, self.ceil_mode = norm_type, kernel_size, stride, ceil_mode

    def forward(self, x):
        return _named(self, type(self)._pool, x, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)

    def extra_repr(self):
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"ceil_mode={self.ceil_mode}")


class LPPool1d(_LPPoolNd):
    """Power-average pooling of (N, C, L) or (C, L): per window ``(sum x ** p) ** (1 / p)``, ``p = norm_type``
    (inf: the max of ``|x|``); ``stride`` defaults to ``kernel_size``, as PyTorch's."""

    _pool = staticmethod(lp_pool1d)


class LPPool2d(_LPPoolNd):
    """Power-average pooling of (N, C, H, W) or (C, H, W) over kh x kw windows (see :class:`LPPool1d`)."""

    _pool = staticmethod(lp_pool2d)


class LPPool3d(_LPPoolNd):
    """Power-average pooling of (N, C, D, H, W) or (C, D, H, W) over kd x kh x kw windows (see
    :class:`LPPool1d`)."""

    _pool = staticmethod(lp_pool3d)


class AvgPool2d(Module):
    """Mean over kh x kw windows; zero padding is counted when ``count_include_pad`` (default, as PyTorch)."""

    _pool = staticmethod(avg_pool2d)

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride if stride is not None else kernel_size, padding
        self.ceil_mode, self.count_include_pad, self.divisor_override = ceil_mode, count_include_pad, divisor_override

    def forward(self, x):
        return _named(self, type(self)._pool, x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                      self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AdaptiveAvgPoolNd(Module):
    """What the AdaptiveAvgPool modules share (as PyTorch's); ``_pool`` is the functional op."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return _named(self, type(self)._pool, x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Average-pool (N, C, H, W) to ``output_size`` (int or pair) whatever the input size."""

    _pool = staticmethod(adaptive_avg_pool2d)


class _AdaptiveMaxPoolNd(Module):
    """What the AdaptiveMaxPool modules share (as PyTorch's); ``_pool`` is the functional op."""

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, x):
        return _named(self, type(self)._pool, x, self.output_size, self.return_indices)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """Max-pool (N, C, H, W) to ``output_size`` (int or pair; None keeps that size) whatever the input size;
    with ``return_indices=True``, ``forward`` returns ``(output, indices)`` as PyTorch."""

    _pool = staticmethod(adaptive_max_pool2d)


class MaxPool1d(_MaxPoolNd):
    """Max over windows of (N, C, L) or (C, L); ``stride`` defaults to ``kernel_size``; padding counts as -inf."""

    _pool = staticmethod(max_pool1d)


class AvgPool1d(Module):
    """Mean over windows of (N, C, L) or (C, L); zero padding counted when ``count_include_pad`` (default)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True):
        super().__init__()
        # 1-tuples, as PyTorch's AvgPool1d keeps them
        self.kernel_size = (_single(kernel_size, "kernel_size", "AvgPool1d"),)
        self.stride = (_single(stride if stride is not None else kernel_size, "stride", "AvgPool1d"),)
        self.padding = (_single(padding, "padding", "AvgPool1d"),)
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, x):
        return _named(self, avg_pool1d, x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                      self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """Average-pool (N, C, L) or (C, L) to ``output_size`` (an int) whatever L."""

    _pool = staticmethod(adaptive_avg_pool1d)


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """Max-pool (N, C, L) or (C, L) to ``output_size`` (an int) whatever L; with ``return_indices=True``,
    ``forward`` returns ``(output, indices)`` (each maximum's index along L) as PyTorch."""

    _pool = staticmethod(adaptive_max_pool1d)


class MaxPool3d(_MaxPoolNd):
    """Max over kd x kh x kw windows of (N, C, D, H, W) or (C, D, H, W); ``stride`` defaults to ``kernel_size``;
    padding counts as -inf. With ``return_indices=True``, ``forward`` returns ``(output, indices)``: the flat
    indices ``d * H * W + h * W + w`` of the chosen inputs in each (N, C) volume, as PyTorch."""

    _pool = staticmethod(max_pool3d)


class AvgPool3d(AvgPool2d):
    """Mean over kd x kh x kw windows of (N, C, D, H, W) or (C, D, H, W); zero padding counted when
    ``count_include_pad`` (default, as PyTorch)."""

    _pool = staticmethod(avg_pool3d)


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """Average-pool (N, C, D, H, W) or (C, D, H, W) to ``output_size`` (int or triple; None keeps that size)
    whatever the input size."""

    _pool = staticmethod(adaptive_avg_pool3d)


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """Max-pool (N, C, D, H, W) or (C, D, H, W) to ``output_size`` (int or triple; None keeps that size)
    whatever the input size; with ``return_indices=True``, ``forward`` returns ``(output, indices)`` as
    PyTorch."""

    _pool = staticmethod(adaptive_max_pool3d)
