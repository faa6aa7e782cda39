"""Preemption's outcomes: the exceptions a stopped run raises and the exit statuses they stand for.

:class:`Preempted` (a checkpoint was attempted: 75, or 74 when it could not be written),
:class:`PreemptedAtStartup` (a signal during start-up: 75) and :class:`PreemptedWithoutCheckpointing`
(checkpointing off: 128 + the signal's number). The overview is :mod:`distnn.train.preemption`'s.
"""
from __future__ import annotations

import os
import signal

#: exit status of a run that stopped for preemption after writing its checkpoint (sysexits EX_TEMPFAIL)
EXIT_PREEMPTED = 75
#: exit status of a run that stopped for preemption but could not write its checkpoint (sysexits EX_IOERR)
EXIT_PREEMPTED_UNSAVED = 74
#: a run with checkpointing off that stopped for a signal exits with this + the signal's number
EXIT_SIGNAL_BASE = 128


class Preempted(Exception):
    """Training stopped at an agreed step because of a preemption signal (a checkpoint was attempted)."""

    exit_code = EXIT_PREEMPTED

    def __init__(self, step: int, signum: int | None, checkpoint: str | None, error: str | None = None):
        self.step, self.signum, self.checkpoint, self.error = step, signum, checkpoint, error
        name = signal.Signals(signum).name if signum else "a preemption request"
        if checkpoint:
            msg = f"preempted by {name}: stopped after step {step}; checkpoint {checkpoint} written"
        else:
            msg = f"preempted by {name}: stopped after step {step}; NO checkpoint written ({error or 'disabled'})"
            self.exit_code = EXIT_PREEMPTED_UNSAVED
        super().__init__(msg)


class PreemptedAtStartup(Preempted):
    """A preemption signal came while the job was starting (before training): nothing new to save."""

    def __init__(self, signum: int):
        Exception.__init__(self, f"preempted by {signal.Signals(signum).name} during start-up, before training "
                                 "began: nothing new to save")
        self.step, self.signum, self.checkpoint, self.error = 0, signum, None, None


def resume_hint(signum: int | None = None) -> str:
    """How to continue a run that ``signum`` preempted: ``--resume auto``, or what a batch script that passes it
    itself says, per signal: ``DISTNN_RESUME_HINT_SIGUSR1`` (``_SIGTERM``, ...) when set, else ``DISTNN_RESUME_HINT``.

    Per signal because the same stop means different things to a scheduler: under slurm/train.sbatch a
    SIGUSR1 (its preemption signal) requeues the job, while the SIGTERM of ``scancel`` or the time limit
    ends it for good (the user resubmits)."""
    name = signal.Signals(signum).name if signum else None
    return (os.environ.get(f"DISTNN_RESUME_HINT_{name}") if name else None) \
        or os.environ.get("DISTNN_RESUME_HINT") or "run again with --resume auto to continue"


def exit_status_for_signal(signum: int) -> int:
    """The exit status of a run with checkpointing off stopped by ``signum``: 128 + its number (143: SIGTERM)."""
    return EXIT_SIGNAL_BASE + int(signum)


class PreemptedWithoutCheckpointing(Preempted):
    """Training stopped at an agreed step because of a preemption signal, with checkpointing off: nothing
    was saved, and ``exit_code`` is :func:`exit_status_for_signal` (not 75: there is nothing to resume)."""

    def __init__(self, step: int, signum: int):
        Exception.__init__(self, f"preempted by {signal.Signals(signum).name}: stopped after step {step}; nothing "
                                 "saved: checkpointing is off (checkpoint.enabled = false)")
        self.step, self.signum, self.checkpoint, self.error = step, signum, None, "checkpointing is off"
        self.exit_code = exit_status_for_signal(signum)
