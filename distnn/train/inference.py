"""``distnn evaluate`` and ``distnn predict``: a trained run applied to a split or to new data files.

The model comes from :func:`distnn.train.run_dir.load_model` (the one place
that rebuilds models: run directories, checkpoints, ensembles). Data files are
read strictly: a bad file gets a one-line :class:`~distnn.data.DataError`
naming the file and the place, and nothing is written.
"""
from __future__ import annotations

import os

import numpy as np

from distnn.data.files import is_number

from . import run_dir as rd
from .evaluation import classification_report, format_confusion_matrix
from .trainer import eval_outputs, evaluate_arrays


def _load_run_data(meta, path):
    """Read a data file for a trained run: ``(x, y or None)``, strictly validated.

    ``.npz``: arrays ``x``/``X`` and optionally ``y``/``Y``. ``.csv``: one row per
    sample, the features in the units of the run's training data, plus a
    label column (the last, unless the run's ``data.label_column`` says
    otherwise) or none. IDX: an ``*-images-idx3-ubyte[.gz]`` file (labels from
    its matching labels file), scaled to [0, 1] like the MNIST loader.
    """
    from distnn.data import DataError, check_labels, find_mnist_files, load_idx_pair
    from distnn.data.files import load_npz

    path = str(path)
    k = int(meta["num_classes"])
    n_features = int(np.prod(meta["input_shape"]))
    source = f"data file {path!r}"
    if not os.path.exists(path):
        raise DataError(f"{source} not found")
    if not os.path.isfile(path):
        raise DataError(f"{source} is not a file")
    if not os.access(path, os.R_OK):
        raise DataError(f"{source} is not readable (permission denied)")
    lower = path.lower()
    if lower.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
        if keys & {"y", "Y"}:
            parts = load_npz(path, num_classes=k)
            x, y = parts["all"]
            return x, y
        if not keys & {"x", "X"}:
            raise DataError(f"{source} has no 'x' or 'X' array (keys: {sorted(keys)})")
        with np.load(path, allow_pickle=False) as z:
            x = z["x" if "x" in keys else "X"]
        if x.dtype.kind not in "iufb":
            raise DataError(f"{source} array 'x' must be numeric, got dtype {x.dtype}")
        return x.astype(np.float32), None
    if lower.endswith(".csv"):
        return _read_csv(path, source, n_features, k, (meta.get("data") or {}).get("label_column", -1),
                         check_labels, DataError)
    if "idx" in os.path.basename(lower) or "ubyte" in lower:
        pair = find_mnist_files(path)["train"]
        images, labels = load_idx_pair(*pair, num_classes=k)
        return images.astype(np.float32) / 255.0, labels
    raise DataError(f"{source}: unknown format (expected .csv, .npz or an IDX '*-images-idx3-ubyte' file)")


def _read_csv(path, source, n_features, k, label_column, check_labels, DataError):
    """A CSV of features with or without a label column (told apart by the number of columns)."""
    import csv

    with open(path, newline="", encoding="utf-8-sig") as f:
        try:
            rows = [(r.line_num, row) for r in [csv.reader(f)] for row in r if any(c.strip() for c in row)]
        except (csv.Error, UnicodeDecodeError) as e:
            raise DataError(f"{source} is not readable CSV: {e}") from None
    if rows and not all(is_number(c) for c in rows[0][1]):
        rows = rows[1:]  # a header
    if not rows:
        raise DataError(f"{source} has no data rows")
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
    if ncol == n_features:
        x, y = values, None
    else:
        li = int(label_column) % ncol
        x = np.delete(values, li, axis=1)
        y, _ = check_labels(values[:, li], source, lambda i: f"line {lines[i]}", k)
    bad = ~np.isfinite(x)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise DataError(f"{source} line {lines[i]}: non-finite feature value {x[i, j]}")
    return x.astype(np.float32), y


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
    from distnn.data import load_dataset

    splits = load_dataset(meta["data"])
    ds = splits[split]
    if ds is None:
        raise ValueError(f"dataset '{splits.name}' has no {split} split")
    return ds.x, ds.y


