"""Per-epoch metrics to ``metrics.jsonl`` and ``metrics.csv`` in the run directory (rank 0 only)."""
from __future__ import annotations

import csv
import io
import json
import math
import os

import numpy as np

from .base import Callback

#: the CSV columns, in order (the JSON lines hold these plus any extra metrics)
CSV_COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "samples_per_sec",
               "wall_time"]


def _clean(v):
    """JSON has no NaN/inf: write them as null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class MetricsLogger(Callback):
    """Writes one row per epoch to ``<dir>/metrics.jsonl`` and ``<dir>/metrics.csv``.

    Both files are rewritten from ``trainer.history`` at every epoch end (they
    are small), through a temporary file and a rename: a reader never sees a
    half-written file, and a resumed run (whose history comes from its
    checkpoint) continues them without duplicated or stale rows. Rows already
    formatted are kept (formatting every row at every epoch made a long run's
    epochs slower and slower). When training ends on an exception (a
    preemption, an error), rows not written yet are written and no temporary
    file is left behind.

    The epochs' rewrites are not fsynced: the fsyncs would cost rank 0's
    training thread time at every epoch, for files that a resumed run rewrites
    from its checkpoint's history anyway. The files are made durable once
    (:meth:`sync`: each file fsynced, then the directory), when training ends:
    normally, early, or on an exception (best effort).
    """

    def __init__(self, directory):
        self.directory = str(directory)
        self._rows, self._json, self._csv = [], [], []  # the history rows formatted so far, and their lines
        self._unsynced = False  # written since the last sync()

    def on_epoch_end(self, trainer, logs):
        if trainer.is_main:
            self.write(trainer.history)

    def on_train_end(self, trainer, logs):
        """A run that ended no epoch here (resumed at its end into a new directory) still gets its files."""
        if trainer.is_main:
            if self._unwritten(trainer.history):
                self.write(trainer.history)
            self.sync()

    def on_exception(self, trainer, exception):
        """Flush: the epochs ended but not written (another callback's epoch end raised), tidy up, sync."""
        if not trainer.is_main:
            return
        if self._unwritten(trainer.history):
            try:
                self.write(trainer.history)
            except (OSError, ValueError, TypeError):  # (a full disk: the error being raised says more)
                pass
        for name in _NAMES:
            _remove_quietly(os.path.join(self.directory, name + ".tmp"))
        try:
            self.sync()
        except OSError:  # (as above: the exception being raised says more)
            pass

    def _unwritten(self, history) -> bool:
        return len(history) != len(self._rows) or any(a is not b for a, b in zip(history, self._rows))

    def write(self, history):
        """Rewrite both files from ``history`` (a list of per-epoch dicts), each whole; not durable yet
        (:meth:`sync`)."""
        kept = 0  # rows formatted before and unchanged since (the same dict objects)
        while kept < min(len(history), len(self._rows)) and history[kept] is self._rows[kept]:
            kept += 1
        del self._rows[kept:], self._json[kept:], self._csv[kept:]
        for row in history[kept:]:
            text = json.dumps({k: _clean(v) for k, v in row.items()}) + "\n"  # (may raise: nothing kept yet)
            line = _csv_line(["" if row.get(c) is None else _fmt(row[c]) for c in CSV_COLUMNS])
            self._rows.append(row)
            self._json.append(text)
            self._csv.append(line)
        self._unsynced = True  # (before: a write that fails half-way may have replaced the first file)
        jsonl, csv_path = (os.path.join(self.directory, name) for name in _NAMES)
        _atomic_write(jsonl, "".join(self._json))
        _atomic_write(csv_path, _CSV_HEADER + "".join(self._csv))

    def sync(self):
        """Make the files as last written durable: each fsynced, then the directory (one fsync for
        both). Training's end calls it; OSError naming the file when an fsync fails."""
        if self._unsynced:
            from ..run_dir import make_durable

            make_durable([os.path.join(self.directory, name) for name in _NAMES])
            self._unsynced = False


_NAMES = ("metrics.jsonl", "metrics.csv")


def _csv_line(values) -> str:
    """One CSV record, with csv's quoting and line end."""
    out = io.StringIO()
    csv.writer(out).writerow(values)
    return out.getvalue()


_CSV_HEADER = _csv_line(CSV_COLUMNS)


def _fmt(v):
    if isinstance(v, (float, np.floating)):  # (repr of a numpy float is "np.float64(...)" under numpy 2)
        return repr(float(v)) if math.isfinite(v) else ""
    return v


def _atomic_write(path: str, text: str) -> None:
    from ..run_dir import replace_file

    def write(tmp):
        with open(tmp, "w", newline="") as f:  # (the CSV lines carry csv's own line ends)
            f.write(text)
        if "DISTNN_FAULT_SIGNAL_AT" in os.environ:  # tests: a signal between the write and the rename
            from ..logging_utils import current_rank
            from ..preemption import fault_point

            fault_point("metrics-write", current_rank())

    # (a full disk, Ctrl-C: the previous file stays, and no half-written copy; not fsynced: sync())
    replace_file(path, write, durable=False)


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def read_metrics_csv(path) -> list[dict]:
    """The rows of a metrics.csv as dicts of floats (epoch as int); empty cells become None. A path that is
    no regular file (a named pipe, which would block the read) is an OSError naming it."""
    from ..regular_file import open_regular

    rows = []
    with io.TextIOWrapper(open_regular(str(path)), newline="") as f:
        for row in csv.DictReader(f):
            rows.append({k: (None if v == "" else (int(v) if k == "epoch" else float(v))) for k, v in row.items()})
    return rows
