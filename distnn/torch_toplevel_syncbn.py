"""PyTorch's synchronized-batch-norm kernels (``torch.batch_norm_stats``, ``batch_norm_gather_stats``, ...): the
pieces torch's ``SyncBatchNorm`` composes around its collectives, here on distnn's arrays.

A synchronized batch norm over ranks runs, per rank: ``batch_norm_stats`` (the local per-channel mean and
``invstd = 1/sqrt(var + eps)``, biased variance), an all-gather of those and of the local counts,
``batch_norm_gather_stats_with_counts`` (the global mean and invstd, Chan's combination in rank order; the
running statistics updated in place with the unbiased variance), ``batch_norm_elemt`` (the normalization).
Backward: ``batch_norm_backward_reduce`` (the local sums of ``dy`` and ``dy * (x - mean)``, and the weight's and
bias's gradients), an all-reduce of the two sums, ``batch_norm_backward_elemt`` (the input's gradient over the
global count). :class:`distnn.nn.SyncBatchNorm` is distnn's layer; these share its statistics' combination
(:func:`~distnn.distributed.sync_batchnorm.combine_stats`) and batch norm's math (:mod:`distnn.functional.norm`).

PyTorch 2.13 runs all but ``batch_norm_update_stats`` on CUDA only; distnn runs them on either device. The
statistics come in the accumulate dtype as torch's CUDA kernels (float32 for a float16 input, the input's
otherwise), except ``batch_norm_update_stats``'s, in the input's dtype as torch's CPU kernel. No output is
differentiable (torch has no derivative for these: its SyncBatchNorm calls them inside its own autograd
Function): they come back detached.
"""
from __future__ import annotations

import numpy as np

from .autograd.tensor import Tensor
from .backend import get_array_module, to_numpy
from .functional.norm import _bcast, _bn_axes, batch_stats, input_grad, opmath, update_running_stats

__all__ = ["batch_norm_stats", "batch_norm_gather_stats", "batch_norm_gather_stats_with_counts", "batch_norm_elemt",
           "batch_norm_backward_reduce", "batch_norm_backward_elemt", "batch_norm_update_stats"]


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _out(a, dtype):
    return Tensor(a.astype(dtype, copy=False))


def _batch(x, who, name="input"):
    """``x`` (N, C, ...) as an array: floating, at least 2-D and not empty."""
    x = _raw(x)
    if x.dtype.kind != "f":
        raise NotImplementedError(f"{who}: {name} must be floating point, got dtype {x.dtype}")
    if x.ndim < 2:
        raise IndexError(f"{who}: expected {name} of at least 2 dimensions (N, C, ...), got shape {tuple(x.shape)}")
    if x.size == 0:
        raise RuntimeError(f"{who}: input tensor must have at least one element, but got input_sizes = "
                           f"{list(x.shape)}")
    return x


def _channel_vectors(who, channels, **vectors):
    """The named per-channel vectors (or None) as arrays, each of shape (channels,)."""
    out = []
    for name, v in vectors.items():
        v = None if v is None else _raw(v)
        if v is not None and tuple(v.shape) != (channels,):
            raise RuntimeError(f"{who}: expected {name} of shape ({channels},) (one per channel), got "
                               f"{tuple(v.shape)}")
        out.append(v)
    return out


def _same_dtype(mean, invstd, who):
    if mean.dtype != invstd.dtype:
        raise RuntimeError(f"{who}: mean and invstd need to have the same data types, got {mean.dtype} and "
                           f"{invstd.dtype}")


def batch_norm_stats(input, eps):  # noqa: A002
    """``torch.batch_norm_stats``: ``(mean, invstd)`` of ``input`` (N, C, ...) per channel, ``invstd =
    1/sqrt(var + eps)`` with the biased variance, each (C,) in the accumulate dtype (float32 for float16)."""
    x = _batch(input, "batch_norm_stats")
    mean, var, _ = batch_stats(x)
    xp = get_array_module(x)
    return Tensor(mean), Tensor(1.0 / xp.sqrt(var + var.dtype.type(eps)))


