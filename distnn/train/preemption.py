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
step being taken), after writing the marker file ``killed-rankRANK-stepSTEP``
into ``DISTNN_FAULT_MARKER_DIR`` when that is set; ``DISTNN_FAULT_NONFINITE_AT=RANK:STEP[,...]`` puts a NaN
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

What lives where: the exceptions and exit statuses are
:mod:`distnn.train.preemption_status`'s; the flag and which requests are a
job's, :mod:`distnn.train.preemption_flag`'s; installing the handlers by the
job's phase and giving them back, :mod:`distnn.train.preemption_handlers`'s;
the fault injection above, :mod:`distnn.train.preemption_faults`'s. Every
public name is importable from here.
"""
from __future__ import annotations

from .preemption_faults import PAUSE_LIMIT_S, SIGNAL_NOTE_WAIT_S, fault_point, inject_startup_fault, pause_for_test
from .preemption_flag import clear, job_mark, job_requested, request, request_count, requested
from .preemption_handlers import (DEFAULT_SIGNALS, PreemptionHandler, add_watcher, caller_signals, during_fit, end_job,
                                  end_startup, fit_owns_handlers, ignore_further_signals, start_up)
from .preemption_status import (EXIT_PREEMPTED, EXIT_PREEMPTED_UNSAVED, EXIT_SIGNAL_BASE, Preempted,
                                PreemptedAtStartup, PreemptedWithoutCheckpointing, exit_status_for_signal,
                                resume_hint)

__all__ = ["EXIT_PREEMPTED", "EXIT_PREEMPTED_UNSAVED", "EXIT_SIGNAL_BASE", "DEFAULT_SIGNALS", "PAUSE_LIMIT_S",
           "SIGNAL_NOTE_WAIT_S", "Preempted", "PreemptedAtStartup", "PreemptedWithoutCheckpointing",
           "PreemptionHandler", "add_watcher", "caller_signals", "clear", "during_fit", "end_job", "end_startup",
           "exit_status_for_signal", "fault_point", "fit_owns_handlers", "ignore_further_signals",
           "inject_startup_fault", "job_mark", "job_requested", "pause_for_test", "request", "request_count",
           "requested", "resume_hint", "start_up"]
