"""PyTorch's ``native_*`` top-level forms and the generic ``convolution``: ATen's kernels as torch exposes them,
each running distnn's own op (:mod:`distnn.functional`) and adding what ATen's kernel also returns.

* ``native_batch_norm``/``native_layer_norm``: ``(output, save_mean, save_invstd)``, the statistics the kernel
  saved for its backward, detached as torch's (only the output is differentiable);
* ``native_group_norm``: ``(output, mean, rstd)`` of shape ``(N, group)``, all three differentiable as torch's;
* ``native_dropout``: ``(output, mask)``, the mask bool (True: kept), drawn from distnn's random streams;
* ``native_norm``: the p-norm (PyTorch runs it on sparse tensors only; here the dense tensor's);
* ``norm_except_dim``: weight_norm's norm over every dim but one (``dim=-1``: over all of them);
* ``convolution``: ATen's one entry for every convolution, plain or transposed, 1-, 2- or 3-D;
* ``embedding_renorm_``: ``F.embedding``'s ``max_norm`` rescaling of the rows an index batch looks up.
"""
from __future__ import annotations

import numpy as np

from . import functional as F
from .autograd.tensor import Tensor
from .backend import get_array_module
from .functional.activation import Dropout, _float_kind, keep_mask
from .functional.norm import batch_stats

__all__ = ["native_batch_norm", "native_layer_norm", "native_group_norm", "native_dropout", "native_norm",
           "norm_except_dim", "convolution", "embedding_renorm_"]


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _stat(a, dtype):
    return Tensor(a.astype(dtype, copy=False))


def native_batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps):  # noqa: A002
    """``torch.native_batch_norm``: ``(output, save_mean, save_invstd)``. Training: the batch's per-channel mean
    and ``1/sqrt(var + eps)`` (biased variance), the running statistics (if given) updated in place.
    Evaluation: the running statistics normalize, and the saved two are empty, as PyTorch's. Evaluation
    without running statistics is refused (PyTorch's kernel crashes there)."""
    x = _raw(input)
    xp = get_array_module(x)
    if not training and (running_mean is None or running_var is None):
        raise RuntimeError("native_batch_norm: running_mean and running_var must be given when training is False")
    out = F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)
    if not training:
        return out, Tensor(xp.zeros(0, x.dtype)), Tensor(xp.zeros(0, x.dtype))
    mean, var, _ = batch_stats(x)
    return out, _stat(mean, x.dtype), _stat(1.0 / xp.sqrt(var + eps), x.dtype)


def native_layer_norm(input, normalized_shape, weight, bias, eps):  # noqa: A002
    """``torch.native_layer_norm``: ``(output, mean, rstd)``, the statistics of each normalized slice with
    the normalized dims kept as size 1 (``input.shape[:-k] + (1,) * k``), detached as torch's."""
    out = F.layer_norm(input, normalized_shape, weight, bias, eps)
    x = _raw(input)
    xp = get_array_module(x)
    axes = tuple(range(x.ndim - len(tuple(normalized_shape)), x.ndim))
    wide = x.astype(np.float64) if x.dtype == np.float64 else x.astype(np.float32)  # (opmath: float32 at least)
    mean = wide.mean(axis=axes, keepdims=True)
    var = ((wide - mean) ** 2).mean(axis=axes, keepdims=True)
    return out, _stat(mean, x.dtype), _stat(1.0 / xp.sqrt(var + eps), x.dtype)


def native_group_norm(input, weight, bias, N, C, HxW, group, eps):  # noqa: A002, N803 - ATen's names
    """``torch.native_group_norm``: ``(output, mean, rstd)``, the last two ``(N, group)``; all three
    differentiable, as torch's. ``N``, ``C``, ``HxW`` must describe the input (``numel == N * C * HxW``)."""
    x = _raw(input)
    if x.size != N * C * HxW or x.shape[:2] != (N, C):
        raise RuntimeError(f"native_group_norm: expected an input of {N} x {C} x {HxW} elements ((N, C, *) with "
                           f"N={N}, C={C}), got shape {tuple(x.shape)}")
    if group <= 0 or C % group:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, but got input of "
                           f"shape {tuple(x.shape)} and num_groups={group}")
    out = F.group_norm(input, group, weight, bias, eps)
    grouped = input.reshape(N, group, -1)
    mean = grouped.mean(-1)
    rstd = ((grouped - mean.unsqueeze(-1)) ** 2).mean(-1).add(eps).rsqrt()
    return out, mean, rstd


