"""Where ``distnn predict`` writes its CSV: a new or replaced file (written whole and fsynced, then renamed into
place), a stream (``-``, a pipe), and never over the input or a file of a run directory."""
from __future__ import annotations

import os
import stat
import sys
import tempfile

from . import run_dir as rd


def _same_file_as_fd(path, fd) -> bool:
    try:
        a, b = os.stat(path), os.fstat(fd)
    except (OSError, ValueError):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _output_plan(output_path, input_path):
    """How predictions reach ``output_path``: ``("stream", file object)``, ``("direct", path)`` or
    ``("replace", target path)``. Raises ValueError for an output that must not be written."""
    output_path = str(output_path)
    if output_path == "-":
        return "stream", sys.stdout
    if not output_path:
        raise ValueError("--output is empty: name a file (or - for standard output)")
    if os.path.exists(output_path):
        if os.path.exists(str(input_path)) and os.path.samefile(output_path, str(input_path)):
            raise ValueError(f"--output {output_path!r} is the input file {str(input_path)!r}; refusing to "
                             f"overwrite the input (choose another output file)")
        if os.path.isdir(output_path):
            raise ValueError(f"cannot write {output_path!r}: it is a directory")
        # /dev/stdout, /dev/stderr, /proc/self/fd/N: the stream this process already writes there, so
        # that the output is not interleaved out of order with (or truncated by) other output to it.
        for stream in (sys.stdout, sys.stderr):
            try:
                fd = stream.fileno()
            except (AttributeError, OSError, ValueError):
                continue
            if _same_file_as_fd(output_path, fd):
                return "stream", stream
        if not stat.S_ISREG(os.stat(output_path).st_mode):
            # A FIFO, a device, a socket: renaming a temporary file over it would replace it (as root,
            # even /dev/null) with a regular file, so write to it in place.
            return "direct", output_path
        record = _run_record(output_path)
        if record:
            raise ValueError(f"--output {output_path!r} is {record}; refusing to overwrite it (choose another "
                             f"output file, e.g. predictions.csv)")
    # A regular file (or a new one): write a temporary file next to the real file and rename it over,
    # so readers never see a half-written table; through a symlink, the link's target is replaced.
    target = os.path.realpath(output_path)
    out_dir = os.path.dirname(target)
    if not os.path.isdir(out_dir):
        there = "is a file, not a directory" if os.path.exists(out_dir) else "does not exist"
        raise ValueError(f"cannot write {output_path!r}: {out_dir!r} {there}")
    return "replace", target


#: the files a run (or a checkpoint) writes next to its config.toml, model.json or manifest.json
_RUN_FILES = (rd.MODEL_WEIGHTS, rd.MODEL_META, rd.CONFIG, rd.SUMMARY, "metrics.csv", "metrics.jsonl", "curves.png",
              "SHA256SUMS")


def _run_record(path) -> str:
    """What ``path`` is when it is a file of a trained run or checkpoint (``runs/r/model.npz``), else ''.
    Predictions written over it would destroy the run (its weights: evaluate and predict fail after)."""
    from .checkpoint import BEST, LATEST, is_checkpoint_dir, read_pointer

    where, name = os.path.split(os.path.realpath(path))
    shown = os.path.dirname(str(path)) or "."
    if is_checkpoint_dir(where):
        return f"a file of the checkpoint {shown!r}"
    # (a checkpoint root's latest/best: which checkpoint a resume and evaluate read)
    if name in (LATEST, BEST) and read_pointer(where, name) is not None:
        return f"the {name} pointer of the checkpoints in {shown!r}"
    if name in _RUN_FILES and any(os.path.isfile(os.path.join(where, f)) for f in (rd.CONFIG, rd.MODEL_META)):
        return f"the {name} of the run in {shown!r}"
    return ""


def _write_output(how, where, output_path, text) -> None:
    tmp = None
    try:
        if how == "stream":
            where.write(text)
            where.flush()
        elif how == "direct":
            with open(where, "w") as f:
                f.write(text)
        else:  # "replace": a temporary file of its own (never another file's name) renamed over the target
            fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(where)}.", suffix=".tmp",
                                       dir=os.path.dirname(where) or ".")
            with os.fdopen(fd, "w") as f:
                f.write(text)
                f.flush()
                # durable before it is renamed in, and the rename after (rd.replace_file's reasons): a power
                # loss must not leave an empty file where the previous predictions were, or where a
                # pipeline takes the command's success to mean a whole table
                os.fsync(f.fileno())
            os.chmod(tmp, _new_file_mode(where))  # (mkstemp's file is private: 0600)
            os.replace(tmp, where)
            rd.sync_directory(os.path.dirname(where))
    except OSError as e:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        raise ValueError(f"cannot write {output_path!r}: {e.strerror or e}") from None


def _new_file_mode(path) -> int:
    """The permissions ``path`` gets when it is replaced: its own if it exists, else a new file's (umask)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
