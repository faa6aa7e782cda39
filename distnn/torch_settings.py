"""PyTorch's global settings and small queries that have no other home: the float32 matmul precision, the
warn-always flag, flush-denormal, ``init_num_threads``, ``typename``/``is_storage``/``get_device``,
``empty_permuted``, the deprecated ``set_default_tensor_type``, and the autocast cache, nesting and CPU switches
(wired to :mod:`distnn.autograd.autocast_state`, the state :class:`distnn.autocast` sets).

Where numpy cannot do what the setting asks (TF32 matmuls, flushing denormals), the value is checked and recorded
as PyTorch checks and records it, and each docstring says what it does not change.
"""
from __future__ import annotations

import threading
import warnings

import numpy as np

from .autograd.autocast_state import current as _autocast_current, enter as _autocast_enter
from .autograd.tensor import Tensor
from .backend import default_dtype, device_of

__all__ = ["set_float32_matmul_precision", "get_float32_matmul_precision", "set_warn_always", "is_warn_always_enabled",
           "set_flush_denormal", "init_num_threads", "typename", "is_storage", "get_device", "empty_permuted",
           "set_default_tensor_type", "clear_autocast_cache", "is_autocast_cache_enabled",
           "set_autocast_cache_enabled", "autocast_increment_nesting", "autocast_decrement_nesting",
           "is_autocast_cpu_enabled", "set_autocast_cpu_enabled"]

_PRECISIONS = ("highest", "high", "medium")
_settings = {"matmul_precision": "highest", "warn_always": False}


def _bool(value, who: str) -> bool:
    """PyTorch's check of a flag: a Python bool and nothing else (1, "yes", numpy's bool_ are refused)."""
    if not isinstance(value, bool):
        raise RuntimeError(f"{who} expects a bool, but got {type(value).__name__}")
    return value


def set_float32_matmul_precision(precision: str) -> None:
    """``torch.set_float32_matmul_precision``: "highest" (the default), "high" or "medium", recorded and
    returned by :func:`get_float32_matmul_precision`. numpy/cupy matmuls here always run in full float32
    (no TF32 or bfloat16 passes), so every setting computes as "highest". Another string warns and changes
    nothing, as PyTorch's; a non-string is a RuntimeError."""
    if not isinstance(precision, str):
        raise RuntimeError(f"set_float32_matmul_precision expects a str, but got {type(precision).__name__}")
    if precision not in _PRECISIONS:
        warnings.warn(f"{precision} is not one of 'highest', 'high', or 'medium'; the current "
                      "setFloat32MatmulPrecision call has no effect.", UserWarning, stacklevel=2)
        return
    _settings["matmul_precision"] = precision


def get_float32_matmul_precision() -> str:
    """The precision :func:`set_float32_matmul_precision` recorded ("highest" until then)."""
    return _settings["matmul_precision"]


def set_warn_always(b: bool) -> None:
    """``torch.set_warn_always``: with True, the warnings distnn gives once a process (as PyTorch's
    TORCH_WARN_ONCE, e.g. rms_norm's input/weight dtype mismatch) are given every time."""
    _settings["warn_always"] = _bool(b, "setWarnOnlyOnce")


def is_warn_always_enabled() -> bool:
    """Whether :func:`set_warn_always` turned warn-always on (False until then)."""
    return _settings["warn_always"]


def set_flush_denormal(mode: bool) -> bool:
    """``torch.set_flush_denormal``: PyTorch sets the CPU's flush-to-zero/denormals-are-zero bits and returns
    True where the CPU has them (every x86 CPU with SSE3), as here. numpy offers no way to set those bits,
    so this returns True after checking ``mode`` and changes nothing: denormal numbers stay denormal."""
    _bool(mode, "flush_denormal")
    return True


def init_num_threads() -> None:
    """``torch.init_num_threads``: PyTorch initialises its OpenMP pool for the calling thread; distnn's only
    pool is the BLAS library's (see :mod:`distnn.thread_settings`), already set up, so this does nothing."""
    return None


