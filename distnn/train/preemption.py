"""Preemption signals: the flag, the job's phases (start-up, training, after), exit statuses, fault hooks.

Preemption (SLURM ``--signal=USR1@60``, ``scancel``, a node drain, ``kill``):
SIGTERM or SIGUSR1 only *sets a flag* here (:class:`PreemptionHandler`);
nothing is written from a signal handler. Every rank's flag travels in a
nonblocking allgather started at each step and read at the next one, so all
ranks learn together whether ANY rank was signalled (``mpiexec`` forwards
SIGTERM/SIGUSR1 to every rank, a scheduler may signal only some) and stop at
the same step: the checkpoint callback writes a checkpoint and raises
:class:`Preempted`; ``distnn train`` then exits with :data:`EXIT_PREEMPTED`
(75, ``EX_TEMPFAIL``: "try again"), and ``--resume auto`` continues. When
that checkpoint could not be written (a full disk), the status is
:data:`EXIT_PREEMPTED_UNSAVED` (74, ``EX_IOERR``) instead: the work since the
previous checkpoint is lost, and a job script that requeues on 75 must not
requeue into the same failure with no progress. A second
signal during the save only sets the flag again; the atomic write protocol
(:mod:`distnn.train.checkpoint`) keeps the checkpoint directory consistent
whatever happens.

With checkpointing off (``checkpoint.enabled = false``) the ranks agree on
the signal the same way and stop at the same step (:class:`StopWithoutCheckpoint`),
so the run's files are whole (the epoch's metrics were written through a
temporary file and a rename that a signal no longer interrupts) and every
callback cleans up; the log says that nothing was saved, and the exit status
is :func:`exit_status_for_signal`: 128 + the signal's number (143 for SIGTERM,
138 for SIGUSR1), the status of a process ended by that signal, reached
after a clean stop. Not 75: a job script that requeues on 75 would restart
such a run from zero (``slurm/train.sbatch`` requeues 75 only).

Start-up, then training: :func:`start_up` (the CLI, before anything is
loaded) makes a signal end the job at once with 75; ``attach`` hands over to
the training-time handling with no gap: the step guard watches the flag
before the training handler is installed, the install never clears a flag
already set, and only then does the start-up phase end. Which requests are a
run's: a step guard acts on those that came after its job's start-up began
(:func:`start_up`) or, with no start-up phase (a library caller of
``attach``), after the guard was made; a request left by an earlier run in
the same process is not this run's, and nothing has to clear it in between
(simulated ranks share the flag: a request one rank's guard sees reaches the
others through the per-step agreement). A program that trains through the
library gets its own handlers back when the training ends: ``Trainer.fit``
gives back what ``attach`` installed (:func:`during_fit`), a job run from
Python (``run_training``, ``train_rank``) once its results are written
(:func:`caller_signals`); a signal noted after the last step then reaches
the program's handler.

Outside training, in a CLI job (between two ensemble members a process trains
one after another, and after its last training: test evaluation, writing
model, summary and plots): a signal only sets the flag, on every path (MPI
ranks, simulated ranks, one process), never its default action. Before each
member the ranks of its group agree on :func:`job_requested`: if any rank
was signalled the member does not start (nothing new is written; the members
already finished stay finished) and the job exits 75 (``--resume auto``
trains the others); a request noted after that agreement is the next step
guard's (its mark is the job's start). Once the job's training has ended
there is nothing left to checkpoint: it finishes writing its results (each
file written whole, through a temporary file and a rename), says on stderr
that the signal came too late to matter, and exits 0.

The per-step agreement on the flag (and on non-finite values) is
:mod:`distnn.train.step_guard`'s.

Fault injection for tests (environment): ``DISTNN_FAULT_KILL_AT=RANK:STEP``
kills that rank with SIGKILL when it reaches global step STEP (1-based, the
step being taken); ``DISTNN_FAULT_NONFINITE_AT=RANK:STEP[,...]`` puts a NaN
into that rank's local gradient at that step (before the average);
``DISTNN_FAULT_NONFINITE_LOSS_AT=RANK:STEP[,...]`` makes that rank's loss
NaN at that step while its gradients stay finite;
``DISTNN_FAULT_SIGNAL_AT=RANK:STEP[:SIG]`` sends this process SIG (default
SIGTERM) at that step (step 0: during start-up, once the job is set up), and
the rank reads the flag at that step, simulated or not; STEP may also name a
point between steps (:func:`fault_point`: ``startup-end``, ``handler``,
``validation``, ``metrics-write``, ``after-training``, ``between-members``);
``DISTNN_FAULT_RAISE_AT=RANK:NAME[,...]`` makes that rank raise a
``RuntimeError`` at the named point, as a bug in a user's code on one rank
would (the other ranks are then in a collective that never completes);
``DISTNN_FAULT_EXIT_AT=RANK:STEP[:STATUS]`` makes that rank raise
``SystemExit(STATUS)`` (default 3) at that step, as a user's code might;
``DISTNN_FAULT_STEP_DELAY=SECONDS`` sleeps at every step (to make a short job
long enough to signal); ``DISTNN_FAULT_PAUSE_AT=RANK:STEP[,...]`` makes that
rank, at that step, write the marker file ``paused-rankRANK-stepSTEP`` into
``DISTNN_FAULT_MARKER_DIR`` and wait there until its process gets a
preemption signal or the file ``release`` appears beside the marker
(:func:`pause_for_test`: a test signals a job at a known step, however slow
the machine, instead of hoping the job is still training when its signal
arrives).
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

#: exit status of a run that stopped for preemption after writing its checkpoint (sysexits EX_TEMPFAIL)
EXIT_PREEMPTED = 75
#: exit status of a run that stopped for preemption but could not write its checkpoint (sysexits EX_IOERR)
EXIT_PREEMPTED_UNSAVED = 74
#: a run with checkpointing off that stopped for a signal exits with this + the signal's number
EXIT_SIGNAL_BASE = 128
DEFAULT_SIGNALS = ("SIGTERM", "SIGUSR1")

_requested: int | None = None  # the signal number received (process-wide), or None
_request_count = 0  # requests so far (process-wide): a guard acts on those after its mark
_job_mark = 0  # _request_count when the current job's start-up began (start_up)
_watchers = 0  # step guards that act on the flag now (one per simulated rank; see PreemptionHandler)
_watchers_lock = threading.Lock()  # (simulated ranks bind and unbind their guards from their own threads)
_starting = False  # between start_up() and end_startup(): a signal stops the job at once (exit 75)
_in_job = False  # between start_up() and end_job(): a CLI job's requests (those after _job_mark) are its own
# Set by start_up(), for good: this process runs distnn's CLI jobs, so a signal that no step guard watches
# and that comes after start-up (between two ensemble members, after training) is noted, never the
# default action; the job acts on it at its next safe point, or has nothing left to save.
_deferring = False
_caller_scopes = 0  # caller_signals() calls in progress (only the outermost gives the handlers back)


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


def add_watcher(delta: int) -> None:
    """A step guard starts (+1) or stops (-1) watching the flag: while one does, a signal only sets it."""
    global _watchers
    with _watchers_lock:
        _watchers += delta


def clear() -> None:
    global _requested
    _requested = None


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
        request(signum)

    def _if_watched(self, signum, frame):
        if _watchers:
            request(signum)
            return
        if _starting:  # no step boundary yet to stop at, and nothing to save: stop now, resumable
            end_startup()
            raise PreemptedAtStartup(signum)
        if _deferring:  # between two trainings (ensemble members) or after the last: see job_requested()
            request(signum)
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
    SIGUSR1 then raises :class:`PreemptedAtStartup`, so the job exits with :data:`EXIT_PREEMPTED` and a
    scheduler requeues it, instead of dying by the signal. Once training is wired up
    (:func:`end_startup`), signals take the training-time handler's way; outside training (between
    two ensemble members, after the last training) a signal is only noted (:func:`job_requested`):
    the next member does not start, and a job whose training has ended finishes writing its results
    and exits 0 (nothing is left to checkpoint). Until :func:`end_job`, every step guard acts on the
    job's requests, also one noted before the guard was made. From the interpreter's exit on, these
    signals are ignored: the job's status is decided (Python would otherwise restore their default
    action while it shuts down, and a late signal, which ``mpiexec`` forwards, would kill a rank
    that finished cleanly). A new job: a request left from before it is forgotten."""
    global _starting, _job_mark, _in_job, _deferring
    from distnn import _early_signals

    clear()
    _job_mark = _request_count  # this job's requests: those from now on (its guards' mark)
    _starting = _in_job = _deferring = True
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


