"""``distnn train --check`` of an ensemble: what every member and every planned rank of the run will read.

An ensemble run (:func:`~distnn.train.ensemble_run.train_ensemble`) builds each member's job on its group's
ranks, has every world rank load its own per-rank data file (``{rank}`` in data.path, the world rank), and
with ``--resume`` has each member look in its own run directory, ``members/member-k``: a member an earlier
session finished with the same config is not trained again (its ``config.toml`` and ``model.npz`` checked
against its ``SHA256SUMS``, :func:`~distnn.train.ensemble_run.finished_member`), any other resumes from its
own checkpoints (``members/member-k/checkpoints``, or ``member-k`` under an explicit ``checkpoint.dir``).
A member's damaged files stop the run only when that member's turn comes, after the members before it have
trained: the check reads them all up front, with the run's own functions, and refuses with the run's error
naming the member (``ensemble member k: ...``) and the file, after the member's group when the run has
several (``ensemble group g (world rank(s) ..., member(s) ...): ...``, as the run's groups agree on an
error); of several members it would refuse, the one the run stops on.

With no data file on this host the members' models cannot be built: their files are still read as the run
reads them (a finished member's checksums; the checkpoint each would resume from, chosen and read), and what
needs the model is noted (:func:`check_members_resume_without_data`). With rank 0's file missing but another
planned rank's here, the members are built from that one's and checked in full.
"""
from __future__ import annotations

import types

from .check_comm import PlannedRankComm
from .job import JobError, _default_path, _one_line, agree_on_errors, run_dir_for
from .job_setup import _as_dict


def check_ensemble(comm, config, overrides, out, here=None) -> dict:
    """An ensemble's set-up as :func:`~distnn.train.ensemble_run.train_ensemble` does it (the member count
    against the ranks, every member's job on a group's communicator, the run directory), for every member
    (a run builds only its own group's); the per-rank data files of ``here`` (the planned ranks whose files
    are on this host, the members built from the first one's; None: all of them, rank 0's first); with a
    resume, each member's own files (:func:`check_members_resume`)."""
    from .ensemble_run import build_member_jobs, plan_ensemble
    from .job_check import _check_run_dir
    from .job_check_data import check_same_data_on_ranks

    cfg, settings, plan = plan_ensemble(comm, config, overrides)
    jobs, built_from = {}, 0 if here is None else here[0]
    group_comm = PlannedRankComm(plan.group_size)
    group_comm.world_rank = built_from  # (whose per-rank file the members load: rank 0's may not be here)
    agree_on_errors(comm, build_member_jobs(config, group_comm, cfg, settings, plan, range(plan.members), jobs,
                                            quiet=True, device_rank=0))
    first = jobs[0]
    # (as the run: the first member of a rank's group loads the data, and its failure is that member's)
    check_same_data_on_ranks(cfg, list(range(comm.size)) if here is None else here, built_from,
                             who=lambda r: f"rank {r}: ensemble member {plan.members_of(plan.group_of(r))[0]}")
    path = run_dir_for(cfg, out, comm, lambda: _default_path(first))
    spec = _as_dict(cfg.checkpoint).get("resume")
    created = _check_run_dir(path, bool(spec), ensemble=True, cfg=cfg, out=out)
    t = first.trainer
    return {"config": first.config_name, "model": first.model_spec["name"], "data": first.splits.summary(),
            "ranks": comm.size, "members": plan.members, "groups": plan.groups, "global_batch": t.batch_size,
            "per_rank_batch": t.local_batch, "epochs": t.epochs, "steps_per_epoch": t.steps_per_epoch,
            "run_dir": str(path), "new_run_dir": created,
            "resume": f"{spec}: {check_members_resume(jobs, path, plan)}" if spec else None}


def check_members_resume(jobs: dict, path, plan) -> str:
    """What each member of ``jobs`` (``{member: job}``) resumes from in the ensemble run directory ``path``,
    found as the run finds it: finished in an earlier session (not trained again), its checkpoint (loaded
    into the member's throwaway Trainer: checksums, batch, model and optimizer), or none yet. A member whose
    files the run would refuse is a JobError naming the member and the file, and its group (``plan``) as
    the run names it; of several, the one the run stops on (:meth:`~.ensemble_groups.EnsemblePlan.in_run_order`)."""
    from .job_check import resume_found

    return _each_member(plan, path, lambda m, mdir: resume_found(jobs[m], mdir, _as_dict(jobs[m].cfg.checkpoint)
                                                                  .get("resume")), lambda m: jobs[m])


def check_members_resume_without_data(cfg, settings, plan, path) -> str:
    """:func:`check_members_resume` with no data file on this host, so no member's model: a finished member's
    files are checked against their checksums as the run checks them, any other member's checkpoint is chosen
    and read (its checksums) as the run's resume chooses it, and refused as the run refuses it; loading it
    into the member's model (the global batch, steps per epoch, weights and optimizer state) is noted as not
    checked here."""
    from .ensemble_members import member_config
    from .host_checks import defer
    from .job_check import resume_found_without_model

    configs = {m: member_config(cfg, m, settings) for m in range(plan.members)}

    def job_of(m):  # (what finished_member reads of a job: its config, and its Trainer's epochs)
        return types.SimpleNamespace(cfg=configs[m], trainer=types.SimpleNamespace(epochs=int(configs[m].train.epochs)))

    chosen = []

    def found(m, mdir):
        said, checkpoint = resume_found_without_model(configs[m], mdir, _as_dict(configs[m].checkpoint).get("resume"))
        chosen.append(checkpoint)
        return said

    said = _each_member(plan, path, found, job_of)
    if any(chosen):
        defer(MEMBERS_NOT_LOADED)
    return said


#: the note of a check without the data: what the members' checkpoints were not checked for
MEMBERS_NOT_LOADED = ("each ensemble member's checkpoint loaded into its model (it needs the data's model; chosen "
                      "and read here: checksums)")


def _each_member(plan, path, found, job_of) -> str:
    """``member k: ...`` for each member, in member order, of what it resumes from in ``path``: finished in an
    earlier session, else ``found(k, its directory)``; the members are read in the order the run meets them,
    and the first refusal is the run's line (:meth:`~.ensemble_groups.EnsemblePlan.group_ending`)."""
    from .checkpoint import CheckpointError
    from .ensemble_members import member_dir
    from .ensemble_run import finished_member

    said = {}
    for m in plan.in_run_order():
        mdir = member_dir(path, m)
        try:
            # (the run's own reading, on a group of one: rank 0 of a group reads, the others are sent what it read)
            if finished_member(PlannedRankComm(1), job_of(m), mdir) is not None:
                said[m] = "finished in an earlier session (not trained again)"
                continue
            try:  # (the member's own spec: a run directory or checkpoint root given resolves to its part of it)
                said[m] = found(m, mdir)
            except CheckpointError as e:
                raise JobError(f"ensemble member {m}: {_one_line(e)}") from None
        except JobError as e:
            raise JobError(plan.group_ending(m, str(e))) from None
    return "; ".join(f"member {m}: {said[m]}" for m in sorted(said))
