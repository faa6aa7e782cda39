"""``Conv1d``, ``Conv2d``, ``Conv3d``, ``ConvTranspose1d``, ``ConvTranspose2d`` and ``ConvTranspose3d`` with
PyTorch's arguments, parameter shapes and default initialization."""
from __future__ import annotations

import re

import numpy as np

from distnn.backend import default_dtype
from distnn.functional import shape as S
from distnn.functional.conv import _pair, _resolve_padding, _single, check_conv_shapes, conv1d, conv2d
from distnn.functional.conv3d import _triple, conv3d, resolve_padding3d
from distnn.functional.conv_transpose import conv_transpose1d, conv_transpose2d, transposed_output_padding
from distnn.functional.conv_transpose3d import conv_transpose3d

from .linear import _WeightAndBias, _finish
from .module import Parameter


_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


_FUNCTION_PREFIX = re.compile(r"^(?:conv[123]d|conv_transpose[123]d|pad): ")


def _naming(layer, e):
    """A functional's ValueError re-raised naming the layer: its own prefix ("conv1d: ") replaced by the layer's,
    so the message has one ("Conv1d '0': padding must be ..."), not two."""
    msg = str(e)
    if msg.startswith(layer.where()):
        return ValueError(msg)
    return ValueError(f"{layer.where()}: {_FUNCTION_PREFIX.sub('', msg, count=1)}")


def _mode_padded(x, pad, padding_mode):
    """PyTorch's padding_mode other than zeros: the input padded by ``pad`` (((top, bottom), (left, right))) in
    that mode first, then convolved without padding. Returns the input and the padding left to the conv."""
    if padding_mode == "zeros":
        return x, pad
    (pt, pb), (pl, pr) = pad
    flat = (pl, pr) if x.ndim == 3 else (pl, pr, pt, pb)  # (conv1d's inputs have no height)
    return S.pad(x, flat, mode=padding_mode), ((0, 0), (0, 0))


def _check_groups(name, in_channels, out_channels, groups):
    if groups < 1 or in_channels % groups or out_channels % groups:
        raise ValueError(f"{name}: in_channels={in_channels} and out_channels={out_channels} must both be "
                         f"divisible by groups={groups}")


