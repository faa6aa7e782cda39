"""Checkpoints on disk: format, atomic write, manifest, verification, retention, selection.

The package is the public interface (``from distnn.train import checkpoint as ck``); its
modules, one concept each: :mod:`.names` (file names, errors), :mod:`.state` (a state
<-> npz and JSON bytes), :mod:`.commit` (the atomic write and the pointers),
:mod:`.fsio` (the file-system steps it is made of), :mod:`.hashing` (checksums on two
threads), :mod:`.read` (choosing the checkpoint a resume loads), :mod:`.verify`
(checksums and reading a checkpoint whole), :mod:`.listing` (the checkpoints of a run),
:mod:`.model_select` (which checkpoint or run a model comes from), :mod:`.retention`
(housekeeping), :mod:`.faults` (fault injection for tests), :mod:`.writer_process` (a
separate process that writes ``async_save`` checkpoints).

A checkpoint is one directory per optimizer step under a checkpoint root
(``<run>/checkpoints`` by default)::

    checkpoints/
      step-00000420/
        model.npz        the model's state_dict (same format as a run's model.npz)
        optimizer.npz    the optimizer's state arrays (Adam moments, momentum buffers)
        state.npz        any other arrays of the trainer state (e.g. early stopping's best weights)
        trainer.json     everything else: epoch, step, position in the epoch, history, LR
                         schedulers, callbacks, and every rank's random generator state
        history-000000.json  the training history's records 0-255 (a file per whole chunk of
                         256; the records after the last whole chunk are in trainer.json)
        model.json       how to rebuild the model (evaluate/predict read a checkpoint directly)
        config.toml      the resolved configuration of the run
        manifest.json    written LAST: format, step, world size, global batch, the
                         SHA-256 and size of every file above, and (its last key, format 3)
                         the SHA-256 of its own text before it
      latest             name of the newest checkpoint (replaced atomically), then the SHA-256 of
                         the name: ``step-00000420 sha256=<hex>`` (commit.pointer_bytes; a damaged
                         one is never followed, read.follow_pointer; the name alone: an older distnn's)
      best               the same, naming the best checkpoint by the monitored metric

Commit protocol (what makes a crash at any instant harmless, as in
``torch.distributed.checkpoint``, whose metadata file is its commit point):
files are written into ``.tmp-step-...`` and made durable (one ``syncfs`` of the
file system on Linux >= 5.8, else an fsync of each file and of the directory); the
manifest goes last; the directory is fsynced and renamed to ``step-...``; then
``latest`` is replaced (temporary file, fsynced with the others,
``os.replace``) and the root is fsynced once (see :func:`write_checkpoint`).
A directory without a manifest whose checksums match is never loaded:
:func:`load_latest_valid` skips it with a warning naming the file and falls
back to the previous checkpoint. So is what distnn never writes there: a
symlink as a ``step-N`` entry or a pointer (it may name another checkpoint),
a named pipe or any other non-regular file in place of a file (verify.py,
distnn/train/regular_file.py).
Files that are the same in every checkpoint of a run (``model.json``,
``config.toml``, the history's whole chunks) are hard links to the previous checkpoint's copy where the
file system allows: deleting an old checkpoint leaves the others intact, and
the manifest checks them like any other file (do not edit them in place).

Arrays are stored as uncompressed ``.npz`` files (``np.load`` reads them;
distnn/train/npz_io.py packs them into buffers reused between saves and
reads them back as views of the verified bytes). Everything else goes to
JSON with a few tags so that it round-trips exactly: ``{"__array__": [file,
key]}``, ``{"__tuple__": [...]}``, ``{"__float__": "nan"}``, numpy scalars with
their dtype, and dicts with non-string keys. No pickle: loading a checkpoint
never executes code from the file.

Fault injection for tests: ``DISTNN_CKPT_FAULT`` holds comma-separated
``ACTION[:FILE][@STEP]`` entries; ``crash_after:FILE`` kills the process (SIGKILL)
after writing FILE, ``crash_before_rename`` and ``crash_before_latest`` kill it
at those points, ``enospc[:FILE]`` makes writing FILE fail with ENOSPC,
``signal_after:FILE`` sends the process SIGTERM after writing FILE (a second
preemption signal in the middle of the preemption checkpoint), ``pause_after:FILE``
writes the marker file ``paused-after-FILE`` into ``DISTNN_FAULT_MARKER_DIR`` after
writing FILE and waits there for a preemption signal (or a ``release`` file), so a
test can send one from outside at that very point
(:func:`distnn.train.preemption.pause_for_test`).
"""
from __future__ import annotations

from .commit import (check_pointer, json_clean, pointer_bytes, read_pointer, write_checkpoint, write_pointer,
                     write_pointers)
from .names import (BEST, DEFAULT_DIRNAME, FAULT_ENV, FORMAT, LATEST, MANIFEST, MANIFEST_SEAL, TRAINER_JSON, VERSION,
                    CheckpointError, CorruptCheckpointError, step_name)
from .read import (CheckpointInfo, checkpoint_root, follow_pointer, is_checkpoint_dir, list_checkpoints,
                   load_latest_valid, model_directory, read_checkpoint, read_files, read_manifest, resolve_and_load,
                   verify_checkpoint)
from .retention import (apply_retention, cleanup_temporaries, discard_newer, recover_interrupted_rewrites,
                        remove_spares, write_and_retain)
from .state import PendingText, Serializer, decode_state, encode_state, fill_text, npz_bytes, serialize, to_files

__all__ = [
    "BEST", "DEFAULT_DIRNAME", "FAULT_ENV", "FORMAT", "LATEST", "MANIFEST", "MANIFEST_SEAL", "TRAINER_JSON", "VERSION",
    "CheckpointError", "CorruptCheckpointError", "CheckpointInfo", "PendingText", "Serializer",
    "apply_retention", "check_pointer", "checkpoint_root", "cleanup_temporaries", "decode_state", "discard_newer",
    "encode_state", "fill_text",
    "follow_pointer",
    "is_checkpoint_dir", "json_clean", "list_checkpoints", "load_latest_valid", "model_directory", "npz_bytes",
    "pointer_bytes",
    "read_checkpoint", "read_files", "read_manifest", "read_pointer", "recover_interrupted_rewrites", "remove_spares",
    "resolve_and_load", "serialize", "step_name", "to_files", "verify_checkpoint", "write_and_retain",
    "write_checkpoint", "write_pointer", "write_pointers",
]
