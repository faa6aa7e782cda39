"""Wiring checkpointing into a trainer from the ``[checkpoint]`` config section: :func:`attach`.

:func:`attach` adds the :class:`~.checkpoint.ModelCheckpoint` callback, the per-step guard
(non-finite policy, preemption agreement: :mod:`distnn.train.step_guard`), the training-time
signal handler, and resumes (``--resume``). :func:`checkpoint_options` fills in the section's
defaults, :func:`checkpoint_dir` says where a run's checkpoints go. :func:`detach` undoes :func:`attach`
(a caller who attached and then does not fit gives the signals and the step guard back with it).
"""
from __future__ import annotations

import json
import os

from .. import checkpoint as ck
from .. import preemption, step_guard
from ..logging_utils import get_logger
from .checkpoint import ON_ERROR, ModelCheckpoint
from .resume import resume


# ---------------------------------------------------------------------- config
#: the [checkpoint] config section (distnn.train.config.SCHEMA) with its defaults
DEFAULTS = {"enabled": True, "dir": None, "every_steps": 0, "every_epochs": 1, "every_seconds": 0, "keep_last": 2,
            "keep_best": True, "monitor": "val_loss", "mode": "auto", "resume": None, "on_error": "stop",
            "async_save": False, "save_last": True}


def checkpoint_options(section) -> dict:
    """The ``[checkpoint]`` config section with defaults filled in; unknown keys are an error."""
    section = {k: v for k, v in dict(section or {}).items() if v is not None}
    unknown = sorted(set(section) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown key(s) in [checkpoint]: {', '.join(unknown)}; known keys are "
                         f"{', '.join(sorted(DEFAULTS))}")
    out = {**DEFAULTS, **section}
    if out["on_error"] not in ON_ERROR:
        raise ValueError(f"checkpoint.on_error must be 'stop' or 'continue', got {out['on_error']!r}")
    return out


def checkpoint_dir(run_dir: str, options=None) -> str:
    """Where a run's checkpoints go: ``checkpoint.dir`` (relative to the run directory), default ``checkpoints``."""
    directory = checkpoint_options(options)["dir"] or ck.DEFAULT_DIRNAME
    return directory if os.path.isabs(directory) else os.path.join(run_dir, directory)