def native_dropout(input, p, train):  # noqa: A002
    """``torch.native_dropout``: ``(output, mask)``. With ``train`` (True or None, as ATen's), each element is
    kept with probability ``1 - p`` (mask True) and scaled by ``1/(1-p)``; with False, the output is a copy of
    the input and the mask all True. The mask is drawn as :func:`distnn.functional.dropout` draws it."""
    if not 0.0 <= p <= 1.0:
        raise RuntimeError(f"dropout probability has to be between 0 and 1, but got {p}")
    x = _raw(input)
    xp = get_array_module(x)
    if train is False:
        return input * 1, Tensor(xp.ones(x.shape, dtype=bool))
    from distnn import random as drandom

    keep = xp.zeros(x.shape, dtype=bool) if p == 1.0 else xp.asarray(
        keep_mask(drandom.default_generator(), x.shape, p, _float_kind(x.dtype)))
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    return Dropout.apply(input, keep.astype(x.dtype) * x.dtype.type(scale)), Tensor(keep)


def native_norm(input, p=2, dim=None, keepdim=False, dtype=None):  # noqa: A002
    """``torch.native_norm``: the ``p``-norm of all elements, or over ``dim`` (then ``keepdim`` and ``dtype``
    as ATen's second overload). PyTorch implements it for sparse tensors only; this is the dense tensor's
    :func:`distnn.linalg.vector_norm`, the value PyTorch gives for the tensor's sparse form."""
    from .linalg.norms import vector_norm

    from .linalg._common import as_tensor

    t = as_tensor(input)
    # (cast first, as this always did: ATen's sparse kernel takes any dtype, not linalg's widening-only one)
    return vector_norm(t if dtype is None else t.to(dtype), p,
                       dim=None if dim is None else tuple(np.atleast_1d(dim).tolist()), keepdim=keepdim)


def norm_except_dim(v, pow=2, dim=0):  # noqa: A002 - ATen's names
    """``torch.norm_except_dim``: the ``pow``-norm of ``v`` over every dim but ``dim``, that dim kept and the
    others kept as size 1 (weight_norm's ``g``); ``dim=-1`` is the norm of all of ``v``, a scalar."""
    from .linalg.norms import vector_norm

    if dim == -1:
        return vector_norm(v, pow)
    n = v.ndim
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    dim %= n
    if n == 1:  # (PyTorch's view(size(0), -1).norm(pow, 1): one norm per element; dim=() would be every element)
        return vector_norm(v.reshape(v.shape[0], 1), pow, dim=1)
    return vector_norm(v, pow, dim=tuple(d for d in range(n) if d != dim), keepdim=True)


_CONVS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_TRANSPOSED = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups):  # noqa: A002
    """``torch.convolution``: every argument required, as ATen's. The weight's rank picks the 1-, 2- or 3-D
    convolution (``conv{1,2,3}d``, or ``conv_transpose{1,2,3}d`` with ``transposed``); ``output_padding``
    applies to the transposed ones only."""
    nd = _raw(weight).ndim - 2
    if nd not in _CONVS:
        raise RuntimeError(f"convolution: expected a weight of 3, 4 or 5 dims (1-, 2- or 3-D convolution), got "
                           f"shape {tuple(_raw(weight).shape)}")
    stride, padding, dilation = (tuple(s) if isinstance(s, (list, tuple)) else s for s in (stride, padding, dilation))
    if transposed:
        output_padding = tuple(output_padding) if isinstance(output_padding, (list, tuple)) else output_padding
        return _TRANSPOSED[nd](input, weight, bias, stride, padding, output_padding, groups, dilation)
    return _CONVS[nd](input, weight, bias, stride, padding, dilation, groups)


def embedding_renorm_(input, indices, max_norm, norm_type):  # noqa: A002
    """``torch.embedding_renorm_``: each distinct row of ``input`` (an embedding weight) that ``indices`` names
    and whose ``norm_type``-norm exceeds ``max_norm`` is scaled in place to ``max_norm / (norm + 1e-7)`` times
    itself, as ``F.embedding(max_norm=...)`` does; returns ``input``. As an in-place change, a leaf requiring
    grad is refused unless under ``no_grad``."""
    from .autograd.grad_mode import is_grad_enabled
    from .autograd.tensor import _refuse_recorded_leaf
    from .functional.embedding import _renorm_

    if is_grad_enabled():
        _refuse_recorded_leaf(input)
    w, idx = _raw(input), _raw(indices).reshape(-1)
    bad = idx[(idx < 0) | (idx >= w.shape[0])]
    if bad.size:
        raise IndexError(f"select(): index {int(bad[0])} out of range for tensor of size {list(w.shape)} at "
                         "dimension 0")
    _renorm_(input, idx, max_norm, norm_type)
    return input
