"""``distnn train --check`` of an ensemble: what every member and every planned rank of the run will read.

An ensemble run (:func:`~distnn.train.ensemble_run.train_ensemble`) builds each member's job on its group's
ranks, has every world rank load its own per-rank data file (``{rank}`` in data.path, the world rank), and
with ``--resume`` has each member look in its own run directory, ``members/member-k``: a member an earlier
session finished with the same config is not trained again (its ``config.toml`` and ``model.npz`` checked
against its ``SHA256SUMS``, :func:`~distnn.train.ensemble_run.finished_member`), any other resumes from its
own checkpoints (``members/member-k/checkpoints``, or ``member-k`` under an explicit ``checkpoint.dir``).
A member's damaged files stop the run only when that member's turn comes, after the members before it have
trained: the check reads them all up front, with the run's own functions, and refuses with the run's error
naming the member (``ensemble member k: ...``) and the file.
"""
from __future__ import annotations

from .check_comm import PlannedRankComm
from .job import JobError, _default_path, _one_line, agree_on_errors, run_dir_for
from .job_setup import _as_dict


def check_ensemble(comm, config, overrides, out, here=None) -> dict:
    """An ensemble's set-up as :func:`~distnn.train.ensemble_run.train_ensemble` does it (the member count
    against the ranks, every member's job on a group's communicator, the run directory), for every member
    (a run builds only its own group's); the per-rank data files of ``here`` (the planned ranks whose files
    are on this host; None: all of them); with a resume, each member's own files (:func:`check_members_resume`)."""
    from .ensemble_run import build_member_jobs, plan_ensemble
    from .job_check import _check_run_dir
    from .job_check_data import check_same_data_on_ranks

    cfg, settings, plan = plan_ensemble(comm, config, overrides)
    jobs = {}
    agree_on_errors(comm, build_member_jobs(config, PlannedRankComm(plan.group_size), cfg, settings, plan,
                                            range(plan.members), jobs, quiet=True, device_rank=0))
    first = jobs[0]
    # (as the run: the first member of a rank's group loads the data, and its failure is that member's)
    check_same_data_on_ranks(cfg, list(range(comm.size)) if here is None else here, 0,
                             who=lambda r: f"rank {r}: ensemble member {plan.members_of(plan.group_of(r))[0]}")
    path = run_dir_for(cfg, out, comm, lambda: _default_path(first))
    spec = _as_dict(cfg.checkpoint).get("resume")
    created = _check_run_dir(path, bool(spec), ensemble=True)
    t = first.trainer
    return {"config": first.config_name, "model": first.model_spec["name"], "data": first.splits.summary(),
            "ranks": comm.size, "members": plan.members, "groups": plan.groups, "global_batch": t.batch_size,
            "per_rank_batch": t.local_batch, "epochs": t.epochs, "steps_per_epoch": t.steps_per_epoch,
            "run_dir": str(path), "new_run_dir": created,
            "resume": f"{spec}: {check_members_resume(jobs, path)}" if spec else None}


def check_members_resume(jobs: dict, path) -> str:
    """What each member of ``jobs`` (``{member: job}``) resumes from in the ensemble run directory ``path``,
    found as the run finds it: finished in an earlier session (not trained again), its checkpoint (loaded
    into the member's throwaway Trainer: checksums, batch, model and optimizer), or none yet. A member whose
    files the run would refuse is a JobError naming the member and the file."""
    from .checkpoint import CheckpointError
    from .ensemble_members import member_dir
    from .ensemble_run import finished_member
    from .job_check import resume_found

    said = []
    for m, job in jobs.items():
        mdir = member_dir(path, m)
        # (the run's own reading, on a group of one: rank 0 of a group reads, the others are sent what it read)
        if finished_member(PlannedRankComm(1), job, mdir) is not None:
            said.append(f"member {m}: finished in an earlier session (not trained again)")
            continue
        try:  # (the member's own spec: a run directory or checkpoint root given resolves to its part of it)
            found = resume_found(job, mdir, _as_dict(job.cfg.checkpoint).get("resume"))
        except CheckpointError as e:
            raise JobError(f"ensemble member {m}: {_one_line(e)}") from None
        said.append(f"member {m}: {found}")
    return "; ".join(said)
