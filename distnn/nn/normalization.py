"""``LayerNorm``, ``RMSNorm``, ``GroupNorm``, batch normalization (``BatchNorm1d``, ``BatchNorm2d``,
``BatchNorm3d``) and instance normalization (``InstanceNorm1d``, ``InstanceNorm2d``, ``InstanceNorm3d``), PyTorch
semantics. Instance norm lives in :mod:`.instance_norm`, the bases the norm layers share in
:mod:`.norm_common`; both are re-exported here.

``_BatchNorm`` is the base a synchronized batch norm subclasses: it owns the
parameters and buffers (``weight``, ``bias``, ``running_mean``, ``running_var``,
``num_batches_tracked``), the momentum bookkeeping (``_momentum_factor``) and the
input check; ``forward`` calls ``distnn.functional.norm`` whose pieces
(``batch_stats``, ``update_running_stats``, ``BatchNormTrain`` with its
``combine_grad_sums`` hook) can be reused with global statistics.

Padded rows: a sharded batch may repeat samples so every rank holds the same
row count (:class:`~distnn.distributed.DistributedSampler`); the trainer masks
them out of the loss and marks them with :func:`valid_rows`. Inside that
block batch norm (this one and ``SyncBatchNorm``) takes its batch statistics,
and the running statistics, from the real rows only: padded rows are
normalized with those statistics and have no part in them.
"""
from __future__ import annotations

import contextlib
import math
import threading

import numpy as np

from distnn.backend import default_dtype, get_array_module, to_numpy
from distnn.functional.group_norm import group_norm
from distnn.functional.norm import (BatchNormTrain, _bcast, _bn_axes, batch_norm, batch_stats, layer_norm,
                                    rms_norm, update_running_stats)

from . import init
from .instance_norm import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, _InstanceNorm  # noqa: F401 - re-exported
from .linear import _finish
from .module import Module, Parameter
from .norm_common import _affine_parameters, _AffineNorm, _norm_base_init, _RunningStatsNorm


def _as_shape(normalized_shape) -> tuple:
    """``normalized_shape`` as a tuple of ints; an int is one dimension."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    return tuple(int(s) for s in normalized_shape)


def _check_trailing(module, x) -> None:
    """LayerNorm's and RMSNorm's input check: its trailing dimensions must be ``module.normalized_shape``."""
    shape, ns = tuple(x.shape), module.normalized_shape
    if len(shape) < len(ns) or shape[len(shape) - len(ns):] != ns:
        raise ValueError(f"{module.where()}: expected input whose trailing dimensions are {ns}, got shape {shape}")


class LayerNorm(_AffineNorm):
    """Normalize over the trailing ``normalized_shape`` dims; ``weight`` (ones) and ``bias`` (zeros) of that shape."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _affine_parameters(self, self.normalized_shape, elementwise_affine, bias, dtype)
        _finish(self, device)

    def forward(self, x):
        _check_trailing(self, x)
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
                f", bias={self.bias is not None}")


