"""``distnn train --check`` of a job whose data files are (partly) not on this host (:mod:`.host_checks`).

:func:`data_here` finds which planned ranks' data files exist here: the check builds the job from the first
of them, checks that the others hold the same data, and notes the missing ones. With none here,
:func:`check_without_data` checks what needs no data (the config, the batch against the ranks, ``--resume``'s
path and the checkpoint it chooses, read but not loaded into a model, an ensemble member's too, the
checkpoint and profile directories, the run directory) and notes the rest.
"""
from __future__ import annotations

import os
import types

from .host_checks import data_path_key, defer, missing_data_note, missing_here, per_rank_paths
from .job import (JobError, _default_path, _finished_without_checkpoint, _one_line, _record_checkpoint_dir_in_run,
                  agree_on_errors, data_fingerprint, run_dir_for)
from .job_preflight import check_profile_dir, preflight
from .job_setup import _as_dict, data_keys, tag_config_errors
from .trainer_data import check_batch_sizes


def data_here(comm, config, overrides) -> list | None:
    """The planned ranks whose data files exist here (every rank for a built-in dataset or a file found
    here), with a note for the missing ones; or None when the check should go on as a job does (no file
    is missing, or the check is strict: the data loader then refuses a missing one as the job would)."""
    from .config import load_config
    from .config_object import quiet_config_warnings

    error, cfg = None, None
    try:  # (the job's own load, and refusal, of the config comes first: a typo is refused here as there)
        with quiet_config_warnings():  # (the job's set-up loads it again and warns then: once)
            cfg = load_config(config, list(overrides or ()))
    except (ValueError, OSError, KeyError, TypeError) as e:
        error = _one_line(e)
    agree_on_errors(comm, error)
    found = data_path_key(_as_dict(cfg.data))
    if found is None:
        return None
    key, path = found
    paths = per_rank_paths(path, comm.size)
    missing = [r for r, p in paths.items() if missing_here(p)]
    if not missing or not defer(missing_data_note(key, path, missing, comm.size)):
        return None
    return [r for r in paths if r not in missing]


def check_same_data_on_ranks(cfg, ranks: list, checked_rank: int, who=None) -> None:
    """A per-rank data file found here for each of ``ranks`` must load and hold the same data as
    ``checked_rank``'s (what :func:`~distnn.train.job.agree_on_same_data` asks of a job's ranks); ``who(r)``:
    how an error names rank ``r`` (``rank r``; an ensemble's adds the member whose job loads it).

    A file that is ``checked_rank``'s own or has the same bytes holds the same data and loads as that one did
    (the job's set-up loaded it): it is compared, not loaded (:func:`same_bytes`). Only a file whose bytes
    differ is loaded (a different file can still hold the same data, an ``.npz`` written again) and its
    data compared: a check of a job of many ranks with identical copies reads each once, in small chunks,
    and loads none again."""
    from distnn.data import load_dataset

    data = _as_dict(cfg.data)
    if len(ranks) < 2 or not isinstance(data.get("path"), str) or "{rank}" not in data["path"]:
        return
    who = who or (lambda r: f"rank {r}")
    resuming = bool(_as_dict(cfg.checkpoint).get("resume"))
    paths = per_rank_paths(data["path"], max(ranks) + 1)
    prints = {}

    def fingerprint(r):
        if r not in prints:
            try:
                with tag_config_errors(cfg, unnamed=data_keys(cfg)):  # (as the job's own load tags it)
                    splits = load_dataset({**data, "path": paths[r]}, check_split_keys=not resuming)
            except (ValueError, OSError, KeyError, TypeError) as e:
                raise JobError(f"{who(r)}: {_one_line(e)}") from None
            prints[r] = data_fingerprint(splits)
        return prints[r]

    other_bytes = [r for r in ranks if r != checked_rank and not same_bytes(paths[r], paths[checked_rank])]
    for r in other_bytes:  # (every file loads first: a job's ranks agree on a load error before comparing data)
        fingerprint(r)
    for r in other_bytes:
        if fingerprint(r) != fingerprint(checked_rank):
            raise JobError(f"data.path {data['path']!r} gives rank {r} other data than rank {checked_rank}; "
                           "distnn shards one dataset across the ranks itself, so every rank must read the same "
                           "data (pre-sharded per-rank files are not supported): give one file, or identical "
                           "copies" + cfg.origins_tag(["data.path"]))


