"""``distnn train --check``: everything ``train`` refuses before it trains, found without training.

A check runs the job's own set-up code (:func:`~distnn.train.job.set_up_job`: the config, every ``--set``,
the data loaded, the model, optimizer, schedules and Trainer built, ``--resume PATH`` and the profile
directory checked; :func:`~distnn.train.job.run_dir_for`; the run directory's refusals,
:func:`~distnn.train.run_dir.check_run_dir`; and the resume itself, :func:`~distnn.train.callbacks.resume.resume`,
loaded into the job's throwaway Trainer) as rank 0 of the ranks the job will have
(:class:`~distnn.train.check_comm.PlannedRankComm`), so a check and a run cannot disagree about what they
share. It writes nothing: no run directory, no lock left held, no checkpoint recovered.

What a check cannot see: the machines the job lands on (a GPU there, data on their local disks, their
memory). A GPU missing here and data paths outside the current directory that do not exist here are
noted, not refused (:mod:`.host_checks`; ``strict`` refuses them); the job refuses them at start if its
hosts lack them too. With no data file here, no model is built: ``--resume``'s checkpoint (each ensemble
member's) is chosen and read as the run would, and loading it into the model is noted
(:func:`~.job_check_data.check_without_data`).
A per-rank data file (``{rank}`` in data.path) is checked for every planned rank whose file is here
(:func:`~.job_check_data.check_same_data_on_ranks`: compared with the checked rank's bytes, loaded only when
they differ). An ensemble is checked for every member and rank (:mod:`.job_check_ensemble`), its members'
own files for a resume included.
"""
from __future__ import annotations

import types

from . import run_dir as rd
from .check_comm import PlannedRankComm
from .host_checks import NOTE_PREFIX, NOTE_SUFFIX, deferred
from .job import (JobError, _default_path, _finished_without_checkpoint, _record_checkpoint_dir_in_run,
                  agree_on_errors, run_dir_error, run_dir_for, set_up_job)
from .job_setup import _as_dict, tag_config_errors
from .logging_utils import get_logger, set_rank, setup_logging

log = get_logger("check")


def check_training(config, overrides=(), out=None, ranks: int = 1, quiet: bool = False, strict: bool = False) -> dict:
    """What ``train`` with these arguments would do on ``ranks`` ranks, or the JobError (or other one-line
    error) ``train`` would stop with before training. Returns a summary dict (see :func:`summary_lines`);
    its ``notes``: what only the job's hosts can check (:mod:`.host_checks`: no GPU or data file here),
    which ``strict`` refuses instead, as the job would on this host."""
    setup_logging()
    set_rank(0)
    comm = PlannedRankComm(ranks)
    if strict:
        return {**_check(comm, config, overrides, out, quiet), "notes": []}
    with deferred() as notes:
        summary = _check(comm, config, overrides, out, quiet)
    return {**summary, "notes": list(dict.fromkeys(notes))}  # (an ensemble's members note alike)


def _check(comm, config, overrides, out, quiet) -> dict:
    from . import ensemble
    from .job_check_data import check_same_data_on_ranks, check_without_data, data_here
    from .job_check_ensemble import check_ensemble

    is_ensemble = ensemble.requested(config, overrides)
    here = data_here(comm, config, overrides)  # (None: every data file is here, or a strict check)
    if here is not None and not here:
        return check_without_data(comm, config, overrides, out, ensemble=is_ensemble)
    if is_ensemble:  # (rank 0's file is not here: its members are built from the first planned rank's that is)
        return check_ensemble(comm, config, overrides, out, here)
    if here:  # (rank 0's file is not here: the job is checked with the first planned rank's that is)
        comm.world_rank = here[0]
    job = set_up_job(comm, config, overrides, quiet)
    if here:
        check_same_data_on_ranks(job.cfg, here, here[0])
    else:
        check_same_data_on_ranks(job.cfg, list(range(comm.size)), 0)
    path = run_dir_for(job.cfg, out, comm, lambda: _default_path(job))
    _record_checkpoint_dir_in_run(job.cfg, path)
    spec = _as_dict(job.cfg.checkpoint).get("resume")
    created = _check_run_dir(path, bool(spec), ensemble=False, cfg=job.cfg, out=out)
    agree_on_errors(comm, _finished_without_checkpoint(path, job.cfg, out))
    t = job.trainer
    return {"config": job.config_name, "model": job.model_spec["name"], "data": job.splits.summary(),
            "ranks": comm.size, "global_batch": t.batch_size, "per_rank_batch": t.local_batch,
            "epochs": t.epochs, "steps_per_epoch": t.steps_per_epoch, "run_dir": str(path), "new_run_dir": created,
            "resume": _check_resume(job, path, spec) if spec else None}