def evaluate_run(run_path, split=None, data=None) -> str:
    """Loss, accuracy, confusion matrix and per-class precision/recall/F1 of a run, as text."""
    model, meta, transform = rd.load_model(run_path)
    if data is not None:
        x, y = _load_run_data(meta, data)
        if y is None:
            raise ValueError(f"data file {data!r} has no labels; use 'distnn predict' for unlabelled inputs")
        what = repr(data)
    else:
        split = split or "test"
        x, y = _split_data(meta, split)
        what = f"{meta.get('dataset', 'dataset')} {split} split"
    x = _check_inputs(x, meta, what)
    k = int(meta["num_classes"])
    y = np.asarray(y)
    if y.ndim == 1 and y.size and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"{what}: labels must be in [0, {k - 1}] for this {k}-class model; found "
                         f"{sorted(set(int(v) for v in y[(y < 0) | (y >= k)][:10]))}")
    dtype = np.float64 if meta.get("dtype") == "float64" else np.float32
    sums = evaluate_arrays(model, x, y, np.ones(len(x), bool), transform, 512, k if y.ndim == 1 else 0,
                           dtype=dtype)
    lines = [f"evaluated {what}: {sums['count']} samples",
             f"loss     {sums['loss'] / max(sums['count'], 1):.4f}",
             f"accuracy {sums['correct'] / max(sums['count'], 1):.4f}"]
    if sums["cm"] is not None:
        names = meta.get("class_names")
        lines += ["", "confusion matrix (rows: true class, columns: predicted class)",
                  format_confusion_matrix(sums["cm"], names), "", classification_report(sums["cm"], names)]
    return "\n".join(lines)


def predict_proba(model, x, transform, batch_size=512) -> np.ndarray:
    """Class probabilities (N, C) in eval mode."""
    from distnn.backend import to_numpy

    params = list(model.parameters()) if hasattr(model, "parameters") else []
    dtype = params[0].data.dtype if params and params[0].data.dtype.kind == "f" else None
    out = [to_numpy(o.softmax(axis=-1).data) for _, o in eval_outputs(model, x, transform, batch_size, dtype=dtype)]
    return np.concatenate(out) if out else np.zeros((0, 0))


def predict_run(run_path, input_path, output_path) -> int:
    """Write ``label,prob_<c>...`` rows for each input sample; returns the number written."""
    model, meta, transform = rd.load_model(run_path)
    x, _ = _load_run_data(meta, input_path)
    x = _check_inputs(x, meta, repr(input_path))
    probs = predict_proba(model, x, transform)
    names = [str(c) for c in meta.get("class_names") or range(probs.shape[1])]
    labels = probs.argmax(axis=1)
    out_dir = os.path.dirname(os.path.abspath(output_path))
    if not os.path.isdir(out_dir):
        raise ValueError(f"cannot write {output_path!r}: directory {out_dir!r} does not exist")
    tmp = output_path + ".tmp"
    try:
        with open(tmp, "w") as f:
            f.write(",".join(["predicted_label", "predicted_class"] + [f"prob_{n}" for n in names]) + "\n")
            for lab, p in zip(labels, probs):
                f.write(f"{int(lab)},{names[lab]}," + ",".join(f"{v:.6g}" for v in p) + "\n")
        os.replace(tmp, output_path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise ValueError(f"cannot write {output_path!r}: {e.strerror or e}") from None
    return len(labels)


def describe_datasets() -> str:
    from distnn.data import list_datasets
    from distnn.train.config import list_configs

    lines = ["datasets:"]
    for item in list_datasets():
        lines.append(f"  {item}" if isinstance(item, str) else f"  {item[0]:<16} {item[1]}")
    lines.append("")
    lines.append("built-in configs (python -m distnn train --config NAME):")
    for item in list_configs():
        lines.append(f"  {item}" if isinstance(item, str) else f"  {item[0]:<22} {item[1]}")
    return "\n".join(lines)
