"""The inputs of ``distnn evaluate`` and ``distnn predict``: a data file (CSV, npz, IDX) read in the form
the run's model takes, or a split of the run's own dataset, checked against what the model was trained on.
Read strictly: a bad file gets a one-line :class:`~distnn.data.DataError` naming the file and the place."""
from __future__ import annotations

import csv
import os

import numpy as np

from distnn.data.files import (check_feature_range, check_sample_array, is_number, label_column_index, read_npz,
                               split_header, token_ids)


def _load_run_data(meta, path, vocab=None, labels=True, header=None):
    """Read a data file for a trained run: ``(x, y or None)``, strictly validated.

    ``.npz``: arrays ``x``/``X`` and optionally ``y``/``Y``. ``.csv``: one row per
    sample, the features in the units of the run's training data, plus a
    label column (the last, unless the run's ``data.label_column`` says
    otherwise) or none. IDX: an ``*-images-idx3-ubyte[.gz]`` file, scaled to
    [0, 1] like the MNIST loader; its labels come from the matching labels file
    when ``labels`` is true (evaluate), and are not needed otherwise (predict).
    ``vocab``: the model reads token ids 0..vocab-1 (int64) instead of features.
    With ``labels`` false, labels are neither read nor checked (``y`` is None).
    """
    from distnn.data import DataError

    path = str(path)
    k = int(meta["num_classes"])
    source = f"data file {path!r}"
    if not os.path.exists(path):
        raise DataError(f"{source} not found")
    if not os.path.isfile(path):
        raise DataError(f"{source} is not a file")
    if not os.access(path, os.R_OK):
        raise DataError(f"{source} is not readable (permission denied)")
    dtype = np.float64 if meta.get("dtype") == "float64" else np.float32
    lower = path.lower()
    if lower.endswith(".npz"):
        x, y = _read_npz(path, source, k, dtype, vocab, labels)
    elif lower.endswith(".csv"):
        x, y = _read_csv(path, source, meta, k, dtype, vocab, labels, header)
    elif "idx" in os.path.basename(lower) or "ubyte" in lower:
        x, y = _read_idx(path, source, k, dtype, vocab, labels)
    else:
        raise DataError(f"{source}: unknown format (expected .csv, .npz or an IDX '*-images-idx3-ubyte' file)")
    if not len(x):
        raise DataError(f"{source} has 0 samples")
    return x, y


def _as_model_input(x, source, dtype, vocab, locate):
    """Features cast to ``dtype`` (range checked first) or exact int64 token ids (vocabulary checked)."""
    if vocab is not None:
        return token_ids(x, vocab, source, locate)
    check_feature_range(x, dtype, source, locate)
    return x.astype(dtype)


def _read_npz(path, source, k, dtype, vocab, labels):
    from distnn.data import DataError, check_labels

    arrays = read_npz(path, source)
    xk = next((key for key in ("x", "X") if key in arrays), None)
    if xk is None:
        raise DataError(f"{source} has no 'x' or 'X' array (keys: {sorted(arrays)})")
    x = arrays[xk]
    where = f"{source} array {xk!r}"
    check_sample_array(x, where)
    if len(x) == 0:
        raise DataError(f"{where} has 0 samples")
    width = int(np.prod(x.shape[1:]))
    locate = (lambda i, j: f"row {i} position {j}") if vocab is not None and width > 1 else (lambda i, j: f"row {i}")
    x = _as_model_input(x, where, dtype, vocab, locate)
    yk = next((key for key in ("y", "Y") if key in arrays), None) if labels else None
    if yk is None:
        return x, None
    y = arrays[yk]
    ywhere = f"{source} array {yk!r}"
    if y.ndim == 0 or len(y) != len(x):
        raise DataError(f"{source}: {xk!r} has {len(x)} rows but {yk!r} has {len(y) if y.ndim else 'none'}")
    if y.ndim == 1:
        return x, check_labels(y, ywhere, lambda r: f"row {r}", k)[0]
    if y.ndim == 2:  # a target at every position (a language model)
        t = y.shape[1]
        flat, _ = check_labels(y.reshape(-1), ywhere, lambda f: f"row {f // t} position {f % t}", k)
        return x, flat.reshape(y.shape)
    raise DataError(f"{ywhere}: labels must be 1-D (one per sample) or 2-D (one per position), got shape {y.shape}")


def _same_file(a, b) -> bool:
    try:
        return b is not None and os.path.samefile(a, b)
    except (OSError, TypeError, ValueError):
        return False


