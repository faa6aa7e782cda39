"""From a config to a finished run directory: the glue behind ``distnn train|evaluate|predict``.

``run_training`` runs on every rank in three phases:

1. **Validate** (every rank, no files written): load the config, the data and
   the transforms, build the model, optimizer, schedulers and the Trainer
   (which checks batch sizes against the shards). Each rank records its error,
   if any; one ``allgather`` tells every rank whether ANY rank failed, and all
   raise the same one-line :class:`JobError` together, so a problem that only
   rank 1 hits (an unreadable per-rank file) still ends the whole job at once.
2. **Run directory**: rank 0 creates it and checks it is writable; the outcome
   is broadcast. Nothing exists on disk before this point.
3. **Train**: ``Trainer.fit`` with the callbacks, then the test evaluation
   (collective), then rank 0 writes model, metrics, curves and summary.

What lives where: phase 1's :class:`Job` (config to data, model, optimizer,
schedules and Trainer) is in :mod:`distnn.train.job_setup`, :func:`build_schedule`
in :mod:`distnn.train.schedule_setup`, the checks before anything is written in
:mod:`distnn.train.job_preflight`; what the ranks agree on (:class:`JobError`,
the same data) in :mod:`distnn.train.job_agreement`; the run directory in
:mod:`distnn.train.job_run_dir`; phase 3 in :mod:`distnn.train.job_train`;
``evaluate``/``predict`` in :mod:`distnn.train.inference`. All are re-exported here.
"""
from __future__ import annotations

from . import run_dir as rd
from .job_agreement import (JobError, _one_line, agree_on_errors, agree_on_same_data,  # noqa: F401 - re-exported
                            data_fingerprint, memory_error_text)
from .job_preflight import _cannot_make_files_under, check_profile_dir, preflight  # noqa: F401 - re-exported
from .job_run_dir import (_default_path, _finished_without_checkpoint,  # noqa: F401 - re-exported
                          _record_checkpoint_dir_in_run, has_checkpoint, run_dir_error, run_dir_for)
from .job_setup import Job, tag_config_errors
from .job_train import _device_of, _train  # noqa: F401 - re-exported (an ensemble trains its members with _train)
from .logging_utils import set_rank, setup_logging
from .schedule_setup import build_schedule  # noqa: F401 - re-exported
from .trainer import default_comm


# --------------------------------------------------------------- train (CLI)
def run_training(config="digits_mlp", overrides=(), out=None, simulate_ranks=None, quiet=False, comm=None):
    """Run a training job; returns the summary dict on rank 0 and None elsewhere.

    ``simulate_ranks=N`` runs N ranks as threads of this process through the
    in-process communicator; otherwise ``comm`` (default: MPI when launched
    under mpiexec, else a single rank).
    """
    from .preemption import caller_signals

    if quiet:  # (as run.quiet = true: the run's config.toml then says what the run did)
        overrides = [*(overrides or ()), ("run.quiet", True)]
    with caller_signals():  # the caller's signal handlers back afterwards (see caller_signals)
        try:
            return _run_training(config, overrides, out, simulate_ranks, quiet, comm)
        finally:
            # The job's DataParallel sits in reference cycles (its hooks hold it through the model): collected
            # now, it hands its communicator and shared-memory windows back to the pool for the next job of a
            # sweep, which otherwise made new ones (8.6 MB of /dev/shm a job, measured under mpiexec -n 2).
            _collect_garbage()


def _collect_garbage() -> None:
    """``gc.collect()``, with a Ctrl-C that comes during it acted on once it returns.

    The collection runs the job's finalizers (DataParallel's ``release_buckets``) in this thread. Python acts
    on a signal at the next Python code it runs, which during a collection is a finalizer, and a
    KeyboardInterrupt raised in a finalizer is only printed ("Exception ignored in ..."): the Ctrl-C was
    lost, and the job returned as if none had come (a sweep went on with its next job). So SIGINT is
    only noted during the collection, then given to its handler (KeyboardInterrupt) outside any finalizer.
    """
    import gc
    import signal
    import threading

    previous = signal.getsignal(signal.SIGINT)
    # (handlers live in the main thread; SIG_IGN, SIG_DFL or a handler not set from Python: nothing to defer)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        gc.collect()
        return
    noted = []
    signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum))
    try:
        gc.collect()
    finally:
        signal.signal(signal.SIGINT, previous)
    if noted:
        previous(signal.SIGINT, None)


