"""``python -m distnn``: a preemption signal in the first moments, before the CLI can act on it.

Python imports numpy and distnn before the CLI installs its start-up handler (a fifth of a second
here, more on a slow shared file system). A SIGTERM or SIGUSR1 then (a scheduler preempting a job
that is just starting, or ``srun`` ending the job because another rank died) would kill the
process with 143 or 138, the statuses of a run stopped with checkpointing off, which a batch
script must not requeue. So, from the package's first line, they are only noted; the CLI hands them
over as soon as it can (:func:`take`): ``train`` acts on them as on any signal during its start-up
(status 75), every other command gets their default action back, and a noted one is sent again.
Only while ``python -m distnn`` itself starts: ``import distnn`` in a program changes no handler.
"""
from __future__ import annotations

import os
import signal
import sys

SIGNALS = ("SIGTERM", "SIGUSR1")
_noted: list = []


def _note(signum, frame):
    _noted.append(signum)


def install_if_starting_the_cli() -> None:
    """Note SIGTERM/SIGUSR1 from now on when this import is ``python -m distnn``'s own (argv[0] is
    ``-m`` while runpy imports the package it is to run)."""
    if sys.argv[:1] != ["-m"]:
        return
    for name in SIGNALS:
        if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) == signal.SIG_DFL:
            signal.signal(getattr(signal, name), _note)


def take() -> int | None:
    """Give the signals their default action back (where this module's handler still holds them) and
    return the first one noted, or None. Call once the caller's own handling can take over."""
    for name in SIGNALS:
        if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) is _note:
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    first = _noted[0] if _noted else None
    _noted.clear()
    return first


def release() -> None:
    """For commands with no start-up handling of their own: default actions back, and a noted signal
    sent again (it takes its default action now, as if it had just come)."""
    first = take()
    if first is not None:
        os.kill(os.getpid(), first)
