"""The dataset registry: ``load_dataset(name, **options) -> DatasetSplits``.

Built-in names (``list_datasets()`` gives the one-line descriptions):

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
import inspect
import os
from dataclasses import dataclass, field

import numpy as np

from . import idx, sequences, synthetic, text
from .dataset import Dataset, DatasetSplits
from .errors import DataError
from .files import load_csv, load_npz, token_ids
from .split import stratified_split
from .transforms import STANDARDIZE_MODES, Standardizer


@dataclass
class RawData:
    """What a source function returns before splitting.

    parts: ``{"all": (x, y)}`` to be split, or some of ``train``/``val``/``test``
    (missing val/test are carved from train). split: ``"stratified"``,
    ``"shuffle"`` (no stratification) or ``"same"`` (every split is all data).
    """

    parts: dict
    num_classes: int
    class_names: list | None = None
    meta: dict = field(default_factory=dict)
    split: str = "stratified"


@dataclass
class DatasetEntry:
    name: str
    description: str
    source: object  # callable(**options) -> RawData
    needs_path: bool = False  # the source cannot work without data.path
    split: str = "stratified"  # the RawData.split its source returns (a config checks the split keys by it)

    def options(self) -> dict:
        """The source's options and their defaults (``path`` is required when it has no default)."""
        sig = inspect.signature(self.source)
        return {k: (None if p.default is inspect.Parameter.empty else p.default) for k, p in sig.parameters.items()}

    def check_option(self, key: str, value) -> str | None:
        """None if ``value`` has the type the source declares for ``key``, else the expected type in words."""
        hints = inspect.get_annotations(self.source, eval_str=True)
        allowed = hints.get(key)
        if allowed is None:
            default = self.options().get(key)
            allowed = type(default) if default is not None else None
        if allowed is None:
            return None
        kinds = tuple(dict.fromkeys(getattr(allowed, "__args__", (allowed,))))
        ok = any(isinstance(value, k) and not (k is int and isinstance(value, bool) and bool not in kinds)
                 for k in kinds if k is not type(None))
        ok = ok or (float in kinds and isinstance(value, int) and not isinstance(value, bool))
        if ok:
            return None
        words = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
        return " or ".join(words.get(k, k.__name__) for k in kinds if k is not type(None))


_REGISTRY: dict[str, DatasetEntry] = {}


def register_dataset(name: str, description: str, needs_path: bool = False, split: str = "stratified"):
    """Decorator: register ``fn(**options) -> RawData`` under ``name``. ``split``: the ``RawData.split`` the
    source returns, declared so that a config's split keys can be checked before any data is loaded
    (:func:`split_keys_ignored`)."""
    def deco(fn):
        _REGISTRY[name] = DatasetEntry(name, description, fn, needs_path, split)
        return fn
    return deco


#: why a dataset of each split kind (``DatasetEntry.split``) ignores split keys, in words
SPLIT_KINDS = {"same": "every split is all of its data",
               "given": "it cuts its own splits in order, with no random draw for a seed to change"}


def split_keys_ignored(name: str) -> tuple:
    """The ``[data]`` split keys (``val_fraction``, ``test_fraction``, ``split_seed``) registered dataset
    ``name`` never reads: all three where every split is the same data (xor), ``split_seed`` (and the
    fractions unless it takes them as options, as charlm does) where the source cuts its own splits."""
    entry = get_dataset_entry(name)
    if entry.split not in SPLIT_KINDS:
        return ()
    taken = entry.options() if entry.split == "given" else {}
    return tuple(k for k in ("val_fraction", "test_fraction", "split_seed") if k not in taken)


def list_datasets() -> list[tuple[str, str]]:
    """``[(name, one-line description), ...]`` of every registered dataset (``dict()`` it for a lookup)."""
    return [(name, e.description) for name, e in _REGISTRY.items()]


def get_dataset_entry(name: str) -> DatasetEntry:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise DataError(f"unknown dataset '{name}'{hint}; available: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


# ---------------------------------------------------------------- bundled scikit-learn data

def _sklearn(loader_name: str, dataset: str):
    try:
        from sklearn import datasets as skd
    except ImportError:
        raise DataError(f"dataset '{dataset}' needs scikit-learn (install the 'data' extra of distnn)") from None
    return getattr(skd, loader_name)()


@register_dataset("digits", "scikit-learn's 1797 8x8 handwritten digits, 10 classes (bundled; the default)")
def _digits(flatten: bool = True):
    b = _sklearn("load_digits", "digits")
    x = (b.data / 16.0).astype(np.float32)  # pixel intensities 0..16 -> [0, 1]
    if not flatten:
        x = x.reshape(-1, 1, 8, 8)
    return RawData({"all": (x, b.target.astype(np.int64))}, 10, [str(i) for i in range(10)],
                   {"image_shape": (1, 8, 8)})


def _tabular(loader_name: str, dataset: str):
    b = _sklearn(loader_name, dataset)
    return RawData({"all": (b.data.astype(np.float32), b.target.astype(np.int64))}, len(b.target_names),
                   [str(n) for n in b.target_names], {"feature_names": [str(f) for f in b.feature_names]})


@register_dataset("iris", "scikit-learn's iris flowers: 150 samples, 4 features, 3 classes (bundled)")
def _iris():
    return _tabular("load_iris", "iris")


@register_dataset("wine", "scikit-learn's wine recognition: 178 samples, 13 features, 3 classes (bundled)")
def _wine():
    return _tabular("load_wine", "wine")


@register_dataset("breast_cancer", "scikit-learn's breast cancer Wisconsin: 569 samples, 30 features, 2 classes")
def _breast_cancer():
    return _tabular("load_breast_cancer", "breast_cancer")


# ---------------------------------------------------------------- files

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]


