"""Lazy norm layers (PyTorch's ``LazyBatchNorm1d/2d/3d`` and ``LazyInstanceNorm1d/2d/3d``): ``num_features``
from the first input.

Built as PyTorch's ``_LazyNormBase``: the plain layer with 0 features, whose ``weight``/``bias`` (when
``affine``) are :class:`UninitializedParameter` s and whose ``running_mean``/``running_var`` (when
``track_running_stats``) are :class:`UninitializedBuffer` s; ``num_batches_tracked`` is a real 0 from the
start. The first call materializes them with (C,), resets them as the plain layer does (ones, zeros; running
statistics 0 and 1) and turns the module into the plain layer (``type(m) is BatchNorm2d`` afterwards).

Note PyTorch's defaults: the lazy instance norms take ``_LazyNormBase``'s ``affine=True,
track_running_stats=True`` (the plain InstanceNorm's are False): so do these.

Where this differs from PyTorch 2.13, on purpose:

- an input of the wrong rank is refused before anything is materialized (the layer stays lazy); PyTorch
  materializes from it first and then refuses;
- ``num_features`` of an unbatched instance-norm input (C, L) is C (dim 0); PyTorch reads dim 1, a size
  the layer then refuses;
- a layer with neither affine parameters nor running statistics still takes ``num_features`` from its first
  input (PyTorch leaves it 0 and warns at every call that the input does not match it).

Before the first call, ``load_state_dict`` materializes a layer whose placeholders are parameters only (affine,
no running statistics); one with running statistics refuses it (the placeholder buffers have no shape for
Module.load_state_dict to check), as ``state_dict()`` refuses: run a forward first.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd import Tensor, no_grad
from distnn.backend import default_dtype

from .lazy import LazyModuleMixin, UninitializedBuffer, UninitializedParameter, _input_shape
from .linear import _finish
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d

__all__ = ["LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d",
           "LazyInstanceNorm3d"]


class _LazyNormBase(LazyModuleMixin):
    """``num_features`` from dim 1 of the first input (dim 0 of an unbatched instance-norm input)."""

    def __init__(self, eps: float = 1e-5, momentum=0.1, affine: bool = True, track_running_stats: bool = True,
                 device=None, dtype=None, *, bias: bool = True):
        # the plain layer with 0 features and no tensors of its own (as PyTorch's), then the placeholders
        super().__init__(0, eps, momentum, False, False, None, dtype, bias=False)
        self.affine, self.track_running_stats = affine, track_running_stats
        dtype = np.dtype(dtype or default_dtype())
        if affine:
            self.weight = UninitializedParameter(dtype=dtype)
            if bias:
                self.bias = UninitializedParameter(dtype=dtype)
        if track_running_stats:
            self.running_mean = UninitializedBuffer(dtype=dtype)
            self.running_var = UninitializedBuffer(dtype=dtype)
            self.num_batches_tracked = Tensor(np.array(0, dtype=np.int64))
        _finish(self, device)

    def _first_call_pending(self) -> bool:
        return True  # (a lazy class until the first call: num_features comes from it, placeholders or not)

    def _shapes(self) -> dict:
        C = (self.num_features,)
        return {"weight": C, "bias": C, "running_mean": C, "running_var": C}

    def _sizes_from(self, shapes: dict) -> None:
        shape = tuple(next(iter(shapes.values())))
        if len(shape) != 1:
            raise ValueError(f"{self.where()}: checkpoint tensors must be 1-D (num_features,), got shape {shape}")
        self.num_features = int(shape[0])

    def _features(self, shape: tuple) -> int:
        """The channel count of an input of ``shape``; ValueError for an input of the wrong rank."""
        if len(shape) not in self._expected_ndims:
            raise ValueError(f"{self.where()}: expected input of shape {self._shape_text}, got shape {shape}")
        return shape[1]

    def _infer(self, input) -> dict:
        self.num_features = int(self._features(_input_shape(input)))
        return self._shapes()

    def initialize_parameters(self, input) -> None:
        """Infer ``num_features`` from ``input``, materialize the placeholders and reset them as the plain layer."""
        shapes = self._infer(input)
        with no_grad():
            self._materialize(shapes)
            self.reset_parameters()  # (ones and zeros: no draws)


class _LazyInstanceNorm(_LazyNormBase):
    def _features(self, shape: tuple) -> int:
        n = self._no_batch_ndim
        if len(shape) not in (n, n + 1):
            raise ValueError(f"{self.where()}: expected {n}D or {n + 1}D input (got {len(shape)}D input)")
        return shape[len(shape) - n]


def _doc(kind, n, plain):
    return (f"``{plain}`` whose ``num_features`` comes from the first input (PyTorch's ``nn.Lazy{kind}{n}d``).\n\n"
            f"    ``Lazy{kind}{n}d(eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None,\n"
            f"    dtype=None, *, bias=True)``; ``num_features`` is 0 until then.")


class LazyBatchNorm1d(_LazyNormBase, BatchNorm1d):
    __doc__ = _doc("BatchNorm", 1, "BatchNorm1d")
    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyNormBase, BatchNorm2d):
    __doc__ = _doc("BatchNorm", 2, "BatchNorm2d")
    cls_to_become = BatchNorm2d


class LazyBatchNorm3d(_LazyNormBase, BatchNorm3d):
    __doc__ = _doc("BatchNorm", 3, "BatchNorm3d")
    cls_to_become = BatchNorm3d


class LazyInstanceNorm1d(_LazyInstanceNorm, InstanceNorm1d):
    __doc__ = _doc("InstanceNorm", 1, "InstanceNorm1d")
    cls_to_become = InstanceNorm1d


class LazyInstanceNorm2d(_LazyInstanceNorm, InstanceNorm2d):
    __doc__ = _doc("InstanceNorm", 2, "InstanceNorm2d")
    cls_to_become = InstanceNorm2d


class LazyInstanceNorm3d(_LazyInstanceNorm, InstanceNorm3d):
    __doc__ = _doc("InstanceNorm", 3, "InstanceNorm3d")
    cls_to_become = InstanceNorm3d

