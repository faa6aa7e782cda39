"""Resuming a trainer from a checkpoint (collective), and what must be restored for an exact resume.

:func:`resume` loads a checkpoint chosen once on rank 0 (``auto``: the newest
one whose checksums verify) and broadcast, and :func:`restore_trainer` puts
every piece back, so a resumed run continues bitwise like the uninterrupted
one. A checkpoint may be resumed on a different number of ranks: training
continues at the same global sample position with the same global batch
(the trainer's k-th step is the same global batch on any number of ranks).
Augmentation and the dropout masks of the training forward pass are drawn
per sample (their generators belong to the global batch, not to a rank), so
they continue exactly and the run agrees with the uninterrupted one to
summation order. What still draws per rank (layers given their own
generator, user code drawing from ``distnn.random``) cannot continue exactly:
rank ``r`` restores rank ``r``'s streams where they were saved; new ranks
start fresh ``distnn.random`` streams from (seed, rank, step) and take rank
0's layer generators; a warning says so. A layer given a counter-based
:class:`~distnn.data.batch_random.BatchShareGenerator` draws per sample, not
per rank: its masks continue exactly, and it is not warned about (unless it
drew by rows: see its ``continues_on_any_world``).
"""
from __future__ import annotations

import numpy as np

from distnn import random as dn_random
from distnn.module_generators import per_rank_layers

from .. import checkpoint as ck
from ..logging_utils import get_logger


def agreed(exc, trainer):
    """Mark an error every rank raises together: only rank 0 reports it (the CLI's protocol)."""
    exc.report = trainer.is_main
    return exc


def restore_trainer(trainer, state: dict, manifest: dict, log=None) -> None:
    """Put a checkpoint's state back into ``trainer`` (on every rank; see the module docstring)."""
    log = log or get_logger("checkpoint")
    saved_world = int(manifest.get("world_size", 1))
    gb = int(manifest.get("global_batch_size", trainer.batch_size))
    if gb != trainer.batch_size:
        raise ck.CheckpointError(f"the checkpoint was written with a global batch of {gb} samples but "
                                 f"data.batch_size is {trainer.batch_size}; resume with the same global batch")
    if int(manifest.get("steps_per_epoch", trainer.steps_per_epoch)) != trainer.steps_per_epoch:
        raise ck.CheckpointError(f"the checkpoint has {manifest['steps_per_epoch']} steps per epoch, this run "
                                 f"{trainer.steps_per_epoch}: the training data differs from the checkpointed run")
    state = dict(state)
    ranks = state.pop("ranks", None)
    state.pop("_files", None)
    if ranks and any("data_parallel" in rk for rk in ranks):  # every rank's own part (PowerSGD's errors)
        state["data_parallel"] = {**(state.get("data_parallel") or {}),
                                  "ranks": [rk.get("data_parallel") for rk in ranks]}
    trainer.load_state_dict(state)  # DataParallel's state too, applied once fit builds the wrapper
    r, world = trainer.rank, trainer.world
    # this rank's own generators (the layers' too), where that rank was saved; a rank beyond the saved ones
    # keeps the layers' generators at rank 0's states, which load_state_dict put back
    if ranks and r < len(ranks):
        dn_random.set_module_generator_states(trainer.model, ranks[r].get("module_rng", {}))
    if ranks and r < len(ranks) and ranks[r].get("replica") and getattr(trainer, "own_replicas", False):
        trainer.load_replica_state(ranks[r]["replica"])  # (data_parallel=False: this rank's own weights)
    if ranks and saved_world == world:
        dn_random.set_state(ranks[r]["rng"])
        trainer.state.epoch_sums = dict(ranks[r]["epoch_sums"])
    elif ranks:
        if r < len(ranks):
            dn_random.set_state(ranks[r]["rng"])
        else:
            dn_random.manual_seed(np.random.SeedSequence([trainer.seed, r, 17, trainer.state.global_step]))
        sums = [rk["epoch_sums"] for rk in ranks]
        keys = sums[0].keys()
        # The epoch's running sums so far belong to no rank in particular: rank 0 carries them on.
        total = {k: (sum(s[k] for s in sums) if r == 0 else 0.0) for k in keys}
        if "time" in total:  # each rank's share is the mean time, so samples/s stays right
            total["time"] = sum(s["time"] for s in sums) / len(sums)
        trainer.state.epoch_sums = total
        if trainer.is_main:
            log.info("resuming a %d-rank checkpoint on %d rank(s): same global batch (%d) and sample position",
                     saved_world, world, trainer.batch_size)
            # (a BatchShareGenerator's masks are keyed by the sample's place in the global batch: they go on
            # exactly on any number of ranks, from any saved rank's counter; see per_rank_layers)
            own = sorted(per_rank_layers(trainer.model, [rk.get("module_rng", {}) for rk in ranks]))
            if own:
                fresh = (f"ranks >= {saved_world} continue rank 0's streams" if world > saved_world
                         else f"the streams of ranks >= {world} are not continued")
                log.warning("layers with their own random generator (%s) draw per rank: %s, so their draws "
                            "differ from the uninterrupted run", ", ".join(own), fresh)
            # Plain BatchNorm on several ranks normalizes by each rank's statistics: the saved run's or this one's
            # training depends on the number of ranks, beyond summation order
            from ..trainer_state import per_rank_batch_norms

            norms = sorted(set(state.get("per_rank_batch_norm") or ())
                           | set(per_rank_batch_norms(trainer.model, world)))
            if norms:
                log.warning("batch norm layers (%s) take their statistics per rank (distributed.sync_batchnorm is "
                            "off): training depends on the number of ranks, so the run resumed on %d rank(s) from a "
                            "%d-rank checkpoint differs from the uninterrupted run by more than summation order "
                            "(distributed.sync_batchnorm = true takes them over the global batch)",
                            ", ".join(norms), world, saved_world)
    if manifest.get("epoch_end") and manifest.get("stop_agreed"):
        trainer.state.stopped_early = True  # the agreed stop of that epoch end, not yet acted upon when saved


