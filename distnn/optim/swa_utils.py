"""Stochastic Weight Averaging and EMA of a model's weights (``torch.optim.swa_utils``): ``AveragedModel``,
the averaging functions ``get_swa_avg_fn`` / ``get_ema_avg_fn`` (one tensor at a time) and
``get_swa_multi_avg_fn`` / ``get_ema_multi_avg_fn`` (lists, in place), ``update_bn``, and ``SWALR``
(:mod:`distnn.optim.lr_scheduler_swa`).

Usage is PyTorch's::

    swa_model = AveragedModel(model)                      # EMA: multi_avg_fn=get_ema_multi_avg_fn(0.999)
    swa_scheduler = SWALR(optimizer, swa_lr=0.05)
    for epoch in range(epochs):
        train_one_epoch(model, optimizer)
        if epoch >= swa_start:
            swa_model.update_parameters(model)
            swa_scheduler.step()
    update_bn(loader, swa_model)                          # BatchNorm statistics for the averaged weights
    swa_model(x)                                          # forward of the averaged copy

In a data-parallel run every rank holds the same weights after each step, so each rank's average (a pure
function of those weights) stays identical to every other's without any communication: average the
wrapped module (``AveragedModel(model)``, not the ``DataParallel`` around it).
"""
from __future__ import annotations

import copy
import itertools

import numpy as np

from ..autograd import Tensor, no_grad
from ..autograd.mutation_guard import will_write
from ..backend import device_of, get_array_module, is_device_name, to_device
from ..nn.module import Module
from ..nn.normalization import _BatchNorm
from .lr_scheduler_swa import SWALR

__all__ = ["AveragedModel", "update_bn", "SWALR", "get_ema_multi_avg_fn", "get_swa_multi_avg_fn",
           "get_ema_avg_fn", "get_swa_avg_fn"]


# ------------------------------------------------------------------------------------------- helpers
def _array(t):
    return t.data if isinstance(t, Tensor) else t


def _count(n) -> int:
    """The number of models averaged so far, from a Tensor (PyTorch passes its ``n_averaged``) or an int."""
    return int(_array(n).item()) if hasattr(_array(n), "item") else int(n)


def _is_float(a) -> bool:
    return a.dtype.kind in "fc"


def _as_float(a):
    """An integer buffer (BatchNorm's ``num_batches_tracked``) is averaged in float32, as PyTorch's integer
    tensor times a Python float is float32; the result is truncated back into the integer buffer."""
    return a if _is_float(a) else a.astype(np.float32)


def _lerp_(a, b, w: float) -> None:
    """``a <- a + w * (b - a)`` in place, with torch.lerp's two branches (the far end is exact at w = 1)."""
    one, wt = a.dtype.type(1), a.dtype.type(w)
    diff = b - a
    if abs(w) < 0.5:
        a += wt * diff
    else:
        a[...] = b - diff * (one - wt)


def _check_decay(decay) -> None:
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in [0,1] range.")


# ------------------------------------------------------------------------------- averaging functions
def get_ema_multi_avg_fn(decay=0.999):
    """``fn(ema_params, model_params, n_averaged)`` updating every EMA tensor in place:
    ``ema <- decay * ema + (1 - decay) * model`` (torch's ``_foreach_lerp_`` by ``1 - decay`` for floating
    tensors; integer ones computed in float32 and truncated, as torch's). ``decay`` must be in [0, 1]."""
    _check_decay(decay)

    def ema_update(ema_param_list, current_param_list, _):
        with no_grad():
            for p_ema, p_model in zip(ema_param_list, current_param_list, strict=True):
                a, b = _array(p_ema), _array(p_model)
                if _is_float(a):
                    _lerp_(a, b, 1 - decay)
                else:
                    a[...] = (_as_float(a) * np.float32(decay) + _as_float(b) * np.float32(1 - decay)).astype(a.dtype)
                _bump(p_ema)

    return ema_update


