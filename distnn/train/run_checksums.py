"""The run directory's checksums: ``SHA256SUMS``, the SHA-256 of each file a model is rebuilt from.

A run directory's ``model.npz``, ``model.json`` and ``config.toml`` are
written by rank 0 (:func:`write_files`), each through a temporary file and a
rename, and listed in ``SHA256SUMS`` in ``sha256sum``'s format (``<64 hex
digits>  <name>`` a line; ``cd RUN && sha256sum -c SHA256SUMS`` checks them
too). Readers (:func:`read_verified`: ``evaluate``, ``predict``, an ensemble's
resume) read a listed file once, check its SHA-256 on those bytes and parse
the same bytes: a truncated, flipped or replaced file is a one-line
:class:`RunFileError` naming it, never a model built from it.

A file is rewritten in three steps (:func:`write_files`): the new one is written
beside it (``NAME.new``, fsynced) and hashed; ``SHA256SUMS`` lists its SHA-256
next to the old file's (two lines of the same name: either is accepted); the new
file is renamed in; ``SHA256SUMS`` lists it alone. A crash at any point leaves the
file there (old or new) listed, so a file changed after the crash is refused:
it used to be taken out of the list during the rewrite, and a crash then left it
unchecked. (``sha256sum -c`` reports one of the two lines as failed until the
next write: the file matches the other.) An unlisted file (a run of an older
distnn) is read as is; a listed one must match; a ``SHA256SUMS`` that is not
exactly what distnn writes (a flipped bit in a name or a checksum) is itself an
error, as it can no longer say which files it covers.

A run's ``model.json`` says ``"checksums": "SHA256SUMS"`` (:func:`marked`), and
so does its ``config.toml``, in a comment line of its header
(:data:`CONFIG_MARK`, added by :func:`write_files`): a run directory where
either carries the mark and that has no ``SHA256SUMS`` lost it (deleted by
hand, a partial copy), and is an error naming it rather than read unchecked.
Two marks, because either may be lost too (an edited ``model.json``), and
because a run still training has written its ``config.toml`` and no
``model.json`` yet. A run of an older distnn has neither, and loads as before.
:func:`write_files` puts a ``SHA256SUMS`` in place before it renames a marked
file in, so that no crash leaves a mark without one.
"""
from __future__ import annotations

import hashlib
import json
import os
import re

from .regular_file import open_regular, read_regular

SUMS = "SHA256SUMS"
META = "model.json"
CONFIG = "config.toml"
#: config.toml's mark that the run directory has a SHA256SUMS (as model.json's :data:`MARK`): a comment,
#: which no TOML reader takes for a setting (``train --config RUN/config.toml`` reads the file as before)
CONFIG_MARK = '# checksums = "SHA256SUMS" (the SHA-256 of this run\'s files: distnn checks them against it)'
#: model.json's key that says the run directory has a SHA256SUMS (:func:`marked`): one deleted is then
#: damage, not a run of an older distnn (which has neither)
MARK = "checksums"
#: the files SHA256SUMS may list (a name outside these is a damaged line)
COVERED = ("config.toml", "model.json", "model.npz")
_LINE = re.compile(r"([0-9a-f]{64})  (" + "|".join(re.escape(n) for n in COVERED) + r")")


class RunFileError(ValueError):
    """A run directory's file does not match its ``SHA256SUMS`` entry, or ``SHA256SUMS`` is damaged."""


