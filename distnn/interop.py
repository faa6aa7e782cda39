"""PyTorch's buffer and exchange functions: ``frombuffer``, ``from_dlpack``/``to_dlpack`` and ``from_file``.

Each shares memory where PyTorch's shares it: ``frombuffer`` views the buffer, ``from_dlpack`` views the
producer's memory (a numpy or cupy array, a torch tensor, any object with ``__dlpack__``, or a DLPack capsule),
``from_file(shared=True)`` maps the file. distnn tensors are DLPack producers themselves
(``Tensor.__dlpack__``/``__dlpack_device__``), so ``torch.from_dlpack(distnn_tensor)`` views their memory too.
"""
from __future__ import annotations

import ctypes
import mmap
import os

import numpy as np

from .autograd.tensor import Tensor
from .backend import default_dtype

__all__ = ["frombuffer", "from_dlpack", "to_dlpack", "from_file"]

_DL_CPU, _DL_CUDA = 1, 2  # DLPack's kDLCPU and kDLCUDA device types


def _np_dtype(dtype, who: str) -> np.dtype:
    # (a torch dtype prints as "torch.float32"; numpy's types and names go to np.dtype as they are)
    name = str(dtype)[len("torch."):] if str(dtype).startswith("torch.") else dtype
    try:
        return np.dtype(name)
    except TypeError:
        raise TypeError(f"{who}(): argument 'dtype' must be a dtype, not {dtype!r}") from None


def _requiring_grad(data, requires_grad: bool) -> Tensor:
    if requires_grad and data.dtype.kind not in "fc":
        raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
    return Tensor(data, requires_grad=requires_grad)


def frombuffer(buffer, *, dtype, count=-1, offset=0, requires_grad=False) -> Tensor:
    """``torch.frombuffer``: a 1-D tensor viewing ``buffer``'s bytes (anything with the buffer protocol) from
    byte ``offset``, ``count`` items of ``dtype`` (-1: to the end). Writes go through to the buffer, both ways.
    A read-only buffer (``bytes``) gives a read-only tensor here (PyTorch's warns and lets writes through)."""
    dt = _np_dtype(dtype, "frombuffer")
    try:
        view = memoryview(buffer)
    except TypeError:
        raise ValueError("object does not implement Python buffer protocol.") from None
    length = view.nbytes
    if length == 0 or count == 0:
        raise ValueError(f"both buffer length ({length}) and count ({count}) must not be 0")
    if not 0 <= offset < length:
        raise ValueError(f"offset ({offset} bytes) must be non-negative and no greater than buffer length "
                         f"({length} bytes) minus 1")
    if count < 0:
        if (length - offset) % dt.itemsize:
            raise ValueError(f"buffer length ({length - offset} bytes) after offset ({offset} bytes) must be a "
                             f"multiple of element size ({dt.itemsize})")
        count = (length - offset) // dt.itemsize
    elif offset + count * dt.itemsize > length:
        raise ValueError(f"requested buffer length ({count} * {dt.itemsize} bytes) after offset ({offset} bytes) "
                         f"must not be greater than actual buffer length ({length} bytes)")
    return _requiring_grad(np.frombuffer(view.cast("B"), dtype=dt, count=count, offset=offset), requires_grad)


class _Capsule:
    """A bare DLPack capsule dressed as a producer, for numpy's/cupy's ``from_dlpack`` (which take producers)."""

    def __init__(self, capsule):
        self.capsule = capsule
        get = ctypes.pythonapi.PyCapsule_GetPointer
        get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        try:
            ptr = get(capsule, b"dltensor")
        except ValueError:  # (named "used_dltensor" once consumed)
            raise RuntimeError("from_dlpack received an invalid capsule. Note that DLTensor capsules can be "
                               "consumed only once, so you might have already constructed a tensor from it "
                               "once.") from None
        # DLManagedTensor starts with DLTensor {void* data; DLDevice {int32 device_type; int32 device_id}; ...}
        device = (ctypes.c_int32 * 2).from_address(ptr + ctypes.sizeof(ctypes.c_void_p))
        self.device = (int(device[0]), int(device[1]))

    def __dlpack__(self, stream=None, **kwargs):
        return self.capsule

    def __dlpack_device__(self):
        return self.device