def _read_csv(path, source, meta, k, dtype, vocab, labels, header=None):
    """A CSV of features with or without a label column (told apart by the number of columns)."""
    from distnn.data import DataError, check_labels

    data_cfg = meta.get("data") or {}
    n_features = int(np.prod(meta["input_shape"]))
    with open(path, newline="", encoding="utf-8-sig") as f:
        try:
            reader = csv.reader(f, delimiter=data_cfg.get("delimiter", ","))
            rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
        except (csv.Error, UnicodeDecodeError) as e:
            raise DataError(f"{source} is not readable CSV: {e}") from None
    if not rows:
        raise DataError(f"{source} has 0 samples (the file is empty)")
    # A header only if none of the first row's cells is a number (the README's rule for these files), except
    # in the run's own training file, read as the run read it (data.header = true for numeric column names):
    # the run's data.header describes that file, not new ones (which may have no header at all).
    # ``header`` (--header) decides when given.
    if header is None:
        header = data_cfg.get("header", "auto") if _same_file(path, data_cfg.get("path")) else "auto"
    names, rows = split_header(rows, source, header)
    if not rows:
        raise DataError(f"{source} has 0 samples (a header but no data rows)")
    ncol = len(rows[0][1])
    if ncol not in (n_features, n_features + 1):
        raise DataError(f"{source} line {rows[0][0]}: expected {n_features} feature columns (plus an optional "
                        f"label column) for this model, got {ncol} columns")
    for line, row in rows:
        if len(row) != ncol:
            raise DataError(f"{source} line {line}: expected {ncol} columns, got {len(row)}")
        for j, cell in enumerate(row):
            if not is_number(cell):
                what = "empty cell" if not cell.strip() else f"cannot parse {cell.strip()!r} as a number"
                raise DataError(f"{source} line {line} column {j + 1}: {what}")
    values = np.asarray([r for _, r in rows], dtype=np.float64)
    lines = [ln for ln, _ in rows]
    li = None
    if ncol == n_features + 1:
        li = label_column_index(data_cfg.get("label_column", -1), names, ncol, source)
    cols = _feature_columns([j for j in range(ncol) if j != li], names, (meta.get("meta") or {}).get("feature_names"),
                            source)
    x = _as_model_input(values[:, cols], source, dtype, vocab, lambda i, j: f"line {lines[i]} column {cols[j] + 1}")
    if li is None or not labels:
        return x, None
    y, _ = check_labels(values[:, li], source, lambda i: f"line {lines[i]}", k)
    return x, y


def _feature_columns(cols, names, trained, source):
    """The file's feature ``cols`` in the order the model reads them. When this file and the training
    file both had a header: the training file's names in another order are put right; names of which
    only some are the training file's are an error naming them; names none of which are (``a,b``
    for ``f0,f1``) say nothing about the order, and the columns are read by position, as without a header."""
    from distnn.data import DataError

    if names is None or not trained or len(trained) != len(cols):
        return cols
    given, trained = [names[j] for j in cols], list(trained)
    if given == trained or not set(given) & set(trained):
        return cols
    if sorted(given) == sorted(trained) and len(set(given)) == len(given):
        return [cols[given.index(n)] for n in trained]
    missing = [n for n in trained if n not in given]
    unknown = [n for n in given if n not in trained]
    raise DataError(f"{source}: its header names some of the training data's feature columns, not all (missing "
                    f"{missing}, not in the training data {unknown}; the model reads {trained}): name the "
                    f"columns as in the training file, or remove the header row to read them by position")


def _read_idx(path, source, k, dtype, vocab, labels):
    from distnn.data import DataError, find_mnist_files, load_idx_pair, read_idx

    if vocab is not None:
        raise DataError(f"{source}: IDX images cannot be the token ids this model reads; give a .csv or .npz of ids")
    if labels:
        images, y = load_idx_pair(*find_mnist_files(path)["train"], num_classes=k)
    else:  # predicting needs no labels: the images file alone
        images, y = read_idx(path, expect_ndim=3), None
    return images.astype(dtype) / 255.0, y


def _check_inputs(x, meta, what):
    shape = tuple(meta["input_shape"])
    if tuple(x.shape[1:]) != shape and int(np.prod(x.shape[1:])) == int(np.prod(shape)):
        x = x.reshape((len(x),) + shape)
    if tuple(x.shape[1:]) != shape:
        raise ValueError(f"{what}: samples have shape {tuple(x.shape[1:])} but the model expects {shape}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).reshape(len(x), -1).any(axis=1).argmax())
        raise ValueError(f"{what}: sample {bad} holds NaN or inf")
    return x


def _split_data(meta, split):
    from distnn.data import DataError, load_dataset

    try:
        splits = load_dataset(meta["data"], check_split_keys=False)  # (the run's own: it trained with them)
    except DataError as e:
        path = (meta.get("data") or {}).get("path")
        if path is None or os.path.exists(str(path)):
            raise
        # (evaluate RUN names no file: say which one it read, and how to score another)
        raise DataError(f"{e}: it is the run's training data (data.path), from which evaluate takes the {split} "
                        "split; score a file with --data FILE instead") from None
    ds = splits[split]
    if ds is None:
        raise ValueError(f"dataset '{splits.name}' has no {split} split{_no_split_reason(meta, splits, split)}")
    return ds.x, ds.y


def _no_split_reason(meta, splits, split) -> str:
    """Why the run's dataset lacks ``split`` and what to score instead: the fraction key its config set
    to 0 (``data.val_fraction = 0`` holds out no validation samples), the splits there are, --data."""
    key = {"val": "val_fraction", "test": "test_fraction"}.get(split)
    if key is None or (meta.get("data") or {}).get(key) != 0:
        return ""
    held = {"val": "validation", "test": "the final test"}[split]
    others = [s for s in ("test", "val", "train") if s != split and splits[s] is not None]
    return (f": the run's config had data.{key} = 0, which holds out no samples for {held}; score "
            + " or ".join(f"--split {s}" for s in others) + ", or a labelled file with --data FILE (a run "
            f"trained with data.{key} > 0 has the split)")
