"""The preemption flag: the signal this process was sent, and which requests are the current job's.

Process-wide (simulated ranks share it; their agreement is per step, :mod:`distnn.train.step_guard`).
A handler only calls :func:`request`; a step guard acts on the requests after its mark
(:func:`job_mark`, :func:`job_requested`). The overview is :mod:`distnn.train.preemption`'s.
"""
from __future__ import annotations

import signal

_requested: int | None = None  # the signal number received (process-wide), or None
_request_count = 0  # requests so far (process-wide): a guard acts on those after its mark
_job_mark = 0  # _request_count when the current job's start-up began (begin_job, from start_up)
_in_job = False  # between start_up() and end_job(): a CLI job's requests (those after _job_mark) are its own


def requested() -> int | None:
    """The preemption signal received by this process, or None."""
    return _requested


def request(signum: int = signal.SIGTERM) -> None:
    """Mark this process as preempted (what the signal handler does; tests call it directly)."""
    global _requested, _request_count
    _requested = int(signum)
    _request_count += 1


def request_count() -> int:
    """How many requests this process has noted so far (a mark for :func:`job_requested`)."""
    return _request_count


def clear() -> None:
    global _requested
    _requested = None


def begin_job() -> None:
    """A CLI job starts (:func:`~distnn.train.preemption_handlers.start_up`): a request left from before it is
    forgotten, and its requests are those from now on, also for a step guard made later."""
    global _job_mark, _in_job
    clear()
    _job_mark = _request_count  # this job's requests: those from now on (its guards' mark)
    _in_job = True


def leave_job() -> None:
    """The CLI job is over: a later run in this process no longer counts its requests as its own."""
    global _in_job
    _in_job = False


def job_mark() -> int:
    """The mark that :func:`job_requested` counts requests from: the CLI job's start (:func:`begin_job`),
    or, with no CLI job running (a library caller), now."""
    return _job_mark if _in_job else _request_count


def job_requested(mark: int | None = None) -> int | None:
    """The signal of a request made after ``mark`` (default: the CLI job's start), or None.

    Nothing acted on it yet: a request a step guard acts on ends the job. So between two ensemble
    members this says whether the next one may start, and after training it is one that came too late
    to stop anything.
    """
    return _requested if _request_count > (job_mark() if mark is None else mark) else None
