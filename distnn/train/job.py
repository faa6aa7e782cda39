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
in :mod:`distnn.train.schedule_setup`; ``evaluate``/``predict`` in
:mod:`distnn.train.inference`. All are re-exported here.
"""
from __future__ import annotations

import os

import numpy as np

from . import run_dir as rd
from .callbacks import EarlyStopping, MetricsLogger, PlotCurves
from .job_setup import Job, _as_dict, tag_config_errors
from .job_preflight import _cannot_make_files_under, check_profile_dir, preflight  # noqa: F401 - re-exported
from .logging_utils import get_logger, set_rank, setup_logging
from .schedule_setup import build_schedule  # noqa: F401 - re-exported
from .trainer import default_comm

log = get_logger("job")


class JobError(ValueError):
    """A setup error agreed by all ranks; ``report`` is True on the rank that should print it."""

    def __init__(self, message: str, report: bool = True):
        super().__init__(message)
        self.report = report


def _one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    if isinstance(exc, KeyError) and len(msg) > 1 and msg[0] == msg[-1] == "'":
        msg = msg[1:-1]
    return msg or type(exc).__name__


def data_fingerprint(splits) -> str:
    """SHA-256 of every split's samples and labels (shapes and dtypes included)."""
    import hashlib

    h = hashlib.sha256()
    for name, part in splits.items():
        for a in (part.x, part.y):
            a = np.ascontiguousarray(a)
            h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
            h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def agree_on_same_data(comm, job) -> None:
    """Collective: per-rank data files (``{rank}`` in data.path) must hold the same data on every rank.
    A no-op for one rank or one data file (the same config on every rank: all of them or none).

    distnn shards ONE dataset across the ranks itself (each rank takes its part of every global
    batch); files that differ per rank would be sharded again (each rank training on a fraction of
    its own file, statistics fitted per rank, a crash when their sizes differ).
    """
    if comm.size == 1 or not job.per_rank_data:
        return
    path = job.cfg.data.path
    prints = comm.allgather_object(data_fingerprint(job.splits))
    differ = [r for r, f in enumerate(prints) if f != prints[0]]
    if differ:
        raise JobError(f"data.path {path!r} gives rank {differ[0]} other data than rank 0; distnn shards one "
                       "dataset across the ranks itself, so every rank must read the same data (pre-sharded "
                       "per-rank files are not supported): give one file, or identical copies"
                       + job.cfg.origins_tag(["data.path"]), report=comm.rank == 0)


def memory_error_text(exc: MemoryError) -> str:
    """One line for a MemoryError while the job is set up (a config asking for more than this machine has)."""
    return (f"not enough memory to set up the job (load the data, build the model and optimizer): {_one_line(exc)}; "
            "check the sizes in the config (data.n_samples, model sizes, data.batch_size)")


def agree_on_errors(comm, error: str | None) -> None:
    """Collective: raise the same JobError on every rank if any rank had an error."""
    errors = comm.allgather_object(error) if comm.size > 1 else [error]
    failed = [(r, e) for r, e in enumerate(errors) if e is not None]
    if not failed:
        return
    first_rank, msg = failed[0]
    if comm.size > 1 and len(failed) < comm.size:
        msg = f"rank {first_rank}: {msg}"
    raise JobError(msg, report=comm.rank == 0)


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


def _default_path(job) -> str:
    run = job.cfg.run
    if run.get("run_name"):
        return os.path.join(run.out_dir, run.run_name)
    return rd.default_run_dir(job.config_name, root=run.out_dir)


def run_dir_for(cfg, out, comm, default) -> str:
    """The run directory, the same on every rank: ``out``, or rank 0's ``default()`` (a new timestamped one).

    ``checkpoint.resume = "auto"`` continues the run in a known directory, so it needs ``out`` (or
    ``run.run_name``, which names the directory): a fresh default directory has nothing to continue.
    """
    if dict(cfg.checkpoint).get("resume") == "auto" and not out and not cfg.run.get("run_name"):
        tag = cfg.origins_tag(["checkpoint.resume"]) if hasattr(cfg, "origins_tag") else ""
        raise JobError("--resume auto (checkpoint.resume = \"auto\") needs --out RUN_DIR: the run directory "
                       f"whose checkpoints to continue (or --set run.run_name=NAME: run.out_dir/NAME){tag}",
                       report=comm.rank == 0)
    path = out or (default() if comm.rank == 0 else None)
    return comm.broadcast_object(path, root=0) if comm.size > 1 else path


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
        raise JobError(str(e), report=comm.rank == 0) from None
    try:
        agree_on_errors(comm, _finished_without_checkpoint(path, job.cfg) if comm.rank == 0 else None)
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