def config_changes(saved_text, current_text) -> list[str]:
    """``key: old -> new`` for each setting that differs between two config.toml texts (not
    ``checkpoint.resume``, which is how a resume is asked for, nor a display setting such as ``run.quiet``,
    which --quiet sets: nothing a checkpoint restores or training uses); empty when either is missing.

    Both are compared resolved (defaults filled in) when both load: a config.toml written before a key
    got its default recorded (the model's arguments) is then no change."""
    import tomllib

    from ..config import ConfigError, loads_config
    from ..config_schema import NOT_COMPARED_ON_RESUME

    if not saved_text or not current_text:
        return []
    if not isinstance(saved_text, str):
        try:
            saved_text = bytes(saved_text).decode()
        except UnicodeDecodeError:
            return []

    def flat(table, prefix=""):
        out = {}
        for k, v in table.items():
            if isinstance(v, dict):
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out

    try:
        old, new = (flat(loads_config(t).to_dict()) for t in (saved_text, current_text))
    except ConfigError:  # (one that no longer validates: compared as written)
        try:
            old, new = flat(tomllib.loads(saved_text)), flat(tomllib.loads(current_text))
        except tomllib.TOMLDecodeError:
            return []
    return [f"{k}: {old.get(k, '(unset)')!r} -> {new.get(k, '(unset)')!r}" for k in sorted(set(old) | set(new))
            if k not in NOT_COMPARED_ON_RESUME and old.get(k) != new.get(k)]


def _model_name(config_text):
    """``model.name`` of a config.toml text (or bytes, as a checkpoint's files are), or None."""
    import tomllib

    try:
        text = config_text if isinstance(config_text, str) else bytes(config_text).decode()
        model = tomllib.loads(text).get("model")
    except (TypeError, ValueError):  # (no text, not UTF-8, not TOML: tomllib's errors are ValueErrors)
        return None
    return model.get("name") if isinstance(model, dict) else None


