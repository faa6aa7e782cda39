"""What only the hosts a job runs on can check: ``distnn train --check`` on another host notes it.

A check runs on the submitting host (a login node), so two things it could see only on the compute nodes
would otherwise refuse a good job:

- a GPU for ``run.device = "gpu"``: the login node has none, or no cupy;
- a data file that does not exist here, outside the current directory: the nodes' own disks (``/local``,
  ``$TMPDIR``), a per-rank copy (``{rank}`` in data.path) made by the job's prolog.

Everything else is the same on every host and stays refused: config keys and values, the batch against
the ranks, a data path in the current directory (relative ones too: the job runs in the directory it was
submitted from, as the check does), a data file that exists here but is bad, the run directory (the job
writes it where it was submitted) and ``--resume``. Inside :func:`deferred` (the check, unless
``--check-strict``) the job's set-up calls :func:`defer` for a host-dependent problem instead of raising;
the job itself, outside it, refuses as always, at start.
"""
from __future__ import annotations

import contextlib
import contextvars
import os

_NOTES: contextvars.ContextVar = contextvars.ContextVar("distnn_host_notes", default=None)

#: what a check prints for each problem it could not check here
NOTE_PREFIX = "not checked on this host: "
NOTE_SUFFIX = " (checked when the job starts)"


@contextlib.contextmanager
def deferred():
    """Within it, :func:`defer` notes host-dependent problems (in the list it yields) instead of refusing."""
    notes: list = []
    token = _NOTES.set(notes)
    try:
        yield notes
    finally:
        _NOTES.reset(token)


def defer(problem: str) -> bool:
    """Note ``problem`` and return True inside :func:`deferred` (the caller goes on as if it were not there);
    else False: the caller refuses, as a job does."""
    notes = _NOTES.get()
    if notes is None:
        return False
    notes.append(problem)
    return True


def missing_here(path) -> bool:
    """True for a path that does not exist on this host (it may on the job's nodes), unless it lies in the
    current directory (a relative path, which the config makes absolute against it): the directory the job
    is submitted from and runs in, the same there; its loader's "not found" is an error."""
    p = os.path.abspath(os.path.expanduser(str(path)))
    if os.path.lexists(p):
        return False
    here = os.path.abspath(os.getcwd())
    return os.path.commonpath([p, here]) != here


def data_path_key(data: dict) -> tuple[str, str] | None:
    """``(key, path)`` of the data file or directory a ``[data]`` table reads (``data.path``, or a ``.npz``/
    ``.csv`` path given as ``data.name``), or None for a built-in dataset."""
    from distnn.data.datasets import _FILE_SOURCES, _REGISTRY

    if isinstance(data.get("path"), str):
        return "data.path", data["path"]
    name = data.get("name")
    if isinstance(name, str) and name not in _REGISTRY and os.path.splitext(name)[1].lower() in _FILE_SOURCES:
        return "data.name", name
    return None


def per_rank_paths(path: str, ranks: int) -> dict:
    """``{rank: path}`` for each of ``ranks`` ranks (``{rank}`` replaced as the job does; one path for all
    ranks, under rank 0, without it)."""
    if "{rank}" not in path:
        return {0: path}
    return {r: path.replace("{rank}", str(r)) for r in range(ranks)}


def missing_data_note(key: str, path: str, missing: list, ranks: int) -> str:
    """The note for data files missing here (``missing``: their ranks)."""
    if "{rank}" not in path:
        return f"{key} {path!r} does not exist here"
    which = "any rank" if len(missing) == ranks else "rank" + ("s " if len(missing) > 1 else " ") + _ranks(missing)
    return f"{key} {path!r} does not exist here for {which}"


def _ranks(ranks: list) -> str:
    shown = ", ".join(str(r) for r in ranks[:8])
    return shown + (f" ... ({len(ranks)} in all)" if len(ranks) > 8 else "")
