"""Array-module selection: numpy on the CPU, cupy on a GPU.

Every op asks ``xp = get_array_module(x)`` and never imports cupy directly, so
``import distnn`` works with neither cupy nor mpi4py installed.
"""
from __future__ import annotations

import threading

import numpy as np

_default_dtype = np.float32  # (distnn.set_default_dtype changes it: read it through default_dtype())


def default_dtype():
    """The floating dtype new tensors, parameters and Python floats get: float32 unless
    :func:`distnn.set_default_dtype` chose float64 (or float16), as ``torch.get_default_dtype``."""
    return _default_dtype


def default_complex_dtype():
    """The dtype Python complex numbers are created in, as PyTorch's: complex128 under a float64 default, else
    complex64 (PyTorch's complex32 under a float16 default has no numpy dtype: complex64 there too)."""
    return np.complex128 if _default_dtype == np.float64 else np.complex64


def _set_default_dtype(dtype) -> None:
    global _default_dtype
    _default_dtype = np.dtype(dtype).type

_cupy = None
_cupy_checked = False
_cupy_lock = threading.Lock()


def _try_cupy():
    """Import cupy once, lazily; None when it is absent or has no usable GPU."""
    global _cupy, _cupy_checked
    if not _cupy_checked:
        # Simulated ranks are threads: without the lock, a second thread saw "checked" while the
        # first was still importing, took None, and kept its model on the host (found on a GPU).
        with _cupy_lock:
            if not _cupy_checked:
                try:
                    import cupy  # noqa: F401

                    cupy.cuda.runtime.getDeviceCount()
                    _cupy = cupy
                except Exception:  # ImportError, or no CUDA driver/device
                    _cupy = None
                _cupy_checked = True
    return _cupy


def gpu_available() -> bool:
    """True when cupy imports and sees at least one CUDA device."""
    return _try_cupy() is not None


# Types that always mean numpy: checked first so the common case costs one set lookup.
_HOST_TYPES = frozenset({np.ndarray, int, float, bool, complex, type(None), np.float16, np.float32, np.float64,
                         np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_, tuple, list})


def get_array_module(*arrays):
    """Return the array module (numpy or cupy) that owns ``arrays``.

    Tensors are looked through to their ``.data``. Anything that is not a cupy
    array (numpy arrays, Python scalars, None) means numpy.
    """
    for a in arrays:
        t = type(a)
        if t in _HOST_TYPES:
            continue
        if t.__module__.startswith("cupy"):
            return _try_cupy()
        d = getattr(a, "data", None)  # a Tensor (numpy scalars' .data is a memoryview: host)
        if d is not None and type(d).__module__.startswith("cupy"):
            return _try_cupy()
    return np


def unwrap(x):
    """A Tensor's array; arrays themselves pass through (their own ``.data`` is a raw buffer: a
    memoryview for numpy, the device memory pointer for cupy)."""
    if isinstance(x, (np.ndarray, np.generic)) or type(x).__module__.startswith("cupy"):
        return x
    return getattr(x, "data", x)


_unwrap = unwrap


def as_array(x):
    """A Tensor's array, an array (numpy's or cupy's) itself, anything else (a number, a list) through
    ``np.asarray``, which refuses a cupy array (a raw device operand, ``op(x, t.data)``, must not reach it)."""
    x = unwrap(x)
    return x if hasattr(x, "__cuda_array_interface__") else np.asarray(x)


def to_numpy(array):
    """Copy ``array`` (numpy or cupy, or a Tensor) to a numpy array on the host."""
    array = _unwrap(array)
    if type(array).__module__.startswith("cupy"):
        return array.get()
    return np.asarray(array)


def is_device_name(name) -> bool:
    """Whether ``name`` names a device (``cpu``, ``cuda``, ``cuda:N``, ``gpu``) rather than a dtype."""
    return isinstance(name, str) and name.split(":")[0] in ("cpu", "cuda", "gpu")


def resolve_device(device: str) -> str:
    """``"cpu"``, or ``"cuda:N"`` for ``"cuda"``/``"gpu"`` (the current device, as in PyTorch) or ``"cuda:N"``."""
    if device == "cpu":
        return "cpu"
    kind, _, index = device.partition(":")
    if kind not in ("cuda", "gpu"):
        raise ValueError(f"unknown device {device!r}; expected 'cpu' or 'cuda[:N]'")
    cp = _try_cupy()
    if cp is None:
        raise RuntimeError(f"device {device!r} requested but cupy with a CUDA GPU is not available")
    return f"cuda:{int(index) if index else cp.cuda.Device().id}"


def to_device(array, device: str):
    """Move a numpy/cupy array to ``"cpu"`` or ``"cuda"`` (the current GPU; ``"cuda:N"``: GPU N)."""
    target = resolve_device(device)
    if target == "cpu":
        return to_numpy(array)
    array = _unwrap(array)
    if device_of(array) == target:
        return array
    with _cupy.cuda.Device(int(target.split(":")[1])):
        # (cp.asarray would hand back an array of another GPU unmoved)
        return _cupy.array(array, copy=True) if type(array).__module__.startswith("cupy") else _cupy.asarray(array)


def select_gpu(local_rank: int) -> None:
    """Make GPU ``local_rank % count`` the current device of this thread (one GPU per rank on a node)."""
    cp = _try_cupy()
    if cp is not None:
        cp.cuda.Device(int(local_rank) % cp.cuda.runtime.getDeviceCount()).use()


def device_of(array) -> str:
    array = _unwrap(array)
    if type(array).__module__.startswith("cupy"):
        return f"cuda:{array.device.id}"
    return "cpu"


def open_grid(xp, shape):
    """``xp.indices(shape, sparse=True)`` as a list: one ``arange`` per axis, shaped to broadcast against the
    others. cupy's ``indices`` has no ``sparse`` argument; this serves numpy and cupy alike."""
    n = len(shape)
    return [xp.arange(size).reshape((1,) * k + (size,) + (1,) * (n - k - 1)) for k, size in enumerate(shape)]