class _ConvNd(_WeightAndBias):
    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                 padding_mode, device, dtype, generator):
        super().__init__()
        _check_groups(type(self).__name__, in_channels, out_channels, groups)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{type(self).__name__}: padding_mode must be one of {_PADDING_MODES}, got "
                             f"{padding_mode!r}")
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise ValueError(f"{type(self).__name__}: padding string must be 'same' or 'valid', got {padding!r}")
        if padding == "same" and any(s != 1 for s in stride):
            raise ValueError(f"{type(self).__name__}: padding='same' is not supported for strided convolutions")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        self.groups, self.padding_mode = int(groups), padding_mode
        shape = (self.out_channels, self.in_channels // self.groups) + tuple(kernel_size)
        self._build(shape, bias, dtype, device, generator)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding not in (0, (0,), (0, 0), (0, 0, 0)):
            s += f", padding={self.padding}"
        if self.dilation not in ((1,), (1, 1), (1, 1, 1)):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"  # (unquoted, as PyTorch's)
        return s


class Conv2d(_ConvNd):
    """2-D convolution: input (N, C_in, H, W) -> (N, C_out, H_out, W_out); weight (C_out, C_in/groups, kh, kw)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None,
                 generator=None):
        padding = padding if isinstance(padding, str) else _pair(padding, "padding")
        super().__init__(in_channels, out_channels, _pair(kernel_size, "kernel_size"), _pair(stride, "stride"),
                         padding, _pair(dilation, "dilation"), groups, bias, padding_mode, device, dtype, generator)

    def forward(self, x):
        shape = tuple(x.shape)
        unbatched = len(shape) == 3
        if len(shape) not in (3, 4):
            raise ValueError(f"{self.where()}: expected a 4-D input (N, C, H, W) or 3-D (C, H, W), got shape {shape}")
        if unbatched:  # Unsqueeze.apply, not x.unsqueeze: x may be a raw array (a constant input)
            x = S.Unsqueeze.apply(x, axis=0)
        pad = _resolve_padding(self.padding, self.kernel_size, self.dilation, self.stride, self.where())
        try:
            x, pad = _mode_padded(x, pad, self.padding_mode)
        except ValueError as e:  # (reflect: padding as large as the input)
            raise _naming(self, e) from None
        weight = self.weight  # read once: a parametrized weight (spectral_norm) is computed at each read
        check_conv_shapes(tuple(x.shape), tuple(weight.shape), self.stride, pad, self.dilation, self.groups,
                          who=self.where())
        from distnn.functional.conv import Conv2d as _Conv2dFn

        out = _Conv2dFn.apply(x, weight, self.bias, stride=self.stride, padding=pad, dilation=self.dilation,
                              groups=self.groups)
        return out.squeeze(0) if unbatched else out


class Conv1d(_ConvNd):
    """1-D convolution: input (N, C_in, L) -> (N, C_out, L_out); weight (C_out, C_in/groups, k)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None,
                 generator=None):
        def one(v, name):
            return (_single(v, name, type(self).__name__),)

        super().__init__(in_channels, out_channels, one(kernel_size, "kernel_size"), one(stride, "stride"),
                         padding if isinstance(padding, str) else one(padding, "padding"), one(dilation, "dilation"),
                         groups, bias, padding_mode, device, dtype, generator)

    def forward(self, x):
        shape = tuple(x.shape)
        if len(shape) not in (2, 3):
            raise ValueError(f"{self.where()}: expected a 3-D input (N, C, L) or 2-D (C, L), got shape {shape}")
        unbatched = len(shape) == 2
        if unbatched:  # Unsqueeze.apply, not x.unsqueeze: x may be a raw array (a constant input)
            x = S.Unsqueeze.apply(x, axis=0)
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self.where()}: expected {self.in_channels} input channels (dim 1), got input of shape {shape}"
            )
        padding = self.padding if isinstance(self.padding, str) else self.padding[0]
        try:
            if self.padding_mode != "zeros":
                pad = _resolve_padding(padding if isinstance(padding, str) else (0, padding),
                                       (1,) + self.kernel_size, (1,) + self.dilation, (1,) + self.stride, "conv1d")
                x, _ = _mode_padded(x, pad, self.padding_mode)
                padding = 0
            out = conv1d(x, self.weight, self.bias, self.stride[0], padding, self.dilation[0], self.groups)
        except ValueError as e:  # re-raise naming the layer
            raise _naming(self, e) from None
        return out.squeeze(0) if unbatched else out


