"""PyTorch's in-place functional activations: ``F.relu_``, ``F.elu_``, ``F.leaky_relu_``, ``F.hardtanh_``,
``F.selu_``, ``F.celu_``, ``F.threshold_``, ``F.rrelu_``.

Each is its function with ``inplace=True``: the input tensor itself becomes the result and is returned,
with distnn's in-place rules (see ``Tensor._take_inplace``): under ``no_grad`` or on a tensor outside the
graph its memory is overwritten; while recording it takes the op's graph node, and on a leaf that
requires grad it is refused, as PyTorch's ("a leaf tensor that requires grad is used in an in-place
operation"). As PyTorch's, they take tensors only: an array would be left unchanged, so it is a TypeError.
"""
from __future__ import annotations

from distnn.autograd.tensor import Tensor

from .activation import elu, leaky_relu, relu
from .activation_more import celu, hardtanh, selu, threshold
from .rrelu import rrelu


def _tensor(name, input):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(input).__name__} "
                        f"(it changes its input in place; use {name[:-1]}() for arrays)")
    return input


def relu_(input):
    """In-place :func:`relu`."""
    return relu(_tensor("relu_", input), inplace=True)


def elu_(input, alpha=1.0):
    """In-place :func:`elu`."""
    return elu(_tensor("elu_", input), alpha, inplace=True)


def leaky_relu_(input, negative_slope=0.01):
    """In-place :func:`leaky_relu`."""
    return leaky_relu(_tensor("leaky_relu_", input), negative_slope, inplace=True)


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    """In-place :func:`hardtanh`."""
    return hardtanh(_tensor("hardtanh_", input), min_val, max_val, inplace=True)


def selu_(input):
    """In-place :func:`selu`."""
    return selu(_tensor("selu_", input), inplace=True)


def celu_(input, alpha=1.0):
    """In-place :func:`celu`."""
    return celu(_tensor("celu_", input), alpha, inplace=True)


def threshold_(input, threshold, value):  # noqa: A002 - PyTorch's names
    """In-place :func:`threshold`."""
    return _threshold(_tensor("threshold_", input), threshold, value, inplace=True)


_threshold = threshold  # (the function, shadowed by threshold_'s argument of the same name)


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False, *, generator=None, batch_dim=None):
    """In-place :func:`rrelu` (PyTorch's default ``training=False``: the fixed slope (lower + upper) / 2)."""
    return rrelu(_tensor("rrelu_", input), lower, upper, training, inplace=True, generator=generator,
                 batch_dim=batch_dim)


__all__ = ["relu_", "elu_", "leaky_relu_", "hardtanh_", "selu_", "celu_", "threshold_", "rrelu_"]
