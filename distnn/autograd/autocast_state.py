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

Thread-local, as PyTorch's (the in-process communicator runs simulated ranks
as threads). ``active`` counts the contexts open in all threads, so that
``Function.apply`` pays one module-global read when autocast is off.
"""
from __future__ import annotations

import functools
import threading

import numpy as np


class _AutocastState(threading.local):
    dtype = None     # the lower dtype while this thread is inside an enabled autocast, else None
    device = None    # "cpu" (numpy arrays) or "cuda" (cupy arrays)


_state = _AutocastState()
_lock = threading.Lock()
active = 0  # enabled autocast contexts open in any thread (Function.apply's cheap first test)


def enter(device: str, dtype) -> tuple:
    """Switch this thread's autocast to ``(device, dtype)`` (dtype None: off); returns what to restore."""
    global active
    prev = (_state.device, _state.dtype)
    _state.device, _state.dtype = device, dtype
    with _lock:
        active += (dtype is not None) - (prev[1] is not None)
    return prev


def restore(prev: tuple) -> None:
    global active
    with _lock:
        active += (prev[1] is not None) - (_state.dtype is not None)
    _state.device, _state.dtype = prev


def current() -> tuple:
    """``(device, dtype)`` of this thread's autocast (dtype None when off)."""
    return _state.device, _state.dtype


def _on_device(a, device: str) -> bool:
    return (type(a) is np.ndarray) == (device == "cpu")


def cast_inputs(policy: str, inputs: tuple) -> tuple:
    """``inputs`` with the floating ones cast as ``policy`` says when this thread's autocast is on, else as given."""
    dtype = _state.dtype
    if dtype is None:
        return inputs
    target = dtype if policy == "lower" else np.dtype(np.float32)
    from distnn.autograd.tensor import Tensor
    from distnn.functional.elementwise import Cast

    out = []
    for x in inputs:
        a = x.data if isinstance(x, Tensor) else x
        dt = getattr(a, "dtype", None)
        # (PyTorch's eligibility: floating, not float64, on the autocast's device)
        if dt is not None and dt.kind == "f" and dt != target and dt != np.float64 and _on_device(a, _state.device):
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
            if active and _state.dtype is not None:
                args = cast_inputs(policy, args)
                if kwargs:
                    kwargs = dict(zip(kwargs, cast_inputs(policy, tuple(kwargs.values()))))
            return fn(*args, **kwargs)
        return cast_then_call
    return wrap
