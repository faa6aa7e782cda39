"""User data files: ``.npz`` archives and CSV tables, strictly validated.

Both give float32 features and int64 labels 0..C-1. Problems are one-line
:class:`DataError` messages naming the file and the place:

- CSV: ragged rows (``line 7: expected 65 columns, got 64``), non-numeric or
  empty cells (line and column), a first row that mixes numbers and text (a
  header has no numeric cell), non-finite features or features beyond float32
  (first bad line);
- npz: not an archive, arrays of Python objects, missing keys (lists the keys
  present), non-numeric arrays, non-finite or out-of-range features (first bad
  row), x/y length mismatch;
- both: labels that are not integers 0..C-1 (names the offending labels and
  where the first one is).

:func:`token_ids` turns features into the int64 token ids of a model that
starts with an embedding (exact conversion, ids checked against the
vocabulary).
"""
from __future__ import annotations

import csv
import os
import zipfile
import zlib

import numpy as np

from .errors import DataError


def check_file(path, source: str) -> str:
    """``path`` as a string if it names a file, else a DataError saying what it is instead.

    ``source`` names it in the message (``data file 'x.csv'``): not found, a directory, or not
    a regular file. Opening it may still fail: see :func:`read_error`.
    """
    path = str(path)
    if not os.path.exists(path):
        raise DataError(f"{source} not found")
    if os.path.isdir(path):
        raise DataError(f"{source} is a directory, not a file")
    if not os.path.isfile(path):
        raise DataError(f"{source} is not a regular file")
    return path


def read_error(source: str, exc: OSError) -> DataError:
    """The one-line error of a file that exists but cannot be read (permissions, I/O)."""
    return DataError(f"{source} cannot be read: {exc.strerror or exc}")


