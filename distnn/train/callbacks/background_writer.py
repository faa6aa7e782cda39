"""The thread that writes asynchronous checkpoints (``checkpoint.async_save``), one per process."""
from __future__ import annotations

import atexit
import queue
import threading


class Job:
    """A write handed to the background writer; :meth:`result` waits for it."""

    __slots__ = ("fn", "args", "_done")

    def __init__(self, fn, args):
        self.fn, self.args, self._done = fn, args, queue.SimpleQueue()

    def run(self):
        try:
            out = self.fn(*self.args)
        except BaseException as e:  # _write never raises; anything else is a bug to report, not to hang on
            out = {"ok": False, "error": f"checkpoint writer failed: {type(e).__name__}: {e}"}
        self._done.put(out)

    def result(self):
        out = self._done.get()  # blocks in C with the GIL released
        self._done.put(out)  # a second result() sees it too
        return out

    def done(self) -> bool:
        """Whether the write has ended (its result is ready): never blocks."""
        return not self._done.empty()


class BackgroundWriter:
    """One long-lived thread per process that runs checkpoint writes in order.

    Starting a thread per save made the training thread wait until the new
    thread had been scheduled (``Thread.start`` does), which on a busy 2-core
    machine can take a scheduler slice; handing a job to a waiting thread is a
    queue put. The thread is a daemon (an idle one must not keep the process
    alive), so a write in flight at interpreter exit is finished by an
    ``atexit`` hook instead.
    """

    def __init__(self):
        self._jobs = queue.SimpleQueue()
        self._thread = None
        self._last = None
        atexit.register(self.drain)

    def submit(self, fn, *args) -> Job:
        job = Job(fn, args)
        if self._thread is None or not self._thread.is_alive():  # first use, or after a fork
            self._jobs = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._loop, args=(self._jobs,), name="distnn-checkpoint",
                                            daemon=True)
            self._thread.start()
        self._last = job
        self._jobs.put(job)
        return job

    @staticmethod
    def _loop(jobs):
        while True:
            job = jobs.get()
            if job is None:
                return
            job.run()

    def drain(self):
        """Wait for the last write handed over (at exit: it must not be cut short)."""
        if self._last is not None and self._thread is not None and self._thread.is_alive():
            self._last.result()


_WRITER: BackgroundWriter | None = None


def writer() -> BackgroundWriter:
    global _WRITER
    if _WRITER is None:
        _WRITER = BackgroundWriter()
    return _WRITER