@contextlib.contextmanager
def caller_signals(signals=DEFAULT_SIGNALS):
    """Around a distnn job run from Python (``run_training``, ``train_rank``, ``distnn.cli.main(argv)``): the
    caller's process is given back as the job found it.

    During the call distnn's handlers act as documented above (a signal after training is only
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
    deferring, count, acted = _deferring, _request_count, False
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
            if _request_count > count and _requested is not None:
                os.kill(os.getpid(), _requested)  # (runs the caller's handler, or its default action, now)


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


def end_job() -> None:
    """The CLI's job is over (finished, failed or preempted): a later run in this process (a library
    caller's) no longer counts its requests as its own."""
    global _starting, _in_job
    _starting = _in_job = False


def job_mark() -> int:
    """The mark that :func:`job_requested` counts requests from: the CLI job's start (:func:`start_up`),
    or, with no CLI job running (a library caller), now."""
    return _job_mark if _in_job else _request_count


def job_requested(mark: int | None = None) -> int | None:
    """The signal of a request made after ``mark`` (default: the CLI job's start), or None.

    Nothing acted on it yet: a request a step guard acts on ends the job. So between two ensemble
    members this says whether the next one may start, and after training it is one that came too late
    to stop anything.
    """
    return _requested if _request_count > (job_mark() if mark is None else mark) else None