def check_labels(labels, source: str, locate, num_classes: int | None = None) -> tuple[np.ndarray, int]:
    """Validate raw numeric labels; return (int64 labels, num_classes).

    Labels must be integers in 0..C-1, where C is ``num_classes`` when given,
    otherwise the number of distinct labels (so 1-based labels are rejected with
    a hint rather than silently growing an empty class 0). ``locate(i)`` turns a
    sample index into words (``"line 9"``, ``"row 8"``) for the message.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DataError(f"{source}: labels must be a 1-D array, got shape {labels.shape}")
    if labels.dtype.kind not in "iufb":
        raise DataError(f"{source}: labels must be integers, got dtype {labels.dtype}")
    as_float = labels.astype(np.float64)
    integral = np.isfinite(as_float) & (as_float == np.round(as_float))
    c = num_classes if num_classes is not None else len(np.unique(as_float[integral]))
    ok = integral & (as_float >= 0) & (as_float < c)
    if not ok.all():
        bad_values = sorted(set(as_float[~ok].tolist()), key=lambda v: (v != v, v))
        shown = ", ".join(_fmt_label(v) for v in bad_values[:10]) + (" ..." if len(bad_values) > 10 else "")
        first = int(np.flatnonzero(~ok)[0])
        hint = ""
        if num_classes is None and integral.all() and as_float.min() == 1 and as_float.max() == c:
            hint = " (labels look 1-based; subtract 1)"
        want = f"integers 0..{c - 1} ({c} classes)" if c > 0 else "whole numbers (class indices 0, 1, ...)"
        raise DataError(f"{source}: labels must be {want}; offending labels {shown} (first at {locate(first)}){hint}")
    return labels.astype(np.int64), int(c)


def _fmt_label(v: float) -> str:
    return str(int(v)) if np.isfinite(v) and v == int(v) else repr(v) if np.isfinite(v) else str(v)


def check_sample_array(x, where: str) -> None:
    """A feature array read from a file holds numbers, one sample per entry of its first axis."""
    if x.dtype.kind not in "iufb":
        raise DataError(f"{where} must be numeric, got dtype {x.dtype}")
    if x.ndim == 0:
        raise DataError(f"{where} is a single number, not an array of samples")


def check_feature_range(x, dtype, source: str, locate) -> None:
    """Raise unless every value of ``x`` is finite and fits ``dtype`` (float32 or float64).

    Checked before the cast, so that 1e300 is reported as out of float32 range
    rather than as the ``inf`` the cast would make of it. ``locate(i, j)`` turns
    a sample index and a flat feature index into words (``"line 4 column 2"``).
    """
    x = np.asarray(x)
    if x.dtype.kind != "f" or not len(x):
        return  # integers all fit float32's range (float32 max ~3.4e38 > 2**64)
    flat = x.reshape(len(x), -1)
    bad = ~np.isfinite(flat)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise DataError(f"{source}: non-finite feature value {flat[i, j]} at {locate(i, j)}")
    limit = float(np.finfo(dtype).max)
    if np.dtype(dtype).itemsize < x.dtype.itemsize:
        over = np.abs(flat) > limit
        if over.any():
            i, j = map(int, np.argwhere(over)[0])
            raise DataError(f"{source}: value {float(flat[i, j]):g} at {locate(i, j)} is out of "
                            f"{np.dtype(dtype).name} range (largest magnitude {limit:.4g})")


def token_ids(x, vocab_size: int, source: str, locate) -> np.ndarray:
    """int64 token ids from integer (or integer-valued float) ``x``, each in ``0..vocab_size-1``.

    Floats are converted exactly: a value with a fraction (or NaN/inf) is an
    error, as is an id outside the vocabulary. ``locate(i, j)`` turns a sample
    index and a flat position into words for the one-line message.
    """
    x = np.asarray(x)
    if x.dtype.kind == "b":
        x = x.astype(np.int64)
    if x.dtype.kind not in "iuf":
        raise DataError(f"{source}: token ids must be integers, got dtype {x.dtype}")
    flat = x.reshape(len(x), -1)
    if x.dtype.kind == "f":
        # np.round of inf is inf: the isfinite test catches NaN and inf.
        bad = ~np.isfinite(flat) | (flat != np.round(flat))
        if bad.any():
            i, j = map(int, np.argwhere(bad)[0])
            raise DataError(f"{source}: token ids must be whole numbers; {float(flat[i, j])!r} at {locate(i, j)} "
                            "is not")
    # compared in x's own dtype (before the cast), so 1e30 is out of range, not wrapped around
    outside = (flat < 0) | (flat >= vocab_size)
    if outside.any():
        i, j = map(int, np.argwhere(outside)[0])
        v = flat[i, j].item()
        shown = f"{v:g}" if abs(v) >= 1e15 else str(int(v))  # 1e+30, not its 31 digits
        raise DataError(f"{source}: token id {shown} at {locate(i, j)} is outside the "
                        f"vocabulary 0..{vocab_size - 1} (vocab_size {vocab_size})")
    return x.astype(np.int64)


# ---------------------------------------------------------------- npz

class NpzArrays:
    """The arrays of an ``.npz`` archive, each read (and checked) on first access.

    ``keys`` lists every array; ``arrays[name]`` loads one. Unused arrays are
    never read, so a stray object array elsewhere in the archive does no harm.
    """

    def __init__(self, path, source: str):
        self.path, self.source = str(path), source
        with np.load(self.path, allow_pickle=False) as archive:
            self.keys = list(archive.files)

    def __contains__(self, key) -> bool:
        return key in self.keys

    def __iter__(self):
        return iter(self.keys)

    def __getitem__(self, key) -> np.ndarray:
        try:
            with np.load(self.path, allow_pickle=False) as archive:
                return archive[key]
        except ValueError as e:
            if "pickle" in str(e) or "Object arrays" in str(e):
                raise DataError(f"{self.source} array {key!r} holds Python objects (dtype object); only numeric "
                                f"arrays can be read (save it with a numeric dtype)") from None
            raise DataError(f"{self.source} array {key!r} cannot be read: {e}") from None
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            raise DataError(f"{self.source} array {key!r} cannot be read (damaged archive?): {e}") from None


def read_npz(path, source: str | None = None) -> NpzArrays:
    """Open an ``.npz`` archive for reading its arrays one by one; one-line errors naming the file.

    A file that is not a zip archive (a single ``.npy`` array, a text file, a
    truncated download) is reported as such, not as numpy's "pickled data".
    """
    source = source or f"data file {str(path)!r}"
    check_file(path, source)
    try:
        with open(path, "rb") as f:
            head = f.read(6)
        is_zip = zipfile.is_zipfile(path)
    except OSError as e:
        raise read_error(source, e) from None
    if head == b"\x93NUMPY":
        raise DataError(f"{source} is not a readable .npz archive: it holds a single .npy array (save with "
                        f"np.savez(path, x=...) instead)")
    if not is_zip:
        raise DataError(f"{source} is not a readable .npz archive (not a zip file)")
    try:
        return NpzArrays(path, source)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise DataError(f"{source} is not a readable .npz archive: {e}") from None


def load_npz(path, x_key: str | None = None, y_key: str | None = None, num_classes: int | None = None) -> dict:
    """Arrays from an ``.npz`` archive, as ``{split: (x float32, y int64)}``.

    With keys ``x_train``/``y_train`` (and optionally ``x_val``/``y_val``,
    ``x_test``/``y_test``) the archive's own splits are returned; otherwise one
    ``"all"`` entry from ``x_key``/``y_key`` (default: ``x`` or ``X``, and
    ``y`` or ``Y``). ``num_classes`` defaults to the number of distinct labels in all
    splits; every split must have samples of one shape.
    """
    source = f"data file {str(path)!r}"
    arrays = read_npz(path, source)

    def pick(explicit, candidates, role):
        if explicit is not None:
            if explicit not in arrays:
                raise DataError(f"{source} has no array {explicit!r} for {role} (keys: {sorted(arrays)})")
            return explicit
        for k in candidates:
            if k in arrays:
                return k
        raise DataError(f"{source} has no {' or '.join(map(repr, candidates))} array for {role} "
                        f"(keys: {sorted(arrays)}); set x_key/y_key")

    if x_key is None and y_key is None and "x_train" in arrays:
        names = {s: (f"x_{s}", f"y_{s}") for s in ("train", "val", "test") if f"x_{s}" in arrays}
    elif x_key is None and y_key is None and any(f"x_{s}" in arrays for s in ("val", "test")):
        # x/y beside x_test (say): silently carving a test split out of x would ignore the file's own
        raise DataError(f"{source} has {', '.join(k for k in ('x_val', 'x_test') if k in arrays)} but no "
                        f"'x_train' (keys: {sorted(arrays)}); name the training arrays x_train/y_train, or "
                        "set x_key/y_key to use one pair only")
    else:
        names = {"all": (pick(x_key, ("x", "X"), "features"), pick(y_key, ("y", "Y"), "labels"))}
    out = {}
    for split, (xk, yk) in names.items():
        if yk not in arrays:
            raise DataError(f"{source} has {xk!r} but no {yk!r} (keys: {sorted(arrays)})")
        x, y = arrays[xk], arrays[yk]
        where = f"{source} array {xk!r}"
        check_sample_array(x, where)
        if x.ndim == 1:
            x = x[:, None]
        if len(x) != len(y):
            raise DataError(f"{source}: {xk!r} has {len(x)} rows but {yk!r} has {len(y)}")
        if len(x) == 0 and split in ("train", "all"):  # (an empty x_val / x_test means no such split)
            raise DataError(f"{where} has 0 samples")
        check_feature_range(x, np.float32, where, lambda r, j: f"row {r}")
        x = x.astype(np.float32)
        out[split] = (x, y)
    first = next(iter(out))
    for split, (x, _) in out.items():  # one model reads them all: refuse now, not after training
        if len(x) and x.shape[1:] != out[first][0].shape[1:]:  # (an empty x_val / x_test is no split)
            raise DataError(f"{source}: {names[split][0]!r} has samples of shape {x.shape[1:]} but "
                            f"{names[first][0]!r} has {out[first][0].shape[1:]}; every split needs the same shape")
    if num_classes is None and len(out) > 1:
        # the distinct labels of all splits: a class the training split happens to lack is still a class
        ys = [np.asarray(y) for _, y in out.values()]
        if all(y.ndim == 1 and y.dtype.kind in "iufb" for y in ys):
            labels = np.concatenate([y.astype(np.float64) for y in ys])
            num_classes = len(np.unique(labels[np.isfinite(labels) & (labels == np.round(labels))]))
    _, c = check_labels(out[first][1], f"{source} array {names[first][1]!r}", lambda r: f"row {r}", num_classes)
    return {s: (x, check_labels(y, f"{source} array {names[s][1]!r}", lambda r: f"row {r}", c)[0])
            for s, (x, y) in out.items()}


# ---------------------------------------------------------------- CSV

def is_number(cell: str) -> bool:
    """Whether a CSV cell parses as a number (header detection)."""
    try:
        float(cell)
        return True
    except ValueError:
        return False


def split_header(rows, source: str, header="auto"):
    """``(column names or None, data rows)`` from CSV ``rows`` of ``(line number, cells)``.

    ``header``: ``True`` (the first row is a header), ``False`` (none) or
    ``"auto"``: the first row is a header only if NONE of its cells parses as a
    number. A first row with some numeric and some other cells is neither (a
    headerless file with one bad cell must not lose its first sample), so it
    is an error naming the line, column and value.
    """
    if header not in (True, False, "auto"):
        raise DataError(f"CSV header option must be true, false or 'auto', got {header!r}")
    if not rows or header is False:
        return None, rows
    line, first = rows[0]
    numeric = [is_number(c) for c in first]
    if header is True or not any(numeric):
        return [c.strip() for c in first], rows[1:]
    if all(numeric):
        return None, rows
    j = numeric.index(False)
    cell = first[j].strip()
    if not any(c.strip() and not n for c, n in zip(first, numeric)):  # numbers and empty cells: a data row
        trailing = " (a trailing comma?)" if j == len(first) - 1 else ""
        raise DataError(f"{source} line {line} column {j + 1}: empty cell{trailing}")
    what = "empty cell" if not cell else f"cannot parse {cell!r} as a number"
    raise DataError(f"{source} line {line} column {j + 1}: {what} (the first row mixes numbers and text: a header "
                    f"row has no numeric cell, a data row only numeric ones)")


def label_column_index(label_column, names, ncol: int, source: str) -> int:
    """The index of the label column: ``label_column`` is a header name or a (possibly negative) index."""
    if isinstance(label_column, str):
        if names is None or label_column not in names:
            raise DataError(f"{source} has no column named {label_column!r} "
                            f"(header: {names if names is not None else 'none'})")
        return names.index(label_column)
    if not -ncol <= int(label_column) < ncol:
        raise DataError(f"{source}: label_column {label_column} is out of range for {ncol} columns")
    return int(label_column) % ncol


def load_csv(path, label_column=-1, header="auto", delimiter: str = ",", num_classes: int | None = None):
    """(x float32 (N, D), y int64 (N,), feature names) from a CSV file.

    label_column: index (negative counts from the end) or a header name.
    header: ``True``, ``False`` or ``"auto"`` (the first row is a header when
    none of its cells is a number; a first row mixing numbers and text is an
    error, see :func:`split_header`). Blank lines are skipped.
    """
    source = f"data file {str(path)!r}"
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise DataError(f"data.delimiter must be one character, got {delimiter!r}")
    check_file(path, source)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [(reader.line_num, row) for reader in [csv.reader(f, delimiter=delimiter)] for row in reader]
    except (csv.Error, UnicodeDecodeError) as e:
        raise DataError(f"{source} is not readable CSV: {e}") from None
    except OSError as e:
        raise read_error(source, e) from None
    rows = [(ln, r) for ln, r in rows if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{source} is empty")
    names, rows = split_header(rows, source, header)
    if not rows:
        raise DataError(f"{source} has a header but no data rows")
    ncol = len(names) if names is not None else len(rows[0][1])
    if ncol < 2:
        cell = (names or rows[0][1] or [""])[0]
        other = next((d for d in (";", "\t", "|", ",", " ") if d != delimiter and d in cell.strip()), None)
        hint = f" (its cells look separated by {other!r}: set data.delimiter = {other!r})" if other else ""
        raise DataError(f"{source} line {rows[0][0]}: need at least 2 columns (features and a label), got "
                        f"{ncol}{hint}")
    label_idx = label_column_index(label_column, names, ncol, source)

    def colname(j):
        return f"column {j + 1}" + (f" ({names[j]!r})" if names is not None and names[j] else "")

    for line, row in rows:
        if len(row) != ncol:
            raise DataError(f"{source} line {line}: expected {ncol} columns, got {len(row)}")
    try:  # fast path: numpy parses the whole table at C speed
        values = np.asarray([r for _, r in rows], dtype=str).astype(np.float64)
    except ValueError:  # find the first bad cell to name it
        for line, row in rows:
            for j, cell in enumerate(row):
                try:
                    float(cell)
                except ValueError:
                    what = "empty cell" if not cell.strip() else f"cannot parse {cell.strip()!r} as a number"
                    if j == label_idx and cell.strip():  # class names: the common first CSV of a new user
                        what += (" (the label column: labels are class indices 0, 1, ..., not names; number "
                                 "the classes in the file, or set data.label_column if this is a feature)")
                    raise DataError(f"{source} line {line} {colname(j)}: {what}") from None
        raise DataError(f"{source}: cannot parse the table as numbers") from None
    lines = [ln for ln, _ in rows]
    feat_idx = [j for j in range(ncol) if j != label_idx]
    x = values[:, feat_idx]
    bad = ~np.isfinite(x)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise DataError(f"{source} line {lines[i]} {colname(feat_idx[j])}: non-finite feature value {x[i, j]}")
    check_feature_range(x, np.float32, source, lambda i, j: f"line {lines[i]} {colname(feat_idx[j])}")
    y, _ = check_labels(values[:, label_idx], source, lambda i: f"line {lines[i]}", num_classes)
    features = [names[j] for j in feat_idx] if names is not None else [f"x{j}" for j in range(len(feat_idx))]
    return x.astype(np.float32), y, features
