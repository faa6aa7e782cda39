"""A separate process that writes checkpoints for a training process (``checkpoint.async_save``, Linux).

Why a process: a background *thread* shares the training thread's interpreter
lock. A write releases the lock around each of its ~60 system calls and
takes it back after each, and each time the training thread may be made to
wait for it. Measured on the digits job's state (415 KB a save) on 1 rank of a
2-core machine (a core to spare for the writer, as on a larger machine), the
training thread blocked 28 times a save with the write in a thread against 8
with it in a process, and checkpointing every epoch cost +14.8% / +9.3% of
training time (30 rounds, each paired with the other: the process was faster
in 28). Where every core trains (2 ranks on 2 cores) the write's
CPU time is what costs, wherever it runs, and the process's own overhead
shows: by the median of 30 rounds each paired with the other, the process
made training 1.5% and 0.8% slower than the thread (+18.1% / +14.8% and
+16.8% / +14.6% vs no checkpoints), so it is used only where a core is to
spare (:func:`worth_it`). The process also costs a one-time start (an
interpreter importing distnn: about 0.35 s of CPU) and a copy of the files'
bytes through a pipe.

The process is started once (``subprocess``: a new interpreter, never a fork
of an MPI process) and writes one checkpoint at a time. Each request is a
pickled header (the :func:`~.retention.write_and_retain` arguments,
the files' names and sizes) followed by the files' bytes, on its stdin; the
answer is a pickled result on its stdout. It imports no MPI.

It keeps the thread's guarantees: it dies with the training process
(``PR_SET_PDEATHSIG``: a write cut short leaves a ``.tmp-`` directory and
``latest`` unchanged, as a killed thread does, and no write lands after the
job died, under a resumed run's feet); it ignores the signals a scheduler or
a terminal sends the whole job (the training process handles them and waits
for the write in flight); and if it dies anyway, the write in flight is a
failed write naming it (the next write starts a new process), never a hang.
"""
from __future__ import annotations

import atexit
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading

from ..._threads import THREAD_VARIABLES, usable_cores
from . import faults
from .fsio import write_all
from .names import FAULT_ENV, step_name
from .retention import write_and_retain

#: signals sent to a whole job (scheduler preemption, Ctrl-C, a closed terminal) that the writer ignores:
#: the training process acts on them, and waits for the write in flight
IGNORED = tuple(getattr(signal, s) for s in ("SIGINT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGHUP") if hasattr(signal, s))
#: environment variables a write reads (the test hooks of :mod:`.faults`): sent with each request, as a test
#: may set them after the process started
PER_WRITE_ENV = (FAULT_ENV, "DISTNN_FAULT_MARKER_DIR")
_PR_SET_PDEATHSIG = 1
_LENGTH = struct.Struct("<Q")
# the child's command: the parent's distnn, whatever the child's sys.path would find
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from distnn.train.checkpoint.writer_process import main; main()"


def available() -> bool:
    """Whether writes can go to a writer process here (Linux: it must die with the training process)."""
    return sys.platform.startswith("linux") and bool(sys.executable) and hasattr(signal, "pthread_sigmask")


def worth_it(local_ranks: int) -> bool:
    """Whether a training process, one of ``local_ranks`` on this host, should write from a writer process:
    where one is :func:`available` and this process may run on more cores than there are training
    processes here (a core to spare for the writer). Where every core trains, the write's CPU time costs
    the same wherever it runs, and the process's own (the bytes through a pipe, a second interpreter,
    process switches) shows: see the module's docstring."""
    return available() and len(usable_cores()) > local_ranks


