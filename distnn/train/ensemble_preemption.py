"""Preemption of an ensemble run (:mod:`.ensemble_run`): a signal between two members a group trains in
turn stops the group before the next member, and the groups agree on how the job ends."""
from __future__ import annotations

import signal

from . import preemption
from .ensemble_config import _get
from .preemption import Preempted


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
                    f" ({preemption.resume_hint(sig)})" if checkpointing else " (checkpointing is off)")
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
        kind, code = ("preempted", ending.exit_code) if isinstance(ending, Preempted) else ("error", None)
        mine = (kind, code, f"{plan.group_label(plan.group_of(comm.rank))}: {' '.join(str(ending).split())}")
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
