"""The autocast switch that the op entry points read (the user-facing context is :class:`distnn.amp.autocast`).

A thin cast policy, as PyTorch's autocast: an op declares a policy, and while
autocast is on for the device its inputs live on, the op's floating inputs
are cast on the way in, through the differentiable ``Cast`` op, so gradients
reach float32 parameters in float32:

* ``"lower"``: the matmul family (linear, matmul/mm/bmm, conv*, conv_transpose*,
  prelu, scaled_dot_product_attention): inputs to the autocast dtype (float16);
* ``"float32"``: ops that need the range (the losses, cdist, prod): float16
  inputs back to float32.

float64 inputs are never cast (as PyTorch). Two seams: a Function class sets
``autocast = "lower"|"float32"`` (read by ``Function.apply`` only while some
thread has autocast on), and a Python-level composite (``mse_loss``,
``addmm``...) is wrapped with :func:`autocast_policy`.

Thread-local and per device, as PyTorch's (the in-process communicator runs simulated ranks
as threads). ``active`` counts the devices on in all threads, so that
``Function.apply`` pays one module-global read when autocast is off.
"""
from __future__ import annotations

import functools
import threading

import numpy as np


class _AutocastState(threading.local):
    # per device, as PyTorch's (``autocast("cuda", enabled=False)`` leaves CPU autocast on): the lower dtype while
    # this thread's autocast for it is on, else None; "cpu" casts numpy arrays, "cuda" cupy arrays
    cpu = None
    cuda = None
    on = 0  # how many of the two are on


_state = _AutocastState()
_lock = threading.Lock()
active = 0  # devices with autocast on, summed over all threads (Function.apply's cheap first test)


def _set(device: str, dtype) -> None:
    global active
    delta = (dtype is not None) - (getattr(_state, device) is not None)
    setattr(_state, device, dtype)
    if delta:
        _state.on += delta
        with _lock:
            active += delta


def enter(device: str, dtype) -> tuple:
    """Switch this thread's autocast for ``device`` to ``dtype`` (None: off); returns what to restore."""
    prev = (device, getattr(_state, device))
    _set(device, dtype)
    return prev


def restore(prev: tuple) -> None:
    _set(*prev)


def current(device: str):
    """The lower dtype of this thread's autocast for ``device`` (None when off)."""
    return getattr(_state, device)


def cast_inputs(policy: str, inputs: tuple) -> tuple:
    """``inputs`` with the floating ones cast as ``policy`` says when this thread's autocast is on for their
    device, else as given."""
    if not _state.on:
        return inputs
    from distnn.autograd.tensor import Tensor
    from distnn.functional.elementwise import Cast

    out = []
    for x in inputs:
        a = x.data if isinstance(x, Tensor) else x
        dt = getattr(a, "dtype", None)
        # (PyTorch's eligibility: floating, not float64, on a device whose autocast is on)
        if dt is not None and dt.kind == "f" and dt != np.float64:
            lower = _state.cpu if type(a) is np.ndarray else _state.cuda
            target = None if lower is None else lower if policy == "lower" else np.dtype(np.float32)
            if target is not None and dt != target:
                x = Cast.apply(x, dtype=target) if isinstance(x, Tensor) else a.astype(target)
        out.append(x)
    return tuple(out)


def autocast_policy(policy: str):
    """Decorator for a composite op (a Python function of Tensors): its positional and keyword Tensor
    arguments are cast by ``policy`` (see the module docstring) while autocast is on."""
    if policy not in ("lower", "float32"):
        raise ValueError(f"autocast policy must be 'lower' or 'float32', got {policy!r}")

    def wrap(fn):
        @functools.wraps(fn)
        def cast_then_call(*args, **kwargs):
            if active and _state.on:
                args = cast_inputs(policy, args)
                if kwargs:
                    kwargs = dict(zip(kwargs, cast_inputs(policy, tuple(kwargs.values()))))
            return fn(*args, **kwargs)
        return cast_then_call
    return wrap