class RMSNorm(Module):
    """``RMSNorm(normalized_shape, eps=None, elementwise_affine=True)``: x / sqrt(mean(x^2) + eps) * weight over
    the trailing ``normalized_shape`` dims; ``weight`` starts as ones; ``eps=None`` is the machine epsilon
    of the input's dtype (PyTorch's)."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine: bool = True, device=None, dtype=None):
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        w = np.ones(self.normalized_shape, dtype=np.dtype(dtype or default_dtype()))
        self.register_parameter("weight", Parameter(w) if elementwise_affine else None)  # (no bias, as PyTorch's)
        _finish(self, device)

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, x):
        _check_trailing(self, x)
        return rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


_mask = threading.local()  # per thread: simulated ranks are threads


@contextlib.contextmanager
def valid_rows(mask):
    """Inside, batch norm (``BatchNorm1d/2d``, ``SyncBatchNorm``) computes batch statistics over the rows
    where ``mask`` is True.

    ``mask``: a boolean array over the batch dimension (rows marked False are
    padding), or None for "every row". Applies to inputs whose batch size is
    ``len(mask)``.
    """
    previous = getattr(_mask, "value", None)
    # (on the host, once: a device mask too, which np.asarray refuses; its count and per-batch checks read it there)
    _mask.value = None if mask is None else np.asarray(to_numpy(mask), dtype=bool)
    try:
        yield
    finally:
        _mask.value = previous


def current_valid_rows(n_rows):
    """The :func:`valid_rows` mask for an input of ``n_rows`` rows; None when every row is real (or the
    mask is for another batch size)."""
    mask = getattr(_mask, "value", None)
    if mask is None or len(mask) != n_rows or mask.all():
        return None
    return mask


class ValidRowsBatchNormTrain(BatchNormTrain):
    """BatchNormTrain whose statistics (``count`` values per channel) came from the rows ``valid`` only.

    Every row is normalized with them; a padded row's output depends on its own
    input only through the normalization, a real row's also through the
    statistics, and every row's output on weight and bias. So the input
    gradient's statistics terms go to the real rows alone (divided by their
    count), while their sums, and the weight and bias gradients, run over every
    row whose output the loss reads (the trainer's loss reads none of the padded
    ones). The two sums pass through ``combine_grad_sums`` (here: this process
    alone), so ``SyncBatchNorm`` shares this backward and all-reduces them.
    """

    torch_name = None  # (distnn's: batch norm over the rows a mask keeps; no PyTorch node)

    def forward(self, x, weight, bias, mean, var, count, eps=1e-5, valid=None):
        self.valid = valid
        return super().forward(x, weight, bias, mean, var, count, eps)

    def grads(self, g):
        nd, xhat = g.ndim, self.xhat
        axes = _bn_axes(nd)
        nin = self.needs_input_grad
        sum_g = g.sum(axis=axes)  # over every row: padded rows' outputs depend on the statistics too
        sum_gxhat = (g * xhat).sum(axis=axes)
        gx = None
        if nin[0]:
            tot_g, tot_gxhat = self.combine_grad_sums(sum_g, sum_gxhat)  # (SyncBatchNorm: a collective)
            xp = get_array_module(g)
            valid = xp.asarray(self.valid)
            M = self.count
            scale = _bcast(self.rstd if self.weight is None else self.weight * self.rstd, nd)
            gx = scale * g
            if M:  # (0: no real row here, as on a SyncBatchNorm rank holding padding only)
                gx[valid] -= scale * (_bcast(tot_g / M, nd) + xhat[valid] * _bcast(tot_gxhat / M, nd))
        gw = sum_gxhat if (self.weight is not None and nin[1]) else None
        gb = sum_g if (self.has_bias and nin[2]) else None
        return gx, gw, gb


class _BatchNorm(_RunningStatsNorm):
    """Shared by BatchNorm1d/2d (and SyncBatchNorm): per-channel normalization over (N, C, ...)."""

    # PyTorch fills a missing num_batches_tracked in (keeping the module's count) when a state dict
    # has no version metadata, as every plain dict of arrays has: older checkpoints lack the key.
    _optional_state_keys = ("num_batches_tracked",)

    _expected_ndims = (2, 3, 4)
    _shape_text = "(N, C, ...)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        _norm_base_init(self, num_features, eps, momentum, affine, track_running_stats, device, dtype, bias)

    def _check_input_dim(self, x):
        shape = tuple(x.shape)
        if len(shape) not in self._expected_ndims:
            raise ValueError(f"{self.where()}: expected input of shape {self._shape_text}, got shape {shape}")
        if shape[1] != self.num_features:
            raise ValueError(
                f"{self.where()}: expected {self.num_features} channels (dim 1), got input of shape {shape}"
            )

    def _momentum_factor(self):
        """Count this batch (training with running stats) and return the averaging factor.

        momentum=None means a cumulative moving average: factor 1/num_batches_tracked.
        """
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:
                return 1.0 / float(self.num_batches_tracked.data)
        return 0.0 if self.momentum is None else self.momentum

    def _use_batch_stats(self):
        return self.training or self.running_mean is None

    def forward(self, x):
        self._check_input_dim(x)
        use_batch = self._use_batch_stats()
        shape = tuple(x.shape)
        if use_batch and math.prod(shape[:1] + shape[2:]) == 1:  # checked before the batch is counted
            # (a batch of one sample is most often an epoch's last, partial batch: say how to drop it)
            hint = (" (a batch of one sample: data.drop_last = true, or DataLoader(drop_last=True), drops an "
                    "epoch's last partial batch)") if shape[0] == 1 else ""
            raise ValueError(
                f"{self.where()}: expected more than 1 value per channel when training, got input of shape {shape}"
                + hint
            )
        valid = current_valid_rows(shape[0]) if use_batch else None
        if valid is not None:
            return self._forward_valid_rows(x, valid)
        factor = self._momentum_factor()
        # Running stats are updated only when training; in eval they are read.
        track = not self.training or self.track_running_stats
        return batch_norm(
            x,
            self.running_mean if track else None,
            self.running_var if track else None,
            self.weight, self.bias, use_batch, factor, self.eps,
        )

    def _forward_valid_rows(self, x, valid):
        """Batch statistics over the real rows (``valid``) only; padded rows are normalized with them.

        A batch with fewer than two real values per channel (a rank's last batch
        holding one real row, or padding only) has no variance to learn from: it
        is normalized with the statistics of all its rows, as without padding,
        and leaves the running statistics (and the batch count) alone.
        """
        data = x.data
        if int(valid.sum()) * (data.size // max(data.shape[0] * data.shape[1], 1)) <= 1:
            mean, var, count = batch_stats(data)
            return BatchNormTrain.apply(x, self.weight, self.bias, mean=mean, var=var, count=count, eps=self.eps)
        mask = get_array_module(data).asarray(valid)
        mean, var, count = batch_stats(data[mask])
        if self.training and self.track_running_stats:
            factor = self._momentum_factor()
            update_running_stats(self.running_mean, self.running_var, mean, var, count, factor)
        return ValidRowsBatchNormTrain.apply(x, self.weight, self.bias, mean=mean, var=var, count=count,
                                             eps=self.eps, valid=mask)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs."""

    _expected_ndims = (2, 3)
    _shape_text = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs."""

    _expected_ndims = (4,)
    _shape_text = "(N, C, H, W)"


class BatchNorm3d(_BatchNorm):
    """Batch norm over (N, C, D, H, W) inputs."""

    _expected_ndims = (5,)
    _shape_text = "(N, C, D, H, W)"


class GroupNorm(_AffineNorm):
    """Normalize each sample's ``num_groups`` groups of channels (input (N, C, *)), then scale and shift per
    channel by ``weight`` (ones) and ``bias`` (zeros) of (C,) when ``affine`` (``bias=False``: no bias)."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels={num_channels} must be divisible by num_groups={num_groups}")
        self.num_groups, self.num_channels, self.eps, self.affine = int(num_groups), int(num_channels), eps, affine
        _affine_parameters(self, self.num_channels, affine, bias, dtype)
        _finish(self, device)

    def forward(self, x):
        shape = tuple(x.shape)
        if len(shape) < 2 or shape[1] != self.num_channels:
            raise ValueError(f"{self.where()}: expected input (N, {self.num_channels}, *), got shape {shape}")
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")
