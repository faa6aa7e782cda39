"""Deterministic stratified train/validation/test splits.

Split sizes follow scikit-learn's ``train_test_split`` rounding: the test and
validation sizes are rounded *up* (``ceil(n * fraction)``) and training gets
the rest. For the 1797 digits with ``val_fraction=0.1, test_fraction=0.2``
that is 1257 / 180 / 360.

Stratification: each split's total is shared between classes in proportion to
the class sizes with the largest-remainder method (ties go to the larger
remaining class, then the lower class index), so every class is represented in
every split as evenly as integer counts allow. Within a class the samples are
shuffled by a generator seeded with ``seed``; the same ``(y, fractions, seed)``
always gives the same indices.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import DataError


def split_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(n_train, n_val, n_test) for ``n`` samples; val/test rounded up."""
    for label, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise DataError(f"{label} must be in [0, 1), got {f}")
    if val_fraction + test_fraction >= 1.0:
        raise DataError(f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}")
    # The small epsilon keeps e.g. 100 * 0.2 (= 20.000000000000004) from rounding up to 21.
    n_test = math.ceil(n * test_fraction - 1e-9)
    n_val = math.ceil(n * val_fraction - 1e-9)
    n_train = n - n_val - n_test
    if n_train < 1:
        raise DataError(f"split of {n} samples leaves no training data (val {n_val}, test {n_test})")
    return n_train, n_val, n_test


def _apportion(total: int, available: np.ndarray) -> np.ndarray:
    """Share ``total`` between classes in proportion to ``available`` (largest remainder)."""
    avail_sum = int(available.sum())
    if total == 0 or avail_sum == 0:
        return np.zeros_like(available)
    quota = available * (total / avail_sum)
    counts = np.minimum(np.floor(quota).astype(np.int64), available)
    remainder = quota - counts
    # Hand out the leftover units: largest remainder first, then larger class, then lower index.
    order = sorted(range(len(available)), key=lambda c: (-remainder[c], -available[c], c))
    left = total - int(counts.sum())
    while left > 0:
        progressed = False
        for c in order:
            if left == 0:
                break
            if counts[c] < available[c]:
                counts[c] += 1
                left -= 1
                progressed = True
        if not progressed:  # cannot happen while total <= avail_sum; guard against a loop
            break
    return counts


def _keep_one_for_training(available, test_counts, val_counts) -> None:
    """In place: a class the shares would leave out of training keeps one sample there.

    A rare class (one sample, or a few against large fractions) could go wholly to test or val,
    and the model would never see it. Its sample is swapped with one of the largest training
    class's, so the split's sizes stay; a split that leaves every class in training is unchanged.
    """
    while True:
        train = available - test_counts - val_counts
        missing = np.flatnonzero((train == 0) & (available > 0))
        donor = int(np.argmax(train))
        if not len(missing) or train[donor] < 2:
            return
        c = int(missing[0])
        counts = test_counts if test_counts[c] > 0 else val_counts
        counts[c] -= 1
        counts[donor] += 1


def stratified_split(y, val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                     stratify: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices ``(train, val, test)`` of a seeded, stratified split of labels ``y``.

    ``y`` is a 1-D array of class labels (any hashable values; they are only
    grouped). With ``stratify=False`` (or 2-D targets, as in language
    modelling) the split is a plain seeded shuffle. Each index array is sorted,
    so the split does not depend on how the caller later orders the samples.
    Every class keeps at least one training sample when the split allows it.
    """
    y = np.asarray(y)
    n = len(y)
    n_train, n_val, n_test = split_sizes(n, val_fraction, test_fraction)
    rng = np.random.default_rng(seed)
    if not stratify or y.ndim != 1:
        perm = rng.permutation(n)
        return (np.sort(perm[:n_train]), np.sort(perm[n_train:n_train + n_val]),
                np.sort(perm[n_train + n_val:]))
    classes, inverse = np.unique(y, return_inverse=True)
    members = [rng.permutation(np.flatnonzero(inverse == c)) for c in range(len(classes))]
    available = np.array([len(m) for m in members], dtype=np.int64)
    test_counts = _apportion(n_test, available)
    val_counts = _apportion(n_val, available - test_counts)
    _keep_one_for_training(available, test_counts, val_counts)
    train, val, test = [], [], []
    for m, nt, nv in zip(members, test_counts, val_counts):
        test.append(m[:nt])
        val.append(m[nt:nt + nv])
        train.append(m[nt + nv:])
    return tuple(np.sort(np.concatenate(part)).astype(np.int64) for part in (train, val, test))
