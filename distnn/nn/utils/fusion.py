"""Folding an eval-mode batch norm into the convolution or linear layer before it, as ``torch.nn.utils.fusion``.

``bn(conv(x)) = conv'(x)`` with ``W' = W * gamma / sqrt(var + eps)`` (per output channel; per input channel,
dimension 1, for a transposed convolution) and ``b' = (b - mean) * gamma / sqrt(var + eps) + beta``: one layer
instead of two at inference. Only valid in eval mode (the running statistics are the ones applied).
"""
from __future__ import annotations

import copy

import numpy as np

from distnn.autograd.tensor import Tensor

from ..module import Parameter

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights"]


def _arr(t):
    return t.data if isinstance(t, Tensor) else t


def _requires_grad(t) -> bool:
    return bool(getattr(t, "requires_grad", False))


def fuse_conv_bn_eval(conv, bn, transpose: bool = False):
    """A copy of the eval-mode ``conv`` with the eval-mode ``bn`` after it folded into its weight and bias."""
    assert not (conv.training or bn.training), "Fusion only for eval!"
    fused = copy.deepcopy(conv)
    assert bn.running_mean is not None and bn.running_var is not None
    fused.weight, fused.bias = fuse_conv_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                    bn.eps, bn.weight, bn.bias, transpose)
    return fused


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose: bool = False):
    """``(weight, bias)`` Parameters of the convolution with the batch norm folded in (PyTorch's formula and
    dtypes: each keeps the dtype of the convolution's weight or bias)."""
    w_dtype = _arr(conv_w).dtype
    b_dtype = _arr(conv_b).dtype if conv_b is not None else w_dtype
    rm = _arr(bn_rm)
    b = _arr(conv_b) if conv_b is not None else np.zeros_like(rm)
    gamma = _arr(bn_w) if bn_w is not None else np.ones_like(rm)
    beta = _arr(bn_b) if bn_b is not None else np.zeros_like(rm)
    rsqrt = 1.0 / np.sqrt(_arr(bn_rv) + bn_eps)
    w = _arr(conv_w)
    shape = ([1, -1] if transpose else [-1, 1]) + [1] * (w.ndim - 2)
    fused_w = (w * (gamma * rsqrt).reshape(shape)).astype(w_dtype)
    fused_b = ((b - rm) * rsqrt * gamma + beta).astype(b_dtype)
    return (Parameter(fused_w, _requires_grad(conv_w)),
            Parameter(fused_b, _requires_grad(conv_b) if conv_b is not None else False))


def fuse_linear_bn_eval(linear, bn):
    """A copy of the eval-mode ``linear`` with the eval-mode ``bn`` after it folded into its weight and bias.
    The batch norm's features must equal the linear layer's outputs (or be 1), as in PyTorch."""
    assert not (linear.training or bn.training), "Fusion only for eval!"
    fused = copy.deepcopy(linear)
    assert linear.out_features == bn.num_features or bn.num_features == 1, \
        ("To fuse, linear.out_features == bn.num_features or bn.num_features == 1, "
         f"got linear.out_features={linear.out_features} and bn.num_features={bn.num_features}")
    assert bn.running_mean is not None and bn.running_var is not None
    fused.weight, fused.bias = fuse_linear_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                      bn.eps, bn.weight, bn.bias)
    return fused


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """``(weight, bias)`` Parameters of the linear layer with the batch norm folded in (PyTorch's formula)."""
    w = _arr(linear_w)
    w_dtype = w.dtype
    b_dtype = _arr(linear_b).dtype if linear_b is not None else w_dtype
    rm = _arr(bn_rm)
    b = _arr(linear_b) if linear_b is not None else np.zeros_like(rm)
    scale = _arr(bn_w) / np.sqrt(_arr(bn_rv) + bn_eps)
    fused_w = w * scale[..., None].astype(w_dtype)
    fused_b = ((b - rm) * scale + _arr(bn_b)).astype(b_dtype)
    return (Parameter(fused_w.astype(w_dtype), _requires_grad(linear_w)),
            Parameter(fused_b, _requires_grad(linear_b) if linear_b is not None else False))
