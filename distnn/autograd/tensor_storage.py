"""PyTorch's storage-level Tensor methods (a mixin of :class:`~distnn.autograd.tensor.Tensor`): ``resize_``,
``resize_as_``, ``set_``, ``is_set_to``, ``share_memory_`` and ``is_shared``.

A distnn tensor's *storage* is the memory of the array its ``data`` views (the owner at the end of the
``base`` chain; ``storage_offset()`` counts from its start). The methods replace ``data`` with another view:

* ``resize_`` keeps the storage when it is large enough (shrinking, or growing back after a shrink, sees the old
  values, as PyTorch's), the tensor becoming contiguous from its storage offset; else it moves to a new, larger
  storage that starts with a copy of the old one (the new elements are uninitialized, as PyTorch's). Tensors
  that viewed the old storage keep it: PyTorch's grows the storage under its views, numpy cannot.
* ``set_(source)`` makes the tensor a view of ``source``'s storage, geometry and all (PyTorch's ``set_`` of a
  Storage takes a Tensor here: distnn has no Storage objects); with ``storage_offset``, ``size`` and ``stride``
  any geometry within that storage (PyTorch grows the storage past its end; distnn refuses, as it cannot grow
  another tensor's memory). ``set_()`` leaves an empty tensor on a new, empty storage.
* ``share_memory_`` moves a CPU tensor's storage into an anonymous shared mapping (``mmap``, ``MAP_SHARED``):
  the tensor and its later views are then shared with child processes forked afterwards (``multiprocessing``'s
  'fork' start), and ``is_shared()`` is True. A GPU tensor is left as it is and ``is_shared()`` is True, as
  PyTorch's. (Handing a shared tensor to a 'spawn' child by pickling, as ``torch.multiprocessing`` does, is not
  supported: it is pickled by value.)

Each bumps the tensor's version counter (``share_memory_`` excepted, as PyTorch's), so a graph that saved the
old values refuses to backward through them; ``resize_`` and ``set_`` refuse a tensor that requires grad.
"""
from __future__ import annotations

import mmap

import numpy as np

from distnn.backend import device_of, get_array_module


class _SharedMap(mmap.mmap):
    """An anonymous shared mapping made by ``share_memory_`` (its class tells ``is_shared`` it is one)."""


def _contiguous_strides(size) -> tuple:
    strides, step = [], 1
    for n in reversed(size):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def _channels_last_strides(size) -> tuple:
    """PyTorch's channels-last strides of a 4-D (N, C, H, W) or 5-D (N, C, D, H, W) size: C varies fastest."""
    order = [0, *range(2, len(size)), 1]  # the dims from slowest to fastest
    strides, step = [0] * len(size), 1
    for d in reversed(order):
        strides[d] = step
        step *= max(size[d], 1)
    return tuple(strides)


def _size_args(sizes, name):
    """``resize_(2, 3)`` or ``resize_((2, 3))`` as a tuple of ints (PyTorch's TypeError for anything else)."""
    if not sizes:
        raise TypeError(f'{name}() missing 1 required positional arguments: "size"')
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in sizes):
        raise TypeError(f"{name}(): argument 'size' must be tuple of ints, got {sizes!r}")
    size = tuple(int(n) for n in sizes)
    if any(n < 0 for n in size):
        raise RuntimeError(f"{name}: negative dimension in size {list(size)}")
    return size


def _memory_format_strides(size, memory_format, name):
    from distnn.functional.memory_format import channels_last, channels_last_3d, contiguous_format, preserve_format

    if memory_format is None or memory_format is contiguous_format:
        return _contiguous_strides(size)
    if memory_format is channels_last or memory_format is channels_last_3d:
        rank = 4 if memory_format is channels_last else 5
        if len(size) != rank:
            raise RuntimeError(f"required rank {rank} tensor to use {str(memory_format).rsplit('.', 1)[-1]} format")
        return _channels_last_strides(size)
    if memory_format is preserve_format:
        raise RuntimeError(f"{name}: Unsupported memory format preserve_format")
    raise TypeError(f"{name}(): memory_format must be a distnn memory format, got {memory_format!r}")


def _refuse_grad(t, name):
    from .tensor import _before_inplace_write

    _before_inplace_write(t)
    if t.requires_grad:
        raise RuntimeError("cannot resize variables that require grad" if name.startswith("resize") else
                           "a leaf Variable that requires grad is being used in an in-place operation.")


def resize_storage(t, size, stride):
    """``t.data`` made the geometry ``size``/``stride`` from its storage offset: on its storage when large enough,
    else on a new, larger storage that starts with a copy of the old one. Returns the old array when the storage
    moved (the tensors viewing it keep it: PyTorch grows a storage under its views, numpy cannot), else None.
    Neither refuses nor bumps the version counter: the caller's rules."""
    from distnn.functional.as_strided import _storage_bytes, strided_view, writable_storage
    from distnn.functional.view_dtype import storage_offset

    old = t.data
    item, offset = old.dtype.itemsize, storage_offset(old)
    a = writable_storage(old)  # (an expanded tensor resized: its memory written as PyTorch's)
    need = offset + (1 + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else 0)
    have = _storage_bytes(a) // item
    moved = need > have
    if moved:
        if t.is_shared() and get_array_module(a) is np:
            raise RuntimeError("Trying to resize storage that is not resizable")  # (a new one would not be shared)
        xp = get_array_module(a)
        grown = xp.empty(need, dtype=a.dtype)  # (uninitialized past the old storage, as PyTorch's)
        if have:
            grown[:have] = strided_view(a, (have,), (1,), 0)
        a = grown
    t.data = strided_view(a, size, stride, offset)
    return old if moved else None


