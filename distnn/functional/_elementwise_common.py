"""What the elementwise ops share: broadcast errors that name the shapes, host constants moved to the device,
numpy's floating-point warnings silenced for values masked afterwards.

Split out of :mod:`distnn.functional.elementwise`, which still exports every name here.
"""
from __future__ import annotations

import contextlib

import numpy as np

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
    cupy has none. (About 1 us a call: ops keep it off their common path where they can.)"""
    if xp is not np and not hasattr(xp, "errstate"):
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
    _make_extobj = None

# quiet_enter's states, for over=False and over=True: (the state each was made from, the quiet one made from it)
_QUIET_MADE = [(None, None), (None, None)]


def quiet_enter(over: bool = False):
    """``_quiet(np, over)``'s state set without a context manager, for a hot path that cannot pay ``np.errstate``
    (~1.1 us against ~0.3): divide and invalid (and with ``over``, overflow) ignored, the rest as it is now.
    Returns the token to give :func:`quiet_exit` (in a ``finally``). The quiet state is made once from the
    current one and reused while the current one stays the same object."""
    if _make_extobj is None:  # pragma: no cover - numpy 1.x: np.seterr is thread-local there
        return np.seterr(divide="ignore", invalid="ignore", **({"over": "ignore"} if over else {}))
    current = _FP_STATE.get()
    made_from, quiet = _QUIET_MADE[over]
    if made_from is not current:  # (a state the caller set with np.errstate: over/under stay the caller's)
        quiet = _make_extobj(divide="ignore", invalid="ignore", over="ignore" if over else None)
        _QUIET_MADE[over] = (current, quiet)
    return _FP_STATE.set(quiet)


def quiet_exit(token) -> None:
    """The state from before :func:`quiet_enter` back."""
    _FP_STATE.reset(token)


_RAISES_CHECKED = (None, False)  # (the state state_raises last read, and its answer)


def state_raises() -> bool:
    """Whether numpy's current floating-point state raises ``FloatingPointError`` on some flag (the caller's
    ``np.errstate(over="raise")``): a ufunc writing into its input's memory would then raise with the memory half
    written, where out-of-place code raises before it writes. Read again only when the state object changes."""
    global _RAISES_CHECKED
    if _make_extobj is None:  # pragma: no cover - numpy 1.x
        return "raise" in np.geterr().values()
    current = _FP_STATE.get()
    checked = _RAISES_CHECKED
    if checked[0] is not current:
        checked = _RAISES_CHECKED = (current, "raise" in np.geterr().values())
    return checked[1]


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
