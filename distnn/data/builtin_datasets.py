"""The built-in dataset sources, each registered by name with ``register_dataset``.

scikit-learn's bundled real datasets (``digits``, ``iris``, ``wine``, ``breast_cancer``), IDX files
(``mnist``, ``fashion_mnist``), user files (``npz``, ``csv``), synthetic data (``xor``, ``noisy_xor``,
``spirals``, ``blobs``), token sequences (``seq_parity``, ``seq_sorted``, ``seq_majority``) and ``charlm``.
Each source turns its options into a ``RawData``; splitting and standardizing are ``datasets.py``'s, which
imports this module so that every name is registered (in this order) once ``distnn.data`` is imported.
"""
from __future__ import annotations

import numpy as np

from . import idx, sequences, synthetic, text
from .dataset_registry import RawData, register_dataset
from .errors import DataError
from .files import load_csv, load_npz


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
