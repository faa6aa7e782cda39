"""PyTorch's ``F.conv_tbc``: a 1-D convolution on time-batch-channel inputs (fairseq's layout).

``input`` (T, B, C_in), ``weight`` (kw, C_in, C_out), ``bias`` (C_out,) and ``pad`` (time steps added,
as zeros, at both ends; a negative ``pad`` crops, as PyTorch's) give (T + 2 pad - kw + 1, B, C_out):
``out[t] = bias + sum_k padded[t + k] @ weight[k]``. As PyTorch's kernel (ConvolutionTBC.cpp), it is one
matrix product per kernel tap, here from distnn's differentiable ops, so the gradients to the input,
the weight and the bias follow from theirs.
"""
from __future__ import annotations

import numbers

from distnn.autograd.autocast_state import autocast_policy
from distnn.autograd.tensor import Tensor

from .padding import pad as _pad
from .shape import broadcast_to


@autocast_policy("lower")  # (on PyTorch's lower-precision list, as the other convolutions)
def conv_tbc(input, weight, bias, pad=0):
    """Time-batch-channel 1-D convolution (PyTorch's ``F.conv_tbc``; see the module docstring).

    PyTorch's refusals: a 3-D input and weight, a 1-D bias of C_out, matching channels and dtypes, an
    int ``pad``, a ``bias`` (it is required), and a non-negative output length.
    """
    if isinstance(pad, bool) or not isinstance(pad, numbers.Integral):
        raise TypeError(f"conv_tbc(): argument 'pad' (position 4) must be int, not {type(pad).__name__}")
    if not isinstance(bias, Tensor):
        raise TypeError(f"conv_tbc(): argument 'bias' (position 3) must be Tensor, not {type(bias).__name__}")
    if input.ndim != 3:
        raise RuntimeError("Input must have 3 dims: time, batch, in_channel")
    if weight.ndim != 3:
        raise RuntimeError("Weight tensor must have 3 dims: kernel_width, in_channels, out_channels.")
    if bias.ndim != 1:
        raise RuntimeError("Bias must be 1-D")
    if input.shape[2] != weight.shape[1]:
        raise RuntimeError("Input dim 2 (input channels) is not == dim 1 in the weight tensor")
    if weight.shape[2] != bias.shape[0]:
        raise RuntimeError("Bias size must equal dim 2 in the weight tensor (output channels).")
    if input.dtype != weight.dtype:
        raise RuntimeError(f"self and mat2 must have the same dtype, but got {input.dtype} and {weight.dtype}")
    kw, T = weight.shape[0], input.shape[0]
    out_len = T + 2 * int(pad) - kw + 1
    if out_len < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {out_len}: "
                           f"[{out_len}, {input.shape[1]}, {weight.shape[2]}]")
    x = _pad(input, (0, 0, 0, 0, int(pad), int(pad))) if pad else input
    if kw == 0:  # (no taps: PyTorch gives the bias at each of the T + 1 steps)
        return broadcast_to(bias, (out_len, input.shape[1], bias.shape[0]))
    out = bias
    for k in range(kw):  # (one (out_len * B, C_in) @ (C_in, C_out) product per tap, as PyTorch's loop)
        out = out + x[k:k + out_len] @ weight[k]
    return out