def batch_norm_gather_stats_with_counts(input, mean, invstd, running_mean, running_var, momentum, eps,  # noqa: A002
                                        counts):
    """``torch.batch_norm_gather_stats_with_counts``: the global ``(mean, invstd)`` of per-rank statistics.

    ``mean`` and ``invstd`` are (world, C), every rank's :func:`batch_norm_stats` stacked, ``counts`` (world,)
    their values per channel; ranks are combined in order (Chan's formula, which keeps precision when the mean
    is large next to the spread). ``running_mean``/``running_var`` (either may be None) are updated in place,
    ``r = (1 - momentum) r + momentum * stat``, the variance unbiased over the total count. ``input`` only
    names the device and dtype, as torch's. The results have ``mean``'s dtype (float32 for float16)."""
    from .distributed.sync_batchnorm import combine_stats

    who = "batch_norm_gather_stats_with_counts"
    m, s = _raw(mean), _raw(invstd)
    _same_dtype(m, s, who)
    if m.ndim != 2 or s.shape != m.shape:
        raise RuntimeError(f"{who}: expected mean and invstd of the same shape (world_size, C), got "
                           f"{tuple(m.shape)} and {tuple(s.shape)}")
    n = np.asarray(to_numpy(_raw(counts)), dtype=np.float64)
    if n.shape != (m.shape[0],):
        raise RuntimeError(f"{who}: expected counts of shape ({m.shape[0]},) (one per row of mean), got "
                           f"{tuple(n.shape)}")
    rm, rv = _channel_vectors(who, m.shape[1], running_mean=running_mean, running_var=running_var)
    m64, s64 = to_numpy(m).astype(np.float64), to_numpy(s).astype(np.float64)
    m2 = (1.0 / (s64 * s64) - eps) * n[:, None]  # each rank's sum of squared deviations, back from its invstd
    total, gmean, gm2 = combine_stats(n, m64, m2)
    var = gm2 / total
    update_running_stats(rm, rv, gmean, var, total, momentum)
    xp = get_array_module(m)
    dtype = opmath(m[:0]).dtype
    return _out(xp.asarray(gmean), dtype), _out(xp.asarray(1.0 / np.sqrt(var + eps)), dtype)


def batch_norm_gather_stats(input, mean, invstd, running_mean, running_var, momentum, eps, count):  # noqa: A002
    """``torch.batch_norm_gather_stats``: :func:`batch_norm_gather_stats_with_counts` with the same ``count``
    (an int) for every rank."""
    counts = np.full(_raw(mean).shape[0] if _raw(mean).ndim else 0, int(count), dtype=np.int64)
    return batch_norm_gather_stats_with_counts(input, mean, invstd, running_mean, running_var, momentum, eps,
                                               counts)


def batch_norm_elemt(input, weight, bias, mean, invstd, eps):  # noqa: A002
    """``torch.batch_norm_elemt``: ``(input - mean) * invstd * weight + bias`` per channel (weight and bias may
    be None), in the input's dtype. ``eps`` is not used (``invstd`` holds it already), as torch's."""
    who = "batch_norm_elemt"
    x = _batch(input, who)
    m, s, w, b = _channel_vectors(who, x.shape[1], mean=mean, invstd=invstd, weight=weight, bias=bias)
    nd, xo = x.ndim, opmath(x)
    out = (xo - _bcast(m, nd)) * _bcast(s, nd)
    if w is not None:
        out = out * _bcast(w, nd)
    if b is not None:
        out = out + _bcast(b, nd)
    return _out(out, x.dtype)


