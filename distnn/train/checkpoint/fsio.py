"""File-system steps of an atomic checkpoint write: create, write, make durable, link, recycle, remove."""
from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import sys


#: errno values of an fsync that says "not supported here", not "failed": some file systems (and
#: platforms) cannot fsync a directory (EINVAL, EROFS: "does not support synchronization"; EBADF: a
#: directory opened read-only on some systems; ENOTSUP/EOPNOTSUPP/ENOSYS: network and FUSE file systems).
#: Anything else (EIO, ENOSPC, EDQUOT...) is a write-back that did not make it.
FSYNC_UNSUPPORTED = frozenset({errno.EINVAL, errno.EROFS, errno.EBADF, errno.ENOSYS,
                               getattr(errno, "ENOTSUP", errno.EINVAL), getattr(errno, "EOPNOTSUPP", errno.EINVAL)})


def fsync_dir(path: str, strict: bool = False) -> None:
    """fsync the directory ``path``: the entries made in it (creations, renames) survive a power loss.

    Where directories cannot be opened or fsynced at all there is nothing to do. ``strict`` raises the
    OSError of an fsync that failed (not one that is not supported, :data:`FSYNC_UNSUPPORTED`): a caller
    about to delete what these entries replace must know; else any error is ignored.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories
        return
    try:
        fsync_fd(fd, strict)
    finally:
        os.close(fd)


def fsync_path(path: str) -> None:
    """fsync the file ``path``, written and closed already (by a writer that takes a path: ``savefig``):
    its data reach the disk before a rename puts it in place. OSError when that fails (a write-back
    error: the data did not make it). (POSIX: an fsync through any descriptor of a file flushes it.)"""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_syncfs():
    """``syncfs(fd)`` from the C library where it reports write-back errors (Linux >= 5.8), else None.

    Opt-in (``DISTNN_CKPT_SYNCFS=1``): syncfs also flushes other processes' dirty data on the
    same file system, which on a shared node or a network file system can take far longer
    than fsyncing our own files. The default is one fsync per file.
    """
    if not sys.platform.startswith("linux") or os.environ.get("DISTNN_CKPT_SYNCFS", "0") != "1":
        return None
    try:
        release = tuple(int(x) for x in re.match(r"(\d+)\.(\d+)", os.uname().release).groups())
        if release < (5, 8):  # older kernels' syncfs returned 0 even when write-back failed
            return None
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (AttributeError, OSError, ValueError, TypeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int

    def syncfs(fd: int) -> None:
        if fn(fd) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
    return syncfs


#: One ``syncfs`` makes every file of a checkpoint and their directory entries durable with one
#: journal commit; an fsync per file (and of the directory) costs a commit each: about 3 times the
#: time and CPU for a checkpoint's 5-7 files (benchmarks/bench_checkpoint.py). On a 2-core machine
#: the I/O of each commit slows training even when a background thread issues it.
SYNCFS = _load_syncfs()


def _load_start_writeback():
    """``sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)`` from the C library on Linux, else None.

    It starts the write-back of a file's dirty pages and returns without
    waiting. Started on every file of a checkpoint before the first fsync, the
    write-back (and the block allocation of delayed-allocation file systems)
    of all of them lands in one journal commit: the fsyncs that follow mostly
    find their data on its way. A hint only: the fsyncs still report errors.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint], ctypes.c_int
    return lambda fd: fn(fd, 0, 0, 2)  # 2: SYNC_FILE_RANGE_WRITE


START_WRITEBACK = _load_start_writeback()


def fsync_fd(fd, strict: bool = False) -> None:
    """fsync ``fd`` (None: nothing); ``strict`` as for :func:`fsync_dir`."""
    if fd is not None:
        try:
            os.fsync(fd)
        except OSError as e:
            if strict and e.errno not in FSYNC_UNSUPPORTED:
                raise


def create(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o666)


def write_all(fd: int, data) -> None:
    view = memoryview(data)  # unbuffered: no copy of the data
    while view:
        view = view[os.write(fd, view):]


def write_file(path: str, data, fsync: bool) -> None:
    """Write ``data`` (bytes-like) to ``path``, then fsync it."""
    fd = create(path)
    try:
        write_all(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def link(source: str, target: str, nbytes: int) -> bool:
    """Hard-link ``source`` as ``target`` if it is there with ``nbytes`` bytes; False when it cannot be."""
    try:
        if os.stat(source).st_size != nbytes:
            return False
        os.link(source, target)
    except (OSError, NotImplementedError):  # gone, another file system, or links not supported
        return False
    return True


def remove_tree(path: str) -> None:
    """Remove a checkpoint directory (flat: files only) quietly; ``shutil.rmtree`` for anything else.

    A symlink is unlinked, never followed: the directory it names is not this one's to empty (a
    ``step-N`` that is a link, moved aside to be written over, had its target's files deleted through it).
    """
    if os.path.islink(path):
        try:
            os.unlink(path)
        except OSError:
            pass
        return
    try:
        for n in os.listdir(path):
            os.unlink(os.path.join(path, n))
        os.rmdir(path)
    except OSError:
        shutil.rmtree(path, ignore_errors=True)


def recycle_dir(spare: str, tmp: str, links: dict | None = None) -> tuple[dict, set] | None:
    """Rename the spare directory ``spare`` to ``tmp``; ``({name: size}, kept)``: the sizes of its files
    that may be overwritten in place, and the names of those kept as they are (see ``links``). None when
    it cannot be used (then ``tmp`` does not exist).

    A file with more than one link (``model.json``, ``config.toml``: shared with other
    checkpoints) is unlinked, never written through; unless ``links`` (``{name: (path, nbytes)}``:
    the files the new checkpoint hard-links) says that it is a link to that very file ``path``, of
    ``nbytes`` bytes: then it stays, in ``kept``, as the link the new checkpoint would make (an unlink
    and a link the fewer a save).
    """
    try:
        os.rename(spare, tmp)
    except OSError:
        return None
    sizes, kept = {}, set()
    try:
        with os.scandir(tmp) as it:
            for e in it:
                st = e.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                    sizes[e.name] = st.st_size
                elif stat.S_ISREG(st.st_mode) and links and e.name in links and _same_file(st, *links[e.name]):
                    kept.add(e.name)
                else:
                    os.unlink(e.path)
    except OSError:
        remove_tree(tmp)
        return None
    return sizes, kept


def _same_file(st: os.stat_result, path: str, nbytes: int) -> bool:
    """Whether ``st`` is the file ``path`` itself (the same inode: a hard link to it), ``nbytes`` long."""
    try:
        other = os.stat(path)
    except OSError:
        return False
    return (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino) and st.st_size == nbytes


def open_for_write(path: str, recycled: dict | None) -> int:
    """A descriptor to write ``path`` from its start: the recycled file itself (its blocks are
    rewritten, not freed and allocated again) or a new file."""
    if recycled is not None and os.path.basename(path) in recycled:
        return os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    return create(path)


def tmp_suffix() -> str:
    return os.urandom(4).hex()