def get_swa_multi_avg_fn():
    """``fn(averaged_params, model_params, n_averaged)`` updating every average in place to the equal-weight
    mean of ``n_averaged + 1`` models: torch's ``_foreach_lerp_`` by ``1 / (n_averaged + 1)`` (a float32 weight,
    as torch computes it from its integer ``n_averaged``). Integer tensors take ``avg + (model - avg) / (n + 1)``
    truncated (torch refuses them here, in its ``addcdiv``)."""

    def swa_update(averaged_param_list, current_param_list, num_averaged):
        n = _count(num_averaged)
        w = float(np.float32(1) / np.float32(n + 1))
        with no_grad():
            for p_avg, p_model in zip(averaged_param_list, current_param_list, strict=True):
                a, b = _array(p_avg), _array(p_model)
                if _is_float(a):
                    _lerp_(a, b, w)
                else:
                    a[...] = _swa_value(a, b, n).astype(a.dtype)
                _bump(p_avg)

    return swa_update


def get_ema_avg_fn(decay=0.999):
    """``fn(ema_param, model_param, n_averaged) -> decay * ema_param + (1 - decay) * model_param`` (a new Tensor;
    :class:`AveragedModel` copies it into the average). ``decay`` must be in [0, 1]."""
    _check_decay(decay)

    def ema_update(ema_param, current_param, num_averaged):
        a, b = _as_float(_array(ema_param)), _as_float(_array(current_param))
        return Tensor(decay * a + (1 - decay) * b)

    return ema_update


def _swa_value(a, b, n: int):
    a, b = _array(a), _array(b)
    if _is_float(a):
        return a + (b - a) / (n + 1)
    return a + (b - a).astype(np.float32) / np.float32(n + 1)  # (torch's integer true division is float32)


def get_swa_avg_fn():
    """``fn(averaged_param, model_param, n_averaged) -> averaged + (model - averaged) / (n_averaged + 1)``, the
    running equal-weight mean (a new Tensor; :class:`AveragedModel` copies it into the average)."""

    def swa_update(averaged_param, current_param, num_averaged):
        return Tensor(_swa_value(averaged_param, current_param, _count(num_averaged)))

    return swa_update


def _bump(t) -> None:
    if isinstance(t, Tensor):
        t._bump_version()  # changed in place: a graph that recorded the old values must not backward


