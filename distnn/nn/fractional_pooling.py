"""Fractional max pooling modules: ``FractionalMaxPool2d`` and ``FractionalMaxPool3d`` (PyTorch's arguments;
the op is :mod:`distnn.functional.fractional_pooling`)."""
from __future__ import annotations

from distnn.functional.fractional_pooling import _tuple, fractional_max_pool2d, fractional_max_pool3d

from .module import Module
from .pooling import _named


class _FractionalMaxPoolNd(Module):
    """What FractionalMaxPool2d and FractionalMaxPool3d share: PyTorch's checks and attributes (tuples of
    ``_nd``), ``_random_samples`` a buffer (in the state_dict when given), ``_pool`` the functional op."""

    def __init__(self, kernel_size, output_size=None, output_ratio=None, return_indices: bool = False,
                 _random_samples=None):
        super().__init__()
        nd, name = type(self)._nd, type(self).__name__
        self.kernel_size = _tuple(kernel_size, nd, "kernel_size", name)
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)
        self.output_size = _tuple(output_size, nd, "output_size", name) if output_size is not None else None
        self.output_ratio = None
        if output_ratio is not None:
            r = tuple(output_ratio) if isinstance(output_ratio, (tuple, list)) else (output_ratio,)
            self.output_ratio = r * nd if len(r) == 1 else r
        if output_size is None and output_ratio is None:
            raise ValueError(f"{name} requires specifying either an output size, or a pooling ratio")
        if output_size is not None and output_ratio is not None:
            raise ValueError("only one of output_size and output_ratio may be specified")
        if self.output_ratio is not None:
            if len(self.output_ratio) != nd or not all(0 < r < 1 for r in self.output_ratio):
                raise ValueError(f"output_ratio must be between 0 and 1 (got {output_ratio})")

    def forward(self, input):
        return _named(self, type(self)._pool, input, self.kernel_size, self.output_size, self.output_ratio,
                      self.return_indices, _random_samples=self._random_samples)


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    """Fractional max pooling of (N, C, H, W) or (C, H, W) (Graham; PyTorch's ``nn.FractionalMaxPool2d``):
    kH x kW windows at pseudo-random starts giving ``output_size`` or ``output_ratio`` (in (0, 1)) times the
    input's size; with ``return_indices``, ``forward`` returns ``(output, indices)`` as ``MaxUnpool2d`` takes
    them. The starts are drawn per (sample, channel) from distnn's random streams (the same on any number of
    data-parallel ranks) unless ``_random_samples`` ((N, C, 2) in [0, 1)) fixes them."""

    _nd = 2
    _pool = staticmethod(fractional_max_pool2d)


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    """Fractional max pooling of (N, C, T, H, W) or (C, T, H, W) (PyTorch's ``nn.FractionalMaxPool3d``), as
    :class:`FractionalMaxPool2d` with kT x kH x kW windows; ``_random_samples`` is (N, C, 3)."""

    _nd = 3
    _pool = staticmethod(fractional_max_pool3d)