def _writable(a):
    """``a``, or where numpy made it read-only (it does for a legacy capsule, which carries no read-only flag;
    PyTorch's tensor of one is writable) a writable view of the same memory that keeps ``a`` alive."""
    if a.flags.writeable or a.size == 0:
        return a
    from numpy.lib.array_utils import byte_bounds

    low, high = byte_bounds(a)
    span = (ctypes.c_char * (high - low)).from_address(low)
    span.owner = a  # (the capsule's memory lives while the view does)
    return np.ndarray(a.shape, a.dtype, buffer=span, offset=a.ctypes.data - low, strides=a.strides)


def from_dlpack(ext_tensor) -> Tensor:
    """``torch.from_dlpack``: a tensor viewing the memory of ``ext_tensor``, a DLPack producer (an object with
    ``__dlpack__`` and ``__dlpack_device__``: numpy and cupy arrays, torch tensors, distnn tensors) or a DLPack
    capsule (from :func:`to_dlpack` or ``torch.to_dlpack``; a capsule can be consumed once). CPU memory gives a
    numpy-backed tensor, CUDA memory a cupy-backed one. The tensor does not require grad."""
    if isinstance(ext_tensor, Tensor):
        return Tensor(ext_tensor.data)
    if type(ext_tensor).__name__ == "PyCapsule":
        ext_tensor = _Capsule(ext_tensor)
    if not (hasattr(ext_tensor, "__dlpack__") and hasattr(ext_tensor, "__dlpack_device__")):
        raise TypeError(f"from_dlpack(): expected a DLPack producer (an object with __dlpack__ and "
                        f"__dlpack_device__) or a DLPack capsule, got {type(ext_tensor).__name__}")
    device_type = int(ext_tensor.__dlpack_device__()[0])
    if device_type == _DL_CPU:
        return Tensor(_writable(np.from_dlpack(ext_tensor)))
    if device_type == _DL_CUDA:
        import cupy

        return Tensor(cupy.from_dlpack(ext_tensor))
    raise RuntimeError(f"from_dlpack(): unsupported DLPack device type {device_type} (distnn holds CPU memory in "
                       "numpy, CUDA memory in cupy)")


def to_dlpack(tensor):
    """``torch.to_dlpack``: a DLPack capsule of ``tensor``'s memory (no copy), for any DLPack consumer
    (``torch.from_dlpack``, :func:`from_dlpack`); it can be consumed once. As PyTorch's, a tensor requiring grad
    is exported as it stands (its values; ``Tensor.__dlpack__``, which consumers call, refuses one)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dlpack(): argument 'data' (position 1) must be Tensor, not {type(tensor).__name__}")
    return tensor.data.__dlpack__()


def from_file(filename, shared=None, size=0, *, dtype=None, requires_grad=False) -> Tensor:
    """``torch.from_file``: a 1-D tensor of ``size`` items of ``dtype`` (default: the default dtype) read from
    the start of ``filename``. ``shared=True`` maps the file: writes to the tensor reach the file, and a file
    shorter than ``size`` items is extended (made if missing), as PyTorch's. Otherwise the tensor holds a
    private copy of the bytes and the file must be long enough."""
    dt = np.dtype(default_dtype()) if dtype is None else _np_dtype(dtype, "from_file")
    size = int(size)
    if size < 0:
        raise ValueError(f"from_file(): size must be non-negative, got {size}")
    nbytes = size * dt.itemsize
    if shared:
        with open(filename, "a+b") as f:  # (creates a missing file, as PyTorch's shared mapping)
            if os.fstat(f.fileno()).st_size < nbytes:
                f.truncate(nbytes)
            if nbytes == 0:
                return _requiring_grad(np.zeros(0, dtype=dt), requires_grad)
            mapped = mmap.mmap(f.fileno(), nbytes, access=mmap.ACCESS_WRITE)
        return _requiring_grad(np.frombuffer(mapped, dtype=dt, count=size), requires_grad)
    try:
        with open(filename, "rb") as f:
            have = os.fstat(f.fileno()).st_size
            if have < nbytes:
                raise RuntimeError(f"file <{filename}> size <{have}> is smaller than the required mapping size "
                                   f"<{nbytes}>")
            data = np.frombuffer(bytearray(f.read(nbytes)), dtype=dt, count=size)
    except OSError as e:
        raise RuntimeError(f"unable to open file <{filename}> in read-only mode: {e.strerror} ({e.errno})") from None
    return _requiring_grad(data, requires_grad)
