"""Loading a registered dataset: ``load_dataset(name, **options) -> DatasetSplits``.

The registry itself (``register_dataset``, ``get_dataset_entry``, ``list_datasets``) is
``dataset_registry.py``; the built-in sources are ``builtin_datasets.py``; their names and the registry's
functions are importable from here as before. Built-in names (``list_datasets()`` gives the one-line
descriptions):

- scikit-learn's bundled real datasets, loaded offline: ``digits`` (default;
  1797 8x8 images, 10 classes), ``iris``, ``wine``, ``breast_cancer``;
- ``mnist`` / ``fashion_mnist`` from IDX files under ``path``;
- ``npz`` / ``csv`` user files (``path``; a name ending in .npz/.csv also works);
- synthetic: ``xor`` (the 4 points), ``noisy_xor``, ``spirals``, ``blobs``;
- token sequences: ``seq_parity``, ``seq_sorted``, ``seq_majority``;
- ``charlm``: next-character prediction on a built-in text (or ``path``).

Splits. Unless the source brings its own, the samples are split with a fixed,
seeded, stratified split (``split.py``): ``test_fraction`` (default 0.2) and
``val_fraction`` (default 0.1) of the samples, rounded up, training gets the
rest. For digits that is 1257 / 180 / 360 with ``split_seed=0``; the 20 % test
split makes the accuracy estimate steadier (one sample = 0.28 %). MNIST's own
t10k files are its test split (val is carved from the training file); charlm
splits the text into contiguous stretches; the 4-point ``xor`` uses the same
four points for every split.

Standardization (``standardize``: feature | channel | global | none) is fitted
on the training split only and returned as ``splits.standardizer``; the arrays
themselves stay raw (images scaled to [0, 1]) so augmentation sees raw pixels.
Token datasets are never standardized. Labels of one class only are an error (a classifier
needs two).
"""
from __future__ import annotations

import difflib
import os

import numpy as np

from .builtin_datasets import FASHION_CLASSES  # noqa: F401  (importing it registers the built-in sources, in order)
from .dataset import Dataset, DatasetSplits
from .dataset_registry import (SPLIT_KINDS, DatasetEntry, RawData, _REGISTRY, get_dataset_entry,  # noqa: F401
                               list_dataset_options, list_datasets, register_dataset, split_keys_ignored)
from .errors import DataError
from .files import token_ids
from .split import stratified_split
from .transforms import STANDARDIZE_MODES, Standardizer

_FILE_SOURCES = {".npz": "npz", ".csv": "csv"}


# Keys of the config's [data] table that concern batching and augmentation, not loading.
TRAINING_KEYS = frozenset({"batch_size", "eval_batch_size", "shuffle", "drop_last", "augment"})