class Sums(dict):
    """``{name: sha256}`` of a ``SHA256SUMS``, and in :attr:`swapping` ``{name: sha256}``: the second checksum
    listed for a file a crash cut short in its rewrite (the old file's, or the new one's: either is the file)."""

    def __init__(self, *args, swapping=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.swapping = dict(swapping or {})

    def accepts(self, name: str, sha256: str) -> bool:
        """Whether ``sha256`` is one listed for ``name`` (an unlisted name: any is)."""
        return name not in self or sha256 in (self[name], self.swapping.get(name))


def marked(meta: dict) -> dict:
    """``meta`` (a run's ``model.json``) with the mark that says its run directory has a ``SHA256SUMS``."""
    return {**meta, MARK: SUMS}


def marked_config(text: bytes) -> bytes:
    """A run's ``config.toml`` (``text``) with :data:`CONFIG_MARK` as the last line of its header comment
    (the first line stays the first: it says the file is a run's record)."""
    lines = text.splitlines(keepends=True)
    if any(line.rstrip(b"\r\n") == CONFIG_MARK.encode() for line in lines):
        return text
    k = 0
    while k < len(lines) and lines[k].startswith(b"#"):
        k += 1
    return b"".join(lines[:k] + [CONFIG_MARK.encode() + b"\n"] + lines[k:])


def _marked_on_disk(directory: str) -> str | None:
    """The name of ``directory``'s file that says the run has a ``SHA256SUMS``: ``model.json`` holding
    :func:`marked`'s mark, or ``config.toml`` holding :data:`CONFIG_MARK`; None when neither does (or
    neither can be read: a damaged file is reported where it is read)."""
    try:
        meta = json.loads(read_regular(os.path.join(str(directory), META)))
        if isinstance(meta, dict) and meta.get(MARK) == SUMS:
            return META
    except (OSError, ValueError, RecursionError):
        pass
    try:  # (the mark is in the header: the file's first lines)
        head = read_regular(os.path.join(str(directory), CONFIG), 1 << 14)
    except OSError:
        return None
    return CONFIG if CONFIG_MARK.encode() in head.splitlines() else None


def read_sums(directory: str) -> dict[str, str] | None:
    """``{name: sha256}`` of ``directory``'s ``SHA256SUMS``; None when it has none (an older distnn's run).

    A run whose ``model.json`` or ``config.toml`` is marked (see the module docstring) was written with
    one: without it, a RunFileError."""
    path = os.path.join(str(directory), SUMS)
    try:
        raw = read_regular(path, 1 << 16)
    except FileNotFoundError:
        which = _marked_on_disk(directory)
        if which:
            raise RunFileError(f"{path} is missing (deleted?), though {which} says the run was written with it: "
                               f"the run's files cannot be checked; its checkpoints, if any, can be evaluated "
                               f"instead") from None
        return None
    except OSError as e:
        raise RunFileError(f"{path}: unreadable ({e.strerror or e})") from None
    sums = Sums()
    try:
        lines = raw.decode("ascii").split("\n")
    except UnicodeDecodeError:
        lines = [None]
    if lines[-1] != "":  # (every line ends with a newline)
        lines.append(None)
    for line in lines[:-1]:
        m = _LINE.fullmatch(line) if line is not None else None
        if m is not None and m.group(2) in sums:  # a second line of a file: a rewrite cut short (write_files)
            if m.group(2) in sums.swapping or sums[m.group(2)] == m.group(1):
                m = None  # (more than two, or the same twice: not what distnn writes)
            else:
                sums.swapping[m.group(2)] = m.group(1)
                continue
        if m is None:
            raise RunFileError(f"{path} is damaged (not a list of the run's files and their SHA-256): the "
                               f"run's files cannot be checked; its checkpoints, if any, can be evaluated instead")
        sums[m.group(2)] = m.group(1)
    return sums


def read_verified(directory: str, name: str, sums: dict | None) -> bytearray:
    """The bytes of ``directory/name``, read once and checked against ``sums`` (:func:`read_sums`) when it
    lists the file (unlisted, or ``sums`` None: as they are). OSError when the file cannot be read."""
    path = os.path.join(str(directory), name)
    with open_regular(path) as f:
        data = bytearray(f.readall())  # (writable: np.load's arrays of it are views, not copies)
    if not (sums if isinstance(sums, Sums) else Sums(sums or {})).accepts(name, hashlib.sha256(data).hexdigest()):
        raise RunFileError(f"{path} fails its SHA-256 check ({SUMS} lists another: truncated, damaged or "
                           f"replaced since it was written); its run's checkpoints, if any, can be evaluated "
                           f"instead")
    return data


def write_files(directory: str, files: dict, write) -> None:
    """Write ``files`` in ``directory`` with ``write(path, data)`` (a whole-file replace that returns the
    SHA-256, hex, of the bytes it wrote: :func:`~distnn.train.run_dir.write_bytes`), each listed in
    ``SHA256SUMS`` at every point a crash could stop it (see the module docstring): written beside the
    file first (``NAME.new``), listed next to the file there, renamed in, then listed alone. ``files``:
    ``{name: bytes}``, or a function that writes the content to the binary stream it is given (streamed
    to the file, never whole in memory). A ``config.toml`` is written :func:`marked_config`; a
    ``SHA256SUMS`` is there before it (or anything else) is renamed in: a mark with none is a deleted one."""
    if isinstance(files.get(CONFIG), (bytes, bytearray)):
        files = {**files, CONFIG: marked_config(bytes(files[CONFIG]))}
    sums = _current(directory)
    tmps, new = {}, {}  # {name: its temporary file}, {name: the SHA-256 written there}
    try:
        for name, data in files.items():
            tmps[name] = os.path.join(str(directory), name + ".new")
            try:
                new[name] = write(tmps[name], data)
            except OSError as e:  # (named as the file it is of, not its new copy's name)
                raise OSError(e.errno, e.strerror or str(e), os.path.join(str(directory), name)) from None
        old = {n: _listed_there(directory, n, sums) for n in new}
        # (a file not rewritten, left listed twice by a rewrite cut short: listed as it is there now)
        kept = {n: _listed_there(directory, n, sums) or h for n, h in sums.items() if n not in new}
        # The file there (if listed) and the one about to replace it, both listed: a crash before, between
        # or after the renames below leaves each file there checked. (No directory fsync between: a journaling
        # file system commits renames in the order they were made, this one before the files' renames.)
        _store(directory, Sums({**kept, **new}, swapping={n: h for n, h in old.items() if h and h != new[n]}),
               sync_dir=False)
        for name, tmp in tmps.items():
            os.replace(tmp, os.path.join(str(directory), name))
    except BaseException:
        for tmp in tmps.values():
            try:
                os.remove(tmp)
            except OSError:
                pass
        raise
    _store(directory, Sums({**kept, **new}))  # (its directory fsync makes every rename above durable too)


def _listed_there(directory: str, name: str, sums: "Sums") -> str | None:
    """The listed SHA-256 of ``directory``'s file ``name`` as it is there now (None: not there, or not
    listed). Of a rewrite cut short (two listed), the one it matches: hashed, which only such a rewrite
    costs; if neither, the first, so that the damaged file stays refused until it is replaced."""
    if name not in sums or not os.path.lexists(os.path.join(str(directory), name)):
        return None
    if name in sums.swapping:
        try:
            with open_regular(os.path.join(str(directory), name)) as f:
                sha = hashlib.sha256()
                for block in iter(lambda: f.read(1 << 20), b""):
                    sha.update(block)
            if sums.accepts(name, sha.hexdigest()):
                return sha.hexdigest()
        except OSError:
            pass
    return sums[name]


class HashingWriter:
    """A write-only binary stream that writes to the file ``f`` and hashes what goes through it: its
    :meth:`hexdigest` is the SHA-256 of exactly the bytes written, not of the file read back (which could
    already differ). It has no ``tell``/``seek``, so a writer that would go back to patch a header
    (``zipfile``) writes front to back instead."""

    def __init__(self, f):
        self._f, self._sha = f, hashlib.sha256()

    def write(self, data) -> int:
        self._sha.update(data)
        return self._f.write(data)

    def flush(self) -> None:
        self._f.flush()

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def forget(directory: str, names) -> None:
    """Drop ``names`` from ``directory``'s ``SHA256SUMS`` (before they are removed or written otherwise)."""
    sums = _current(directory)
    if any(n in sums for n in names):
        _store(directory, Sums({n: h for n, h in sums.items() if n not in names},
                               swapping={n: h for n, h in sums.swapping.items() if n not in names}))


def _current(directory: str) -> dict:
    """The sums there are, to update: a damaged or unreadable SHA256SUMS is rewritten from nothing."""
    try:
        return read_sums(directory) or Sums()
    except RunFileError:
        return Sums()


def _store(directory: str, sums: Sums, sync_dir: bool = True) -> None:
    """Write ``sums`` as ``SHA256SUMS`` (a file of :attr:`Sums.swapping`: its second line after the first)."""
    from .run_dir import write_text

    write_text(os.path.join(str(directory), SUMS),
               "".join(f"{h}  {n}\n" for n in sorted(sums) for h in (sums[n], sums.swapping.get(n)) if h), sync_dir)
