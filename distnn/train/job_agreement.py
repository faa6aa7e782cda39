"""What a job's ranks agree on before training: one error for all of them (:class:`JobError`, raised on every
rank together by :func:`agree_on_errors`) and the same data on every rank (:func:`agree_on_same_data`).
Importable from :mod:`distnn.train.job` too."""
from __future__ import annotations

import numpy as np


class JobError(ValueError):
    """A setup error agreed by all ranks; ``report`` is True on the rank that should print it."""

    def __init__(self, message: str, report: bool = True):
        super().__init__(message)
        self.report = report


def _one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    if isinstance(exc, KeyError) and len(msg) > 1 and msg[0] == msg[-1] == "'":
        msg = msg[1:-1]
    return msg or type(exc).__name__


def data_fingerprint(splits) -> str:
    """SHA-256 of every split's samples and labels (shapes and dtypes included)."""
    import hashlib

    h = hashlib.sha256()
    for name, part in splits.items():
        for a in (part.x, part.y):
            a = np.ascontiguousarray(a)
            h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
            h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def agree_on_same_data(comm, job) -> None:
    """Collective: per-rank data files (``{rank}`` in data.path) must hold the same data on every rank.
    A no-op for one rank or one data file (the same config on every rank: all of them or none).

    distnn shards ONE dataset across the ranks itself (each rank takes its part of every global
    batch); files that differ per rank would be sharded again (each rank training on a fraction of
    its own file, statistics fitted per rank, a crash when their sizes differ).
    """
    if comm.size == 1 or not job.per_rank_data:
        return
    path = job.cfg.data.path
    prints = comm.allgather_object(data_fingerprint(job.splits))
    differ = [r for r, f in enumerate(prints) if f != prints[0]]
    if differ:
        raise JobError(f"data.path {path!r} gives rank {differ[0]} other data than rank 0; distnn shards one "
                       "dataset across the ranks itself, so every rank must read the same data (pre-sharded "
                       "per-rank files are not supported): give one file, or identical copies"
                       + job.cfg.origins_tag(["data.path"]), report=comm.rank == 0)


def memory_error_text(exc: MemoryError) -> str:
    """One line for a MemoryError while the job is set up (a config asking for more than this machine has)."""
    return (f"not enough memory to set up the job (load the data, build the model and optimizer): {_one_line(exc)}; "
            "check the sizes in the config (data.n_samples, model sizes, data.batch_size)")


def agree_on_errors(comm, error: str | None) -> None:
    """Collective: raise the same JobError on every rank if any rank had an error."""
    errors = comm.allgather_object(error) if comm.size > 1 else [error]
    failed = [(r, e) for r, e in enumerate(errors) if e is not None]
    if not failed:
        return
    first_rank, msg = failed[0]
    if comm.size > 1 and len(failed) < comm.size:
        msg = f"rank {first_rank}: {msg}"
    raise JobError(msg, report=comm.rank == 0)


# (the public path, as before the split of distnn.train.job)
JobError.__module__ = "distnn.train.job"
