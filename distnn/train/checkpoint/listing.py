"""Listing a checkpoint root's ``step-N`` entries, the ones that cannot be a checkpoint with why, and finding the root.

Split out of :mod:`.read`, which still exports every name here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..regular_file import read_regular
from .names import DEFAULT_DIRNAME, MANIFEST, STEP_RE


@dataclass
class CheckpointInfo:
    path: str
    step: int
    problem: str = ""  # why a step-N entry cannot be a checkpoint (not a directory); '' for a directory

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


def is_checkpoint_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, MANIFEST))


def list_checkpoints(root: str) -> list[CheckpointInfo]:
    """The ``step-N`` directories under ``root``, oldest first (valid or not)."""
    return [c for c in _step_entries(root) if not c.problem]


def _step_entries(root: str) -> list[CheckpointInfo]:
    """Every ``step-N`` entry under ``root``, oldest first: the directories, and those that cannot be a
    checkpoint (a file, a dangling symlink, a symlink loop) with their ``problem`` said."""
    out = []
    try:
        with os.scandir(root) as it:
            entries = [(e, STEP_RE.match(e.name)) for e in it]
    except OSError:
        return []
    for e, m in entries:
        if m:  # (one that is no directory stays, with why: a symlink loop there hid all the others)
            out.append(CheckpointInfo(e.path, int(m.group(1)), _entry_problem(e)))
    return sorted(out, key=lambda c: c.step)


def _entry_problem(entry: os.DirEntry) -> str:
    """``_linked_step(path) or _why_not_a_directory(path)`` for a ``step-N`` entry of a scan.

    The entry's type from the directory listing answers the common case (a directory, no symlink)
    without a system call: a checkpoint writer scans its root at every save (retention), and each
    call there releases and re-takes the interpreter lock the training thread is waiting for. Where
    the listing gives no type, ``DirEntry`` asks the file system itself, as the functions do.
    """
    try:
        plain_dir = not entry.is_symlink() and entry.is_dir()
    except OSError:
        plain_dir = False
    return "" if plain_dir else _linked_step(entry.path) or _why_not_a_directory(entry.path)


def _linked_step(path: str) -> str:
    """Why ``path``, a ``step-N`` entry that is a symlink, is no checkpoint ('' for any other path).

    distnn writes each checkpoint as a directory of its own (renamed into place), never as a link; a
    link there may name another checkpoint of the same step (a discarded one, another run's), which no
    checksum tells apart, and retention would delete the files of the directory it names."""
    path = os.path.normpath(path)
    if not (STEP_RE.match(os.path.basename(path)) and os.path.islink(path)):
        return ""
    if not os.path.exists(path):
        return "a broken symlink (to nothing, or a loop)"
    try:
        target = f" to {os.readlink(path)!r}"
    except OSError:
        target = ""
    return f"a symlink{target}, not a checkpoint directory of its own (distnn never links one: it may be another)"


def _why_not_a_directory(path: str) -> str:
    """Why ``path`` is no directory ('' when it is one)."""
    if os.path.isdir(path):
        return ""
    if os.path.islink(path) and not os.path.exists(path):
        return "a broken symlink (to nothing, or a loop)"
    return "not a directory" if os.path.lexists(path) else "missing"


def checkpoint_root(path: str, config: bytes | None = None) -> str:
    """The checkpoint root for ``path``: a run directory (its ``checkpoint.dir``, as its ``config.toml``
    says; ``checkpoints/`` by default) or a root itself. ``config``: the bytes of the run's ``config.toml``,
    read already (and checked against its ``SHA256SUMS``): parsed instead of the file, read again."""
    name = _configured_dirname(path) if config is None else configured_dirname(config)
    sub = os.path.join(path, name)
    if os.path.isdir(sub) and not list_checkpoints(path):
        return sub
    return path


def _configured_dirname(run_dir: str) -> str:
    """``checkpoint.dir`` of the run in ``run_dir`` (its resolved ``config.toml``), else the default."""
    name = stored_config_value(run_dir, "checkpoint", "dir")
    return name if isinstance(name, str) and name else DEFAULT_DIRNAME


def configured_dirname(config: bytes) -> str:
    """``checkpoint.dir`` of a run's ``config.toml`` (its bytes), else the default."""
    name = _value_in(config, "checkpoint", "dir")
    return name if isinstance(name, str) and name else DEFAULT_DIRNAME


def stored_config_value(directory: str, section: str, key: str):
    """``[section] key`` of the resolved ``config.toml`` a run directory or checkpoint holds; None when
    there is no such file, value, or readable TOML."""
    try:
        config = read_regular(os.path.join(directory, "config.toml"))
    except OSError:
        return None
    return _value_in(config, section, key)


def _value_in(config: bytes, section: str, key: str):
    """``[section] key`` of ``config`` (a TOML file's bytes); None when there is no such value or no TOML."""
    import tomllib

    try:
        table = tomllib.loads(bytes(config).decode()).get(section)
    except ValueError:  # (tomllib's errors are ValueErrors, and so is UnicodeDecodeError)
        return None
    return table.get(key) if isinstance(table, dict) else None