_exit_hook = False


def _ignore_at_exit(signals) -> None:
    global _exit_hook
    if not _exit_hook:
        import atexit

        # (Python-level atexit hooks run before the interpreter resets the handlers it installed;
        # MPI_Finalize, registered at C level, runs after that: a signal then must not kill the rank)
        atexit.register(ignore_further_signals, tuple(signals))
        _exit_hook = True


def inject_startup_fault(rank: int) -> None:
    """``DISTNN_FAULT_SIGNAL_AT=RANK:0[:SIG]``: this rank signals itself during start-up (step 0: before any)."""
    for r, s, *rest in _parse_at("DISTNN_FAULT_SIGNAL_AT"):
        if r == rank and s == 0:
            os.kill(os.getpid(), _signum(rest[0] if rest else "SIGTERM"))


_fired_points: set = set()  # (rank, point) of the named fault points already fired in this process


def fault_point(name: str, rank: int) -> None:
    """``DISTNN_FAULT_SIGNAL_AT=RANK:NAME[:SIG]``: this rank signals itself at the named point, once
    (SIGKILL too: a rank killed there); ``DISTNN_FAULT_RAISE_AT=RANK:NAME``: it raises RuntimeError there.

    Named points (for tests of the moments between steps): ``startup-end`` (the instant the start-up
    phase ends, in :func:`~distnn.train.callbacks.checkpoint_setup.attach`), ``handler`` (just before the
    training-time handler is installed there), ``validation`` (the start of the run's first validation,
    at the end of an epoch: the rank's peers are in or on their way to the validation's allreduce),
    ``metrics-write`` (rank 0, between writing a metrics
    file's temporary copy and renaming it into place), ``after-training`` (right after the rank's
    ``Trainer.fit`` returned, before the test evaluation and the results; in an ensemble, after its
    first member's) and ``between-members`` (an ensemble's rank, before its second member).
    """
    _raise_at_point(name, rank)
    spec = os.environ.get("DISTNN_FAULT_SIGNAL_AT")
    if not spec or (rank, name) in _fired_points:
        return
    for item in spec.split(","):
        parts = [p.strip() for p in item.split(":")]
        if len(parts) >= 2 and parts[0].isdigit() and int(parts[0]) == rank and parts[1] == name:
            _fired_points.add((rank, name))
            before = _request_count
            os.kill(os.getpid(), _signum(parts[2] if len(parts) > 2 else "SIGTERM"))
            _await_handler(before)
            return