def _check_run_dir(path, resuming: bool, ensemble: bool, cfg, out) -> bool:
    try:
        return rd.check_run_dir(path, resuming=resuming, ensemble=ensemble)
    except rd.RunDirError as e:  # (as train_rank reports prepare_run_dir's)
        raise JobError(run_dir_error(e, cfg, out)) from None


def _check_resume(job, path, spec) -> str:
    """Where the run would resume from: ``spec:`` and :func:`resume_found`."""
    return f"{spec}: {resume_found(job, path, spec)}"


def resume_found(job, path, spec) -> str:
    """The checkpoint ``spec`` resolves to in the run directory ``path``, loaded into the job's Trainer by
    the run's own :func:`~distnn.train.callbacks.resume.resume` (checksums, global batch, steps per epoch,
    the model's and optimizer's state), or that ``auto`` finds none yet; its CheckpointError, if any."""
    from .callbacks.checkpoint_setup import checkpoint_dir
    from .callbacks.resume import resume
    from .config import dump_run_config

    root = checkpoint_dir(path, _as_dict(job.cfg.checkpoint))
    # (its warnings, e.g. the settings that differ from the checkpoint's, but not its "resumed from": nothing was)
    warnings_only = types.SimpleNamespace(warning=log.warning, info=lambda *args, **kwargs: None)
    with tag_config_errors(job.cfg, ("checkpoint.resume",)):  # (as the run's _train tags it)
        found = resume(job.trainer, spec, root, types.SimpleNamespace(), warnings_only,
                       config_text=dump_run_config(job.cfg), recover=False)
    if found is None:
        return f"no checkpoint in {root} yet (a fresh start)"
    return f"{found} (global step {job.trainer.state.global_step})"


def resume_found_without_model(cfg, path, spec) -> tuple[str, str | None]:
    """What :func:`resume_found` can say with no model to load into (no data file on this host): the
    checkpoint ``spec`` resolves to in the run directory ``path``, chosen and read (its checksums) as the
    run's resume chooses it (``auto``: the newest that verifies, with a warning for each one passed over),
    or that ``auto`` finds none yet; its CheckpointError, if any. Returns what to say and the checkpoint
    chosen (None: none), whose loading into the model the caller notes as not checked."""
    from .callbacks.checkpoint_setup import checkpoint_dir
    from .checkpoint import resolve_and_load

    root = checkpoint_dir(path, _as_dict(cfg.checkpoint))
    with tag_config_errors(cfg, ("checkpoint.resume",)):  # (as the run's _train tags it)
        found = resolve_and_load(spec, root, warn=log.warning)
    if found is None:
        return f"no checkpoint in {root} yet (a fresh start)", None
    checkpoint, _, manifest = found
    step = int(manifest.get("global_step", manifest["step"]))
    return f"{checkpoint} (global step {step}; not loaded: no data file here)", checkpoint


def summary_lines(s: dict) -> list:
    """What ``distnn train --check`` prints when the check passes; a line for each of its notes (what only
    the job's hosts can check)."""
    ranks = f"{s['ranks']} rank" + ("" if s["ranks"] == 1 else "s")
    members = (f"; ensemble of {s['members']} members in {s['groups']} group(s) of "
               f"{s['ranks'] // s['groups']} rank(s)" if s.get("members") else "")
    steps = "(steps per epoch: not known without the data)" if s["steps_per_epoch"] is None else \
        f"of {s['steps_per_epoch']} steps"
    return [f"check passed: config {s['config']}, model {s['model']}",
            f"  data:          {s['data']}",
            f"  ranks:         {ranks}, global batch {s['global_batch']} ({s['per_rank_batch']} per rank){members}",
            f"  epochs:        {s['epochs']} {steps}",
            f"  run directory: {s['run_dir']} ({'new' if s['new_run_dir'] else 'exists'})",
            f"  resume:        {s['resume'] or 'no (a fresh run)'}",
            *(f"  {NOTE_PREFIX}{note}{NOTE_SUFFIX}" for note in s.get("notes") or ())]
