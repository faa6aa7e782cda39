"""``distnn evaluate`` and ``distnn predict``: a trained run applied to a split or to new data files.

The model comes from :func:`distnn.train.run_dir.load_model` (the one place
that rebuilds models: run directories, checkpoints, ensembles): a run's newest
trained state, named on stderr (``distnn: reading ...``). Data files are
read strictly: a bad file gets a one-line :class:`~distnn.data.DataError`
naming the file and the place, and nothing is written.

Inputs are read in the form the model takes: features as float32 (float64 for
a float64 run) or, for a model that starts with an embedding (``vocab_size`` in
``model.json``: the token-sequence classifiers and CharLM), int64 token ids.
Ids may come as integer-valued floats (a CSV, a float array) and are converted
exactly; fractions and ids outside the vocabulary are refused.
"""
from __future__ import annotations

import csv
import io
import os
import stat
import sys
import tempfile

import numpy as np

from distnn.data.files import (check_feature_range, check_sample_array, is_number, label_column_index, read_npz,
                               split_header, token_ids)

from . import run_dir as rd
from .evaluation import classification_report, format_confusion_matrix
from .batch_eval import eval_outputs, evaluate_arrays


def _note_source(read: list[str]) -> None:
    """Which model file or checkpoint evaluate/predict read (on stderr: stdout carries the results)."""
    for message in read:
        sys.stderr.write(f"distnn: {message}\n")
    sys.stderr.flush()


def token_vocab(model, meta) -> int | None:
    """The vocabulary size when the run's model reads token ids (it starts with an Embedding), else None."""
    kwargs = (meta.get("model") or {}).get("kwargs") or {}
    if kwargs.get("vocab_size") is not None:
        return int(kwargs["vocab_size"])
    # CharLM defaults vocab_size to num_classes, so model.json may not name it: ask the built model
    # (an ensemble: its first member; all members share one architecture).
    for m in [model, *list(getattr(model, "members", None) or [])[:1]]:
        if getattr(m, "vocab_size", None) is not None:
            return int(m.vocab_size)
    return None


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
        splits = load_dataset(meta["data"])
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


def _predicts_every_position(model, x, transform, dtype) -> bool:
    """Whether the model's output is (N, T, C) (a language model) rather than (N, C), from one sample."""
    batches = eval_outputs(model, x[:1], transform, 1, dtype=dtype)
    try:
        _, out = next(batches)
    finally:
        batches.close()  # leaves no_grad and restores the model's mode now, not at garbage collection
    return out.ndim == 3


def evaluate_run(run_path, split=None, data=None, header=None, mc_samples=0, mc_seed=0) -> str:
    """Loss, accuracy, confusion matrix and per-class precision/recall/F1 of a run, as text.

    ``mc_samples`` N > 1: Monte Carlo dropout, the probabilities averaged over N
    passes with dropout active (masks seeded by ``mc_seed``); 0 or 1: dropout off.
    """
    from .mc_dropout import mc_dropout

    read = []  # which model file or checkpoint: said once the command succeeds (an error stays one line)
    model, meta, transform = rd.load_model(run_path, report=read.append)
    mc_model = mc_dropout(model, mc_samples, mc_seed)  # (a bad value or a model without dropout: before any work)
    dtype = np.float64 if meta.get("dtype") == "float64" else np.float32
    if data is not None:
        from distnn.data import DataError

        x, y = _load_run_data(meta, data, vocab=token_vocab(model, meta), header=header)
        if y is None:
            raise ValueError(f"data file {data!r} has no labels; use 'distnn predict' for unlabelled inputs")
        what = repr(data)
        x = _check_inputs(x, meta, what)
        per_position = _predicts_every_position(model, x, transform, dtype)
        if per_position and (y.ndim != 2 or y.shape != x.shape[:2]):
            raise DataError(f"data file {data!r}: this model predicts a token at every position, so its labels "
                            f"must be an npz 'y' array of shape {x.shape[:2]}; got shape {y.shape}")
        if not per_position and y.ndim != 1:
            raise DataError(f"data file {data!r}: this model predicts one class per sample, so its labels must be "
                            f"1-D ({len(x)},); got shape {y.shape}")
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
    sums = evaluate_arrays(mc_model, x, y, np.ones(len(x), bool), transform, 512, k if y.ndim == 1 else 0,
                           dtype=dtype)
    lines = [f"evaluated {what}: {sums['count']} samples"
             + (f" (MC dropout: {mc_samples} samples, seed {mc_seed})" if mc_model is not model else ""),
             f"loss     {sums['loss'] / max(sums['count'], 1):.4f}",
             f"accuracy {sums['correct'] / max(sums['count'], 1):.4f}"]
    if sums["cm"] is not None:
        names = meta.get("class_names")
        lines += ["", "confusion matrix (rows: true class, columns: predicted class)",
                  format_confusion_matrix(sums["cm"], names), "", classification_report(sums["cm"], names)]
    _note_source(read)
    return "\n".join(lines)