class Conv3d(_ConvNd):
    """3-D convolution: input (N, C_in, D, H, W) -> (N, C_out, D_out, H_out, W_out); weight
    (C_out, C_in/groups, kd, kh, kw)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None,
                 generator=None):
        padding = padding if isinstance(padding, str) else _triple(padding, "padding")
        super().__init__(in_channels, out_channels, _triple(kernel_size, "kernel_size"), _triple(stride, "stride"),
                         padding, _triple(dilation, "dilation"), groups, bias, padding_mode, device, dtype, generator)

    def forward(self, x):
        shape = tuple(x.shape)
        if len(shape) not in (4, 5):
            raise ValueError(f"{self.where()}: expected a 5-D input (N, C, D, H, W) or 4-D (C, D, H, W), got shape "
                             f"{shape}")
        if shape[-4] != self.in_channels:
            raise ValueError(f"{self.where()}: expected {self.in_channels} input channels, got input of shape {shape}")
        padding = self.padding
        try:
            if self.padding_mode != "zeros":
                pad = resolve_padding3d(padding, self.kernel_size, self.dilation, self.stride, self.where())
                x = S.pad(x, tuple(v for lo_hi in reversed(pad) for v in lo_hi), mode=self.padding_mode)
                padding = 0
            return conv3d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)
        except ValueError as e:  # re-raise naming the layer
            raise _naming(self, e) from None


class _ConvTransposeNd(_WeightAndBias):
    """weight (C_in, C_out/groups, *kernel_size), bias (C_out,); initialized as PyTorch's (kaiming_uniform_(a=sqrt(5))
    on the weight, whose fan-in is then C_out/groups * prod(kernel_size), and U(+-1/sqrt(fan_in)) on the bias)."""

    _nd = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
                 dilation, padding_mode, device, dtype, generator):
        super().__init__()
        name = type(self).__name__
        _check_groups(name, in_channels, out_channels, groups)
        if padding_mode != "zeros":
            raise ValueError(f'{name}: only "zeros" padding mode is supported, got {padding_mode!r}')
        def tup(v, what):
            if self._nd == 1:
                return (_single(v, what, name),)
            return _pair(v, what) if self._nd == 2 else _triple(v, what, name)

        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size, self.stride = tup(kernel_size, "kernel_size"), tup(stride, "stride")
        self.padding, self.output_padding = tup(padding, "padding"), tup(output_padding, "output_padding")
        self.dilation, self.padding_mode = tup(dilation, "dilation"), padding_mode
        self._build((self.in_channels, self.out_channels // self.groups) + self.kernel_size, bias, dtype, device,
                    generator)

    def _build(self, weight_shape, bias: bool, dtype, device, generator) -> None:
        # (a lazy layer's mixin builds placeholders in its place)
        dtype = np.dtype(dtype or default_dtype())
        self.weight = Parameter(np.empty(weight_shape, dtype=dtype))
        if bias:  # (C_out,): not the weight's first dimension, so not _WeightAndBias._build's
            self.bias = Parameter(np.empty(self.out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)
        _finish(self, device)

    def forward(self, input, output_size=None):
        """``output_size`` (optional): the output's spatial size (or the whole shape), picking the
        output_padding (in place of the layer's) that gives it, as PyTorch."""
        shape = tuple(input.shape)
        if len(shape) not in (self._nd + 1, self._nd + 2):
            raise ValueError(f"{self.where()}: expected a {self._nd + 2}-D input (batched) or a {self._nd + 1}-D "
                             f"one (unbatched), got shape {shape}")
        try:
            op = self.output_padding if output_size is None else transposed_output_padding(
                shape, output_size, self.stride, self.padding, self.kernel_size, self.dilation, self.where())
            fn = {1: conv_transpose1d, 2: conv_transpose2d, 3: conv_transpose3d}[self._nd]
            return fn(input, self.weight, self.bias, self.stride, self.padding, op, self.groups, self.dilation)
        except ValueError as e:
            raise _naming(self, e) from None

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if any(self.padding):
            s += f", padding={self.padding}"
        if any(d != 1 for d in self.dilation):  # (before output_padding, as PyTorch's)
            s += f", dilation={self.dilation}"
        if any(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-D convolution: input (N, C_in, H, W) -> (N, C_out, H_out, W_out) with
    H_out = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1; weight
    (C_in, C_out/groups, kh, kw). ``forward(input, output_size=None)`` as PyTorch's."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None, dtype=None,
                 generator=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
                         dilation, padding_mode, device, dtype, generator)


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-D convolution: input (N, C_in, L) -> (N, C_out, L_out); weight (C_in, C_out/groups, k)."""

    _nd = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None, dtype=None,
                 generator=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
                         dilation, padding_mode, device, dtype, generator)


class ConvTranspose3d(_ConvTransposeNd):
    """Transposed 3-D convolution: input (N, C_in, D, H, W) -> (N, C_out, D_out, H_out, W_out); weight
    (C_in, C_out/groups, kd, kh, kw). ``forward(input, output_size=None)`` as PyTorch's."""

    _nd = 3

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None, dtype=None,
                 generator=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
                         dilation, padding_mode, device, dtype, generator)


__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "conv2d"]
