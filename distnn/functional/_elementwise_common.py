"""What the elementwise ops share: broadcast errors that name the shapes, host constants moved to the device,
numpy's floating-point warnings silenced for values masked afterwards.

Split out of :mod:`distnn.functional.elementwise`, which still exports every name here.
"""
from __future__ import annotations

import contextlib

import numpy as np

from distnn.autograd import float_errors as _float_errors

_NOTHING = contextlib.nullcontext()  # (reusable: it holds no state)


def _shape(x):
    return getattr(x, "shape", ())


def _check_broadcast(a, b, op):
    sa, sb = _shape(a), _shape(b)
    if sa == sb or not sa or not sb:
        return
    for x, y in zip(reversed(sa), reversed(sb)):
        if x != y and x != 1 and y != 1:
            raise ValueError(f"operands could not be broadcast together for {op}: shapes {tuple(sa)} and {tuple(sb)}")


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


# numpy >= 2 keeps its floating-point error state in a context variable: setting it to a prebuilt "ignore all"
# state costs about a fourth of ``np.errstate`` (~0.3 us against ~1.1 us), which matters on the small reductions
# and casts below. numpy 1.x has no such variable; np.seterr is thread-local there and does the same.
try:
    from numpy._core.umath import _extobj_contextvar as _FP_STATE, _make_extobj

    _ALL_IGNORED = _make_extobj(all="ignore")
    # (overflow raises FloatingPointError, the rest is ignored: a float32 variance retried in float64 on it)
    _OVERFLOW_RAISES = _make_extobj(all="ignore", over="raise")
except ImportError:  # pragma: no cover - numpy 1.x
    class _FP_STATE:  # noqa: N801 - stands in for the context variable
        @staticmethod
        def set(state):
            return np.seterr(**(state or {"all": "ignore"}))

        @staticmethod
        def reset(old):
            np.seterr(**old)

    _ALL_IGNORED = None
    _OVERFLOW_RAISES = {"all": "ignore", "over": "raise"}


class _silent:  # noqa: N801 - used as a function, ``with _silent():``
    """Every numpy floating-point warning off for a ``with`` block (overflow to inf, ``inf - inf``...), where
    PyTorch gives the inf or NaN silently: reductions that overflow, casts to a narrower float. Cheaper than
    ``np.errstate``; cupy has no such warnings, so it is harmless (and nearly free) on a GPU too.

    The small, hot ops (sum, mean, prod, cumsum, cumprod, a cast) write it out, ``token =
    _FP_STATE.set(_ALL_IGNORED)`` then ``_FP_STATE.reset(token)`` in a ``finally``: half the cost again (~0.3 us
    against ~0.6 us a call)."""

    __slots__ = ("_token",)

    def __enter__(self):
        self._token = _FP_STATE.set(_ALL_IGNORED)

    def __exit__(self, *exc):
        _FP_STATE.reset(self._token)
