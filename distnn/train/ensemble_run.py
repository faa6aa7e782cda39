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
import signal

import numpy as np

from .ensemble import (MEMBERS_DIR, _get, ensemble_gain, ensemble_settings, ensemble_table, evaluate_ensemble,
                       group_communicator, member_config, member_dir, plan_groups)
from . import preemption
from .preemption import Preempted, fault_point, inject_startup_fault


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
    from .config import load_config
    from .job_setup import _apply_collective_timeout

    error, jobs, rng_states, plan, gcomm, cfg = None, {}, {}, None, None, None
    try:
        cfg = load_config(config, list(overrides or ()))
        settings = ensemble_settings(cfg)
        plan = plan_groups(comm.size, settings.members)
    except (ValueError, OSError, KeyError, TypeError) as e:
        error = J._one_line(e)
    J.agree_on_errors(comm, error)
    _apply_collective_timeout(comm, cfg.distributed.timeout)  # the world's collectives too, not only the groups'
    # (read before the next collective: simulated ranks share one timeout, and a group that finishes first
    # lifts it while it waits for the others, see _agree_on_group_endings)
    world_timeout = comm.timeout if comm.size > 1 else None
    mark = preemption.job_mark()  # (requests after it are this job's: a member does not start after one)
    with _group_communicator(comm, plan, jobs) as gcomm:
        MemberJob, shared, current = _member_job_class(), None, None
        try:
            for m in plan.members_of(plan.group_of(comm.rank)):
                current = m
                job = MemberJob(config, gcomm, member_config(cfg, m, settings), quiet=quiet or comm.rank != 0,
                                shared_splits=shared, device_rank=comm.local_rank)
                shared, jobs[m] = job.shared_splits, job
                # The trainer seeded this thread's dropout stream for member m; the next member's setup reseeds
                # it, so it is restored right before member m trains (same stream as a member trained alone).
                rng_states[m] = dn_random.get_state()
        except (ValueError, OSError, KeyError, TypeError) as e:
            error = member_setup_error(plan, current, J._one_line(e))
        except MemoryError as e:  # (as in job.train_rank: one agreed line, not a traceback)
            error = member_setup_error(plan, current, J.memory_error_text(e))
        J.agree_on_errors(comm, error)
        first = next(iter(jobs.values()))  # (it loaded the data the other members share)
        J.agree_on_same_data(comm, first)  # over the world: every group trains on the same data
        inject_startup_fault(comm.rank)  # DISTNN_FAULT_SIGNAL_AT=RANK:0, the world's rank as in a plain run
        path = J.run_dir_for(cfg, out, comm, lambda: J._default_path(first))
        try:
            created = rd.prepare_run_dir(path, comm, resuming=bool(dict(cfg.checkpoint).get("resume")), ensemble=True)
        except rd.RunDirError as e:
            raise J.JobError(str(e), report=comm.rank == 0) from None
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

    Returns ``(state_dict, history, summary)``; read on group rank 0 and broadcast.
    """
    import json

    from . import run_dir as rd
    from .config import load_config
    from .config_schema import NOT_COMPARED_ON_RESUME

    found = None
    if gcomm.rank == 0:
        try:
            s = rd.read_summary(directory)
            old = load_config(os.path.join(directory, rd.CONFIG)).to_dict()
            new = job.cfg.to_dict() if hasattr(job.cfg, "to_dict") else copy.deepcopy(dict(job.cfg))
            for c in (old, new):
                for key in NOT_COMPARED_ON_RESUME:
                    section, name = key.split(".")
                    c.get(section, {}).pop(name, None)
            done = s.get("epochs") == job.trainer.epochs and (s.get("epochs_run") == s.get("epochs")
                                                              or s.get("stopped_early"))
            if done and old == new:
                from .run_checksums import read_sums, read_verified

                raw = read_verified(directory, rd.MODEL_WEIGHTS, read_sums(directory))  # (checked, read once)
                with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
                    sd = {k: npz[k] for k in npz.files}
                with open(os.path.join(directory, "metrics.jsonl")) as f:
                    history = [json.loads(line) for line in f if line.strip()]
                found = (sd, history, s)
        except (OSError, ValueError, KeyError):
            found = None
    return gcomm.broadcast_object(found, root=0) if gcomm.size > 1 else found


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
            summaries[m] = J._train(job, mdir)
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


class PreemptedBeforeMember(Preempted):
    """A preemption signal came before ensemble member ``member`` began training (after the previous
    member's training ended): it does not start and nothing new is saved. Status 75, as for a
    checkpoint: the members finished are kept and ``--resume auto`` trains the others; with
    checkpointing off 128 + the signal's number, as any stop with checkpointing off."""

    def __init__(self, member: int, signum: int, finished=(), checkpointing: bool = True):
        done = f"; member(s) {', '.join(map(str, finished))} finished" if finished else ""
        Exception.__init__(self, f"preempted by {signal.Signals(signum).name} before ensemble member {member} "
                                 f"began training: nothing new to save{done}")
        self.step, self.signum, self.checkpoint, self.error = None, signum, None, None
        self.member = member
        self.exit_code = Preempted.exit_code if checkpointing else preemption.exit_status_for_signal(signum)


def stop_before_member(gcomm, member: int, job, finished, mark, log) -> None:
    """Collective over the group: raise :class:`PreemptedBeforeMember` on every rank of the group if any of
    them has a preemption request since ``mark`` (every rank of a group starts a member, or none does)."""
    sig = preemption.job_requested(mark) or 0
    if gcomm.size > 1:
        sig = max(int(s) for s in gcomm.allgather_object(sig))
    if not sig:
        return
    checkpointing = bool(_get(job.cfg, "checkpoint.enabled", True))
    exc = PreemptedBeforeMember(member, sig, finished, checkpointing)
    preemption.ignore_further_signals()  # (a duplicate signal must not turn the clean stop into a death)
    if gcomm.rank == 0:
        log.warning("%s; exiting with status %d%s", exc, exc.exit_code,
                    f" ({preemption.resume_hint()})" if checkpointing else " (checkpointing is off)")
    raise exc


class EnsemblePreempted(Preempted):
    """A group of an ensemble run was preempted: every rank of every group exits with its status
    (74 when a group's checkpoint could not be written, else 75)."""

    def __init__(self, message: str, exit_code: int = Preempted.exit_code):
        Exception.__init__(self, message)
        self.step, self.signum, self.checkpoint, self.error = None, None, None, None
        self.exit_code = exit_code


def _agree_on_group_endings(comm, gcomm, plan, ending, world_timeout) -> None:
    """Collective over the world: how each group's training ended; raise on every rank if one did not finish.

    Groups finish their members at different times (hours apart, with early stopping or per-member
    epochs), so this wait has no collective deadline: a group that hangs is caught by its own
    collectives' deadlines, and a rank that dies ends the job through the launcher. An error agreed
    in one group becomes one error of the whole job (printed once, status 2); a preemption stops
    every rank with status 75 (its group's checkpoints written; members finished are kept, and
    ``--resume auto`` does not train them again), or 74 when a group could not write its checkpoint.
    """
    if plan.groups == 1:  # the group is the world: its ending is already every rank's
        if ending is not None:
            raise ending
        return
    mine = None
    if ending is not None and gcomm.rank == 0:
        g = plan.group_of(comm.rank)
        ranks = f"{g * plan.group_size}-{(g + 1) * plan.group_size - 1}" if plan.group_size > 1 else f"{comm.rank}"
        kind, code = ("preempted", ending.exit_code) if isinstance(ending, Preempted) else ("error", None)
        mine = (kind, code, f"ensemble group {g} (world rank(s) {ranks}, member(s) "
                            f"{', '.join(map(str, plan.members_of(g)))}): {' '.join(str(ending).split())}")
    comm.timeout = None
    try:
        endings = [e for e in comm.allgather_object(mine) if e is not None]
    finally:
        comm.timeout = world_timeout
    if not endings:
        return
    errors = [msg for kind, _, msg in endings if kind == "error"]
    if errors:
        from .job import JobError

        raise JobError(errors[0], report=comm.rank == 0)
    # a group that could not save its checkpoint (74) decides: requeueing would not bring its work back
    raise EnsemblePreempted("; ".join(msg for _, _, msg in endings), min(code for _, code, _ in endings))


def ensemble_summary(path, config_name, plan, settings, members, ev, wall) -> dict:
    """The top-level ``summary.json`` of an ensemble run (members' and ensemble's metrics, gains)."""
    K = plan.members
    rows = []
    for m in range(K):
        s, h = members[m]["summary"] or {}, members[m]["history"]
        row = {"member": m, "run_dir": os.path.join(MEMBERS_DIR, f"member-{m}"),
               "seed": members[m].get("seed"), "epochs": s.get("epochs"), "epochs_run": s.get("epochs_run", len(h)),
               "best_epoch": s.get("best_epoch"), "stopped_early": s.get("stopped_early"),
               "skipped_steps": s.get("skipped_steps"), "wall_time": s.get("wall_time")}
        for split in ("val", "test"):
            if split in ev:
                row[f"{split}_accuracy"] = ev[split]["member_accuracy"][m]
                row[f"{split}_loss"] = ev[split]["member_loss"][m]
        rows.append(row)
    out = {"config": config_name, "run_dir": os.path.abspath(path), "ensemble_members": K,
           "test_accuracy": None, "test_loss": None, "test_samples": None}
    for split in ("val", "test"):
        if split not in ev:
            continue
        r, g = ev[split], ensemble_gain(ev[split])
        out.update({f"{split}_accuracy": r["accuracy"], f"{split}_loss": r["loss"], f"{split}_samples": r["count"],
                    f"member_{split}_accuracy": list(r["member_accuracy"]),
                    f"member_{split}_loss": list(r["member_loss"]),
                    f"mean_member_{split}_accuracy": g["mean_member_accuracy"],
                    f"median_member_{split}_accuracy": g["median_member_accuracy"],
                    f"mean_member_{split}_loss": g["mean_member_loss"]})
        if split == "test":
            out.update({"ensemble_gain_accuracy": g["accuracy_gain"], "ensemble_nll_reduction": g["nll_reduction"]})
    s0 = members[0]["summary"] or {}
    out.update({
        "ensemble": {"members": K, "vary": list(settings.vary), "overrides": settings.overrides,
                     "groups": plan.groups, "ranks_per_group": plan.group_size, "members_per_group": plan.rounds,
                     "schedule": plan.describe(), "averaging": "mean of the members' class probabilities"},
        "members": rows,
        # Per member, as epochs_run: members may be given other train.epochs (overrides) and stop early at
        # different epochs, so no one number (member 0's, as before) is the ensemble's.
        "epochs_run": [r["epochs_run"] for r in rows], "epochs": [r["epochs"] for r in rows],
        "world_size": plan.world_size, "global_batch_size": s0.get("global_batch_size"),
        "device": s0.get("device"), "dtype": s0.get("dtype"),
        "wall_time": wall,
    })
    return out


def summary_lines(s: dict) -> list:
    """What ``distnn train`` prints at the end of an ensemble run (from its summary)."""
    e = s["ensemble"]
    head = f"ensemble of {e['members']} members ({e['schedule']}; {s.get('wall_time') or 0:.1f}s)"
    if s.get("test_accuracy") is None:
        return [head + ": no test split"]
    lines = [head]
    for r in s["members"]:
        epochs = f"{r.get('epochs_run')}" + (f" of {r['epochs']}" if r.get("epochs") is not None else "")
        lines.append(f"  member-{r['member']}  test accuracy {r['test_accuracy']:.4f}  test NLL {r['test_loss']:.4f}  "
                     f"(seed {r.get('seed')}, {epochs} epochs{', stopped early' if r.get('stopped_early') else ''})")
    lines.append(f"  ensemble  test accuracy {s['test_accuracy']:.4f}  test NLL {s['test_loss']:.4f}  "
                 f"(gain over the members' mean: accuracy {s['ensemble_gain_accuracy']:+.4f}, "
                 f"NLL {-s['ensemble_nll_reduction']:+.4f})")
    return lines


#: columns of an ensemble run's top-level metrics.csv: one row per member, then one for the ensemble
ENSEMBLE_CSV_COLUMNS = ["model", "val_loss", "val_accuracy", "test_loss", "test_accuracy", "epochs_run"]


def write_ensemble_files(path, meta, plan, summary, members, ev, plots: bool = True) -> None:
    """Rank 0: the top level of an ensemble run (model.json, summary.json, metrics.jsonl/csv, and curves.png
    unless ``plots`` is False: run.plots = false)."""
    import csv
    import json

    from . import run_checksums
    from . import run_dir as rd

    meta = {k: v for k, v in meta.items() if k != "model"}
    meta["ensemble"] = ensemble_table(plan.members)
    rd.write_run_files(path, {rd.MODEL_META: rd.json_text(run_checksums.marked(meta))})
    rd.write_json(os.path.join(path, rd.SUMMARY), summary)
    rows = [{"model": f"member-{r['member']}", **{c: r.get(c) for c in ENSEMBLE_CSV_COLUMNS[1:]}}
            for r in summary["members"]]
    rows.append({"model": "ensemble", **{c: summary.get(c) for c in ENSEMBLE_CSV_COLUMNS[1:-1]},
                 "epochs_run": None})
    rd.write_text(os.path.join(path, "metrics.jsonl"),
                  "".join(json.dumps(rd._clean(r)) + "\n" for r in rows))
    def write_csv(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=ENSEMBLE_CSV_COLUMNS)
            w.writeheader()
            w.writerows([{k: ("" if v is None else v) for k, v in r.items()} for r in rows])

    rd.replace_file(os.path.join(path, "metrics.csv"), write_csv)
    if plots:
        plot_members(members, summary, os.path.join(path, "curves.png"))


def plot_members(members, summary, path) -> str | None:
    """Each member's validation loss/accuracy vs epoch, with the ensemble's as a dashed line."""
    from . import run_dir as rd
    from .callbacks.plots import whole_epoch_ticks

    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure  # no pyplot: no global state shared with other threads
    except ImportError:
        return None
    # A Figure with its own Agg canvas, as a single run's curves (callbacks/plots.py): the process's backend
    # (a notebook's) is left alone, where matplotlib.use("Agg", force=True) switched it
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for m in sorted(members):
            pts = [(r["epoch"], r.get(f"val_{metric}")) for r in members[m]["history"]
                   if r.get(f"val_{metric}") is not None]
            if pts:
                # (markers: a member validated once, e.g. a 1-epoch run, is one point, which a bare line hides)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o", markersize=3, alpha=0.7,
                        label=f"member {m}")
        if summary.get(f"val_{metric}") is not None:
            ax.axhline(summary[f"val_{metric}"], color="k", linestyle="--", label="ensemble (final)")
        ax.set_xlabel("epoch")
        whole_epoch_ticks(ax)  # epochs are whole: no 1.25, 1.5 ticks
        ax.set_ylabel(f"validation {metric}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    # (the rank count as a single run's title gives it: "digits_mlp (2 ranks)"; here the job's, all groups)
    ranks = summary.get("world_size")
    fig.suptitle(f"{summary.get('config')}: ensemble of {len(members)}"
                 + (f" ({ranks} rank{'' if ranks == 1 else 's'})" if ranks else ""))
    fig.tight_layout()
    rd.replace_file(path, lambda tmp: fig.savefig(tmp, dpi=100), ".tmp.png")
    return path
