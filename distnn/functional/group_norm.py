"""Group and instance normalization as fused Functions: ``group_norm`` and ``instance_norm``.

Group norm normalizes each sample over its channels' groups (C/G channels and every spatial position
together), then scales and shifts per channel; instance norm is group norm with one channel per group
(and optional running statistics, as PyTorch's). Statistics in two passes, as layer_norm's; backward
is layer norm's closed form over each group's M values:

    dx = rstd * (dxh - mean(dxh) - xhat * mean(dxh * xhat)),   dxh = dy * weight[c]

A float16 input is normalized in float32 and cast back, an integer one refused, as ``functional.norm``'s.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from ._dtype_checks import check_floating, check_norm
from ._into import destinations, sum_into
from .norm import BatchNormEval, _bcast, _raw, cast_to, opmath


class GroupNorm(Function):
    """x (N, C, *) normalized over each of its ``num_groups`` groups of C/num_groups channels; weight, bias (C,)."""

    torch_name = "NativeGroupNormBackward0"

    # backward reads xhat and rstd (its own) and, for x's gradient, the weight; PyTorch's native_group_norm saves
    # the input and the weight whichever needs a gradient, not the bias nor its output: so do we
    reads = ((0, 1), (0, 1), (0, 1))

    def forward(self, x, weight=None, bias=None, num_groups=1, eps=1e-5):
        xp = get_array_module(x)
        self.dtypes = (x.dtype, weight, bias)
        x, weight, bias = opmath(x), opmath(weight), opmath(bias)
        if x.size == 0:  # (an empty batch or spatial size: nothing to normalize, and no means of nothing to warn of)
            xhat, rstd = x.copy(), None
        else:
            xr = x.reshape(x.shape[0], num_groups, x.size // (x.shape[0] * num_groups))
            mean = xr.mean(axis=-1, keepdims=True)
            xc = xr - mean
            var = (xc * xc).mean(axis=-1, keepdims=True)
            rstd = 1.0 / xp.sqrt(var + eps)
            xhat = (xc * rstd).reshape(x.shape)
        out = xhat * _bcast(weight, x.ndim) if weight is not None else xhat.copy()
        if bias is not None:
            out += _bcast(bias, x.ndim)
        self.xhat, self.rstd, self.weight, self.num_groups = xhat, rstd, self._kept_weight(weight), num_groups
        self.has_bias = bias is not None
        return out.astype(self.dtypes[0], copy=False)

    def _kept_weight(self, weight):
        return weight

    def backward(self, g):
        nd, xhat = g.ndim, self.xhat
        N, G = g.shape[0], self.num_groups
        group = (N, G, g.size // max(N * G, 1))
        nin = self.needs_input_grad
        gx = gw = gb = None
        g = opmath(g)
        if nin[0] and g.size == 0:
            gx = g.copy()
        elif nin[0]:
            gxh = (g * _bcast(self.weight, nd) if self.weight is not None else g).reshape(group)
            xh = xhat.reshape(group)
            gx = self.rstd * (gxh - gxh.mean(axis=-1, keepdims=True) - xh * (gxh * xh).mean(axis=-1, keepdims=True))
            gx = gx.reshape(g.shape)
        dest = destinations(self, 3)
        axes = (0,) + tuple(range(2, nd))
        if self.weight is not None and len(nin) > 1 and nin[1]:
            gw = sum_into(g * xhat, axes, dest[1])
        if self.has_bias and len(nin) > 2 and nin[2]:
            gb = sum_into(g, axes, dest[2])
        x_dtype, w, b = self.dtypes
        return (None if gx is None else gx.astype(x_dtype, copy=False)), cast_to(gw, w), cast_to(gb, b)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalization (PyTorch's ``F.group_norm``): input (N, C, *), C divisible by ``num_groups``;
    ``weight`` and ``bias`` (C,) scale and shift each channel."""
    shape = tuple(input.shape)
    if len(shape) < 2:
        raise ValueError(f"group_norm: expected an input of at least 2 dimensions (N, C, *), got shape {shape}")
    if num_groups < 1 or shape[1] % num_groups:
        raise ValueError(f"group_norm: expected the number of channels of the input ({shape[1]}, shape {shape}) to be "
                         f"divisible by num_groups={num_groups}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != (shape[1],):
            raise ValueError(f"group_norm: expected {name} of shape ({shape[1]},), got {tuple(p.shape)}")
    check_norm(_raw(input), _raw(weight), _raw(bias))
    check_floating(_raw(input), "GroupNormKernelImpl")
    return GroupNorm.apply(input, weight, bias, num_groups=num_groups, eps=eps)


class InstanceNormTrain(GroupNorm):
    """Instance norm with the input's statistics: group norm with one channel per group.

    PyTorch's instance_norm runs batch norm on a (1, N*C, *) view with ``weight.repeat(N)``: it saves the input
    (a view of it) and that copy of the weight, never the weight itself. So a change of the weight after the
    forward is no error there: here backward reads its own copy of the weight (C values) and declares the
    input only.
    """

    torch_name = None  # (PyTorch's instance_norm is a batch_norm between two views: no node of this op)
    reads = ((0,), (0,), (0,))

    def _kept_weight(self, weight):
        return None if weight is None else weight.copy()


class InstanceNormEval(BatchNormEval):
    """Instance norm with the running statistics: a per-channel affine map (batch norm's in eval). Declares the
    input only, as PyTorch's (see InstanceNormTrain); its backward reads its own copies of the rest."""

    reads = ((0,), (0,), (0,))


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Instance normalization (PyTorch's ``F.instance_norm``): each (sample, channel) of input (N, C, *)
    normalized over its spatial positions, with its own statistics (``use_input_stats``; the running
    statistics, when given, then move towards their mean over the batch by ``momentum``, with the unbiased
    variance) or with ``running_mean``/``running_var``."""
    x = _raw(input)
    shape = tuple(x.shape)
    if len(shape) < 3:
        raise ValueError(f"instance_norm: expected an input (N, C, *) with at least one spatial dimension, got "
                         f"shape {shape}")
    C = shape[1]
    for name, p in (("weight", weight), ("bias", bias), ("running_mean", running_mean), ("running_var", running_var)):
        if p is not None and tuple(p.shape) != (C,):
            raise ValueError(f"instance_norm: expected {name} of shape ({C},), got {tuple(p.shape)} (input {shape})")
    mean, var = _stats_as_given(x, _raw(weight), _raw(running_mean), _raw(running_var))
    check_norm(x, _raw(weight), _raw(bias), mean, var, use_input_stats)
    check_floating(x, "batch_norm")  # (PyTorch's instance norm is its batch norm)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm: expected running_mean and running_var when use_input_stats is False")
        return InstanceNormEval.apply(input, weight, bias, mean=mean, var=var, eps=eps)
    M = x.size // max(shape[0] * C, 1)
    if M <= 1 and x.size:
        raise ValueError(f"instance_norm: expected more than 1 spatial element when training, got input of shape "
                         f"{shape}")
    if running_mean is not None and running_var is not None and x.size:
        _update_running_stats(x, mean, var, momentum)
        if mean is not _raw(running_mean):  # (cast copies: back into the buffers, as PyTorch's copy_)
            _raw(running_mean)[...] = mean
            _raw(running_var)[...] = var
    return InstanceNormTrain.apply(input, weight, bias, num_groups=C, eps=eps)


def _stats_as_given(x, weight, running_mean, running_var):
    """The running statistics as PyTorch's instance norm hands them to its batch norm: cast to the weight's dtype
    (the input's without a weight) when the running mean has another, as they are otherwise. (So a float16 input
    with float32 statistics and no weight is normalized with statistics rounded to float16, and updates them
    through float16, as there; the dtype checks then see the cast ones.)"""
    like = (weight if weight is not None else x).dtype
    if running_mean is None or running_mean.dtype == like:
        return running_mean, running_var
    return running_mean.astype(like), None if running_var is None else running_var.astype(like)


def _update_running_stats(x, running_mean, running_var, momentum):
    """PyTorch's: its batch norm updates a copy of each running statistic per instance, towards that instance's
    mean and unbiased variance (``sum (x - mean)^2 / (M - 1)`` over the M spatial values), in ATen's CPU
    accumulate type (float32 for float16, float64 otherwise) and rounded once to the buffer's dtype; the buffer
    then takes the mean of those copies over the batch, added up in opmath and rounded once. (float16: torch's
    bits in 1999 of 2000 random draws, the other 1 ulp; float32/float64 a few ulps, ATen summing the instance
    in vector lanes.) A float16 copy past 65504 is inf there, silently, and so is its mean."""
    xp = get_array_module(x)
    N, C = x.shape[:2]
    M = x.size // (N * C)  # (called with a non-empty x only)
    acc = xp.float32 if x.dtype == xp.float16 else xp.float64
    xr = x.astype(acc).reshape(N, C, M)
    mean = xr.sum(axis=-1) / acc(M)
    xc = xr - mean[..., None]
    unbiased = (xc * xc).sum(axis=-1) / acc(M - 1)
    for buf, stat in ((_raw(running_mean), mean), (_raw(running_var), unbiased)):
        w = acc if buf.dtype == xp.float16 else xp.float64  # (a float16 buffer's update: float32, not float64)
        per_instance = w(1 - momentum) * buf.astype(w) + w(momentum) * stat.astype(w)
        with np.errstate(over="ignore", invalid="ignore"):  # (past float16's range: inf, as PyTorch's, silently)
            buf[...] = opmath(per_instance.astype(buf.dtype)).mean(axis=0).astype(buf.dtype)


__all__ = ["group_norm", "instance_norm"]