_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor", "int64": "LongTensor",
               "int32": "IntTensor", "int16": "ShortTensor", "int8": "CharTensor", "uint8": "ByteTensor",
               "bool": "BoolTensor", "complex64": "ComplexFloatTensor", "complex128": "ComplexDoubleTensor"}


def typename(obj) -> str:
    """``torch.typename``: a tensor's legacy type name (``'distnn.FloatTensor'``, as ``Tensor.type()``), else
    the object's class as ``module.QualName`` (builtins without a module: ``'int'``, ``'NoneType'``)."""
    if isinstance(obj, Tensor):
        return obj.type()
    cls = obj if isinstance(obj, type) else type(obj)
    module = getattr(cls, "__module__", "builtins")
    return cls.__qualname__ if module in ("builtins", None) else f"{module}.{cls.__qualname__}"


def is_storage(obj) -> bool:
    """``torch.is_storage``: distnn has no storage objects (a tensor's memory is a numpy/cupy array), so no
    object is one; a tensor is not one either, as in PyTorch."""
    return False


def get_device(input) -> int:  # noqa: A002 - PyTorch's name
    """``torch.get_device``: -1 for a tensor on the CPU, the GPU's ordinal for one on a GPU."""
    if not isinstance(input, Tensor):
        raise TypeError(f"get_device(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    return -1 if device_of(input.data) == "cpu" else int(input.data.device.id)


def empty_permuted(size, physical_layout, *, dtype=None, requires_grad=False) -> Tensor:
    """``torch.empty_permuted``: a dense tensor of ``size`` whose dims lie in memory in ``physical_layout``'s
    order, outermost first (``(0, 2, 3, 1)`` is NHWC for an NCHW size), so its strides are PyTorch's. Its values
    are zeros (PyTorch's are uninitialized: never read them before writing)."""
    size, layout = tuple(int(s) for s in size), tuple(int(d) for d in physical_layout)
    if len(size) != len(layout):
        raise RuntimeError(f"Number of dimensions in size does not match the length of the physical_layout; i.e. "
                           f"len(size) = {len(size)} is not equal to len(physical_layout) = {len(layout)}")
    for i, d in enumerate(layout):
        if not 0 <= d < len(size):
            raise RuntimeError(f"Dimension out of range (expected to be between 0 and {len(size) - 1}, but got {d} "
                               f"at index {i}).  NB: negative dims not currently supported")
    if len(set(layout)) != len(layout):
        raise RuntimeError("Duplicate dim not allowed")
    if any(s < 0 for s in size):
        raise RuntimeError(f"Trying to create tensor with negative dimension: {list(size)}")
    dtype = np.dtype(default_dtype() if dtype is None else dtype)
    # allocated in the physical order, then seen in the logical one: logical dim d is physical axis layout.index(d)
    data = np.zeros([size[d] for d in layout], dtype=dtype).transpose(np.argsort(layout))
    if data.size == 0:  # (numpy's empty arrays have no strides to speak of: PyTorch's, sizes 0 counted as 1)
        steps, step = [0] * len(size), 1
        for d in reversed(layout):
            steps[d], step = step, step * max(size[d], 1)
        data = np.lib.stride_tricks.as_strided(data, size, tuple(s * dtype.itemsize for s in steps))
    return Tensor(data, requires_grad=requires_grad)


def set_default_tensor_type(t) -> None:
    """``torch.set_default_tensor_type`` (deprecated, with PyTorch's warning): a floating type name
    (``"torch.DoubleTensor"``, ``"distnn.FloatTensor"``, ``"torch.HalfTensor"``) or torch's class of one sets
    the default dtype, as :func:`distnn.set_default_dtype`; a non-floating type is refused as PyTorch refuses
    it. The ``cuda`` types are refused: use :func:`distnn.set_default_device` with the dtype."""
    warnings.warn("torch.set_default_tensor_type() is deprecated as of PyTorch 2.1, please use "
                  "torch.set_default_dtype() and torch.set_default_device() as alternatives.", UserWarning,
                  stacklevel=2)
    name = t if isinstance(t, str) else f"{getattr(t, '__module__', '')}.{getattr(t, '__name__', '')}"
    prefix, _, base = name.rpartition(".")
    by_name = {v: k for k, v in _TYPE_NAMES.items()}
    if prefix not in ("torch", "distnn") or base not in by_name:
        raise TypeError(f"set_default_tensor_type(): invalid type {t!r}: expected a CPU tensor type such as "
                        "'torch.DoubleTensor' or 'torch.FloatTensor'")
    dtype = np.dtype(by_name[base])
    if dtype.kind != "f":
        raise TypeError("only floating-point types are supported as the default type")
    from .dtypes import set_default_dtype

    set_default_dtype(dtype)


# ------------------------------------------------------------------ autocast: cache, nesting, the CPU switch
class _AutocastExtras(threading.local):
    # thread-local, as PyTorch's; distnn casts afresh each time (no cache), so the cache flag is recorded only
    cache_enabled = True
    nesting = 0


_extras = _AutocastExtras()


def clear_autocast_cache() -> None:
    """``torch.clear_autocast_cache``: distnn keeps no cache of autocast's casts (each op casts its inputs
    afresh), so there is nothing to clear."""
    return None


def is_autocast_cache_enabled() -> bool:
    """The flag :func:`set_autocast_cache_enabled` set for this thread (True until then)."""
    return _extras.cache_enabled


def set_autocast_cache_enabled(enabled: bool) -> None:
    """``torch.set_autocast_cache_enabled``: recorded per thread; distnn's casts are never cached either way."""
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool (got {type(enabled).__name__})")
    _extras.cache_enabled = enabled


def autocast_increment_nesting() -> int:
    """``torch.autocast_increment_nesting``: one more level of this thread's autocast nesting; returns it."""
    _extras.nesting += 1
    return _extras.nesting


def autocast_decrement_nesting() -> int:
    """``torch.autocast_decrement_nesting``: one level less (PyTorch clears its cast cache at 0); returns it.
    As PyTorch's, unchecked: it goes below 0 when called more often than the increment."""
    _extras.nesting -= 1
    return _extras.nesting


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"torch.{old} is deprecated. Please use torch.{new} instead.", DeprecationWarning, stacklevel=3)


