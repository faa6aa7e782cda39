"""numpy's floating-point error state, read and set without ``np.errstate`` (~1.1 us a call, as much as a small
op): its context variable, prebuilt states (every warning off, overflow raising), the divide/invalid-silenced state
of ``distnn.divide`` made once from the caller's.

Here, not in :mod:`distnn.functional`, as the in-place methods' direct path (:mod:`.inplace_direct`) reads it and is
imported with Tensor, before the functional package."""
from __future__ import annotations

import numpy as np

# numpy >= 2 keeps its floating-point error state in a context variable: setting it to a prebuilt "ignore all"
# state costs about a fourth of ``np.errstate`` (~0.3 us against ~1.1 us), which matters on small reductions and
# casts (distnn.functional's reduce_more, copy_ops). numpy 1.x has no such variable; np.seterr is thread-local there and does the same.
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

        @staticmethod
        def get():  # (a dict, never _ALL_IGNORED: a caller testing "all off already?" sets the state itself)
            return np.geterr()

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
