"""PyTorch's top-level queries and switches of process state that distnn keeps elsewhere: inference
tensors, anomaly mode (:mod:`distnn.autograd.anomaly`) and autocast (:mod:`distnn.autograd.autocast_state`,
:class:`distnn.autocast`)."""
from __future__ import annotations

from distnn.amp.autocast_mode import (_DEVICES, get_autocast_cpu_dtype, get_autocast_dtype, get_autocast_gpu_dtype,
                                     is_autocast_enabled, set_autocast_cpu_dtype, set_autocast_dtype,
                                     set_autocast_gpu_dtype)
from distnn.autograd import anomaly as _anomaly, autocast_state as _autocast_state
from distnn.autograd.anomaly import is_anomaly_check_nan_enabled, is_anomaly_enabled
from distnn.autograd.tensor import Tensor

__all__ = ["is_inference", "is_anomaly_enabled", "is_anomaly_check_nan_enabled", "set_anomaly_enabled",
           "is_autocast_enabled", "get_autocast_dtype", "set_autocast_enabled", "set_autocast_dtype",
           "get_autocast_cpu_dtype", "set_autocast_cpu_dtype", "get_autocast_gpu_dtype", "set_autocast_gpu_dtype"]


def is_inference(input) -> bool:  # noqa: A002
    """``torch.is_inference``: whether ``input`` is an inference tensor (made inside ``inference_mode()``, or a
    view of one): :meth:`Tensor.is_inference`."""
    if not isinstance(input, Tensor):
        raise TypeError(f"is_inference(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    return input.is_inference()


def set_anomaly_enabled(enabled: bool, check_nan: bool = True) -> None:
    """``torch.set_anomaly_enabled``: switch anomaly detection (``distnn.autograd.detect_anomaly``'s) on or off
    for the process, and whether it checks backward results for NaN."""
    _anomaly._set(enabled, check_nan)


def set_autocast_enabled(device_type, enabled=None) -> None:
    """``torch.set_autocast_enabled(device_type, enabled)``: switch this thread's autocast for ``"cpu"`` or
    ``"cuda"`` on (float16, distnn's only autocast dtype, or the dtype already on) or off. The older form
    ``set_autocast_enabled(enabled)`` means ``"cuda"``, as PyTorch's."""
    if isinstance(device_type, bool) and enabled is None:
        device_type, enabled = "cuda", device_type
    if device_type not in _DEVICES:
        raise RuntimeError(f"set_autocast_enabled: unsupported device type {device_type!r}; expected 'cpu' or 'cuda'")
    if not isinstance(enabled, bool):
        raise TypeError(f"set_autocast_enabled(): argument 'enabled' must be bool, not {type(enabled).__name__}")
    _autocast_state.enter(device_type, get_autocast_dtype(device_type) if enabled else None)