def load_dataset(name="digits", *, val_fraction: float = 0.1, test_fraction: float = 0.2,
                 split_seed: int = 0, standardize: str = "feature", token_vocab: int | None = None,
                 check_split_keys: bool = True, **options) -> DatasetSplits:
    """Load dataset ``name`` and split it into train / val / test.

    ``options`` go to the dataset's source (see ``list_dataset_options``); an
    unknown option is an error that suggests the closest one. A ``name`` that is
    a path ending in .npz or .csv loads that file. ``name`` may also be the
    config's ``[data]`` table (a mapping with ``name``, ``path``, the split keys
    and dataset options; its batching/augmentation keys are ignored), so a run's
    saved data config reloads exactly the same splits.

    ``token_vocab``: the data feeds a model that reads token ids
    ``0..token_vocab-1``; every split's ``x`` becomes int64 ids and nothing is
    standardized (see :func:`as_token_ids`). A run records it in its saved data
    table, so evaluation reloads the ids the model was trained on.

    ``check_split_keys``: a split key off its default that the files' own split
    leaves unused (``test_fraction`` beside MNIST's t10k files, ``val_fraction``
    beside an .npz's x_val) is a DataError naming it (see :func:`make_splits`);
    False ignores it, for reloading a run that was trained with one before.
    """
    if not isinstance(name, str):
        spec = {k: v for k, v in dict(name).items() if k not in TRAINING_KEYS and v is not None}
        spec.update({k: v for k, v in options.items()})
        name = spec.pop("name", "digits")
        val_fraction = spec.pop("val_fraction", val_fraction)
        test_fraction = spec.pop("test_fraction", test_fraction)
        split_seed = spec.pop("split_seed", split_seed)
        standardize = spec.pop("standardize", standardize)
        token_vocab = spec.pop("token_vocab", token_vocab)
        options = spec
    if name not in _REGISTRY and os.path.splitext(str(name))[1].lower() in _FILE_SOURCES:
        options.setdefault("path", name)
        name = _FILE_SOURCES[os.path.splitext(str(name))[1].lower()]
    entry = get_dataset_entry(name)
    if standardize not in STANDARDIZE_MODES:
        raise DataError(f"standardize must be one of {', '.join(STANDARDIZE_MODES)}, got {standardize!r}")
    check_dataset_options(name, options)
    accepted = entry.options()
    # Sources that split themselves (charlm) receive the fractions.
    for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if key in accepted:
            options[key] = value
    raw = entry.source(**options)
    if check_split_keys:
        refuse_unused_split_keys(name, raw, val_fraction, test_fraction, split_seed)
    if token_vocab is None:
        return make_splits(name, raw, val_fraction, test_fraction, split_seed, standardize)
    splits = make_splits(name, raw, val_fraction, test_fraction, split_seed, "none")  # ids: no statistics
    return as_token_ids(splits, token_vocab)


#: the split keys' defaults (load_dataset's, the config schema's): a default is never refused
SPLIT_KEY_DEFAULTS = {"val_fraction": 0.1, "test_fraction": 0.2, "split_seed": 0}

#: what in a file-based source's data brings its own val or test split, in words
_OWN_SPLIT_FILES = {"mnist": "its t10k-* files", "fashion_mnist": "its t10k-* files",
                    "npz": "its x_{split}/y_{split} arrays"}


def refuse_unused_split_keys(name: str, raw: RawData, val_fraction=0.1, test_fraction=0.2, split_seed=0) -> None:
    """A DataError naming each split key, off its default, that ``raw``'s own splits leave unused.

    Which keys a source ignores may depend on its files (MNIST's t10k test files, an .npz's x_val/x_test),
    so a config cannot be checked for them when it is loaded (``config_data_checks`` refuses those a
    dataset never reads, xor's). A source's own val (test) split makes ``val_fraction`` (``test_fraction``)
    unused, and both make ``split_seed`` unused (the training split is then the whole training data, in its
    order). Like a split key of xor, such a value was accepted and silently ignored."""
    if raw.split not in ("stratified", "shuffle"):
        return  # (same / given: checked with the config, config_data_checks.check_split_keys)
    where = f"data.path {raw.meta['path']!r}" if raw.meta.get("path") else f"dataset '{name}'"
    own = [s for s in ("val", "test") if s in raw.parts]
    why = {f"{s}_fraction": f"its own {s} split ({_OWN_SPLIT_FILES.get(name, 'given').format(split=s)})"
           for s in own}
    if len(own) == 2:
        why["split_seed"] = "its own val and test splits, so the training split is all its training data"
    values = {"val_fraction": val_fraction, "test_fraction": test_fraction, "split_seed": split_seed}
    problems = [f"dataset '{name}' ignores data.{k} = {values[k]!r}: {where} brings {reason}; remove {k} from "
                f"[data]" for k, reason in why.items() if values[k] != SPLIT_KEY_DEFAULTS[k]]
    if problems:
        raise DataError("; ".join(problems))