def _record_checkpoint_dir_in_run(cfg, path) -> None:
    """An absolute ``checkpoint.dir`` inside the run directory ``path`` becomes relative to it (in the run's
    config.toml and its checkpoints' copies): a copy of the run directory then resumes from and writes to its
    own checkpoints, not the original's. One outside the run stays as given (see ``attach``'s warning)."""
    directory = _as_dict(cfg.checkpoint).get("dir")
    if not directory or not os.path.isabs(str(directory)):
        return
    inside = os.path.relpath(os.path.realpath(str(directory)), os.path.realpath(str(path)))
    if inside != os.pardir and not inside.startswith(os.pardir + os.sep):
        cfg.checkpoint["dir"] = inside


def _finished_without_checkpoint(path, cfg) -> str | None:
    """Why ``--resume auto`` must not go on in ``path``: it holds a finished run's results and no checkpoint
    (checkpointing was off, or they were deleted), so "a fresh start" would train it again and overwrite
    them. None when it may."""
    if _as_dict(cfg.checkpoint).get("resume") != "auto":
        return None
    results = [n for n in (rd.MODEL_WEIGHTS, rd.SUMMARY) if os.path.exists(os.path.join(str(path), n))]
    if not results or has_checkpoint(path, cfg, valid=True):
        return None  # (a run stopped before its first checkpoint: nothing finished to lose, it starts over)
    from .callbacks.checkpoint_setup import checkpoint_dir
    from .checkpoint import list_checkpoints, verify_checkpoint

    found = list_checkpoints(checkpoint_dir(path, _as_dict(cfg.checkpoint)))
    # (checkpoints that are all damaged: say how, else the user looks for checkpoints that are not there)
    why = (f" ({len(found)} there, none whole; the newest: {verify_checkpoint(found[-1].path)[0]})" if found
           else "")
    return (f"--resume auto: run directory {str(path)!r} holds a finished run ({', '.join(results)}) and no "
            f"valid checkpoint to continue from{why}; training it again from the start would overwrite its "
            f"results (choose another --out, or name a checkpoint with --resume PATH)")


def has_checkpoint(path, cfg, valid: bool = False) -> bool:
    """Whether the run in ``path`` (config ``cfg``) has left a checkpoint (in its ``checkpoint.dir``);
    ``valid``: one whose checksums verify (newest first, until one does)."""
    from .callbacks.checkpoint_setup import checkpoint_dir
    from .checkpoint import list_checkpoints, verify_checkpoint

    found = list_checkpoints(checkpoint_dir(path, _as_dict(cfg.checkpoint)))
    return any(not verify_checkpoint(c.path) for c in reversed(found)) if valid else bool(found)


