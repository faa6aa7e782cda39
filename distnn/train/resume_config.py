"""Which saved config ``distnn train --resume`` continues with when no ``--config`` is given.

A run directory holds the run's resolved ``config.toml``, and so does every checkpoint (a copy of the
config of the session that wrote it). Resuming a run with the built-in default config instead would
build another model (digits_mlp's MLP from a ResNet's checkpoint) and fail on its weights, so without
``--config`` the run's own config is the base, ``--set`` applied on top:

* ``--resume auto --out RUN``: ``RUN/config.toml`` (the config of the run's latest session); without
  ``--out``, the run directory ``--set run.run_name=NAME`` names (under ``run.out_dir``, given by
  ``--set`` too or the default ``runs``);
* ``--resume PATH``: the config stored with what PATH names (a checkpoint directory, a ``latest`` /
  ``best`` pointer, a run directory, or a checkpoint root: its newest checkpoint's), whatever
  ``--out`` is: resuming a checkpoint into a new run directory forks that run, with its config.

Each is used only as its checksum verifies, parsed from the bytes checked: a run's ``config.toml``
against the run's ``SHA256SUMS`` (a mismatch is an error naming it, not passed over: see
:func:`_run_config`), a checkpoint's against its manifest.

None when there is nothing saved (a fresh ``--resume auto`` run directory, a path without a config):
the caller then uses the default config as before. An explicit ``--config`` always wins; the resume
then warns about each setting that differs from the checkpoint's (``callbacks/resume.py``).
"""
from __future__ import annotations

import os

CONFIG_FILE = "config.toml"


def saved_config_for_resume(resume: str | None, out: str | None) -> str | None:
    """The path of the saved ``config.toml`` to resume with (see the module docstring), or None: a
    :class:`~distnn.train.config.CheckedConfigFile`, whose ``load_config`` parses the bytes whose checksum
    was verified (a run's config with no checksum listed, of an earlier distnn: those bytes, as they are)."""
    if not resume:
        return None
    if resume == "auto":
        return _run_config(out) if out else None
    return _checkpoint_config(resume)


def run_dir_from_overrides(overrides) -> str | None:
    """The run directory that ``--set run.run_name=NAME`` (and ``run.out_dir``) names, or None without a name.

    (What ``--resume auto`` continues when no ``--out`` is given; a malformed ``--set`` is left to the
    config's own validation, which reports it.)"""
    from .config import ConfigError, parse_override
    from .config_schema import SCHEMA

    given = {}
    for text in overrides:
        try:
            key, value = parse_override(text)
        except ConfigError:
            continue
        given[key] = value
    name = given.get("run.run_name")
    if not isinstance(name, str) or not name:
        return None
    out_dir = given.get("run.out_dir")
    return os.path.join(out_dir if isinstance(out_dir, str) and out_dir else SCHEMA["run.out_dir"].default, name)


def _config_in(directory: str) -> str | None:
    path = os.path.join(str(directory), CONFIG_FILE)
    return path if os.path.isfile(path) else None


def _run_config(run: str):
    """``run``'s own ``config.toml`` as a CheckedConfigFile, checked against the run's ``SHA256SUMS``
    (unchecked when that lists none: a run of an earlier distnn, or a rewrite cut short), or None.

    A config that fails its check is an error naming it, not passed over for a checkpoint's: it is the
    config of the run's latest session (its ``--set``, which a checkpoint's may predate), and the resumed
    session would write its own over it. One edited on purpose is resumed with by giving it as ``--config``."""
    from .config import CheckedConfigFile
    from .run_checksums import SUMS, RunFileError, read_sums, read_verified

    path = _config_in(run)
    if path is None:
        return None
    try:
        sums = read_sums(run)
    except RunFileError:
        why = f"cannot be checked: {os.path.join(str(run), SUMS)} is damaged or missing"
    else:
        try:
            return CheckedConfigFile(path, read_verified(run, CONFIG_FILE, sums))
        except RunFileError:
            why = f"fails its SHA-256 check ({SUMS} lists another: damaged, or edited since the run wrote it)"
    saved = _newest_checkpoint_config(run)
    hint = f"; or the newest checkpoint's, --config {saved}" if saved else ""
    raise RunFileError(f"{path} {why}; a run is not resumed with a config that cannot be trusted: give the "
                       f"config to resume with as --config (that file, if it was edited on purpose{hint})")


def _checkpoint_config(spec: str) -> str | None:
    """The config stored with ``--resume spec``: its own (a checkpoint or run directory), else the newest
    checkpoint's under it (a checkpoint root). Problems with ``spec`` itself (no such path, a dangling
    pointer) are left to the resume, which reports them; here they mean "none".

    A checkpoint's config is used only as it was saved (its checksum verified, as the resume verifies
    every file): a damaged one named by ``spec`` is a CheckpointError here, before a run is built from
    it; under a checkpoint root, a checkpoint whose config is damaged is passed over, as the resume
    passes it over."""
    from .checkpoint import MANIFEST, CheckpointError, follow_pointer
    from .checkpoint.names import STEP_RE

    try:
        path = follow_pointer(str(spec), warn=lambda message: None)  # (a damaged latest: its root, as the resume warns)
    except CheckpointError:
        return None
    own = _config_in(path)
    if own and (os.path.exists(os.path.join(path, MANIFEST))
                or STEP_RE.match(os.path.basename(os.path.normpath(path)))):  # a checkpoint directory
        try:
            return _checked(own)
        except CheckpointError as e:
            raise CheckpointError(f"--resume {path!r}: {e}") from None
    if own:  # a run directory
        return _run_config(path)
    return _newest_checkpoint_config(path) if os.path.isdir(path) else None


def _newest_checkpoint_config(directory: str):
    """The config of the newest checkpoint under ``directory`` (a run directory or a checkpoint root) whose
    config verifies, as :func:`_checked` gives it; a checkpoint whose config is damaged is passed over, as the
    resume passes it over. None when there is none."""
    from .checkpoint import CheckpointError, checkpoint_root, list_checkpoints

    for found in reversed(list_checkpoints(checkpoint_root(str(directory)))):
        saved = _config_in(found.path)
        if saved:
            try:
                return _checked(saved)
            except CheckpointError:
                continue
    return None


def _checked(config: str):
    """A checkpoint's ``config.toml`` as a CheckedConfigFile: its path, with the bytes whose SHA-256 was checked
    (what the run is configured with: the file read again after the check could be another)."""
    from .checkpoint import read_files
    from .config import CheckedConfigFile

    return CheckedConfigFile(config, read_files(os.path.dirname(config), (CONFIG_FILE,))[CONFIG_FILE])