def check_dataset_options(name: str, options) -> None:
    """Raise DataError for an option dataset ``name`` does not take (suggesting the closest)."""
    accepted = {k for k in get_dataset_entry(name).options() if k not in ("val_fraction", "test_fraction")}
    for key in options:
        if key not in accepted:
            close = difflib.get_close_matches(key, sorted(accepted), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            takes = ", ".join(sorted(accepted)) if accepted else "no options"
            raise DataError(f"dataset '{name}' has no option '{key}'{hint}; it takes: {takes}")


def make_splits(name: str, raw: RawData, val_fraction: float = 0.1, test_fraction: float = 0.2,
                split_seed: int = 0, standardize: str = "feature") -> DatasetSplits:
    """Turn a source's RawData into DatasetSplits (split, wrap, fit the standardizer)."""
    if raw.num_classes < 2:  # a classifier of one class learns nothing (loss 0, accuracy 1 from the start)
        where = f"data file {raw.meta['path']!r}" if raw.meta.get("path") else f"dataset '{name}'"
        hint = " (is data.label_column the column of labels?)" if name == "csv" else ""
        raise DataError(f"{where}: every label is 0 (only one class); a classifier needs at least 2 "
                        f"classes{hint}")
    parts = dict(raw.parts)

    def wrap(xy, split):
        return Dataset(xy[0], xy[1], raw.num_classes, name, list(raw.class_names or []), dict(raw.meta))

    if raw.split == "same":
        full = wrap(parts["all"], "all")
        train, val, test = full, full, full
    else:
        base = parts.pop("all", None) or parts.pop("train")
        vf = 0.0 if "val" in parts or raw.split == "given" else val_fraction
        tf = 0.0 if "test" in parts or raw.split == "given" else test_fraction
        x, y = base
        i_tr, i_va, i_te = stratified_split(y, vf, tf, split_seed, stratify=raw.split != "shuffle")
        train = wrap((x[i_tr], y[i_tr]), "train")
        val = wrap(parts["val"], "val") if "val" in parts else (wrap((x[i_va], y[i_va]), "val") if vf else None)
        test = wrap(parts["test"], "test") if "test" in parts else (wrap((x[i_te], y[i_te]), "test") if tf else None)
        val = val if val is None or len(val) else None
        test = test if test is None or len(test) else None
    standardizer = None
    if standardize != "none" and train.x.dtype.kind == "f":
        standardizer = Standardizer(standardize).fit(train.x)
    sizes = {k: len(d) for k, d in (("train", train), ("val", val), ("test", test)) if d is not None}
    info = {"name": name, "split": raw.split, "split_seed": split_seed, "val_fraction": val_fraction,
            "test_fraction": test_fraction, "standardize": standardize if standardizer else "none", "sizes": sizes}
    return DatasetSplits(train, val, test, standardizer, info)


def as_token_ids(splits: DatasetSplits, vocab_size: int) -> DatasetSplits:
    """``splits`` with every split's ``x`` as int64 token ids ``0..vocab_size-1``, and no standardizer.

    For a model that reads tokens (it starts with an Embedding) trained on
    data loaded as float features (an npz or CSV file: their loaders cast to
    float32). The conversion is exact (:func:`~distnn.data.files.token_ids`): a
    value with a fraction, or an id outside the vocabulary, is a one-line
    DataError naming the split, the sample and the position. Ids are labels of
    table rows, not quantities, so they are never standardized.
    """
    vocab_size = int(vocab_size)
    if vocab_size < 1:
        raise DataError(f"vocab_size must be a positive integer, got {vocab_size}")
    converted = {}
    for split, ds in splits.items():
        if ds.x.dtype == np.int64 and (not ds.x.size or (ds.x.min() >= 0 and ds.x.max() < vocab_size)):
            converted[split] = ds  # already ids in range (the built-in token datasets): no copy
            continue
        source = f"dataset '{ds.name}' {split} split"
        x = token_ids(ds.x, vocab_size, source, lambda i, j: f"sample {i} position {j}")
        converted[split] = Dataset(x, ds.y, ds.num_classes, ds.name, list(ds.class_names), dict(ds.meta))
    info = dict(splits.info, standardize="none")
    return DatasetSplits(converted["train"], converted.get("val"), converted.get("test"), None, info)