def attach(trainer, run_dir: str, options=None, nonfinite: str = "skip", resume_spec: str | None = None,
           extra_files: dict | None = None, max_nonfinite: int = 10, signals=preemption.DEFAULT_SIGNALS,
           log=None) -> ModelCheckpoint | None:
    """Wire checkpointing, preemption and the non-finite policy into ``trainer``; resume if asked (collective).

    ``options``: the ``[checkpoint]`` section (see :data:`DEFAULTS`); its
    ``resume`` applies when ``resume_spec`` (``--resume``) is not given. The
    checkpoint callback is appended LAST, so it saves after every other
    callback's per-step and per-epoch work (LR schedules, early stopping).
    ``signals`` (SIGTERM and SIGUSR1) mean "every rank stops at the same step":
    with a checkpoint (exit 75), or with checkpointing off after saving nothing
    (:class:`~distnn.train.step_guard.StopWithoutCheckpoint`: 128 + the signal's number).
    Ends the start-up phase of :func:`~distnn.train.preemption.start_up` with no
    instant where a signal is lost (see the comments below).

    The training-time handler lasts as long as the training it is for: ``trainer.fit`` gives the
    signals their previous handlers back when it returns or raises
    (:func:`~distnn.train.preemption.during_fit`; a fit that ended in
    :class:`~distnn.train.preemption.Preempted` leaves them ignored, as the process is to exit),
    or, inside a job (``run_training``, ``train_rank``), the job does once its results are written;
    an ``attach`` that fails gives them back itself. A caller who attaches and then does not fit (or
    wants the trainer unwired after its fit) calls :func:`detach`.
    """
    opts = checkpoint_options(options)
    root = checkpoint_dir(run_dir, opts)
    cb = None
    if opts["enabled"]:
        cb = ModelCheckpoint(root, every_n_steps=opts["every_steps"], every_n_epochs=opts["every_epochs"],
                             keep_last=opts["keep_last"], save_best=opts["keep_best"], monitor=opts["monitor"],
                             mode=opts["mode"], on_error=opts["on_error"], async_save=opts["async_save"],
                             extra_files=extra_files, log=log, save_last=opts["save_last"],
                             every_n_seconds=opts["every_seconds"])
        trainer.callbacks.append(cb)
    watch_signals = bool(signals)
    guard = step_guard.StepGuard(trainer.comm, nonfinite=nonfinite, preemption=watch_signals,
                                 max_nonfinite=max_nonfinite, log=log or get_logger("train"))
    if guard.active:
        guard.bind(trainer)  # trainer.step_guard, and a callback (run before the checkpoint callback, as every other)
    else:
        trainer.step_guard = None
    # what this attach wires in, recorded as it goes: detach() takes it out again
    attachment = _Attachment([c for c in (cb, guard if guard.active else None) if c is not None], guard, None)
    trainer.__dict__.setdefault("_checkpoint_attachments", []).append(attachment)
    rank = int(getattr(trainer.comm, "world_rank", trainer.comm.rank))
    handler = None
    if watch_signals:
        if cb is None:  # nothing to save: stop at the agreed step all the same (whole files, a clear status)
            stopper = step_guard.StopWithoutCheckpoint(signals, log=log or get_logger("train"))
            trainer.callbacks.append(stopper)
            attachment.callbacks.append(stopper)
        # The hand-over from start-up, in this order: the guard above already watches the flag (the start-up
        # handler now sets it instead of acting), the training handler goes in without clearing it, and only
        # then does start-up end. Ending it first let a signal take its default action (the rank died).
        preemption.fault_point("handler", rank)
        handler = attachment.handler = trainer._preemption_handler = preemption.PreemptionHandler(signals).install()
    preemption.end_startup()  # from here on a signal is this run's to handle (or its default action)
    try:
        preemption.fault_point("startup-end", rank)
        spec = resume_spec or opts["resume"]
        if spec and trainer.is_main and _outside(root, run_dir):
            # (a copied run directory names the original's checkpoints: say whose checkpoints this run takes on)
            (log or get_logger("checkpoint")).warning(
                "checkpoint.dir %s is outside the run directory %s: this run resumes from and writes to the "
                "checkpoints there. If this run directory is a copy of another run's, they are the original's: "
                "give the copy its own with --set checkpoint.dir=DIR and --resume CHECKPOINT", root, run_dir)
        if spec:
            path = resume(trainer, spec, root, cb, log, config_text=(extra_files or {}).get("config.toml"))
            if path is not None and trainer.is_main:
                _retire_newer_model(run_dir, path, log or get_logger("checkpoint"))
    except BaseException:
        guard.release()  # this run will not train: its guard no longer counts as watching (a resume refused, ...)
        if handler is not None and preemption.fit_owns_handlers():  # (no fit will run to give them back)
            handler.give_back()
        raise
    return cb


class _Attachment:
    """What one :func:`attach` wired into a trainer, for :func:`detach` to take out again."""

    def __init__(self, callbacks, guard, handler):
        self.callbacks, self.guard, self.handler = callbacks, guard, handler

    def undo(self, trainer) -> None:
        self.guard.release()  # (idempotent: a fit's end or a failed attach released it already)
        if self.handler is not None:
            if self.handler.installed:  # (not after a fit, which gave it back, nor off the main thread)
                self.handler.give_back()
            if getattr(trainer, "_preemption_handler", None) is self.handler:
                trainer._preemption_handler = None  # (a later fit would install it again)
        if getattr(trainer, "step_guard", None) is self.guard:
            trainer.step_guard = None
        listed = trainer.callbacks.callbacks
        for cb in self.callbacks:
            for i, other in enumerate(listed):
                if other is cb:
                    del listed[i]
                    break


