"""The outcome of running the same code in torch and in distnn, for oracle tests that compare the two: the
result's and ``out``'s states (dtype, shape, values bitwise), whether ``out`` was returned, the warnings (text,
category, the file they point at), or the error's builtin type and message."""
import warnings

import numpy as np
import torch

import distnn

DISCARD = "Casting complex values to real discards the imaginary part"


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def state(t, strides=False):
    """A tensor's dtype, shape (with ``strides``: and strides) and values (bytes: compared bitwise); anything else
    as it is."""
    if not hasattr(t, "shape"):
        return t
    layout = (tuple(t.shape), tuple(t.stride())) if strides else (tuple(t.shape),)
    return str(t.dtype).split(".")[-1], *layout, np.ascontiguousarray(_np(t)).tobytes()


def builtin_kind(error) -> str:
    """The first builtin class of ``error``'s type (distnn's ShapeError is a RuntimeError, as PyTorch's)."""
    return next(c.__name__ for c in type(error).__mro__ if c.__module__ == "builtins")


def outcome(run, L, strides=False, exact_type=False):
    """``run(L)`` (returning a tensor, or ``(result, out)``) in library ``L``: what it gave (with ``strides``: the
    tensors' strides too) and warned, or its error's builtin type (with ``exact_type``: its own type's name) and
    message."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = run(L)
        except Exception as error:  # noqa: BLE001 - the exception is what is compared
            return "error", type(error).__name__ if exact_type else builtin_kind(error), str(error)
    # (PyTorch's complex discard warning is once a process, in each library: whether a case sees it depends on the
    # cases run before it, so it is left out)
    noted = [(w.category.__name__, str(w.message).split(" (Triggered internally at")[0], w.filename) for w in caught
             if not str(w.message).startswith(DISCARD)]
    if isinstance(value, tuple) and len(value) == 2:
        result, out = value
        return "ok", state(result, strides), result is out, state(out, strides), noted
    return "ok", state(value, strides), noted


def both(run, **how):
    """``run``'s outcome in torch, then in distnn (``how``: :func:`outcome`'s options)."""
    return outcome(run, torch, **how), outcome(run, distnn, **how)