def _idx_source(path, flatten, class_names):
    files = idx.find_mnist_files(path)
    parts = {}
    shape = None
    for split, pair in files.items():
        if pair is None:
            continue
        images, labels = idx.load_idx_pair(*pair, num_classes=10)
        if shape is not None and images.shape[1:] != shape:
            raise DataError(f"IDX file {pair[0]!r} has {images.shape[1:]} images, the training file {shape}")
        shape = images.shape[1:]
        x = (images.astype(np.float32) / 255.0).reshape(len(images), 1, *images.shape[1:])
        parts[split] = (x.reshape(len(x), -1) if flatten else x, labels)
    return RawData(parts, 10, class_names, {"image_shape": (1,) + tuple(shape), "path": str(path)})


@register_dataset("mnist", "MNIST handwritten digits from IDX files under data.path (plain or .gz)", needs_path=True)
def _mnist(path: str | None = None, flatten: bool = True):
    return _idx_source(path, flatten, [str(i) for i in range(10)])


@register_dataset("fashion_mnist", "Fashion-MNIST clothing images from IDX files under data.path", needs_path=True)
def _fashion(path: str | None = None, flatten: bool = True):
    return _idx_source(path, flatten, FASHION_CLASSES)


@register_dataset("npz", "a .npz file (keys x/y or X/y, or x_train/y_train/...) at data.path", needs_path=True)
def _npz(path: str | None = None, x_key: str | None = None, y_key: str | None = None, num_classes: int | None = None):
    if path is None:
        raise DataError("dataset 'npz' needs data.path (a .npz file)")
    parts = load_npz(path, x_key, y_key, num_classes)
    c = num_classes or int(max(int(y.max()) + 1 for _, y in parts.values() if len(y)))
    return RawData(parts, c, None, {"path": str(path)})


@register_dataset("csv", "a CSV table at data.path (label column configurable, header optional)", needs_path=True)
def _csv(path: str | None = None, label_column: int | str = -1, header: bool | str = "auto", delimiter: str = ",",
         num_classes: int | None = None):
    if path is None:
        raise DataError("dataset 'csv' needs data.path (a .csv file)")
    x, y, features = load_csv(path, label_column, header, delimiter, num_classes)
    c = num_classes or int(y.max()) + 1
    return RawData({"all": (x, y)}, c, None, {"feature_names": features, "path": str(path)})


# ---------------------------------------------------------------- synthetic

@register_dataset("xor", "the four XOR points (every split is the same 4 points)", split="same")
def _xor():
    return RawData({"all": synthetic.xor_points()}, 2, ["0", "1"], split="same")


@register_dataset("noisy_xor", "XOR corners with gaussian noise (n_samples, noise, seed)")
def _noisy_xor(n_samples: int = 400, noise: float = 0.15, seed: int = 0):
    return RawData({"all": synthetic.noisy_xor(n_samples, noise, seed)}, 2, ["0", "1"])


@register_dataset("spirals", "interleaved 2-D spiral arms (n_samples, n_classes, noise, turns, seed)")
def _spirals(n_samples: int = 600, n_classes: int = 3, noise: float = 0.15, turns: float = 1.0, seed: int = 0):
    return RawData({"all": synthetic.spirals(n_samples, n_classes, noise, turns, seed)}, int(n_classes))


@register_dataset("blobs", "gaussian blobs (n_samples, n_classes, n_features, spread, seed)")
def _blobs(n_samples: int = 600, n_classes: int = 3, n_features: int = 2, spread: float = 1.0, seed: int = 0):
    return RawData({"all": synthetic.blobs(n_samples, n_classes, n_features, spread, seed=seed)}, int(n_classes))


def _tokens(x, y, c, vocab_size, names=None):
    return RawData({"all": (x, y)}, c, names, {"vocab_size": int(vocab_size), "seq_len": int(x.shape[1])})


@register_dataset("seq_parity", "bit sequences labelled by parity of the number of ones (length, n_samples, seed)")
def _seq_parity(n_samples: int = 2000, length: int = 8, seed: int = 0):
    x, y, c = sequences.parity(n_samples, length, seed)
    return _tokens(x, y, c, 2, ["even", "odd"])


@register_dataset("seq_sorted", "token sequences: sorted (non-decreasing) or not (length, vocab_size, n_samples)")
def _seq_sorted(n_samples: int = 2000, length: int = 8, vocab_size: int = 10, seed: int = 0):
    x, y, c = sequences.sorted_or_not(n_samples, length, vocab_size, seed)
    return _tokens(x, y, c, vocab_size, ["unsorted", "sorted"])


@register_dataset("seq_majority", "token sequences labelled by their most frequent token (length, vocab_size)")
def _seq_majority(n_samples: int = 2000, length: int = 16, vocab_size: int = 4, seed: int = 0):
    x, y, c = sequences.majority(n_samples, length, vocab_size, seed)
    return _tokens(x, y, c, vocab_size)


@register_dataset("charlm", "next-character prediction on a small built-in text, or a UTF-8 file at data.path",
                  split="given")
def _charlm(path: str | None = None, seq_len: int = 64, stride: int | None = None, val_fraction: float = 0.1,
            test_fraction: float = 0.1):
    parts, vocab = text.char_lm_splits(text.load_text(path), seq_len, stride, val_fraction, test_fraction)
    return RawData(parts, len(vocab), list(vocab), {"vocab": vocab, "vocab_size": len(vocab), "seq_len": seq_len},
                   split="given")


# ---------------------------------------------------------------- the entry point

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


def list_dataset_options(name: str) -> dict:
    """{option: default} accepted by dataset ``name`` (besides the split/standardize options)."""
    return {k: v for k, v in get_dataset_entry(name).options().items() if k not in ("val_fraction", "test_fraction")}
