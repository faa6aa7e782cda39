"""``LayerNorm`` and batch normalization (``BatchNorm1d``, ``BatchNorm2d``), PyTorch semantics.

``_BatchNorm`` is the base a synchronized batch norm subclasses: it owns the
parameters and buffers (``weight``, ``bias``, ``running_mean``, ``running_var``,
``num_batches_tracked``), the momentum bookkeeping (``_momentum_factor``) and the
input check; ``forward`` calls ``distnn.functional.norm`` whose pieces
(``batch_stats``, ``update_running_stats``, ``BatchNormTrain`` with its
``combine_grad_sums`` hook) can be reused with global statistics.
"""
from __future__ import annotations

import math

import numpy as np

from distnn.backend import DEFAULT_DTYPE
from distnn.functional.norm import batch_norm, layer_norm

from . import init
from .linear import _finish
from .module import Module, Parameter


class LayerNorm(Module):
    """Normalize over the trailing ``normalized_shape`` dims; ``weight`` (ones) and ``bias`` (zeros) of that shape."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        dtype = np.dtype(dtype or DEFAULT_DTYPE)
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        _finish(self, device)

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x):
        shape, ns = tuple(x.shape), self.normalized_shape
        if len(shape) < len(ns) or shape[len(shape) - len(ns):] != ns:
            raise ValueError(f"{self.where()}: expected input whose trailing dimensions are {ns}, got shape {shape}")
        return layer_norm(x, ns, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
                f", bias={self.bias is not None}")


class _BatchNorm(Module):
    """Shared by BatchNorm1d/2d (and SyncBatchNorm): per-channel normalization over (N, C, ...)."""

    # PyTorch fills a missing num_batches_tracked in (keeping the module's count) when a state dict
    # has no version metadata, as every plain dict of arrays has: older checkpoints lack the key.
    _optional_state_keys = ("num_batches_tracked",)

    _expected_ndims = (2, 3, 4)
    _shape_text = "(N, C, ...)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dtype = np.dtype(dtype or DEFAULT_DTYPE)
        if affine:
            self.weight = Parameter(np.ones(self.num_features, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(self.num_features, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(self.num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        _finish(self, device)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

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
        if use_batch and math.prod(shape[:1] + shape[2:]) <= 1:  # checked before the batch is counted
            raise ValueError(
                f"{self.where()}: expected more than 1 value per channel when training, got input of shape {shape}"
            )
        factor = self._momentum_factor()
        # Running stats are updated only when training; in eval they are read.
        track = not self.training or self.track_running_stats
        return batch_norm(
            x,
            self.running_mean if track else None,
            self.running_var if track else None,
            self.weight, self.bias, use_batch, factor, self.eps,
        )

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
