"""Running an ensemble job: members trained on groups of ranks, scored together, written to one run directory.

:func:`train_ensemble` follows the phases of :func:`distnn.train.job.train_rank`:

1. every rank loads the config and plans the groups (:func:`~distnn.train.ensemble.plan_groups`);
   a member count that does not fit the world stops every rank with the same message;
2. the world is split into groups; each rank builds a Job for each member its group trains
   (data loaded once per process, shared by those members), all errors agreed over the world;
3. world rank 0 creates the run directory; each group trains its members in turn with
   :func:`distnn.train.job._train` into ``members/member-k`` (checkpoints, preemption and resume
   included), exactly as a single-model run on the group communicator;
4. one allreduce scores every member and the ensemble on the validation and test splits
   (:func:`~distnn.train.ensemble.evaluate_ensemble`); world rank 0 writes the top level;
   the group communicators are freed (MPI has room for only so many in a process).

Preemption is agreed within each group (a scheduler's signal reaches every rank, so every
group stops and checkpoints); ``--resume auto`` resumes every member from its own checkpoints
and does not train again a member an earlier session finished with the same config. A signal
between two members a group trains in turn (after one's training ended, before the next one's
handler is installed) is noted, and the group agrees on it before the next member starts
(:func:`stop_before_member`): that member does not start, and the job exits 75. The test
switches ``DISTNN_FAULT_*_AT=RANK:STEP`` name a world rank here too (at a member's own STEP).
"""
from __future__ import annotations

import contextlib
import copy
import io
import os
import re

import numpy as np

from .ensemble_config import _get, ensemble_settings
from .ensemble_groups import group_communicator, plan_groups
from .ensemble_members import member_config, member_dir
from .ensemble_scoring import evaluate_ensemble
from . import preemption
from .preemption import Preempted, fault_point, inject_startup_fault
# (the run's parts: preemption between members, and its results; importable from here too)
from .ensemble_preemption import EnsemblePreempted, PreemptedBeforeMember, _agree_on_group_endings, stop_before_member
from .ensemble_report import ENSEMBLE_CSV_COLUMNS, ensemble_summary, plot_members, summary_lines, write_ensemble_files

__all__ = ["ENSEMBLE_CSV_COLUMNS", "EnsemblePreempted", "PreemptedBeforeMember", "ensemble_summary", "finished_member",
           "member_setup_error", "plot_members", "plan_ensemble", "build_member_jobs", "stop_before_member", "summary_lines", "train_ensemble",
           "write_ensemble_files"]


def _member_job_class():
    from .job import Job

    class MemberJob(Job):
        """A Job for one member: its own config, the group communicator, data loaded once per process."""

        def __init__(self, config, comm, cfg, quiet=False, shared_splits=None, device_rank=None):
            self.shared_splits = shared_splits
            self._device_rank = device_rank  # the world's local rank: GPUs are per host, not per group
            super().__init__(config, [], comm, quiet=quiet, cfg=cfg)

        def _load_data(self):
            if self.shared_splits is None:
                self.shared_splits = super()._load_data()
            return self.shared_splits

    return MemberJob