def _run_training(config, overrides, out, simulate_ranks, quiet, comm):
    setup_logging()
    if simulate_ranks:
        from distnn.distributed import simulate

        from .preemption import Preempted, PreemptionHandler, ignore_further_signals

        # Signal handlers live in the main thread, not in the ranks' threads: SIGTERM/SIGUSR1 then
        # preempt the simulated ranks as they would MPI ranks (when they checkpoint).
        try:
            with PreemptionHandler(only_when_watched=True):
                results = simulate(int(simulate_ranks), _guarded, config, overrides, out, quiet, True)
        except Preempted:
            # (the ranks' own call did nothing off the main thread: a duplicate SIGTERM while the process
            # exits would kill it with 143 instead of the 75 the checkpoint earned)
            ignore_further_signals()
            raise
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        return results[0]
    return train_rank(comm or default_comm(), config, overrides, out, quiet)




def _guarded(comm, *args):
    # Agreed errors are values in simulated ranks: the driver re-raises rank 0's once.
    try:
        return train_rank(comm, *args)
    except JobError as e:
        return e


def train_rank(comm, config, overrides=(), out=None, quiet=False, simulated=False):
    """Phase 1-3 on one rank (see the module docstring).

    Called from Python, it gives the caller's SIGTERM/SIGUSR1 handlers back when it returns or raises
    (:func:`~distnn.train.preemption.caller_signals`; inside ``run_training`` that call does).
    """
    from .preemption import caller_signals

    with caller_signals():
        return _train_rank(comm, config, overrides, out, quiet, simulated)


def _train_rank(comm, config, overrides, out, quiet, simulated):
    set_rank(comm.rank, thread_only=simulated)
    from . import ensemble

    if ensemble.requested(config, overrides):  # ensemble.members > 1: members on groups of ranks
        return ensemble.train_ensemble(comm, config, overrides, out, quiet)
    job = set_up_job(comm, config, overrides, quiet)
    from .preemption import inject_startup_fault

    inject_startup_fault(comm.rank)
    path = run_dir_for(job.cfg, out, comm, lambda: _default_path(job))
    _record_checkpoint_dir_in_run(job.cfg, path)
    try:
        created = rd.prepare_run_dir(path, comm, resuming=bool(dict(job.cfg.checkpoint).get("resume")))
    except rd.RunDirError as e:
        raise JobError(run_dir_error(e, job.cfg, out), report=comm.rank == 0) from None
    try:
        agree_on_errors(comm, _finished_without_checkpoint(path, job.cfg, out) if comm.rank == 0 else None)
        return _train(job, path)
    except BaseException:
        # Nothing half-written: a run that wrote no results (it never finished one epoch) leaves no directory
        # behind, unless it holds a checkpoint (a preempted or failed run is resumed from there). Not "its
        # history is empty": a resume into a new --out that failed (another model) had restored the history.
        if comm.rank == 0 and created and not rd.previous_run_marks(path) and not has_checkpoint(path, job.cfg):
            rd.remove_run_dir(path)
        raise
    finally:
        if comm.rank == 0:  # (simulated ranks share the process: only the holder gives it back)
            rd.release_run_dir(path)


def set_up_job(comm, config, overrides=(), quiet=False) -> Job:
    """Phase 1 on one rank (collective): the :class:`Job`, with the checks of anything known wrong before a
    file is written; an error on any rank is raised on every rank as one :class:`JobError`. ``distnn train
    --check`` runs it too (:mod:`distnn.train.job_check`), so that a check and a run refuse alike."""
    job, error = None, None
    try:
        job = Job(config, list(overrides or ()), comm, quiet=quiet)
        # (run.profile and checkpoint.dir are named in their errors; "--resume 'x': no such checkpoint" names none)
        with tag_config_errors(job.cfg, unnamed=("checkpoint.resume",)):
            if comm.rank == 0:  # (the rank that resolves --resume and writes the checkpoints)
                preflight(job.cfg)
            # (every rank: each writes its own trace, maybe into a node-local directory)
            check_profile_dir(job.cfg, int(getattr(comm, "world_rank", comm.rank)))
    except (ValueError, OSError, KeyError, TypeError) as e:  # DataError/ConfigError are ValueErrors
        error = _one_line(e)
    except MemoryError as e:  # sizes in the config too large for this machine (numpy says how much)
        error = memory_error_text(e)
    agree_on_errors(comm, error)
    agree_on_same_data(comm, job)
    return job


# evaluate/predict live in distnn.train.inference; re-exported for callers of this module
from .inference import describe_datasets, evaluate_run, predict_proba, predict_run  # noqa: E402,F401

# The public names, those of job_setup, schedule_setup and inference that callers import from here included.
__all__ = ["JobError", "Job", "build_schedule", "data_fingerprint", "agree_on_same_data", "memory_error_text",
           "agree_on_errors", "run_training", "run_dir_for", "set_up_job", "train_rank", "preflight",
           "check_profile_dir", "has_checkpoint",
           "describe_datasets", "evaluate_run", "predict_proba", "predict_run"]
