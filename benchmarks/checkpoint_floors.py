"""bench_checkpoint's floors: what a checkpoint every epoch costs when parts of distnn's are left out.

Each is a callback added to the 2-rank digits_mlp job of bench_checkpoint part 2 (see its docstring
for what each row means). Two kinds:

* :func:`_floor_callback`: no distnn checkpoint at all; rank 0 captures the model's and optimizer's
  arrays at every epoch end and writes them by hand: ``np.savez`` + fsync in the training thread,
  their raw bytes into one file from a thread, or (``protocol I/O``) the file-system operations of a
  distnn save done on those bytes with nothing computed (no serialization, CRC-32s or SHA-256s);
* :data:`WRITER_FLOORS`: distnn's async checkpoint callback with its writer replaced.
"""
from __future__ import annotations

import os
import queue
import threading
import time

import numpy as np


def _savez_fsync(path, arrays) -> None:
    """The floor of a durable save: ``np.savez`` of ``arrays`` into ``path``, then fsync."""
    with open(path, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _floor_callback():
    from distnn.train.callbacks.base import Callback
    from distnn.train.checkpoint.fsio import START_WRITEBACK

    class FloorSave(Callback):
        """Rank 0 at every epoch end: the model and optimizer arrays, made durable by hand.

        ``mode="savez"``: ``np.savez`` + fsync into one file, in the training thread.
        ``mode="raw"``: their raw bytes handed to a thread that writes them to a
        temporary file, fsyncs it, renames it into place and fsyncs the directory
        (the least a durable, atomic, asynchronous save can do).
        ``mode="protocol"``: the same bytes handed to a thread that does what
        distnn's writer does to the file system at a save (as strace shows it), on
        files of the same sizes: a retired checkpoint directory renamed to a
        temporary name, its model.npz, optimizer.npz, trainer.json and
        manifest.json overwritten in place, a new pointer file, write-back started
        on all, each fsynced, the directory fsynced, renamed into place, the pointer
        renamed over ``latest``, the root fsynced, and the checkpoint ``keep_last``
        saves back retired (renamed aside for the next save). Nothing is computed:
        no npz images, JSON, CRC-32s or SHA-256s. What the commit protocol's file
        operations alone cost on this machine, whoever implements them.
        """

        state_key = "_floor_save"
        keep_last = 2
        #: the sizes of digits_mlp's small files in a distnn checkpoint (bytes, about)
        small_files = (("trainer.json", 2900), ("manifest.json", 1100))

        def __init__(self, directory, mode="savez"):
            if mode not in ("savez", "raw", "protocol"):
                raise ValueError(f"unknown floor mode {mode!r}")
            self.path, self.timings, self.saves = os.path.join(directory, "floor.npz"), [], 0
            self.root = os.path.join(directory, "checkpoints")
            self.mode, self.jobs = mode, None
            self._written, self._spare, self._count = [], None, 0  # (the writer's)

        def on_epoch_end(self, trainer, logs):
            if not trainer.is_main:
                return
            t0 = time.perf_counter()
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            model = {f"model/{k}": v for k, v in trainer.model.state_dict().items()}
            opt = {}
            for i, st in trainer.optimizer.state_dict()["state"].items():
                opt.update({f"opt/{i}/{k}": v for k, v in st.items() if isinstance(v, np.ndarray)})
            if self.mode == "savez":
                _savez_fsync(self.path, {**model, **opt})
            else:
                if self.jobs is None:
                    self.jobs = queue.SimpleQueue()
                    threading.Thread(target=self._writer, args=(self.jobs,), daemon=True).start()
                if self.mode == "raw":
                    self.jobs.put(b"".join(a.tobytes() for a in (*model.values(), *opt.values())))
                else:
                    self.jobs.put((b"".join(a.tobytes() for a in model.values()),
                                   b"".join(a.tobytes() for a in opt.values())))
            self.saves += 1
            self.timings.append(time.perf_counter() - t0)

        def on_train_end(self, trainer, logs):
            if self.jobs is not None:
                done = queue.SimpleQueue()
                self.jobs.put(done)
                done.get()

        def _writer(self, jobs):
            while True:
                data = jobs.get()
                if isinstance(data, queue.SimpleQueue):
                    data.put(True)
                    return
                if self.mode == "raw":
                    self._write_raw(data)
                else:
                    self._write_protocol(*data)

        def _write_raw(self, data):
            fd = os.open(self.path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            os.replace(self.path + ".tmp", self.path)
            _fsync_dir(os.path.dirname(self.path))

        def _write_protocol(self, model, opt):
            os.makedirs(self.root, exist_ok=True)
            self._count += 1
            name = f"step-{self._count:08d}"
            tmp, final = os.path.join(self.root, ".tmp-" + name), os.path.join(self.root, name)
            if self._spare is not None:
                os.rename(self._spare, tmp)
                self._spare = None
            else:
                os.mkdir(tmp)
            fds = []
            files = [("model.npz", model), ("optimizer.npz", opt)]
            files += [(n, model[:size]) for n, size in self.small_files]
            try:
                for fname, data in files:
                    fd = os.open(os.path.join(tmp, fname), os.O_WRONLY | os.O_CREAT)  # (in place when recycled)
                    fds.append(fd)
                    os.write(fd, data)  # (the same sizes at every save: nothing to truncate)
                pointer = os.path.join(self.root, "latest.tmp")
                fd = os.open(pointer, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                fds.append(fd)
                os.write(fd, name.encode().ljust(86))
                if START_WRITEBACK is not None:
                    for fd in fds:
                        START_WRITEBACK(fd)
                for fd in reversed(fds):
                    os.fsync(fd)
            finally:
                for fd in fds:
                    os.close(fd)
            _fsync_dir(tmp)
            os.rename(tmp, final)
            os.replace(pointer, os.path.join(self.root, "latest"))
            _fsync_dir(self.root)
            self._written.append(final)
            if len(self._written) > self.keep_last:
                old = self._written.pop(0)
                self._spare = os.path.join(self.root, ".spare-" + os.path.basename(old))
                os.rename(old, self._spare)

    return FloorSave


def _FloorSave(directory, mode="savez"):
    return _floor_callback()(directory, mode)


def _minimal_protocol_checkpoint():
    from distnn.train.callbacks.checkpoint import ModelCheckpoint

    class MinimalProtocolCheckpoint(ModelCheckpoint):
        """distnn's checkpoint callback with its writer replaced by the least code the commit protocol needs.

        The same files (distnn's snapshot: the npz images, trainer.json,
        model.json, config.toml), each written, SHA-256-hashed and fsynced in
        a new temporary directory, a manifest, the rename, ``latest`` written,
        fsynced and renamed, one fsync of the root, and the checkpoint
        ``keep_last`` saves back deleted. No recycling, links, fault hooks,
        error handling or retention rules. It shows what the protocol itself
        costs on this machine, apart from how distnn's writer does it.
        """

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._written = []  # the checkpoints this callback wrote, oldest first

        def _write(self, job, elsewhere=False):
            import hashlib
            import json

            from distnn.train import checkpoint as ck

            step, files, manifest, serializer = job
            serializer.fill_crc(files)
            ck.fill_text(files)
            os.makedirs(self.root, exist_ok=True)
            name = f"step-{step:08d}"
            tmp, final = os.path.join(self.root, ".tmp-" + name), os.path.join(self.root, name)
            os.mkdir(tmp)

            def put(path, data):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.write(fd, data)
                os.fsync(fd)
                os.close(fd)

            entries = {}
            for fname, data in files.items():
                put(os.path.join(tmp, fname), data)
                entries[fname] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": memoryview(data).nbytes}
            put(os.path.join(tmp, "manifest.json"), json.dumps({**manifest, "files": entries}).encode())
            os.rename(tmp, final)
            put(os.path.join(self.root, "latest.tmp"), name.encode())
            os.replace(os.path.join(self.root, "latest.tmp"), os.path.join(self.root, "latest"))
            fd = os.open(self.root, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
            self._written.append(final)
            if len(self._written) > self.keep_last:
                old = self._written.pop(0)
                for n in os.listdir(old):
                    os.unlink(os.path.join(old, n))
                os.rmdir(old)
            return {"ok": True, "path": final, "bytes": 0, "seconds": 0.0, "removed": [], "step": step}

    return MinimalProtocolCheckpoint


def _nothing_written_checkpoint():
    from distnn.train.callbacks.checkpoint import ModelCheckpoint

    class NothingWrittenCheckpoint(ModelCheckpoint):
        """distnn's asynchronous checkpoint callback whose writer writes nothing: what the gather of
        every rank's random state, the snapshot into bytes, the hand-off and the agreement cost alone."""

        def _write(self, job, elsewhere=False):
            return {"ok": True, "path": self.root, "bytes": 0, "seconds": 0.0, "removed": [], "step": job[0]}

    return NothingWrittenCheckpoint


def _writer_checkpoint(in_process: bool):
    from distnn.train.callbacks.checkpoint import ModelCheckpoint

    class WriterCheckpoint(ModelCheckpoint):
        """distnn's asynchronous checkpoint callback writing from its writer process (``in_process``) or from
        its background thread, whichever it would choose: a write from the thread shares the training
        process's interpreter lock, one from the process costs more CPU (see ``writer_process.worth_it``)."""

        def on_train_begin(self, trainer):
            super().on_train_begin(trainer)
            self._write_elsewhere = in_process

    return WriterCheckpoint


#: part 2's floors that are distnn's async checkpoint callback with another writer
WRITER_FLOORS = {"floor: async protocol": _minimal_protocol_checkpoint,
                 "floor: nothing written": _nothing_written_checkpoint,
                 "floor: writer thread": lambda: _writer_checkpoint(False),
                 "floor: writer process": lambda: _writer_checkpoint(True)}