def _train(job, path):
    from distnn.train.config import dump_run_config

    comm, trainer = job.comm, job.trainer
    if comm.rank == 0:
        log.info("run directory %s", path)
        log.info("%s; %d rank%s, global batch %d (%d per rank), %d steps per epoch, precision %s",
                 job.splits.summary(), comm.size, "s" if comm.size > 1 else "", trainer.batch_size,
                 trainer.local_batch, trainer.steps_per_epoch, trainer.amp.precision)
    trainer.callbacks.append(MetricsLogger(path))
    if job.cfg.run.plots:
        ranks = f"{comm.size} rank" + ("s" if comm.size > 1 else "")
        trainer.callbacks.append(PlotCurves(path, title=f"{job.config_name} ({ranks})"))
    if job.cfg.run.get("profile"):  # (runs before the checkpoints: a step's checkpoint is part of the step profiled)
        from .callbacks.profiling import ProfileSteps

        wait, warmup, active = job.cfg.run.profile_steps
        trainer.callbacks.append(ProfileSteps(job.cfg.run.profile, int(getattr(comm, "world_rank", comm.rank)),
                                              wait, warmup, active, summary=comm.rank == 0, log=log))
    # Checkpoints (the callback that runs last), SIGTERM/SIGUSR1 preemption, the non-finite policy; resume (collective).
    from .callbacks.checkpoint_setup import attach, extra_files_for

    # (a resume's error names the checkpoint, not the key: it is about checkpoint.resume, which --set may give)
    with tag_config_errors(job.cfg, ("checkpoint.resume",) if _as_dict(job.cfg.checkpoint).get("resume") else ()):
        attach(trainer, path, job.cfg.checkpoint, nonfinite=job.cfg.train.nonfinite,
               max_nonfinite=job.cfg.train.max_nonfinite,
               extra_files=extra_files_for(job.model_meta(), dump_run_config(job.cfg)))
    if comm.rank == 0:  # after a resume was accepted: a refused one leaves the run's config.toml as it was
        rd.write_run_files(path, {rd.CONFIG: dump_run_config(job.cfg)})
    history = trainer.fit()
    from .preemption import fault_point

    fault_point("after-training", int(getattr(comm, "world_rank", comm.rank)))
    wall = trainer.state.elapsed  # training wall time, earlier sessions of a resumed run included
    test = trainer.evaluate(job.splits.test, prefix="test_") if job.splits.test is not None else {}
    es = next((cb for cb in trainer.callbacks if isinstance(cb, EarlyStopping)), None)
    best_epoch = (es.best_epoch if es is not None and es.best_epoch >= 0 else trainer.state.best_epoch)
    summary = {
        "config": job.config_name, "run_dir": os.path.abspath(path),
        "test_accuracy": test.get("test_accuracy"), "test_loss": test.get("test_loss"),
        "test_samples": test.get("test_count"),
        "best_epoch": best_epoch + 1 if best_epoch >= 0 else None,
        "best_" + trainer.monitor: (es.best if es is not None and es.best_epoch >= 0 else trainer.state.best_metric),
        "epochs_run": len(history), "epochs": trainer.epochs, "stopped_early": trainer.state.stopped_early,
        "world_size": comm.size, "global_batch_size": trainer.batch_size, "per_rank_batch_size": trainer.local_batch,
        # where it ran (what run.device = "auto" resolved to) and in what precision: not in config.toml
        "device": _device_of(trainer.model), "dtype": str(job.cfg.run.dtype),
        "accumulation_steps": trainer.accumulation_steps, "global_steps": trainer.state.global_step,
        "skipped_steps": trainer.state.skipped_steps,  # non-finite steps skipped (train.nonfinite = "skip")
        "precision": trainer.amp.precision,  # train.precision; with "16-mixed" the loss scaler's record too
        **({"scaler_skipped_steps": trainer.state.scaler_skipped_steps,
            "loss_scale": trainer.amp.scaler.get_scale()} if trainer.amp.enabled else {}),
        "samples_per_sec": float(np.mean([h["samples_per_sec"] for h in history])) if history else None,
        "wall_time": wall,
        "final_train_loss": history[-1]["train_loss"] if history else None,
        "final_val_accuracy": history[-1].get("val_accuracy") if history else None,
    }
    if comm.rank == 0:
        rd.save_model(path, job.model, job.model_meta(), step=trainer.state.global_step)
        rd.write_json(os.path.join(path, rd.SUMMARY), summary)
        if summary["test_accuracy"] is not None:
            log.info("test accuracy %.4f, test loss %.4f", summary["test_accuracy"], summary["test_loss"])
    if comm.size > 1:
        comm.barrier()  # nobody leaves before rank 0 has written the results
    return summary if comm.rank == 0 else None


def _device_of(model) -> str:
    """``"gpu"`` or ``"cpu"``: where the model's parameters live."""
    from distnn.backend import get_array_module

    p = next(iter(model.parameters()), None)
    return "cpu" if p is None or get_array_module(p.data) is np else "gpu"


# evaluate/predict live in distnn.train.inference; re-exported for callers of this module
from .inference import describe_datasets, evaluate_run, predict_proba, predict_run  # noqa: E402,F401

# The public names, those of job_setup, schedule_setup and inference that callers import from here included.
__all__ = ["JobError", "Job", "build_schedule", "data_fingerprint", "agree_on_same_data", "memory_error_text",
           "agree_on_errors", "run_training", "run_dir_for", "set_up_job", "train_rank", "preflight",
           "check_profile_dir", "has_checkpoint",
           "describe_datasets", "evaluate_run", "predict_proba", "predict_run"]
