"""Installing and giving back the preemption signal handlers, by the job's phase.

:class:`PreemptionHandler` (flag-only, or phase-aware with ``only_when_watched``), the CLI's start-up
phase (:func:`start_up`, :func:`end_startup`, :func:`end_job`), who gives a caller's handlers back
(:func:`caller_signals` around a job, :func:`during_fit` around a bare ``Trainer.fit``), and ignoring
the signals once a run's status is decided (:func:`ignore_further_signals`). The overview is
:mod:`distnn.train.preemption`'s.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading

from . import preemption_flag as flag
from .preemption_status import Preempted, PreemptedAtStartup

DEFAULT_SIGNALS = ("SIGTERM", "SIGUSR1")

_watchers = 0  # step guards that act on the flag now (one per simulated rank; see PreemptionHandler)
_watchers_lock = threading.Lock()  # (simulated ranks bind and unbind their guards from their own threads)
_starting = False  # between start_up() and end_startup(): a signal stops the job at once (exit 75)
# Set by start_up(), for good: this process runs distnn's CLI jobs, so a signal that no step guard watches
# and that comes after start-up (between two ensemble members, after training) is noted, never the
# default action; the job acts on it at its next safe point, or has nothing left to save.
_deferring = False
_caller_scopes = 0  # caller_signals() calls in progress (only the outermost gives the handlers back)
_exit_hook = False  # whether the interpreter's exit ignores the signals already (_ignore_at_exit)


def add_watcher(delta: int) -> None:
    """A step guard starts (+1) or stops (-1) watching the flag: while one does, a signal only sets it."""
    global _watchers
    with _watchers_lock:
        _watchers += delta


class PreemptionHandler:
    """Installs flag-setting handlers for ``signals`` (names or numbers); :meth:`uninstall` restores the old ones.

    Handlers can only be installed from the main thread; elsewhere (simulated
    ranks) this is a no-op. So ``--simulate-ranks`` installs one from the main
    thread around the ranks with ``only_when_watched``: a signal sets the flag
    while some rank's step guard watches it (during training), raises
    :class:`PreemptedAtStartup` during start-up, and otherwise takes its
    previous action (SIGTERM's: terminate). Installing never clears a flag
    already set: a signal noted during the hand-over from start-up is this
    run's to act on.
    """

    def __init__(self, signals=DEFAULT_SIGNALS, only_when_watched: bool = False):
        self.signals = [_signum(s) for s in signals]
        self.only_when_watched = bool(only_when_watched)
        self._previous = {}
        self.installed = False  # (False off the main thread: nothing was installed there)
        self.noted: int | None = None  # the last signal this handler took since it was installed

    def install(self) -> "PreemptionHandler":
        if threading.current_thread() is not threading.main_thread():
            return self
        self.noted = None
        for s in self.signals:
            self._previous[s] = signal.signal(s, self._if_watched if self.only_when_watched else self._note)
        self.installed = True
        return self

    def _note(self, signum, frame):
        # Only a flag: a handler may run between any two bytecodes, even inside a checkpoint write.
        self.noted = signum
        flag.request(signum)

    def _if_watched(self, signum, frame):
        if _watchers:
            flag.request(signum)
            return
        if _starting:  # no step boundary yet to stop at, and nothing to save: stop now, resumable
            end_startup()
            raise PreemptedAtStartup(signum)
        if _deferring:  # between two trainings (ensemble members) or after the last: see job_requested()
            flag.request(signum)
            return
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:  # the default action, as if no handler had been installed
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def uninstall(self) -> None:
        for s, prev in self._previous.items():
            try:
                signal.signal(s, prev if prev is not None else signal.SIG_DFL)
            except (ValueError, TypeError):
                pass
        self.forget()

    def forget(self) -> None:
        """Drop the previous handlers without putting them back (a preempted run: the signals stay ignored)."""
        self._previous.clear()
        self.installed, self.noted = False, None

    def give_back(self) -> None:
        """:meth:`uninstall`, then send again the signal this handler noted, if any: nothing acted on it (it
        came after the last step), and the handlers put back take their action on it now, as if it had
        just come (a program's own handler runs; with none, SIGTERM ends the process as it would have)."""
        noted = self.noted
        self.uninstall()
        if noted is not None:
            os.kill(os.getpid(), noted)

    def __enter__(self):
        return self.install()

    def __exit__(self, *exc):
        self.uninstall()


def start_up(signals=DEFAULT_SIGNALS) -> "PreemptionHandler":
    """The CLI's handler for a job's start-up (imports done; data loading, model building): a SIGTERM or
    SIGUSR1 then raises :class:`PreemptedAtStartup`, so the job exits with 75 (``EXIT_PREEMPTED``) and a
    scheduler requeues it, instead of dying by the signal. Once training is wired up
    (:func:`end_startup`), signals take the training-time handler's way; outside training (between
    two ensemble members, after the last training) a signal is only noted (:func:`.job_requested`):
    the next member does not start, and a job whose training has ended finishes writing its results
    and exits 0 (nothing is left to checkpoint). Until :func:`end_job`, every step guard acts on the
    job's requests, also one noted before the guard was made. From the interpreter's exit on, these
    signals are ignored: the job's status is decided (Python would otherwise restore their default
    action while it shuts down, and a late signal, which ``mpiexec`` forwards, would kill a rank
    that finished cleanly). A new job: a request left from before it is forgotten."""
    global _starting, _deferring
    from distnn import _early_signals

    flag.begin_job()  # (a request left from before is forgotten; the job's are those from now on)
    _starting = _deferring = True
    _ignore_at_exit(signals)
    early = _early_signals.take()  # (one that came while `python -m distnn` imported: this start-up's)
    handler = PreemptionHandler(signals, only_when_watched=True).install()
    if early is not None:
        end_startup()
        raise PreemptedAtStartup(early)
    return handler


def end_startup() -> None:
    global _starting
    _starting = False


def end_job() -> None:
    """The CLI's job is over (finished, failed or preempted): a later run in this process (a library
    caller's) no longer counts its requests as its own."""
    global _starting
    _starting = False
    flag.leave_job()


@contextlib.contextmanager
def caller_signals(signals=DEFAULT_SIGNALS):
    """Around a distnn job run from Python (``run_training``, ``train_rank``, ``distnn.cli.main(argv)``): the
    caller's process is given back as the job found it.

    During the call distnn's handlers act as :mod:`distnn.train.preemption` says (a signal after training is only
    noted while the results are written). When the call ends, the handlers the caller had for
    ``signals`` are put back, a CLI job's deferral ends, and a signal the job noted but did not
    act on (it came after training: the job finished) is sent to the process again, to take the
    caller's own action (a sweep calling jobs in a loop ends on SIGTERM between two jobs as a
    plain script would). A job that ended in :class:`Preempted` acted on its
    signal: nothing is sent again, and the signals stay ignored (:func:`ignore_further_signals`):
    the process is to exit now, and a launcher's duplicate signal must not kill it meanwhile.
    A no-op off the main thread (handlers live there), and inside another such call (``main(argv)``
    runs ``run_training``, which runs ``train_rank``: the outer one gives back).
    """
    global _deferring, _caller_scopes
    if threading.current_thread() is not threading.main_thread() or _caller_scopes:
        yield
        return
    saved = {s: signal.getsignal(s) for s in (_signum(x) for x in signals)}
    deferring, count, acted = _deferring, flag.request_count(), False
    _caller_scopes += 1
    try:
        yield
    except Preempted:
        acted = True
        raise
    finally:
        _caller_scopes -= 1
        if not acted:
            _deferring = deferring
            for s, handler in saved.items():
                signal.signal(s, signal.SIG_DFL if handler is None else handler)
            if flag.request_count() > count and flag.requested() is not None:
                os.kill(os.getpid(), flag.requested())  # (runs the caller's handler, or its default action, now)


def fit_owns_handlers() -> bool:
    """Whether the training handlers ``attach`` installs now are to be given back when its ``Trainer.fit``
    ends (:func:`during_fit`): in the main thread, outside a job (:func:`caller_signals`), which gives
    them back itself once its results are written."""
    return not _caller_scopes and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def during_fit(handler: "PreemptionHandler | None"):
    """Around ``Trainer.fit``: the training handlers ``attach`` installed (``handler``) last as long as the fit.

    For a program that wires a trainer itself (``attach``, then ``fit``): when the fit returns or raises,
    SIGTERM and SIGUSR1 get the handlers they had before ``attach`` back, and a signal the training
    handler noted that nothing acted on (it came after the last step) is sent again, to take their
    action now (:meth:`PreemptionHandler.give_back`). A fit that ended in :class:`Preempted` acted on
    its signal: the signals stay ignored (:func:`ignore_further_signals`), as the process is to exit
    with the exception's ``exit_code``. A later fit of the same trainer installs the handler again.

    Not the fit's to give back (:func:`fit_owns_handlers`): inside a job the job does, once its results
    are written, so a signal after training is only noted meanwhile; off the main thread (simulated
    ranks) nothing was installed.
    """
    if handler is None or not fit_owns_handlers():
        yield
        return
    if not handler.installed:  # (an earlier fit of this trainer gave it back)
        handler.install()
    acted = False
    try:
        yield
    except Preempted:
        acted = True
        raise
    finally:
        if acted:
            handler.forget()
        else:
            handler.give_back()


def _ignore_at_exit(signals) -> None:
    global _exit_hook
    if not _exit_hook:
        import atexit

        # (Python-level atexit hooks run before the interpreter resets the handlers it installed;
        # MPI_Finalize, registered at C level, runs after that: a signal then must not kill the rank)
        atexit.register(ignore_further_signals, tuple(signals))
        _exit_hook = True


def ignore_further_signals(signals=DEFAULT_SIGNALS) -> None:
    """After the preemption checkpoint: ignore more of these signals until the process exits.

    Python puts its own handlers back to the default action during interpreter
    shutdown, so a late duplicate SIGTERM (``mpiexec`` forwards each one it
    gets) would otherwise kill a rank that is already exiting cleanly.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for s in signals:
        try:
            signal.signal(_signum(s), signal.SIG_IGN)
        except (ValueError, OSError):
            pass


def _signum(s) -> int:
    if isinstance(s, int):
        return s
    name = str(s).upper()
    name = name if name.startswith("SIG") else "SIG" + name
    if not hasattr(signal, name):
        raise ValueError(f"unknown signal {s!r} (expected e.g. SIGTERM, SIGUSR1)")
    return int(getattr(signal, name))
