"""What the elementwise ops share: broadcast errors that name the shapes, host constants moved to the device,
numpy's floating-point warnings silenced for values masked afterwards.

Split out of :mod:`distnn.functional.elementwise`, which still exports every name here.
"""
from __future__ import annotations

import contextlib

import numpy as np

from distnn.autograd import float_errors as _float_errors
from distnn.autograd.tensor import Tensor

_NOTHING = contextlib.nullcontext()  # (reusable: it holds no state)


def _shape(x):
    return getattr(x, "shape", ())


def torch_broadcast_error(*shapes):
    """PyTorch's error for ``shapes`` that do not broadcast together, or None where they do: its message names the
    first mismatch from the right, between the shape broadcast so far ("tensor a") and the next ("tensor b"), at the
    dimension of the result (``The size of tensor a (3) must match the size of tensor b (2) at non-singleton
    dimension 0``). Called only once numpy has refused, so that the ops' normal path pays nothing for it."""
    so_far = tuple(shapes[0])
    for shape in shapes[1:]:
        shape = tuple(shape)
        ndim = max(len(so_far), len(shape))
        a, b = (1,) * (ndim - len(so_far)) + so_far, (1,) * (ndim - len(shape)) + shape
        for dim in reversed(range(ndim)):
            if a[dim] != b[dim] and a[dim] != 1 and b[dim] != 1:
                return RuntimeError(f"The size of tensor a ({a[dim]}) must match the size of tensor b ({b[dim]}) "
                                    f"at non-singleton dimension {dim}")
        so_far = tuple(y if x == 1 else x for x, y in zip(a, b))
    return None


def _check_broadcast(a, b, op):
    """Raises PyTorch's RuntimeError where ``a`` and ``b`` (arrays or numbers) do not broadcast together
    (``op``: kept for the callers; PyTorch's message does not name the op)."""
    sa, sb = _shape(a), _shape(b)
    if sa == sb or not sa or not sb:
        return
    error = torch_broadcast_error(sa, sb)
    if error is not None:
        raise error from None  # (not chained to numpy's ValueError, which the callers are handling)


def _on_device(xp, *values):
    """``values`` with host (numpy) arrays copied to the GPU when ``xp`` is cupy, which refuses a mix
    (a host constant beside GPU tensors: where's values, clamp's bounds, maximum's operand)."""
    if xp is np:
        return values
    return tuple(xp.asarray(v) if isinstance(v, np.ndarray) else v for v in values)


def _quiet(xp, over: bool = False):
    """numpy's floating-point warnings off (for values that are masked right after; ``over``: overflow too);
    cupy has none. Nothing to do (~0.1 us) where they are all off already: in an op's forward (Function.apply
    silences it) and in a backward pass; elsewhere about 1 us a call."""
    if _float_errors.FP_STATE.get() is _float_errors.ALL_IGNORED or (xp is not np and not hasattr(xp, "errstate")):
        return _NOTHING
    return np.errstate(divide="ignore", invalid="ignore", over="ignore" if over else None)  # (None: unchanged)


# numpy's floating-point error state, set without np.errstate (its context variable, prebuilt states, the quiet
# state of the in-place methods' direct path): see distnn.autograd.fp_state
from distnn.autograd.fp_state import (  # noqa: E402,F401 - importable from here as before
    _ALL_IGNORED, _FP_STATE, _OVERFLOW_RAISES, quiet_enter, quiet_exit)


# every numpy floating-point warning off for a ``with`` block (overflow to inf, ``inf - inf``...), where PyTorch
# gives the inf or NaN silently: reductions that overflow, casts to a narrower float (the small, hot ops write
# it out: ``token = _FP_STATE.set(_ALL_IGNORED)``, then ``_FP_STATE.reset(token)`` in a ``finally``)
from distnn.autograd.float_errors import silent as _silent  # noqa: E402


def float_input(a):
    """PyTorch's rule for a float-valued function of integers or booleans: computed in the default float
    dtype (float32; numpy's would be float64). An integer tensor cannot require grad: its array is used."""
    raw = a.data if isinstance(a, Tensor) else a
    dtype = getattr(raw, "dtype", None)
    if dtype is not None and dtype.kind in "biu":
        from distnn.backend import default_dtype

        return raw.astype(default_dtype())
    return a
