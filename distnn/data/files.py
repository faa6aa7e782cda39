"""User data files: ``.npz`` archives and CSV tables, strictly validated.

Both give float32 features and int64 labels 0..C-1. Problems are one-line
:class:`DataError` messages naming the file and the place:

- CSV: ragged rows (``line 7: expected 65 columns, got 64``), non-numeric or
  empty cells (line and column), non-finite features (first bad line);
- npz: missing keys (lists the keys present), non-numeric arrays, non-finite
  features (first bad row), x/y length mismatch;
- both: labels that are not integers 0..C-1 (names the offending labels and
  where the first one is).
"""
from __future__ import annotations

import csv
import os
import zipfile

import numpy as np

from .errors import DataError


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
        raise DataError(f"{source}: labels must be integers 0..{c - 1} ({c} classes); offending labels "
                        f"{shown} (first at {locate(first)}){hint}")
    return labels.astype(np.int64), int(c)


def _fmt_label(v: float) -> str:
    return str(int(v)) if np.isfinite(v) and v == int(v) else repr(v) if np.isfinite(v) else str(v)


def _check_finite(x, source: str, locate) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        row = int(np.flatnonzero(bad.reshape(len(x), -1).any(axis=1))[0])
        value = x.reshape(len(x), -1)[row][bad.reshape(len(x), -1)[row]][0]
        raise DataError(f"{source}: non-finite feature value {value} at {locate(row)}")


# ---------------------------------------------------------------- npz

def load_npz(path, x_key: str | None = None, y_key: str | None = None, num_classes: int | None = None) -> dict:
    """Arrays from an ``.npz`` archive, as ``{split: (x float32, y int64)}``.

    With keys ``x_train``/``y_train`` (and optionally ``x_val``/``y_val``,
    ``x_test``/``y_test``) the archive's own splits are returned; otherwise one
    ``"all"`` entry from ``x_key``/``y_key`` (default: ``x`` or ``X``, and
    ``y`` or ``Y``). ``num_classes`` defaults to the distinct training labels.
    """
    source = f"data file {str(path)!r}"
    if not os.path.isfile(path):
        raise DataError(f"{source} not found")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{source} is not a readable .npz archive: {e}") from None

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
    else:
        names = {"all": (pick(x_key, ("x", "X"), "features"), pick(y_key, ("y", "Y"), "labels"))}
    out = {}
    for split, (xk, yk) in names.items():
        if yk not in arrays:
            raise DataError(f"{source} has {xk!r} but no {yk!r} (keys: {sorted(arrays)})")
        x, y = arrays[xk], arrays[yk]
        where = f"{source} array {xk!r}"
        if x.dtype.kind not in "iufb":
            raise DataError(f"{where} must be numeric, got dtype {x.dtype}")
        if x.ndim == 1:
            x = x[:, None]
        if len(x) != len(y):
            raise DataError(f"{source}: {xk!r} has {len(x)} rows but {yk!r} has {len(y)}")
        x = x.astype(np.float32)
        _check_finite(x, where, lambda r: f"row {r}")
        out[split] = (x, y)
    first = next(iter(out))
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


def load_csv(path, label_column=-1, header="auto", delimiter: str = ",", num_classes: int | None = None):
    """(x float32 (N, D), y int64 (N,), feature names) from a CSV file.

    label_column: index (negative counts from the end) or a header name.
    header: ``True``, ``False`` or ``"auto"`` (a first row with any
    non-numeric cell is a header). Blank lines are skipped.
    """
    source = f"data file {str(path)!r}"
    if not os.path.isfile(path):
        raise DataError(f"{source} not found")
    with open(path, newline="", encoding="utf-8-sig") as f:
        try:
            rows = [(reader.line_num, row) for reader in [csv.reader(f, delimiter=delimiter)] for row in reader]
        except (csv.Error, UnicodeDecodeError) as e:
            raise DataError(f"{source} is not readable CSV: {e}") from None
    rows = [(ln, r) for ln, r in rows if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{source} is empty")
    names = None
    if header is True or (header == "auto" and not all(is_number(c) for c in rows[0][1])):
        names = [c.strip() for c in rows[0][1]]
        rows = rows[1:]
    elif header not in (False, "auto"):
        raise DataError(f"CSV header option must be true, false or 'auto', got {header!r}")
    if not rows:
        raise DataError(f"{source} has a header but no data rows")
    ncol = len(names) if names is not None else len(rows[0][1])
    if ncol < 2:
        raise DataError(f"{source} line {rows[0][0]}: need at least 2 columns (features and a label), got {ncol}")
    if isinstance(label_column, str):
        if names is None or label_column not in names:
            raise DataError(f"{source} has no column named {label_column!r} "
                            f"(header: {names if names is not None else 'none'})")
        label_idx = names.index(label_column)
    else:
        if not -ncol <= int(label_column) < ncol:
            raise DataError(f"{source}: label_column {label_column} is out of range for {ncol} columns")
        label_idx = int(label_column) % ncol

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
                    raise DataError(f"{source} line {line} {colname(j)}: {what}") from None
        raise DataError(f"{source}: cannot parse the table as numbers") from None
    lines = [ln for ln, _ in rows]
    feat_idx = [j for j in range(ncol) if j != label_idx]
    x = values[:, feat_idx]
    bad = ~np.isfinite(x)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise DataError(f"{source} line {lines[i]} {colname(feat_idx[j])}: non-finite feature value {x[i, j]}")
    y, _ = check_labels(values[:, label_idx], source, lambda i: f"line {lines[i]}", num_classes)
    features = [names[j] for j in feat_idx] if names is not None else [f"x{j}" for j in range(len(feat_idx))]
    return x.astype(np.float32), y, features