def train_ensemble(comm, config, overrides=(), out=None, quiet=False):
    """Train every member of an ensemble run and score the ensemble (every rank; collective).

    Phases as in :func:`distnn.train.job.train_rank`: build and check every
    member's job (errors agreed over the whole world), create the run
    directory, train this group's members in turn on the group communicator,
    then one allreduce scores members and ensemble. Returns the summary on
    world rank 0, None elsewhere.
    """
    from distnn import random as dn_random

    from . import job as J
    from . import run_dir as rd
    from .job_setup import _apply_collective_timeout

    jobs, rng_states = {}, {}
    cfg, settings, plan = plan_ensemble(comm, config, overrides)
    _apply_collective_timeout(comm, cfg.distributed.timeout)  # the world's collectives too, not only the groups'
    # (read before the next collective: simulated ranks share one timeout, and a group that finishes first
    # lifts it while it waits for the others, see _agree_on_group_endings)
    world_timeout = comm.timeout if comm.size > 1 else None
    mark = preemption.job_mark()  # (requests after it are this job's: a member does not start after one)
    with _group_communicator(comm, plan, jobs) as gcomm:
        def built(m, job):
            # The trainer seeded this thread's dropout stream for member m; the next member's setup reseeds
            # it, so it is restored right before member m trains (same stream as a member trained alone).
            rng_states[m] = dn_random.get_state()

        error = build_member_jobs(config, gcomm, cfg, settings, plan, plan.members_of(plan.group_of(comm.rank)),
                                  jobs, quiet=quiet or comm.rank != 0, device_rank=comm.local_rank, built=built)
        J.agree_on_errors(comm, error)
        first = next(iter(jobs.values()))  # (it loaded the data the other members share)
        J.agree_on_same_data(comm, first)  # over the world: every group trains on the same data
        inject_startup_fault(comm.rank)  # DISTNN_FAULT_SIGNAL_AT=RANK:0, the world's rank as in a plain run
        path = J.run_dir_for(cfg, out, comm, lambda: J._default_path(first))
        try:
            created = rd.prepare_run_dir(path, comm, resuming=bool(dict(cfg.checkpoint).get("resume")), ensemble=True)
        except rd.RunDirError as e:
            raise J.JobError(J.run_dir_error(e, cfg, out), report=comm.rank == 0) from None
        try:
            return _train_members(comm, gcomm, plan, settings, cfg, jobs, rng_states, path, world_timeout, mark)
        except BaseException:
            # Nothing half-written, unless some member trained an epoch or left a checkpoint to resume from.
            if comm.rank == 0 and created and not any(j.trainer.history for j in jobs.values()) and not any(
                    J.has_checkpoint(member_dir(path, m), cfg) for m in range(plan.members)):
                rd.remove_run_dir(path)
            raise
        finally:
            if comm.rank == 0:  # (simulated ranks share the process: only the holder gives it back)
                rd.release_run_dir(path)


def plan_ensemble(comm, config, overrides=()):
    """``(cfg, settings, plan)`` of an ensemble job: its config loaded with ``overrides``, its settings, the
    groups its members train in on ``comm.size`` ranks; a problem is one error agreed by every rank of
    ``comm`` (:func:`~distnn.train.job.agree_on_errors`). Shared by the run and ``train --check``."""
    from . import job as J
    from .config import load_config
    from .config_object import quiet_config_warnings

    error, cfg, settings, plan = None, None, None, None
    try:
        with quiet_config_warnings(comm.rank != 0):  # (said once: by rank 0, as a plain job's)
            cfg = load_config(config, list(overrides or ()))
        with J.tag_config_errors(cfg):  # ("ensemble.members=4 does not divide ...": --set may have given it)
            settings = ensemble_settings(cfg)
            plan = plan_groups(comm.size, settings.members)
    except (ValueError, OSError, KeyError, TypeError) as e:
        error = J._one_line(e)
    J.agree_on_errors(comm, error)
    return cfg, settings, plan


def build_member_jobs(config, group_comm, cfg, settings, plan, members, jobs: dict, *, quiet, device_rank,
                      built=None) -> str | None:
    """Build a Job for each of ``members`` on ``group_comm`` into ``jobs`` (``{member: job}``; the data
    loaded once, shared), calling ``built(member, job)`` after each. Returns the one-line error for the
    first member that cannot be set up (:func:`member_setup_error`), or None; the caller agrees on it.
    Shared by the run and ``train --check``."""
    from . import job as J

    MemberJob, shared, current = _member_job_class(), None, None
    try:
        for m in members:
            current = m
            job = MemberJob(config, group_comm, member_config(cfg, m, settings), quiet=quiet, shared_splits=shared,
                            device_rank=device_rank)
            shared, jobs[m] = job.shared_splits, job
            if built is not None:
                built(m, job)
    except (ValueError, OSError, KeyError, TypeError) as e:
        return member_setup_error(plan, current, J._one_line(e))
    except MemoryError as e:  # (as in job.train_rank: one agreed line, not a traceback)
        return member_setup_error(plan, current, J.memory_error_text(e))
    return None


@contextlib.contextmanager
def _group_communicator(comm, plan, jobs):
    """This rank's group communicator for the ``with`` block, freed when the job ends (``jobs``: its members).

    Each split holds MPI communicators (its own two, its DataParallel's, their shared-memory windows'),
    of which MPICH has room for about 2000 in a process: a sweep of ensemble jobs in one process ran
    out after about a thousand jobs, fewer with groups of several ranks. Freeing is collective, so it
    happens where every rank gets to it: the end of the job, or an error agreed over the world (a
    JobError, EnsemblePreempted). Any other exception is
    one rank's, and ends the job (an MPI job aborts): a collective there could wait for ranks that
    never come, so the group is left as it is.
    """
    from .job import JobError

    gcomm = group_communicator(comm, plan)
    if gcomm is comm:  # one group: the world's own communicator, not the job's to free
        yield gcomm
        return
    try:
        yield gcomm
    except (JobError, EnsemblePreempted):
        _free_group(gcomm, jobs)
        raise
    _free_group(gcomm, jobs)


