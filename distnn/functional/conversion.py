"""``torch.as_tensor`` and ``torch.asarray``: a tensor from data, sharing its memory where PyTorch does.

An array (numpy's, or cupy's on a GPU) of the requested dtype on the requested device is wrapped, not copied:
a change through either is seen by the other, as ``torch.from_numpy``. A tensor of the requested dtype and
device is returned itself. Anything else (a cast, a move to another device, ``copy=True``, a Python list or
number) makes a new tensor; from a tensor that is recorded (``to``/``clone``), so gradients flow back to it.
Python floats get the default dtype, ints int64, complexes the default complex dtype, as in ``torch.tensor``.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.half_rounding import cast
from distnn.autograd.number_range import numbers_array
from distnn.autograd.tensor import Tensor, _as_array
from distnn.backend import device_of, resolve_device, to_device


def _is_array(obj) -> bool:
    """An n-d array (numpy's or cupy's), not a numpy scalar or a Python sequence."""
    return isinstance(obj, np.ndarray) or hasattr(obj, "__cuda_array_interface__")


def _refuse_copy(what: str, dtype, wanted):
    raise ValueError(f"can't alias {what} with dtype '{dtype}' into dtype '{wanted}'.")


def _from_tensor(obj: Tensor, dtype, device, copy):
    out = obj
    if dtype is not None and np.dtype(dtype) != obj.dtype:
        if copy is False:
            _refuse_copy("tensor", obj.dtype, np.dtype(dtype))
        out = out.to(dtype)  # (recorded: PyTorch's ToCopyBackward)
    if device is not None and device_of(out.data) != resolve_device(device):
        if copy is False:
            raise ValueError(f"can't alias tensor from device '{device_of(obj.data)}' to '{resolve_device(device)}'.")
        out = out.to(device)
    if copy and out is obj:
        out = obj.clone()
    return out


def _from_data(obj, dtype, device, copy):
    if isinstance(obj, (np.generic, list, tuple, bool, int, float, complex)) or not _is_array(obj):
        if copy is False:
            raise ValueError("can't alias arbitrary sequence into a tensor.")
        # (with a dtype, Python numbers are checked against it as torch.tensor's: numbers_array)
        data = None if dtype is None or not isinstance(obj, (list, tuple, int, float, np.generic)) else \
            numbers_array(obj, np.dtype(dtype))
        if data is None:
            data = _as_array(obj, None if dtype is None else np.dtype(dtype))
    else:
        data = obj
        if dtype is not None and np.dtype(dtype) != obj.dtype:
            if copy is False:
                _refuse_copy("array", obj.dtype, np.dtype(dtype))
            data = cast(obj, dtype)  # (float64 to float16 through float32, as PyTorch's)
        elif copy:
            data = obj.copy()
    if device is not None and device_of(data) != resolve_device(device):
        if copy is False:
            raise ValueError(f"can't alias an array from device '{device_of(data)}' to '{resolve_device(device)}'.")
        data = to_device(data, device)
    return Tensor(data)


def _set_requires_grad(t: Tensor, flag: bool) -> Tensor:
    if flag and t.dtype.kind not in "fc":
        raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
    if flag and not t.requires_grad:
        t.requires_grad_(True)
    elif not flag and t.requires_grad:
        return t.detach() if not t.is_leaf else t.requires_grad_(False)
    return t


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=None) -> Tensor:
    """``torch.asarray``: ``obj`` (a tensor, a numpy or cupy array, a number, a nested sequence) as a tensor.

    ``copy=None`` shares ``obj``'s memory when its dtype and device are the requested ones (a tensor is returned
    itself), else copies; ``copy=True`` always copies, ``copy=False`` never (a ValueError where it would have
    to). ``requires_grad=None`` (PyTorch 2.13's default): a tensor's own, False for a new one. Given, it is set
    on the result; where the result is ``obj`` itself, on ``obj`` (as PyTorch's), and a recorded copy made
    with ``requires_grad=False`` is detached."""
    if isinstance(obj, Tensor):
        out = _from_tensor(obj, dtype, device, copy)
        if requires_grad is None:
            return out
        if out is not obj and not requires_grad:
            return out.detach()
    else:
        out = _from_data(obj, dtype, device, copy)
        if requires_grad is None:
            return out
    return _set_requires_grad(out, bool(requires_grad))


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """``torch.as_tensor``: ``data`` as a tensor, sharing memory where it can: a tensor of ``dtype`` on
    ``device`` is returned itself (another dtype or device: ``data.to(...)``, recorded); a numpy (or cupy) array
    of ``dtype`` is wrapped, so a change through either is seen by both; lists and numbers make a new tensor."""
    return asarray(data, dtype=dtype, device=device)


__all__ = ["as_tensor", "asarray"]
