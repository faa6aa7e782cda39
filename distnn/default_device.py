"""PyTorch's ``set_default_device``/``get_default_device``: where distnn's creation functions put new tensors.

``"cpu"`` (numpy, the default) or ``"cuda"``/``"cuda:N"`` (cupy; refused with a RuntimeError where cupy
with a CUDA GPU is not available). Devices are strings in distnn (``Tensor.device`` is ``"cpu"`` or
``"cuda:N"``). The top-level creation functions that take no input tensor (``distnn.zeros``, ``ones``,
``full``, ``empty``, ``eye``, ``arange``, ``linspace``, ``logspace``, ``rand``, ``randn``, ``randint``,
``randperm``, ``tensor``, ``normal`` with a size, the windows) make their tensor on the default device,
through :func:`on_default_device`; a ``*_like`` function follows its input, as in PyTorch.
"""
from __future__ import annotations

import functools

from distnn.backend import device_of, resolve_device, to_device

__all__ = ["set_default_device", "get_default_device"]

_device = ["cpu"]  # (a list: one module-level cell, read on every creation call)


def set_default_device(device) -> None:
    """Make new tensors on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``; None: back to ``"cpu"``)."""
    if device is None:
        device = "cpu"
    if not isinstance(device, str):
        device = str(device)  # (a torch.device prints as its name)
    try:
        resolved = resolve_device(device)
    except ValueError:
        raise RuntimeError(f"Expected one of cpu, cuda device type at start of device string: {device}") from None
    _device[0] = resolved


def get_default_device() -> str:
    """The device new tensors are made on: ``"cpu"`` or ``"cuda:N"``."""
    return _device[0]


def place(t):
    """``t`` on the default device (itself when it is there already; a new leaf otherwise)."""
    from distnn.autograd.tensor import Tensor

    if not isinstance(t, Tensor) or device_of(t.data) == _device[0]:
        return t
    return Tensor(to_device(t.data, _device[0]), requires_grad=t.requires_grad)


def on_default_device(create):
    """``create`` (a creation function), its tensor put on the default device when that is not the CPU."""
    @functools.wraps(create)
    def created(*args, **kwargs):
        t = create(*args, **kwargs)
        return t if _device[0] == "cpu" else place(t)
    return created