def _free_group(gcomm, jobs) -> None:
    """Free the group communicator (collective over it), once the members' DataParallel wrappers let go of
    what they hold on it: persistent allreduces, shared-memory buffers, and the gradients viewing those
    (a buffer still viewed would stay allocated)."""
    for job in jobs.values():
        if job.trainer.ddp is not None:
            job.trainer.ddp.remove_hooks()
        job.optimizer.zero_grad(set_to_none=True)
    gcomm.free()


def member_setup_error(plan, member: int, message: str) -> str:
    """The one-line error for setting up ``member``, worded for the user who launched the job.

    A member is built on its GROUP's communicator, so the Trainer's size checks count the group's ranks
    ("data.batch_size ... must be divisible by the number of ranks 2" in a job of 4 ranks). The Trainer
    knows nothing of ensembles (and its wording changes), so rather than rewording its message this
    says, after it, where that rank count comes from: when the group is not the whole world and the
    message speaks of ranks. Other errors, and those of a single group, are left as they are.
    """
    if plan.groups == 1 or not re.search(r"\brank", message):
        return f"ensemble member {member}: {message}"
    g, n = plan.group_of_member(member), plan.group_size
    ranks = f"world ranks {g * n}-{(g + 1) * n - 1}" if n > 1 else f"world rank {g * n}"
    how = "members at once" if plan.rounds == 1 else f"groups, each training {plan.rounds} members in turn"
    return (f"ensemble member {member}: {message} (ranks per member: {plan.world_size} ranks / {plan.groups} {how}; "
            f"member {member} trains on {ranks}, and data.batch_size is each member's batch, split over its ranks)")


def finished_member(gcomm, job, directory):
    """Collective over the group: the member in ``directory`` if a previous session finished it with this
    very config (a resumed ensemble does not train it again), else None.

    Returns ``(state_dict, history, summary)``; read on group rank 0 and broadcast. The member's
    ``config.toml`` and ``model.npz`` are read once each and checked against its ``SHA256SUMS``, as a single
    run's resume checks its own: one that fails (or a ``SHA256SUMS`` damaged or deleted) is a JobError on
    every rank of the group naming the member and the file, not a member passed over and trained over.
    """
    import json

    from . import run_dir as rd
    from .config import CheckedConfigFile, load_config
    from .config_schema import NOT_COMPARED_ON_RESUME
    from .job import JobError
    from .regular_file import read_regular
    from .run_checksums import RunFileError, read_sums, read_verified

    found = None
    if gcomm.rank == 0:
        try:
            s = rd.read_summary(directory)
            sums = read_sums(directory)
            config = os.path.join(directory, rd.CONFIG)
            old = load_config(CheckedConfigFile(config, read_verified(directory, rd.CONFIG, sums))).to_dict()
            new = job.cfg.to_dict() if hasattr(job.cfg, "to_dict") else copy.deepcopy(dict(job.cfg))
            for c in (old, new):
                for key in NOT_COMPARED_ON_RESUME:
                    section, name = key.split(".")
                    c.get(section, {}).pop(name, None)
            done = s.get("epochs") == job.trainer.epochs and (s.get("epochs_run") == s.get("epochs")
                                                              or s.get("stopped_early"))
            if done and old == new:
                raw = read_verified(directory, rd.MODEL_WEIGHTS, sums)  # (checked, read once)
                with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
                    sd = {k: npz[k] for k in npz.files}
                text = read_regular(os.path.join(directory, "metrics.jsonl")).decode()  # (a pipe: refused)
                history = [json.loads(line) for line in text.splitlines() if line.strip()]
                found = (sd, history, s)
        except RunFileError as e:  # (before ValueError: damage, not a member still to be trained)
            found = ("refused", f"ensemble member {_get(job.cfg, 'ensemble.member')}: {' '.join(str(e).split())}; the "
                                f"member is not resumed from files that cannot be trusted: restore them, or "
                                f"remove {directory} to train that member again")
        except (OSError, ValueError, KeyError):
            found = None
    found = gcomm.broadcast_object(found, root=0) if gcomm.size > 1 else found
    if found is not None and found[0] == "refused":
        raise JobError(found[1], report=gcomm.rank == 0)
    return found


