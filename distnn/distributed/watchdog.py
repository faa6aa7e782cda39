"""Turning hangs into failures: collective timeouts and abort-on-exception.

Two failure modes make a data-parallel job hang forever instead of failing:

* one rank raises while the others wait in a collective for it;
* one rank skips (or reorders) a collective, so the others wait forever.

For the first, MPI runs install :func:`install_excepthook`: an uncaught
exception prints the rank and traceback, then aborts the whole job. For the
second, every collective waits with a deadline (:func:`wait_until`); on expiry
the communicator reports which ranks never arrived and aborts (MPI) or raises
:class:`~.comm_base.CollectiveTimeoutError` (in-process). The timeout is
``DISTNN_COLLECTIVE_TIMEOUT`` seconds (default 300; ``0``/``none`` disables).
"""
from __future__ import annotations

import os
import sys
import time
import traceback

DEFAULT_TIMEOUT = 300.0
TIMEOUT_ENV = "DISTNN_COLLECTIVE_TIMEOUT"


def collective_timeout(default: float = DEFAULT_TIMEOUT):
    """Seconds a collective may wait (from ``DISTNN_COLLECTIVE_TIMEOUT``), or None for no limit."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip().lower()
    if not raw:
        return default
    if raw in ("0", "none", "off", "inf", "infinite"):
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds (use 0 to disable)") from None
    if not value >= 0:  # (nan too: it compares false with everything, and a wait against it never ends)
        raise ValueError(f"{TIMEOUT_ENV}={raw!r} must be a number of seconds >= 0 (0 or 'inf' disables it)")
    return value or None


def report_grace(timeout) -> float:
    """How long a timed-out rank waits for the others' status before aborting."""
    return 5.0 if timeout is None else min(10.0, max(1.0, 0.1 * timeout))


#: after this long in one wait, ``wait_until`` starts calling its ``on_slow`` (every SLOW_EVERY_S)
SLOW_AFTER_S = 1.0
SLOW_EVERY_S = 0.1


#: how long ``wait_until`` spins before it yields the core between polls
SPIN_S = 0.001


def wait_until(test, timeout, on_timeout, on_slow=None, spin_s: float = SPIN_S) -> None:
    """Call ``test()`` until it returns True; call ``on_timeout(waited)`` if ``timeout`` seconds pass.

    Spins for the first ``spin_s`` (each poll lets MPI progress the collective:
    a gradient exchange of a few MB completes at the speed of MPI's own
    blocking wait), then yields the core between polls (on an oversubscribed
    machine the peer we wait for may need this core: communicators with more
    ranks on the host than it has cores pass ``spin_s=0``), and after 5 ms backs
    off to short sleeps so a rank waiting long for a slow peer does not burn
    a shared core. A wait longer than ``SLOW_AFTER_S`` also calls ``on_slow()``
    now and then (the MPI communicator answers other ranks' timeout reports there).
    """
    if test():
        return
    start = time.monotonic()
    deadline = None if timeout is None else start + timeout
    next_slow = start + SLOW_AFTER_S
    now = start
    while not test():
        now = time.monotonic()
        waited = now - start
        if deadline is not None and now >= deadline:
            on_timeout(waited)
            return
        if waited > 0.005:
            time.sleep(0.00005 if waited < 0.1 else 0.001)
            if on_slow is not None and now >= next_slow:
                on_slow()
                next_slow = now + SLOW_EVERY_S
        elif waited >= spin_s:
            os.sched_yield()


_hook_installed = False


# MPI_Abort also kills the launcher's output forwarding: a report written just before it
# can vanish (seen under load). Wait this long after writing one.
FORWARD_GRACE_S = 0.5


def install_excepthook(rank: int, size: int, abort) -> None:
    """Make an uncaught exception on this rank end the whole job (``abort(1)``) after printing it.

    Without it, the failing rank exits and every other rank waits in its next
    collective forever. Installed once per process by MPI communicators of
    more than one rank.
    """
    global _hook_installed
    if _hook_installed:
        return
    _hook_installed = True
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        try:
            # One write, then a moment for the launcher to forward it: MPI_Abort kills the
            # forwarding processes too, and a report cut in half names nothing.
            sys.stderr.write(f"[distnn] rank {rank} of {size}: uncaught {exc_type.__name__}; "
                             f"aborting all {size} ranks\n" + "".join(traceback.format_exception(exc_type, exc, tb)))
            sys.stderr.flush()
            time.sleep(FORWARD_GRACE_S)
        except Exception:  # noqa: BLE001 - never let printing stop the abort
            previous(exc_type, exc, tb)
        finally:
            abort(1)

    sys.excepthook = hook