def _raise_at_point(name: str, rank: int) -> None:
    """``DISTNN_FAULT_RAISE_AT=RANK:NAME``: this rank raises at the named point, once (see :func:`fault_point`)."""
    spec = os.environ.get("DISTNN_FAULT_RAISE_AT")
    if not spec or (rank, "raise:" + name) in _fired_points:
        return
    for item in spec.split(","):
        parts = [p.strip() for p in item.split(":")]
        if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) == rank and parts[1] == name:
            _fired_points.add((rank, "raise:" + name))
            raise RuntimeError(f"test fault: rank {rank} raised at {name} (DISTNN_FAULT_RAISE_AT)")


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


def _parse_at(env: str) -> list[tuple]:
    out = []
    for item in os.environ.get(env, "").split(","):
        parts = item.strip().split(":")
        if len(parts) >= 2 and parts[0].strip().isdigit() and parts[1].strip().isdigit():
            out.append((int(parts[0]), int(parts[1]), *parts[2:]))
    return out


#: how long a simulated rank that signalled its process waits for the main thread to note it
SIGNAL_NOTE_WAIT_S = 5.0


def _await_handler(before: int) -> None:
    """After signalling its own process: wait, in a simulated rank, until the handler has noted the signal.

    An MPI rank's Python handler runs in the rank's own (main) thread right after ``os.kill`` returns,
    so the rank reads the flag at this very step. A simulated rank is not the main thread: the handler
    runs there once that thread gets the GIL, usually after this rank has read the flag, so the rank saw
    its own signal a step later and the run stopped a step later than under mpiexec (or not, by a race).
    Bounded: a signal whose action is not to set the flag (ignored) must not stop the rank for good.
    """
    if threading.current_thread() is threading.main_thread():
        return
    deadline = time.monotonic() + SIGNAL_NOTE_WAIT_S
    while _request_count == before and time.monotonic() < deadline:
        time.sleep(0.001)  # (releases the GIL: the main thread runs the handler)


#: the longest a test's pause (:func:`pause_for_test`) waits for its signal or its release file
PAUSE_LIMIT_S = 120.0


def pause_for_test(name: str) -> None:
    """Test hook: say "I am here" with a marker file, then wait for a preemption signal or a release file.

    For tests that must signal a job at a known point of its run, however slow the machine:
    ``DISTNN_FAULT_PAUSE_AT=RANK:STEP`` (at a step, :class:`~distnn.train.step_guard.StepGuard`)
    and ``DISTNN_CKPT_FAULT=pause_after:FILE`` (in a checkpoint write, after FILE) call it.
    Never called unless one of those variables is set.

    Writes the empty file ``NAME`` in ``DISTNN_FAULT_MARKER_DIR`` (default: the current
    directory), then waits until this process notes a new preemption request (the signal the
    test sends once it sees the marker) or the file ``release`` appears in that directory (a
    test that must let the job go on without a signal). The request is counted before the
    marker is written, so a signal sent after the test saw it always ends the wait. The wait
    sleeps (an MPI rank's handler runs in its main thread between two sleeps; a simulated
    rank's in the main thread meanwhile). Bounded by :data:`PAUSE_LIMIT_S`: a signal that
    never sets the flag (a broken handler) makes the job go on and finish, which the test
    then sees, instead of a hang.
    """
    before = _request_count
    folder = os.environ.get("DISTNN_FAULT_MARKER_DIR") or "."
    release = os.path.join(folder, "release")
    with open(os.path.join(folder, name), "w"):
        pass
    deadline = time.monotonic() + PAUSE_LIMIT_S
    while _request_count == before and not os.path.exists(release):
        if time.monotonic() > deadline:
            import sys

            print(f"distnn: test pause {name!r}: no signal and no release file within {PAUSE_LIMIT_S:.0f} s; "
                  "going on", file=sys.stderr, flush=True)
            return
        time.sleep(0.01)
