"""What the losses share: their targets and weights as operands, and the reduction."""
from __future__ import annotations

import warnings

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _const(input, x):
    """A constant of a loss (target, class weights) on ``input``'s device: a host array given with a GPU
    input is copied there (as the trainer's host labels are), so numpy constants work on either device."""
    x = _raw(x)
    if x is None or isinstance(x, (int, float)):
        return x
    xp = get_array_module(_raw(input))
    return x if xp is np or get_array_module(x) is xp else xp.asarray(x)


def _as_tensor(x, like=None):
    """``x`` as a Tensor: a Tensor stays itself, an array or a number becomes a constant one (on ``like``'s
    device when given, a Tensor)."""
    if isinstance(x, Tensor):
        return x
    if like is not None:
        x = get_array_module(like.data).asarray(x)
    return Tensor(x)


def _operand(input, x):
    """A target or weight of a loss composed of differentiable ops, as a Tensor: one that requires grad stays
    itself (it gets its gradient); any other value becomes a constant on ``input``'s device, a floating or
    integer one in ``input``'s dtype (the loss is computed in the input's dtype, as the fused losses are)."""
    if isinstance(x, Tensor) and x.requires_grad:
        return x
    a = _const(input, x)
    if not hasattr(a, "dtype"):  # a number or a list
        a = get_array_module(_raw(input)).asarray(a)
    dtype = _raw(input).dtype
    if dtype.kind == "f" and a.dtype.kind in "fiu" and a.dtype != dtype:
        a = a.astype(dtype)
    return x if isinstance(x, Tensor) and a is x.data else Tensor(a)


def _saved(input, x):
    """A constant a fused loss's backward reads (target, class weights): a Tensor on ``input``'s device that
    needs no gradient stays one, so that its version is checked at backward, as PyTorch's saved target and
    weight are (an in-place change of it between forward and backward would give a wrong gradient); else
    :func:`_const`."""
    if isinstance(x, Tensor) and not x.requires_grad and get_array_module(x.data) is get_array_module(_raw(input)):
        return x
    return _const(input, x)


def _check_reduction(name, reduction):
    """A ValueError naming the loss ``name`` unless ``reduction`` is 'mean', 'sum' or 'none'."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(loss, reduction):
    """A Tensor's or a raw array's per-sample losses reduced as ``reduction`` says."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _warn_if_shapes_differ(name, input, target):
    """As PyTorch: a target that only broadcasts against the input (a (N, 1) output for a (N,) target)
    is almost always a bug: the loss is taken over the N x N broadcast."""
    ts = getattr(target, "shape", None)
    if ts is not None and tuple(ts) != tuple(input.shape):
        warnings.warn(f"{name}: the target's shape {tuple(ts)} differs from the input's {tuple(input.shape)}; they "
                      "are broadcast, which is likely not what you want (make the shapes equal)", stacklevel=3)