class WriterProcess:
    """The training process's side: :meth:`write` hands a checkpoint to the process and waits for it.

    The process dies with the *thread* that started it (``PR_SET_PDEATHSIG``): start it from a thread
    that lives as long as this process (the checkpoint callback's background writer does).
    """

    def __init__(self):
        self.pid_of_parent = os.getpid()
        env = {**os.environ, **dict.fromkeys(THREAD_VARIABLES, "1")}  # (its numpy needs no BLAS pool)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        # Started with the job's signals blocked in this thread: the child inherits the mask, so none can kill
        # it before it ignores them (then it unblocks them); this process's other threads still get them.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, IGNORED)
        try:
            self.proc = subprocess.Popen([sys.executable, "-c", _BOOT, root], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, env=env, close_fds=True)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def alive(self) -> bool:
        return self.proc.poll() is None and self.pid_of_parent == os.getpid()

    def write(self, root: str, step: int, files: dict, manifest: dict, **options) -> dict:
        """Write checkpoint ``step`` of ``files`` in the process (see :func:`_serve` for ``options``).

        Returns ``{"ok": True, "path", "removed", "spares"}`` or ``{"ok": False, "error"}``; a process that
        died (before or during the write) is a failed write.
        """
        sizes = [(name, memoryview(data).nbytes) for name, data in files.items()]
        header = pickle.dumps({"root": root, "step": step, "files": sizes, "manifest": manifest,
                               "env": {k: os.environ.get(k) for k in PER_WRITE_ENV}, **options})
        try:
            fd = self.proc.stdin.fileno()
            write_all(fd, _LENGTH.pack(len(header)) + header)
            for data in files.values():
                write_all(fd, memoryview(data).cast("B"))  # (the GIL is released while the pipe fills)
            head = self.proc.stdout.read(_LENGTH.size)
            reply = self.proc.stdout.read(_LENGTH.unpack(head)[0]) if len(head) == _LENGTH.size else b""
            return pickle.loads(reply)
        except (OSError, ValueError, EOFError, pickle.UnpicklingError, struct.error):
            pass
        self.proc.kill()  # (already dead, or no longer to be trusted: the next write starts another)
        status = self.proc.wait()
        how = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
        return {"ok": False, "error": f"the checkpoint writer process (pid {self.proc.pid}) died ({how}) while "
                                      f"writing {step_name(step)!r} in {root!r}"}

    def close(self, timeout: float = 10.0) -> None:
        """End the process once it has answered (it reads the end of its input); killed if it does not end."""
        try:
            self.proc.stdin.close()
            self.proc.stdout.close()
            self.proc.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


_LOCK = threading.Lock()
_WRITER: WriterProcess | None = None


@atexit.register
def _close_at_exit():
    """At exit (after the background writer's own exit hook waited for the last write: registered later, it
    runs first), end the process rather than leave it to be killed with this one."""
    if _WRITER is not None and _WRITER.alive():
        _WRITER.close()


def writer_process() -> WriterProcess:
    """This process's writer process, started on first use and again after it died (or after a fork)."""
    global _WRITER
    with _LOCK:
        if _WRITER is None or not _WRITER.alive():
            _WRITER = WriterProcess()
        return _WRITER


# ---------------------------------------------------------------- the process itself
def main() -> None:
    """The writer process: serve requests from stdin until it ends (the training process closed it or died)."""
    parent = os.getppid()
    for s in IGNORED:
        signal.signal(s, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, IGNORED)  # (blocked since the start: see WriterProcess)
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the training process died before prctl: nothing to write for
        return
    faults.training_pid = parent  # a "crash" fault kills the training process, as a node failure would
    inp = sys.stdin.buffer
    out = os.fdopen(os.dup(1), "wb")  # the answers' pipe, private: anything printed goes to stderr instead
    os.dup2(2, 1)
    buffers: dict = {}  # name: bytearray reused from one write to the next
    while True:
        head = inp.read(_LENGTH.size)
        if len(head) < _LENGTH.size:
            return
        request = pickle.loads(inp.read(_LENGTH.unpack(head)[0]))
        files = {}
        for name, size in request.pop("files"):
            buf = buffers.get(name)
            if buf is None or len(buf) < size:
                buf = buffers[name] = bytearray(size)
            view = memoryview(buf)[:size]
            got = 0
            while got < size:
                n = inp.readinto(view[got:])
                if not n:
                    return
                got += n
            files[name] = view
        reply = pickle.dumps(_serve(files, **request))
        out.write(_LENGTH.pack(len(reply)) + reply)
        out.flush()


def _serve(files, root, step, manifest, env, spares, **options) -> dict:
    """One request: as the thread writes (:func:`~.retention.write_and_retain`), with ``spares`` its retired
    directory list (the updated list goes back) and ``env`` the training process's :data:`PER_WRITE_ENV`."""
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        result = write_and_retain(root, step, files, manifest, spares=spares, **options)
    except Exception as e:  # a bug: reported as the thread reports it, and this process serves on
        result = {"ok": False, "error": f"checkpoint writer failed: {type(e).__name__}: {e}"}
    return {**result, "spares": spares}