class TensorStorage:
    """The storage methods (see the module docstring)."""

    def resize_(self, *sizes, memory_format=None):
        """PyTorch's ``resize_``: this tensor with shape ``sizes``, contiguous (or channels-last) from its storage
        offset, on its storage when large enough, else on a larger copy of it; returns ``self``."""
        _refuse_grad(self, "resize_")
        size = _size_args(sizes, "resize_")
        resize_storage(self, size, _memory_format_strides(size, memory_format, "resize_"))
        self._bump_version()
        return self

    def resize_as_(self, the_template, memory_format=None):
        """``self.resize_(the_template.shape)`` (PyTorch's ``resize_as_``); returns ``self``."""
        from .tensor import Tensor

        if not isinstance(the_template, Tensor):
            raise TypeError(f"resize_as_(): argument 'the_template' must be Tensor, not {type(the_template).__name__}")
        return self.resize_(tuple(the_template.shape), memory_format=memory_format)

    def set_(self, source=None, storage_offset=None, size=None, stride=None):
        """PyTorch's ``set_``: ``set_()`` empties the tensor (shape (0,), a new storage); ``set_(source)`` makes it
        view ``source``'s memory with ``source``'s geometry; ``set_(source, storage_offset, size, stride=None)``
        with that geometry (contiguous strides when ``stride`` is None) in ``source``'s storage. Returns ``self``.
        """
        from distnn.functional.as_strided import _check, strided_view

        from .tensor import Tensor

        from .grad_mode import is_grad_enabled
        from .tensor import _before_inplace_write

        _before_inplace_write(self)
        if self._node is not None:
            raise RuntimeError("set_: not supported on a tensor made by a recorded op (its graph could not follow "
                               "the new memory); set_ a leaf, or the result of detach()")
        if self.requires_grad and is_grad_enabled():
            _refuse_grad(self, "set_")
        if source is None:
            if storage_offset is not None or size is not None or stride is not None:
                raise TypeError("set_(): storage_offset, size and stride need a source")
            self.data = get_array_module(self.data).empty(0, dtype=self.data.dtype)
            self._bump_version()
            return self
        if not isinstance(source, Tensor):
            raise TypeError(f"set_(): argument 'source' must be Tensor, not {type(source).__name__}")
        if source.data.dtype != self.data.dtype:
            from .tensor_inplace_methods import torch_dtype_name

            raise RuntimeError(f"Could not set tensor of type {torch_dtype_name(source.data.dtype).lower()} to a "
                               f"tensor of type {torch_dtype_name(self.data.dtype).lower()}")
        if device_of(source.data) != device_of(self.data):
            raise RuntimeError(f"Attempted to set the storage of a tensor on device {device_of(self.data)!r} to a "
                               f"storage on different device {device_of(source.data)!r}.")
        if storage_offset is None and size is None and stride is None:
            self.data = source.data  # (the same array: the same memory and geometry)
        else:
            if storage_offset is None or size is None:
                raise TypeError("set_(): expected (), (source), or (source, storage_offset, size, stride=None)")
            size = _size_args((size,), "set_")
            stride = _contiguous_strides(size) if stride is None else tuple(int(s) for s in stride)
            _check(source.data, size, stride, int(storage_offset), "set_")
            self.data = strided_view(source.data, size, stride, int(storage_offset))
        self._bump_version()  # (its own counter: PyTorch's set_ does not share the source's)
        return self

    def is_set_to(self, tensor) -> bool:
        """Whether ``tensor`` views the same memory with the same geometry: one storage, the same storage offset,
        size and strides (PyTorch's ``is_set_to``)."""
        from distnn.functional.view_dtype import storage_root

        from .tensor import Tensor

        if not isinstance(tensor, Tensor):
            raise TypeError(f"is_set_to(): argument 'tensor' must be Tensor, not {type(tensor).__name__}")
        a, b = self.data, tensor.data
        if a is b:
            return True
        if get_array_module(a) is not get_array_module(b) or a.dtype != b.dtype or a.shape != b.shape:
            return False
        if get_array_module(a) is np:
            same_storage = storage_root(a) is storage_root(b)
            start_a, start_b = a.__array_interface__["data"][0], b.__array_interface__["data"][0]
        else:
            same_storage = a.data.mem is b.data.mem
            start_a, start_b = a.data.ptr, b.data.ptr
        return bool(same_storage and start_a == start_b and a.strides == b.strides)

    def share_memory_(self):
        """Move the storage into shared memory (see the module docstring); a no-op for a GPU tensor or one
        already shared. Returns ``self``."""
        from distnn.functional.as_strided import _storage_bytes, strided_view
        from distnn.functional.strides import element_strides
        from distnn.functional.view_dtype import storage_offset

        a = self.data
        if self.is_shared():
            return self
        item = a.dtype.itemsize
        have = _storage_bytes(a) // item
        buffer = _SharedMap(-1, max(have * item, 1))  # (anonymous: MAP_SHARED, inherited by forked children)
        storage = np.frombuffer(buffer, dtype=a.dtype, count=have)
        if have:
            storage[...] = strided_view(a, (have,), (1,), 0)
        self.data = strided_view(storage, tuple(a.shape), element_strides(a), storage_offset(a))
        return self

    def is_shared(self) -> bool:
        """Whether the storage is in shared memory (made by :meth:`share_memory_`); always True on a GPU, as
        PyTorch's."""
        a = self.data
        if device_of(a) != "cpu":
            return True
        link = a
        while link is not None:
            if isinstance(link, _SharedMap):
                return True
            nxt = getattr(link, "base", None)  # (an array's base, an _Interface's array, a memoryview's object)
            link = nxt if nxt is not None else getattr(link, "obj", None)
        return False