def batch_norm_backward_reduce(grad_out, input, mean, invstd, weight, input_g, weight_g, bias_g):  # noqa: A002
    """``torch.batch_norm_backward_reduce``: ``(sum_dy, sum_dy_xmu, grad_weight, grad_bias)``, per channel the
    sums over this batch of ``grad_out`` and of ``grad_out * (input - mean)`` (``mean``'s dtype; None unless
    ``input_g``), the weight's gradient ``sum_dy_xmu * invstd`` (None unless ``weight_g``) and the bias's,
    ``sum_dy`` (None unless ``bias_g``), these two in the weight's dtype (so ``weight`` must be given for them)."""
    who = "batch_norm_backward_reduce"
    x = _batch(input, who)
    g = _raw(grad_out)
    if tuple(g.shape) != tuple(x.shape):
        raise RuntimeError(f"{who}: expected grad_out of the input's shape {tuple(x.shape)}, got {tuple(g.shape)}")
    m, s, w = _channel_vectors(who, x.shape[1], mean=mean, invstd=invstd, weight=weight)
    _same_dtype(m, s, who)
    if w is None and (weight_g or bias_g):
        raise RuntimeError(f"{who}: weight_g or bias_g asks for the weight's or bias's gradient, which takes the "
                           "weight's dtype: weight must be given")
    axes, nd = _bn_axes(x.ndim), x.ndim
    g = opmath(g)
    sum_dy = g.sum(axis=axes)
    sum_dy_xmu = (g * (opmath(x) - _bcast(m, nd))).sum(axis=axes)
    return (_out(sum_dy, m.dtype) if input_g else None, _out(sum_dy_xmu, m.dtype) if input_g else None,
            _out(sum_dy_xmu * s, w.dtype) if weight_g else None, _out(sum_dy, w.dtype) if bias_g else None)


def batch_norm_backward_elemt(grad_out, input, mean, invstd, weight, sum_dy, sum_dy_xmu, count):  # noqa: A002
    """``torch.batch_norm_backward_elemt``: the input's gradient of a batch norm whose statistics span
    ``count.sum()`` values per channel (``count``: every rank's count, integers), from ``sum_dy`` and
    ``sum_dy_xmu`` summed over those ranks (:func:`batch_norm_backward_reduce`'s, all-reduced); in
    ``grad_out``'s dtype."""
    who = "batch_norm_backward_elemt"
    x = _batch(input, who)
    g = _raw(grad_out)
    if tuple(g.shape) != tuple(x.shape):
        raise RuntimeError(f"{who}: expected grad_out of the input's shape {tuple(x.shape)}, got {tuple(g.shape)}")
    m, s, w, sdy, sxmu = _channel_vectors(who, x.shape[1], mean=mean, invstd=invstd, weight=weight, sum_dy=sum_dy,
                                          sum_dy_xmu=sum_dy_xmu)
    _same_dtype(m, s, who)
    n = to_numpy(_raw(count))
    if n.dtype.kind not in "iu":  # (torch's kernel reads them as ints)
        raise RuntimeError(f"{who}: count must hold integers (every rank's count), got dtype {n.dtype}")
    nd = x.ndim
    xhat = (opmath(x) - _bcast(m, nd)) * _bcast(s, nd)
    gx = input_grad(opmath(g), xhat, s, w, sdy, sxmu * s, int(n.sum()))
    return _out(gx, g.dtype)


def batch_norm_update_stats(input, running_mean, running_var, momentum):  # noqa: A002
    """``torch.batch_norm_update_stats``: ``(mean, var)`` of ``input`` (N, C, ...) per channel, the variance
    biased, in the input's dtype; ``running_mean``/``running_var`` (either may be None) updated in place as
    batch norm's training forward does (the variance unbiased)."""
    who = "batch_norm_update_stats"
    x = _batch(input, who)
    rm, rv = _channel_vectors(who, x.shape[1], running_mean=running_mean, running_var=running_var)
    for name, r in (("running_mean", rm), ("running_var", rv)):
        if r is not None and r.dtype not in (x.dtype, opmath(x[:0]).dtype):
            raise RuntimeError(f"{who}: expected {name} of the input's dtype {x.dtype}, got {r.dtype}")
    mean, var, count = batch_stats(x)
    update_running_stats(rm, rv, mean, var, count, momentum)
    return _out(mean, x.dtype), _out(var, x.dtype)
