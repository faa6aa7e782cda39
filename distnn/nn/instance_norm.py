"""Instance normalization (``InstanceNorm1d``, ``InstanceNorm2d``, ``InstanceNorm3d``), PyTorch semantics.

Per-(sample, channel) statistics over the spatial positions, with or without running statistics: none
of batch norm's batch-wide machinery (padded rows, momentum counting, synchronized statistics), so a
module of its own; :mod:`.normalization` re-exports the classes.
"""
from __future__ import annotations

import warnings

from distnn.functional.group_norm import instance_norm

from .norm_common import _RunningStatsNorm, _norm_base_init


class _InstanceNorm(_RunningStatsNorm):
    """Shared by InstanceNorm1d/2d/3d: per-(sample, channel) normalization over the spatial positions.

    As PyTorch's: no affine parameters and no running statistics by default; with ``track_running_stats``
    the statistics are updated in training (``momentum=None`` leaves them as they are: PyTorch passes 0
    and never counts ``num_batches_tracked``) and used in eval. Unbatched inputs are a batch of one.
    """

    _no_batch_ndim = 2  # (C, L) for 1d; (C, H, W) for 2d; (C, D, H, W) for 3d

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = False,
                 track_running_stats: bool = False, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        _norm_base_init(self, num_features, eps, momentum, affine, track_running_stats, device, dtype, bias)

    def forward(self, x):
        shape = tuple(x.shape)
        n = self._no_batch_ndim
        if len(shape) not in (n, n + 1):
            raise ValueError(f"{self.where()}: expected {n}D or {n + 1}D input (got {len(shape)}D input)")
        feature_dim = len(shape) - n
        if shape[feature_dim] != self.num_features:
            if self.affine:
                raise ValueError(f"{self.where()}: expected input's size at dim={feature_dim} to match num_features "
                                 f"({self.num_features}), but got: {shape[feature_dim]}.")
            warnings.warn(f"{self.where()}: input's size at dim={feature_dim} does not match num_features. You can "
                          f"silence this warning by not passing in num_features, which is not used because "
                          f"affine=False", stacklevel=2)
        unbatched = len(shape) == n
        if unbatched:
            x = x.reshape((1,) + shape)
        try:
            out = instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                self.training or not self.track_running_stats,
                                self.momentum if self.momentum is not None else 0.0, self.eps)
        except ValueError as e:
            raise ValueError(f"{self.where()}: {e}") from None
        return out.reshape(shape) if unbatched else out

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class InstanceNorm1d(_InstanceNorm):
    """Instance norm over (N, C, L) or unbatched (C, L) inputs."""

    _no_batch_ndim = 2


class InstanceNorm2d(_InstanceNorm):
    """Instance norm over (N, C, H, W) or unbatched (C, H, W) inputs."""

    _no_batch_ndim = 3


class InstanceNorm3d(_InstanceNorm):
    """Instance norm over (N, C, D, H, W) or unbatched (C, D, H, W) inputs."""

    _no_batch_ndim = 4
