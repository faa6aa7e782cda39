"""PyTorch's ``torch.amp.custom_fwd`` / ``custom_bwd`` for :class:`distnn.autograd.Function` subclasses, and
``is_autocast_available``.

A Function's ``forward(self, *arrays)`` sees raw arrays, so autocast's casts at ``Function.apply`` (the class's
``autocast`` policy) are the only ones it gets. ``custom_fwd(device_type=..., cast_inputs=dtype)`` lets a
Function choose its own dtype instead: inside an autocast region for ``device_type`` its floating inputs
(float64 excepted, as PyTorch's) are cast to ``dtype`` and ``forward`` runs with autocast off; outside one it
is a no-op. ``custom_bwd`` runs ``backward`` under the autocast state ``forward`` ran under, and gives the
gradients of inputs ``cast_inputs`` cast back in the dtype the op was given (PyTorch's engine does that cast
for every op; distnn's leaves take any dtype, the nodes between them would not).
"""
from __future__ import annotations

import collections.abc
import functools

from distnn.autograd.tensor import Tensor
from distnn.backend import device_of, get_array_module

from .autocast_mode import _lower_dtype, autocast, get_autocast_dtype, is_autocast_enabled

__all__ = ["custom_fwd", "custom_bwd", "is_autocast_available"]

# PyTorch's device types: distnn autocasts on cpu and cuda; the others exist, without autocast here
_TORCH_DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga",
                       "maia", "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone")


def is_autocast_available(device_type: str) -> bool:
    """``torch.amp.is_autocast_available``: whether :class:`distnn.autocast` has a policy for ``device_type``
    (``"cpu"``, ``"cuda"``, ``"cuda:N"``: True, whether a GPU is present or not, as PyTorch's; PyTorch's
    other device types: False). A string that is no device type is refused."""
    kind = device_type.partition(":")[0] if isinstance(device_type, str) else None
    if kind not in _TORCH_DEVICE_TYPES:
        raise RuntimeError(f"Expected one of {', '.join(_TORCH_DEVICE_TYPES)} device type at start of device "
                           f"string: {device_type}")
    return kind in ("cpu", "cuda")


def _checked_device_type(device_type):
    if not isinstance(device_type, str):
        raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
    if device_type not in ("cpu", "cuda"):
        raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}' "
                           f"(distnn supports cpu, cuda)")
    return device_type


def _cast(value, device_type, dtype):
    """``value`` with its floating arrays (and Tensors) on ``device_type`` cast to ``dtype``, float64 left
    alone; through lists, tuples and mappings, as PyTorch's ``_cast``."""
    if isinstance(value, Tensor):
        return value.to(dtype) if _eligible(value.data, device_type) else value
    if hasattr(value, "dtype") and hasattr(value, "astype") and getattr(value, "ndim", None) is not None:
        return value.astype(dtype) if _eligible(value, device_type) else value
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, collections.abc.Mapping):
        return {_cast(k, device_type, dtype): _cast(v, device_type, dtype) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(v, device_type, dtype) for v in value)
    return value


def _eligible(array, device_type) -> bool:
    return (array.dtype.kind == "f" and array.dtype.itemsize != 8
            and device_of(array).partition(":")[0] == device_type)


def custom_fwd(fwd=None, *, device_type: str, cast_inputs=None):
    """``torch.amp.custom_fwd``: decorate a :class:`distnn.autograd.Function`'s ``forward`` (with or without
    the function: ``@custom_fwd(device_type="cpu", cast_inputs=distnn.float32)``).

    ``cast_inputs`` None: ``forward`` runs under the caller's autocast state, noted for :func:`custom_bwd`.
    A dtype: inside an autocast region for ``device_type``, the floating inputs (arrays, Tensors, in lists,
    tuples and dicts; not float64) are cast to it and ``forward`` runs with autocast off; outside, a no-op."""
    _checked_device_type(device_type)
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)
    dtype = None if cast_inputs is None else _lower_dtype(cast_inputs, device_type)

    @functools.wraps(fwd)
    def decorate_fwd(*args, **kwargs):
        node = args[0]
        node._dtype = get_autocast_dtype(device_type)
        if dtype is None:
            node._fwd_used_autocast = is_autocast_enabled(device_type)
            return fwd(*args, **kwargs)
        node._fwd_used_autocast = False
        if not is_autocast_enabled(device_type):
            return fwd(*args, **kwargs)
        # the dtypes the inputs came in, for custom_bwd to give their gradients back in
        node._input_dtypes = tuple(getattr(a, "dtype", None) for a in args[1:])
        with autocast(device_type=device_type, enabled=False):
            return fwd(*_cast(args, device_type, dtype), **_cast(kwargs, device_type, dtype))
    return decorate_fwd


def custom_bwd(bwd=None, *, device_type: str):
    """``torch.amp.custom_bwd``: decorate the ``backward`` of a Function whose ``forward`` has
    :func:`custom_fwd`: it runs under the autocast state (on or off, and the dtype) ``forward`` ran under."""
    _checked_device_type(device_type)
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)

    @functools.wraps(bwd)
    def decorate_bwd(*args, **kwargs):
        node = args[0]
        with autocast(device_type=device_type, enabled=node._fwd_used_autocast, dtype=node._dtype):
            grads = bwd(*args, **kwargs)
        dtypes = node.__dict__.get("_input_dtypes")
        if dtypes is None:
            return grads
        single = not isinstance(grads, tuple)
        grads = (grads,) if single else grads
        dtypes = dtypes + (None,) * (len(grads) - len(dtypes))
        # (an input cast_inputs cast gets its gradient in its own dtype, as PyTorch's engine gives it)
        grads = tuple(g if g is None or dt is None or getattr(g, "dtype", dt) == dt
                      else get_array_module(g).asarray(g).astype(dt) for g, dt in zip(grads, dtypes))
        return grads[0] if single else grads
    return decorate_bwd