def _other_model(saved_text, current_text) -> str:
    """What to say first when a checkpoint's weights do not load: that it holds another model than this
    run builds, as their config.toml files say (e.g. a ResNet run resumed with the default MLP config);
    '' when they name the same model or either is unknown."""
    saved, current = _model_name(saved_text), _model_name(current_text)
    if saved is None or current is None or saved == current:
        return ""
    return (f"the checkpoint's model is {saved!r} (its config.toml), this run builds {current!r} (without "
            "--config, train --resume continues with the run's own config)")


def _warn_changed_config(state, config_text, path, log):
    changes = config_changes(state.get("_files", {}).get("config.toml"), config_text)
    if changes:
        log.warning("resuming from %s with a config that differs from the checkpoint's: %s. What the checkpoint "
                    "restores keeps the checkpoint's values: the optimizer's hyperparameters (lr, momentum, "
                    "weight decay, betas), the loss scaler's (its scale and the train.grad_scaler settings), "
                    "the LR schedule's state and the random streams; a schedule sized "
                    "by the run (cosine without T_max, onecycle) takes the new run length from here on",
                    path, "; ".join(changes))


def resume(trainer, spec: str, root: str | None, callback=None, log=None, config_text: str | None = None,
           recover: bool = True):
    """Collective: load ``spec`` (``auto``, a checkpoint directory, or a run directory) into ``trainer``.

    The checkpoint is chosen and read (checksums verified) on rank 0 only and
    broadcast. Returns the checkpoint's path, or None when ``auto`` found no
    checkpoint yet (a fresh start). Raises CheckpointError on every rank.
    ``config_text``: this run's config.toml; rank 0 warns about every setting
    that differs from the checkpoint's. ``recover=False`` (``distnn train --check``) leaves a checkpoint
    an interrupted rewrite set aside where it is: nothing on disk changes.
    """
    log = log or get_logger("checkpoint")
    found = None
    if trainer.is_main:
        try:
            if root is not None and recover:  # (a crash in a same-step rewrite left this run's checkpoint aside)
                ck.recover_interrupted_rewrites(root)
            got = ck.resolve_and_load(spec, root, warn=log.warning)
            found = ("ok", got)
        except ck.CheckpointError as e:
            found = ("error", str(e))
    found = trainer.agree(found)
    if found[0] == "error":
        raise agreed(ck.CheckpointError(found[1]), trainer)
    if found[1] is None:
        log.info("--resume %s: no checkpoint in %s yet; starting from the beginning%s", spec, root,
                 "" if callback is not None else " (checkpointing is off in this run: it writes none either, so "
                 "a stop before its end starts over)")
        return None
    path, state, manifest = found[1]
    if trainer.is_main:
        _warn_changed_config(state, config_text, path, log)
    try:
        restore_trainer(trainer, state, manifest, log)
    except ck.CheckpointError as e:  # the same on every rank (the same checkpoint, the same config)
        raise agreed(e, trainer) from None
    except (ValueError, KeyError, TypeError) as e:  # e.g. a checkpoint of another model or optimizer
        msg = " ".join(str(e).split())
        if isinstance(e, KeyError) and len(msg) > 1 and msg[0] == msg[-1] == '"':  # (KeyError's repr quotes)
            msg = msg[1:-1]
        other = _other_model(state.get("_files", {}).get("config.toml"), config_text)
        why = f"{other}: {msg}" if other else f"{msg} (was it written with this config's model and optimizer?)"
        raise agreed(ck.CheckpointError(f"cannot resume from {path!r}: {why}"), trainer) from None
    if callback is not None:
        callback.resumed_from = (path, int(manifest["step"]))
    log.info("resumed from %s (epoch %d, step %d of the epoch, global step %d, written on %d rank(s))", path,
             int(manifest.get("epoch", 0)) + 1, int(manifest.get("batch_in_epoch", 0)),
             int(manifest.get("global_step", manifest["step"])), int(manifest.get("world_size", 1)))
    return path