def detach(trainer) -> None:
    """Undo :func:`attach` on ``trainer``: a caller who attached and then decides not to fit gives back what
    attach took. Local (not collective); idempotent; safe after ``fit`` too (which gave some of it back already).

    The SIGTERM/SIGUSR1 handlers are those from before ``attach`` again (a signal the training handler noted
    and nothing acted on is sent again, to take their action now, as at a fit's end: see
    :func:`~distnn.train.preemption.during_fit`), the step guard stops watching the preemption flag
    (``trainer.step_guard`` is None), and the callbacks attach added (the checkpoint callback, the guard,
    :class:`~distnn.train.step_guard.StopWithoutCheckpoint`) are taken out of ``trainer.callbacks``: a later
    ``fit`` trains without checkpointing or the signal handler. What a resume loaded stays loaded, and the
    checkpoints written stay on disk. A checkpoint still being written in the background (``async_save``)
    is waited for first, so it is complete and ``latest`` when detach returns; if that write failed, detach
    raises :class:`~distnn.train.checkpoint.CheckpointError` on the rank that wrote it (rank 0) with
    ``checkpoint.on_error = "stop"`` (after undoing the rest) and warns with ``"continue"`` (or when the fit
    it was of raised: its error stays the one the caller sees). After a fit that ended in
    :class:`~distnn.train.preemption.Preempted` the signals stay ignored (the process is to exit).

    (A function beside ``attach``, not a method of what attach returns: with ``checkpoint.enabled = false``
    attach returns None and still installs the handler and the guard.)
    """
    attachments = list(reversed(trainer.__dict__.pop("_checkpoint_attachments", None) or ()))
    try:
        # Each write in flight first (async_save: a save handed to the background writer outside a fit, or
        # one a fit's end did not settle), while the training handler still holds the signals: the caller
        # that detaches and exits or reads the run directory finds its checkpoint whole and pointed at.
        for attachment in attachments:
            for cb in attachment.callbacks:
                if isinstance(cb, ModelCheckpoint):
                    cb.finish_local(trainer)
    finally:
        for attachment in attachments:
            attachment.undo(trainer)


def _outside(directory: str, run_dir: str) -> bool:
    rel = os.path.relpath(os.path.realpath(directory), os.path.realpath(run_dir))
    return rel == os.pardir or rel.startswith(os.pardir + os.sep)


def _retire_newer_model(run_dir: str, path: str, log) -> None:
    """Rank 0: remove the run's ``model.npz`` when it is newer than the checkpoint ``path`` resumed from.

    Such a resume rewinds the run: the checkpoints after ``path`` are moved aside next (``discard_newer``,
    when training begins), and ``model.npz`` is of that abandoned future. Removed before then, evaluate and
    predict read the run's newest checkpoint until this session writes its own ``model.npz``, also when the
    session is killed in between; left in place, they read the discarded future's weights (the run's new
    checkpoint of the same step was taken for older than it).
    """
    from ..checkpoint.read import checkpoint_step
    from ..run_checksums import RunFileError, read_sums, read_verified
    from ..run_dir import MODEL_META, MODEL_WEIGHTS, model_step

    weights = os.path.join(run_dir, MODEL_WEIGHTS)
    try:  # (decided from model.json's checked bytes only: an edited step must not delete the run's model)
        meta = bytes(read_verified(run_dir, MODEL_META, read_sums(run_dir)))
    except FileNotFoundError:
        meta = None  # (an older distnn's run: summary.json says the step)
    except (OSError, RunFileError) as e:
        log.warning("%s: not removed on this rewinding resume, as the step it holds is unknown (%s)", weights, e)
        return
    step, resumed = model_step(run_dir, meta), checkpoint_step(path)
    if not os.path.isfile(weights) or step is None or resumed is None or resumed >= step:
        return
    from ..run_checksums import forget

    # The file first, its checksum second: a crash in between leaves model.npz absent (listed: a file put
    # there by hand is refused, and the next model.npz written replaces the line). Unlisted first, a crash
    # left it there unlisted, read as is. (An error removing it, a read-only disk: it stays, and stays listed.)
    try:
        os.remove(weights)
        removed = True
    except FileNotFoundError:
        removed = False
    forget(run_dir, (MODEL_WEIGHTS,))  # (one directory fsync, after the rename: the removal is durable too)
    if not removed:
        return
    log.warning("resumed from global step %d, before the run's %s (global step %d): removed it, as it belongs "
                "to the discarded checkpoints; until this run ends, evaluate and predict read its newest "
                "checkpoint", resumed, weights, step)


def extra_files_for(meta: dict | None = None, config_text: str | None = None) -> dict:
    """``model.json`` (how to rebuild the model) and ``config.toml`` to store in every checkpoint."""
    files = {}
    if meta is not None:
        files["model.json"] = json.dumps(ck.json_clean(meta), indent=2)
    if config_text is not None:
        files["config.toml"] = config_text
    return files
