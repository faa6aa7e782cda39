"""Which trained state ``evaluate``/``predict`` use for a directory: a run's ``model.npz`` or a newer checkpoint.

Split out of :mod:`.read`, which still exports every name here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from .listing import CheckpointInfo, _step_entries, checkpoint_root, is_checkpoint_dir
from .names import STEP_RE, CheckpointError, step_name
from .verify import _verify_keeping_model, read_manifest


def model_directory(directory: str, warn=None, model_step: int | None = None) -> str:
    """Where ``evaluate``/``predict`` find a model for ``directory``: :func:`model_source`'s path."""
    return model_source(directory, warn, model_step).path


@dataclass
class ModelSource:
    """What :func:`model_source` chose: ``path`` (a run directory, meaning its ``model.npz``, or a
    checkpoint directory), its global ``step`` (None when unknown) and ``why`` a checkpoint was
    chosen over the run's ``model.npz`` ('' otherwise)."""
    path: str
    step: int | None
    why: str = ""
    #: a checkpoint's: the bytes of its ``model.npz`` and ``model.json``, as verified (None: a run directory)
    files: dict | None = None


def model_source(directory: str, warn=None, model_step: int | None = None,
                 config: bytes | None = None) -> ModelSource:
    """The newest trained state of ``directory`` (see :class:`ModelSource`).

    A checkpoint directory is verified (CheckpointError naming the bad file)
    and used as is. A run directory gives its ``model.npz`` unless a valid
    checkpoint holds a newer state: ``model_step`` is the global step
    ``model.npz`` was saved at (``model.json``'s ``global_step``), and a
    checkpoint of a later step means the finished run was resumed (more
    epochs) and that session did not finish; so does a run whose own
    checkpoint of ``model_step`` a resume from an older checkpoint moved aside
    (``discarded-step-N``: ``model.npz`` is of the abandoned future). Without
    ``model_step`` (a run directory of an older distnn) ``model.npz`` is used as
    before. A run directory without ``model.npz`` (an interrupted run) or a
    checkpoint root gives its newest valid checkpoint. Each newer checkpoint
    that does not verify is reported through ``warn`` and skipped. ``config``: the run's ``config.toml``,
    read (and checked) already, which says where its checkpoints are (:func:`~.listing.checkpoint_root`).
    """
    if is_checkpoint_dir(directory) or STEP_RE.match(os.path.basename(os.path.normpath(directory))):
        problems, files = _verify_keeping_model(directory)
        if problems:
            raise CheckpointError(problems[0])
        return ModelSource(directory, checkpoint_step(directory), files=files)
    weights = os.path.join(directory, "model.npz")
    has_model = os.path.isfile(weights)
    if has_model and model_step is None:
        return ModelSource(directory, None)
    root = checkpoint_root(directory, config)
    found = _step_entries(root)
    abandoned = has_model and _discarded(root, model_step, found)
    for info in reversed(found):
        if has_model and not abandoned and info.step <= model_step:
            break  # model.npz is the newest state: the checkpoints from here on are older (or its own)
        problems, files = ([f"checkpoint {info.path!r} is {info.problem}"], None) if info.problem \
            else _verify_keeping_model(info.path)
        if not problems:
            if not has_model:
                why = "the newest valid checkpoint" + (
                    f"; {directory!r} has no model.npz (the run has not finished)"
                    if os.path.isfile(os.path.join(directory, "config.toml")) else "")
            elif abandoned:
                why = (f"{weights!r} (global step {model_step}) belongs to checkpoints that a run resumed from "
                       f"an earlier one moved aside (discarded-*)")
            else:
                why = (f"newer than {weights!r} (global step {model_step}): the run was resumed and that "
                       f"session has not finished")
            return ModelSource(info.path, info.step, why, files)
        if warn is not None:
            warn(f"{problems[0]}; trying the previous checkpoint" + (" (or model.npz)" if has_model else ""))
    return ModelSource(directory, model_step)


def checkpoint_step(path: str) -> int | None:
    """The global step of the checkpoint directory ``path`` (its name's, else its manifest's); None when unknown."""
    m = STEP_RE.match(os.path.basename(os.path.normpath(path)))
    if m:
        return int(m.group(1))
    try:
        return int(read_manifest(path)["step"])
    except CheckpointError:
        return None


def _discarded(root: str, step: int, found: list[CheckpointInfo]) -> bool:
    """Whether the checkpoint of ``step`` was moved aside by a resume from an older one (and not written again)."""
    if any(c.step == step for c in found):
        return False
    prefix = f"discarded-{step_name(step)}-"
    try:
        return any(name.startswith(prefix) for name in os.listdir(root))
    except OSError:
        return False
