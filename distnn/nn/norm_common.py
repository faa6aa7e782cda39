"""What batch, instance, layer and group norm share: the optional affine parameters (``weight`` ones,
``bias`` zeros) and PyTorch's ``_NormBase`` set-up of batch and instance norm (the running statistics).

Apart from :mod:`.normalization` so that :mod:`.instance_norm` can build on it without importing the
module that re-exports it.
"""
from __future__ import annotations

import numpy as np

from distnn.backend import default_dtype

from . import init
from .linear import _finish
from .module import Module, Parameter


def _affine_parameters(module, shape, affine: bool, bias: bool, dtype) -> np.dtype:
    """A norm layer's optional ``weight`` (ones) and ``bias`` (zeros) of ``shape`` (``bias=False``: no bias);
    returns the dtype resolved."""
    dtype = np.dtype(dtype or default_dtype())
    module.register_parameter("weight", Parameter(np.ones(shape, dtype=dtype)) if affine else None)
    module.register_parameter("bias", Parameter(np.zeros(shape, dtype=dtype)) if affine and bias else None)
    return dtype


class _AffineNorm(Module):
    """A norm layer whose optional affine parameters start as ones and zeros (see _affine_parameters)."""

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)


def _norm_base_init(module, num_features, eps, momentum, affine, track_running_stats, device, dtype, bias):
    """PyTorch's _NormBase (batch and instance norm): ``weight`` (ones) and ``bias`` (zeros) of (C,) when
    ``affine``; buffers ``running_mean`` (zeros), ``running_var`` (ones) and ``num_batches_tracked`` when
    ``track_running_stats``."""
    module.num_features = int(num_features)
    module.eps = eps
    module.momentum = momentum
    module.affine = affine
    module.track_running_stats = track_running_stats
    dtype = _affine_parameters(module, module.num_features, affine, bias, dtype)
    if track_running_stats:
        module.register_buffer("running_mean", np.zeros(module.num_features, dtype=dtype))
        module.register_buffer("running_var", np.ones(module.num_features, dtype=dtype))
        module.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
    else:
        module.register_buffer("running_mean", None)
        module.register_buffer("running_var", None)
        module.register_buffer("num_batches_tracked", None)
    _finish(module, device)


class _RunningStatsNorm(_AffineNorm):
    """What batch and instance norm share: optional affine parameters and optional running statistics."""

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        super().reset_parameters()