def predict_proba(model, x, transform=None, batch_size=512, mc_samples=0, mc_seed=0) -> np.ndarray:
    """Class probabilities in eval mode: (N, C), or (N, T, C) for a model that predicts every position.

    ``x``: the inputs (a numpy array, a Tensor or nested lists), samples along the first axis;
    ``transform``: ``t(batch, rng)`` applied to each batch first (a run's standardization), or None.

    ``mc_samples`` N > 1: Monte Carlo dropout (:mod:`distnn.train.mc_dropout`): each batch's
    probability vectors averaged over N passes with dropout active and everything else (batch norm)
    in eval mode. Sample ``i``'s masks in pass ``s`` are a function of ``(mc_seed, i, s)``: the result does
    not depend on ``batch_size`` (up to BLAS rounding), and a sample moved to another row gets other masks.
    0 or 1: dropout off, one pass.
    """
    from distnn.backend import get_array_module, to_numpy

    from .mc_dropout import mc_dropout

    model = mc_dropout(model, mc_samples, mc_seed)
    x = to_numpy(x)  # (host batches, as the loaders give: a Tensor's slices have no numpy dtype or copy)

    params = list(model.parameters()) if hasattr(model, "parameters") else []
    dtype = params[0].data.dtype if params and params[0].data.dtype.kind == "f" else None
    xp = get_array_module(params[0].data) if params else np  # (batches go to the model's device, as in training)
    out = [to_numpy(o.softmax(axis=-1).data) for _, o in eval_outputs(model, x, transform, batch_size, xp, dtype)]
    return np.concatenate(out) if out else np.zeros((0, 0))


def predict_run(run_path, input_path, output_path, header=None, mc_samples=0, mc_seed=0) -> int:
    """Write ``predicted_label,predicted_class,prob_<c>...`` rows, one per input sample; returns how many.

    A model that predicts every position (CharLM) gets one row per input
    sequence: the distribution of the token that follows it (its last
    position). ``output_path`` ``-`` is standard output; an existing path that
    is not a regular file (a FIFO, ``/dev/stdout``) is written in place; a
    regular file is replaced atomically (through a symlink: its target), and
    never the input file. ``mc_samples``/``mc_seed``: Monte Carlo dropout, as in :func:`predict_proba`.
    """
    from .mc_dropout import mc_dropout

    how, where = _output_plan(output_path, input_path)  # refuse a bad output before any work
    read = []  # which model file or checkpoint: said once the command succeeds (an error stays one line)
    model, meta, transform = rd.load_model(run_path, report=read.append)
    mc_dropout(model, mc_samples, mc_seed)  # (a bad value or a model without dropout: refused before any work)
    x, _ = _load_run_data(meta, input_path, vocab=token_vocab(model, meta), labels=False, header=header)
    x = _check_inputs(x, meta, repr(input_path))
    probs = predict_proba(model, x, transform, mc_samples=mc_samples, mc_seed=mc_seed)
    if probs.ndim == 3:
        probs = probs[:, -1, :]  # the next token after each input sequence
    names = [str(c) for c in meta.get("class_names") or range(probs.shape[1])]
    labels = probs.argmax(axis=1)
    # through the csv module: CharLM's classes are characters, and ',' '"' or a newline must be quoted
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["predicted_label", "predicted_class"] + [f"prob_{n}" for n in names])
    w.writerows([int(lab), names[lab], *(f"{v:.6g}" for v in p)] for lab, p in zip(labels, probs))
    _write_output(how, where, output_path, buf.getvalue())
    _note_source(read)
    return len(labels)


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
    from .checkpoint import is_checkpoint_dir

    where, name = os.path.split(os.path.realpath(path))
    shown = os.path.dirname(str(path)) or "."
    if is_checkpoint_dir(where):
        return f"a file of the checkpoint {shown!r}"
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
            os.chmod(tmp, _new_file_mode(where))  # (mkstemp's file is private: 0600)
            os.replace(tmp, where)
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


def _toml_value(v) -> str:
    """A default as it is written in a config file."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return f'"{v}"' if isinstance(v, str) else repr(v)


def describe_datasets() -> str:
    """The ``distnn datasets`` listing: datasets and built-in configs."""
    from distnn.data import list_datasets
    from distnn.data.datasets import get_dataset_entry, list_dataset_options
    from distnn.train.config import list_configs

    lines = ["datasets (data.name; under each, its own data.* options with their defaults; every dataset also",
             "takes data.val_fraction, data.test_fraction, data.split_seed and data.standardize, see config-keys):"]
    for item in list_datasets():
        if isinstance(item, str):
            lines.append(f"  {item}")
            continue
        lines.append(f"  {item[0]:<16} {item[1]}")
        options = list_dataset_options(item[0])
        required = get_dataset_entry(item[0]).needs_path
        if options:
            shown = ", ".join(f"{k} (required)" if k == "path" and required else f"{k} (unset)" if v is None
                              else f"{k} = {_toml_value(v)}" for k, v in options.items())
            lines.append(f"  {'':<16}   options: {shown}")
    lines.append("")
    lines.append("built-in configs (python -m distnn train --config NAME):")
    for item in list_configs():
        lines.append(f"  {item}" if isinstance(item, str) else f"  {item[0]:<22} {item[1]}")
    return "\n".join(lines)
