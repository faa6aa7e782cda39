"""Checksumming a checkpoint's large files on two threads (SHA-256 and CRC-32 release the GIL)."""
from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor


#: files at least this large are checksummed on the hashing threads (smaller ones inline)
PARALLEL_HASH_BYTES = 1 << 18
_HASH_POOL: tuple | None = None  # (pid, executor): a forked child must not reuse its parent's (dead) threads


def hash_pool() -> ThreadPoolExecutor:
    global _HASH_POOL
    if _HASH_POOL is None or _HASH_POOL[0] != os.getpid():
        _HASH_POOL = (os.getpid(), ThreadPoolExecutor(max_workers=2, thread_name_prefix="distnn-ckpt-hash"))
    return _HASH_POOL[1]


class Digest:
    """``prepare()`` (e.g. the npz CRC-32s), then the SHA-256 of ``data``, on a hashing thread.

    ``ready`` is set once the bytes are final, so the file can be written while
    it is hashed. SHA-256 and CRC-32 are most of a save's CPU (about 0.7 and
    0.25 ms per MB here) and release the GIL, so the large files are checksummed
    side by side while the calling thread writes: on a machine with an idle
    core (the other ranks wait for rank 0 during a synchronous save) a save
    takes about the time of its largest file's checksum instead of the sum.
    """

    def __init__(self, data, prepare=None):
        self.ready = threading.Event()
        self.future = hash_pool().submit(self._run, data, prepare)

    def _run(self, data, prepare):
        try:
            if prepare is not None:
                prepare()
        finally:
            self.ready.set()
        return hashlib.sha256(data).hexdigest()