def same_bytes(path, other) -> bool:
    """Whether ``path`` and ``other`` are one regular file, or two with the same bytes (read in chunks);
    False for anything else (a directory of files, a missing file: the caller loads it)."""
    import filecmp

    try:
        return os.path.isfile(path) and os.path.isfile(other) and (
            os.path.samefile(path, other) or filecmp.cmp(path, other, shallow=False))
    except OSError:
        return False


def check_without_data(comm, config, overrides, out, ensemble: bool) -> dict:
    """What a job with no data file on this host refuses without its data; the model, the data's sizes and
    loading ``--resume``'s checkpoint into the model are left to the job (its checkpoint, or an ensemble
    member's, is still chosen and read: :func:`~.job_check.resume_found_without_model`). A summary as
    :func:`~.job_check.check_training`'s."""
    from .config import load_config
    from .ensemble_run import plan_ensemble
    from .job_check import _check_run_dir as check_run_dir, resume_found_without_model
    from .job_check_ensemble import check_members_resume_without_data

    groups = members = None
    if ensemble:
        cfg, settings, plan = plan_ensemble(comm, config, overrides)
        group_size, groups, members = plan.group_size, plan.groups, plan.members
    else:
        # (loaded once already, quietly, by data_here: no error; its warnings are said here, as the job's)
        cfg, group_size = load_config(config, list(overrides or ())), comm.size
    t, d, error = cfg.train, cfg.data, None
    try:
        with tag_config_errors(cfg, unnamed=("checkpoint.resume",)):  # (tagged as the job's set-up tags its errors)
            check_batch_sizes(int(d.batch_size), group_size, int(t.grad_accumulation), int(t.epochs))
            preflight(cfg)
            check_profile_dir(cfg, 0)
    except ValueError as e:
        error = _one_line(e)
    agree_on_errors(comm, error)
    name = cfg.get("name") or os.path.splitext(os.path.basename(str(config)))[0]
    path = run_dir_for(cfg, out, comm, lambda: _default_path(types.SimpleNamespace(cfg=cfg, config_name=name)))
    _record_checkpoint_dir_in_run(cfg, path)
    spec = _as_dict(cfg.checkpoint).get("resume")
    created = check_run_dir(path, bool(spec), ensemble=ensemble, cfg=cfg, out=out)
    if not ensemble:  # (an ensemble's members are each found finished, or not, by the run: no such refusal)
        agree_on_errors(comm, _finished_without_checkpoint(path, cfg, out))
    defer("the data, the model built for it and the batch against the data's size (no data file here)")
    resume = None
    if spec and ensemble:
        resume = f"{spec}: {check_members_resume_without_data(cfg, settings, plan, path)}"
    elif spec:
        said, chosen = resume_found_without_model(cfg, path, spec)
        resume = f"{spec}: {said}"
        if chosen:  # (a checkpoint loads into the model, which needs the data's shapes)
            defer(f"--resume {spec}: loading its checkpoint into the model (it needs the data's model; chosen and "
                  "read here: checksums)")
    return {"config": name, "model": _as_dict(cfg.model).get("name"), "data": "not loaded (no data file here)",
            "ranks": comm.size, "members": members, "groups": groups, "global_batch": int(d.batch_size),
            "per_rank_batch": int(d.batch_size) // group_size, "epochs": int(t.epochs), "steps_per_epoch": None,
            "run_dir": str(path), "new_run_dir": created,
            "resume": resume}
