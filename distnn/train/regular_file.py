"""Opening a file that must be a regular file, for the readers of run and checkpoint directories.

A named pipe (FIFO) in place of a checkpoint's or a run's file would block an ordinary ``open`` until
some process wrote to it: ``resume``, ``evaluate`` and ``predict`` hung without a word. A device
(``/dev/zero``, through a symlink) would be read without end. Such a file is refused here with an
OSError naming it, which each reader reports like any unreadable file.
"""
from __future__ import annotations

import errno
import os
import stat

_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def _open_regular_fd(path: str) -> int:
    """A descriptor of ``path`` opened for reading if it is a regular file (symlinks followed); else an
    OSError naming ``path`` and what it is."""
    # O_NONBLOCK: opening a FIFO that no process writes returns at once instead of waiting for a
    # writer. fstat of the descriptor then says what was opened: no window between a check and the open
    # for the file to be swapped. (On a regular file O_NONBLOCK changes nothing.)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((what for test, what in _KINDS if test(mode)), "of an unknown kind")
            raise OSError(errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL, f"not a regular file: {kind}",
                          path)
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_regular(path: str):
    """``path`` opened for reading (binary, unbuffered) if it is a regular file (symlinks followed);
    else an OSError naming ``path`` and what it is."""
    fd = _open_regular_fd(path)
    try:
        return open(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str, limit: int = -1) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``; all when negative): see :func:`open_regular`."""
    if limit < 0:
        with open_regular(path) as f:
            return f.readall()
    # (a bounded read, as of a pointer file at every checkpoint save: from the descriptor, without the
    # file object, whose creation costs a system call (another fstat) and more Python than the read)
    fd = _open_regular_fd(path)
    try:
        chunks, left = [], limit
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
