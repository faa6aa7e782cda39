"""The names a checkpoint directory uses, and the errors of the checkpoint package."""
from __future__ import annotations

import re


FORMAT = "distnn.checkpoint"
VERSION = 3  # 2: the training history in chunk files (state.to_files); 3: the manifest's own SHA-256 (commit.py)
MANIFEST = "manifest.json"
MANIFEST_SEAL = "manifest_sha256"  # the manifest's last key: the SHA-256 of the manifest's text before it
TRAINER_JSON = "trainer.json"
LATEST = "latest"
BEST = "best"
POINTER_SEAL = "sha256"  # a pointer file's second field: sha256=<the SHA-256 of the name> (commit.pointer_bytes)
DEFAULT_DIRNAME = "checkpoints"
FAULT_ENV = "DISTNN_CKPT_FAULT"
STEP_RE = re.compile(r"^step-(\d+)$")


class CheckpointError(ValueError):
    """A checkpoint cannot be written, found or loaded (one-line message naming the path and file)."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint is incomplete or its files do not match the manifest's checksums."""


def step_name(step: int) -> str:
    return f"step-{int(step):08d}"
