"""Replica checks of :class:`~.data_parallel.DataParallel`: the same model on every rank, and still equal
(and the construction's warning about a time-major model).

:func:`verify_same_model` compares every rank's parameter and buffer names,
shapes, dtypes and trainability before training (one allgather of small
signatures); :func:`check_replicas` compares the values bitwise during
training (one allgather of a 16-byte digest per tensor). Both raise
:class:`ReplicaMismatchError` on every rank together, naming the first
difference and the ranks on each side.
"""
from __future__ import annotations

import hashlib
import warnings

import numpy as np

from distnn.backend import to_numpy


class ReplicaMismatchError(RuntimeError):
    """Ranks hold different models (at construction) or their parameters diverged (check_replicas).

    Raised on every rank together; ``report`` is True on rank 0 only (so a launcher
    prints it once: the CLI's protocol for agreed errors).
    """

    def __init__(self, message: str, rank: int = 0):
        super().__init__(message)
        self.report = rank == 0


def verify_same_model(module, comm) -> None:
    """Collective: raise unless every rank's ``module`` has the same parameters and buffers (not values)."""
    sig = [("parameter", n, tuple(p.shape), str(p.dtype), bool(p.requires_grad)) for n, p in module.named_parameters()]
    sig += [("buffer", n, tuple(b.shape), str(b.dtype)) for n, b in module.named_buffers()]
    every = comm.allgather_object(sig)
    for i in range(max(len(s) for s in every)):
        entries = [s[i] if i < len(s) else None for s in every]
        if all(e == entries[0] for e in entries):
            continue
        kind, name = next((e[0], e[1]) for e in entries if e is not None)
        groups = {}
        for r, e in enumerate(entries):
            groups.setdefault(e, []).append(r)
        detail = "; ".join(f"rank{'s' if len(rs) > 1 else ''} {', '.join(map(str, rs))}: {_describe(e)}"
                           for e, rs in groups.items())
        raise ReplicaMismatchError(
            f"DataParallel: the model differs across ranks; first difference at {kind} #{i} '{name}': {detail}. "
            "Every rank must build the same model.", comm.rank)


def check_replicas(module, comm, with_buffers: bool, steps: int) -> None:
    """Collective: raise unless ``module``'s parameters (and buffers) are bitwise equal on every rank."""
    tensors = list(module.named_parameters())
    if with_buffers:
        tensors += list(module.named_buffers())
    digests = [hashlib.blake2b(np.ascontiguousarray(to_numpy(t.data)), digest_size=16).digest() for _, t in tensors]
    every = comm.allgather_object(digests)
    for i, (name, _) in enumerate(tensors):
        groups = {}
        for r, d in enumerate(every):
            groups.setdefault(d[i], []).append(r)
        if len(groups) > 1:
            parts = " vs ".join(f"ranks {rs}" for rs in groups.values())
            raise ReplicaMismatchError(
                f"DataParallel: replicas diverged after {steps} synchronized steps: '{name}' differs between "
                f"{parts} (first differing tensor; something updated the model differently on some rank)",
                comm.rank)


def _describe(entry) -> str:
    if entry is None:
        return "(missing)"
    text = f"'{entry[1]}' shape {entry[2]} {entry[3]}"
    if entry[0] == "parameter" and not entry[4]:
        text += " (frozen)"
    return text


def warn_if_time_major(module) -> None:
    """Samples are counted along axis 0 of the input: say so when a layer inside takes (L, N, ...) inputs."""
    for name, m in module.named_modules():
        if getattr(m, "batch_first", True) is False:
            warnings.warn(f"DataParallel: {type(m).__name__} {name or '(the model)'!r} takes time-major (L, N, ...) "
                          "input (batch_first=False), but samples are counted along axis 0 of the forward input: "
                          "if the model's input is time-major, pass batch_dim=1 (or call set_num_samples), else "
                          "batch_dim=0 to silence this. Uneven shards would otherwise be weighted by sequence "
                          "length.", stacklevel=3)
            return