# ------------------------------------------------------------------------------------ AveragedModel
class AveragedModel(Module):
    """``AveragedModel(model, device=None, avg_fn=None, multi_avg_fn=None, use_buffers=False)``: a deep copy of
    ``model`` (``self.module``) whose parameters are a running average of ``model``'s, as PyTorch's.

    :meth:`update_parameters` copies ``model``'s parameters at its first call (``n_averaged`` 0) and then
    averages them in: with ``multi_avg_fn(averaged_list, model_list, n_averaged)`` (in place), with
    ``avg_fn(averaged, model, n_averaged) -> new value``, or by default the equal-weight mean
    ``avg + (model - avg) / (n_averaged + 1)`` (torch's CPU path; its CUDA path lerps by a float32
    ``1 / (n + 1)``, a rounding apart). ``n_averaged`` is an int64 buffer (in ``state_dict`` beside the copy's
    ``module.``-prefixed entries); the functions are not saved. With ``use_buffers`` the buffers
    (BatchNorm's running statistics) are averaged as the parameters are; without, they are copied from
    ``model`` at each update (then :func:`update_bn` recomputes them for the averaged weights).
    ``device`` (``"cpu"``, ``"cuda"``) is where the copy lives.
    """

    def __init__(self, model: Module, device=None, avg_fn=None, multi_avg_fn=None, use_buffers: bool = False):
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        if not isinstance(model, Module):
            raise TypeError(f"AveragedModel: model must be a distnn.nn.Module, got {type(model).__name__}")
        if device is not None and not is_device_name(device):
            raise TypeError(f"AveragedModel: device must be a device name ('cpu', 'cuda', 'cuda:N'), got {device!r}")
        self.module = copy.deepcopy(model)
        n_averaged = np.array(0, dtype=np.int64)
        if device is not None:
            self.module.to(device)
            n_averaged = to_device(n_averaged, device)
        self.register_buffer("n_averaged", n_averaged)
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        """The averaged copy's forward."""
        return self.module(*args, **kwargs)

    def _pairs(self, model):
        """(averaged tensor, model tensor) for each averaged entry, checked to correspond."""
        if self.use_buffers:
            ours = list(itertools.chain(self.module.parameters(), self.module.buffers()))
            theirs = list(itertools.chain(model.parameters(), model.buffers()))
            what = "parameters and buffers"
        else:
            ours, theirs, what = list(self.module.parameters()), list(model.parameters()), "parameters"
        _check_same(ours, theirs, what)
        return ours, theirs

    def update_parameters(self, model: Module) -> None:
        """Average ``model``'s current parameters (and buffers, with ``use_buffers``) into this copy."""
        if not isinstance(model, Module):
            raise TypeError(f"update_parameters: model must be a distnn.nn.Module, got {type(model).__name__}")
        ours, theirs = self._pairs(model)
        n = _count(self.n_averaged)
        # the model's tensors as detached Tensors on this copy's device, sharing nothing with the model
        current = [Tensor(_moved(t.data, a.data)) for a, t in zip(ours, theirs)]
        with no_grad():
            if n == 0:
                for a, c in zip(ours, current):
                    will_write(a)
                    a.data[...] = c.data.astype(a.data.dtype, copy=False)
                    a._bump_version()
            elif self.avg_fn is not None:
                for a, c in zip(ours, current):
                    new = self.avg_fn(a.detach(), c, Tensor(self.n_averaged.data.copy()))
                    will_write(a)
                    a.data[...] = _array(new).astype(a.data.dtype, copy=False)
                    a._bump_version()
            elif self.multi_avg_fn is not None:
                self.multi_avg_fn([a.detach() for a in ours], current, Tensor(self.n_averaged.data.copy()))
                for a in ours:
                    a._bump_version()
            else:
                for a, c in zip(ours, current):
                    will_write(a)
                    a.data[...] = _swa_value(a.data, c.data, n).astype(a.data.dtype, copy=False)
                    a._bump_version()
            if not self.use_buffers:
                # buffers not averaged follow the model (torch's: keep them in sync with the source model)
                ours_b, theirs_b = list(self.module.buffers()), list(model.buffers())
                _check_same(ours_b, theirs_b, "buffers")
                for a, t in zip(ours_b, theirs_b):
                    will_write(a)
                    a.data[...] = _moved(t.data, a.data).astype(a.data.dtype, copy=False)
                    a._bump_version()
        self.n_averaged.data[...] = n + 1


def _moved(array, like):
    """``array`` on ``like``'s device (a copy)."""
    if get_array_module(array) is get_array_module(like) and device_of(array) == device_of(like):
        return array.copy()
    return to_device(array, device_of(like))


def _check_same(ours, theirs, what) -> None:
    if len(ours) != len(theirs):
        raise ValueError(f"AveragedModel.update_parameters: the model has {len(theirs)} {what} but the averaged "
                         f"copy has {len(ours)} (pass the model this AveragedModel was built from)")
    for i, (a, t) in enumerate(zip(ours, theirs)):
        if tuple(a.shape) != tuple(t.shape):
            raise ValueError(f"AveragedModel.update_parameters: {what} #{i} has shape {tuple(t.shape)} in the model "
                             f"but {tuple(a.shape)} in the averaged copy")


# ----------------------------------------------------------------------------------------- update_bn
def update_bn(loader, model: Module, device=None) -> None:
    """Recompute every BatchNorm's running statistics with one pass over ``loader`` (torch's ``update_bn``).

    The statistics are reset and, with ``momentum=None`` for the pass, become the cumulative average over all
    batches; each batch is a Tensor (or array), or a list/tuple whose first element is the input. ``device``
    moves each input there first. The model's mode and the layers' momenta are restored afterwards; a model
    without BatchNorm is left untouched.
    """
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    try:
        with no_grad():
            for input in loader:
                if isinstance(input, (list, tuple)):
                    input = input[0]
                if device is not None:
                    input = input.to(device) if isinstance(input, Tensor) else Tensor(to_device(input, device))
                model(input)
    finally:
        for module, momentum in momenta.items():
            module.momentum = momentum
        model.train(was_training)