def _train_member(job, directory, member: int):
    """:func:`~distnn.train.job._train` of one member; a checkpoint's error its group agreed on (a resume from
    damaged checkpoints, a path that is not there) names the member, as ``train --check`` names it."""
    from . import job as J
    from .checkpoint import CheckpointError

    try:
        return J._train(job, directory)
    except CheckpointError as e:
        said = e.args[0] if len(e.args) == 1 and isinstance(e.args[0], str) else None
        if getattr(e, "report", None) is not None and said is not None and not said.startswith("ensemble member"):
            e.args = (f"ensemble member {member}: {said}",)
        raise


def _train_members(comm, gcomm, plan, settings, cfg, jobs, rng_states, path, world_timeout=None, mark=None):
    import time

    from distnn import random as dn_random

    from . import job as J
    from . import run_dir as rd
    from .config import dump_run_config
    from .logging_utils import get_logger

    log = get_logger("ensemble")
    first = next(iter(jobs.values()))
    # A resumed ensemble's config.toml is rewritten once its members have trained: a resume refused on
    # the way (a member's checkpoint from other settings) leaves the one the run was started with.
    config_later = bool(_get(cfg, "checkpoint.resume")) and os.path.exists(os.path.join(path, rd.CONFIG))
    if comm.rank == 0:
        if not config_later:
            rd.write_run_files(path, {rd.CONFIG: dump_run_config(cfg)})
        log.info("ensemble: %s (vary: %s)", plan.describe(), ", ".join(settings.vary) or "overrides only")
    t0 = time.perf_counter()
    summaries, ending = {}, None
    try:
        for i, (m, job) in enumerate(jobs.items()):
            if i:
                fault_point("between-members", comm.rank)
            # A signal since the job began that no training acted on (it came between two members; they
            # only note it): the next member does not start, so nothing new is written for it.
            stop_before_member(gcomm, m, job, [k for k in jobs if k in summaries], mark, log)
            mdir = member_dir(path, m)
            if gcomm.rank == 0:
                os.makedirs(mdir, exist_ok=True)
            done = finished_member(gcomm, job, mdir) if _get(job.cfg, "checkpoint.resume") else None
            if done is not None:
                sd, job.trainer.history, summary = done
                job.model.load_state_dict(sd)
                summaries[m] = summary if gcomm.rank == 0 else None
                log.info("member-%d (%d of %d): finished in an earlier session, not trained again", m, m + 1,
                         plan.members)
                continue
            dn_random.set_state(rng_states[m])
            log.info("member-%d (%d of %d): seed %s, run directory %s", m, m + 1, plan.members, job.trainer.seed,
                     mdir)
            summaries[m] = _train_member(job, mdir, m)
    except Exception as e:
        # Preempted, or an error its group agreed on (it carries ``report``): the other groups must hear of
        # it, else they wait for this one in the scoring collective. Anything else ends the job at once.
        if not isinstance(e, Preempted) and getattr(e, "report", None) is None:
            raise
        ending = e
    _agree_on_group_endings(comm, gcomm, plan, ending, world_timeout)
    wall = time.perf_counter() - t0  # (after the agreement: until the last group finished)
    splits = first.shared_splits
    ev = evaluate_ensemble(comm, gcomm, plan, {m: (j.model, j.eval_tf) for m, j in jobs.items()},
                           {"val": splits.val, "test": splits.test}, batch_size=first.trainer.eval_batch_size)
    mine = {m: {"summary": summaries[m], "history": jobs[m].trainer.history, "seed": jobs[m].trainer.seed}
            for m in jobs} if gcomm.rank == 0 else {}
    members = {}
    for part in (comm.allgather_object(mine) if comm.size > 1 else [mine]):
        members.update(part)
    summary = None
    if comm.rank == 0:
        if config_later:
            rd.write_run_files(path, {rd.CONFIG: dump_run_config(cfg)})
        summary = ensemble_summary(path, first.config_name, plan, settings, members, ev, wall)
        write_ensemble_files(path, first.model_meta(), plan, summary, members, ev,
                             plots=bool(_get(cfg, "run.plots", True)))
        t = summary
        if t["test_accuracy"] is not None:
            log.info("ensemble of %d: test accuracy %.4f (members %s; gain %+.4f), test NLL %.4f (members' mean "
                     "%.4f)", plan.members, t["test_accuracy"],
                     " ".join(f"{a:.4f}" for a in t["member_test_accuracy"]), t["ensemble_gain_accuracy"],
                     t["test_loss"], t["mean_member_test_loss"])
    if comm.size > 1:
        comm.barrier()  # nobody leaves before rank 0 has written the results
    return summary


