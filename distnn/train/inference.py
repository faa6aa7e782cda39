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
import sys

import numpy as np

from . import run_dir as rd
from .evaluation import classification_report, format_confusion_matrix
from .batch_eval import eval_outputs, evaluate_arrays
from .inference_inputs import _check_inputs, _load_run_data, _split_data
from .inference_output import _output_plan, _write_output


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
    if not out:  # no rows: a row of zeros through the model gives a row's shape ((C,) or (T, C)) and dtype
        row = np.zeros((1,) + x.shape[1:], dtype=x.dtype)
        out = [to_numpy(o.softmax(axis=-1).data)[:0] for _, o in eval_outputs(model, row, transform, 1, xp, dtype)]
    return np.concatenate(out)


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