def is_autocast_cpu_enabled() -> bool:
    """PyTorch's deprecated ``is_autocast_cpu_enabled()``, with its warning: whether autocast is on for the
    CPU in this thread (``distnn.amp.is_autocast_enabled("cpu")``)."""
    _deprecated("is_autocast_cpu_enabled()", "is_autocast_enabled('cpu')")
    return _autocast_current("cpu") is not None


def set_autocast_cpu_enabled(enabled: bool) -> None:
    """PyTorch's deprecated ``set_autocast_cpu_enabled(enabled)``, with its warning: switch this thread's CPU
    autocast on (lowering to ``distnn.amp.get_autocast_dtype("cpu")``, float16 unless set) or off, without a
    region; an enclosing :class:`distnn.autocast` restores its own state when it exits."""
    _deprecated("set_autocast_cpu_enabled(enabled)", "set_autocast_enabled('cpu', enabled)")
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool (got {type(enabled).__name__})")
    from .amp.autocast_mode import _defaults

    lower = _defaults.cpu
    if enabled and lower != np.float16:  # (as distnn.autocast: float16 is the only dtype it lowers to)
        warnings.warn(f"In CPU autocast, but the target dtype is not supported ({lower}). Disabling autocast.",
                      stacklevel=2)
        enabled = False
    _autocast_enter("cpu", lower if enabled else None)
