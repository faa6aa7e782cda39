"""The uniform dataset objects every loader returns.

``Dataset`` is one split: arrays ``x`` (features, images or token ids) and
``y`` (integer class labels, or per-position next-token targets for language
modelling), plus what a model needs to be built for it (``num_classes``,
``input_shape``) and what a person needs to read results (``name``,
``class_names``). ``DatasetSplits`` holds train / val / test of one dataset and
the standardization fitted on the training split.

Arrays stay in their raw units; standardization and augmentation are applied
per batch by the loader's transform (see ``transforms.py``), so augmentation
always works on raw images and evaluation reuses the training statistics.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import DataError


@dataclass
class Dataset:
    """One split of a dataset.

    x: (N, *input_shape) float32 features/images, or (N, T) int64 token ids.
    y: (N,) int64 labels in 0..num_classes-1, or (N, T) int64 next-token targets.
    meta: free-form extras (``vocab`` for text, ``image_shape`` for flat images).
    """

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    name: str = "dataset"
    class_names: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if len(self.x) != len(self.y):
            raise DataError(f"dataset '{self.name}': {len(self.x)} inputs but {len(self.y)} labels")
        if not self.class_names:
            self.class_names = [str(c) for c in range(self.num_classes)]

    @property
    def input_shape(self) -> tuple:
        """Shape of one sample (without the batch dimension)."""
        return tuple(self.x.shape[1:])

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index):
        return self.x[index], self.y[index]

    def __add__(self, other):
        """``ConcatDataset([self, other])``, as PyTorch's ``Dataset.__add__``."""
        from .combine import ConcatDataset

        return ConcatDataset([self, other])

    def subset(self, indices, name: str | None = None) -> "Dataset":
        """A new Dataset with the samples at ``indices`` (same metadata)."""
        indices = np.asarray(indices, dtype=np.int64)
        return Dataset(self.x[indices], self.y[indices], self.num_classes, name or self.name,
                       list(self.class_names), dict(self.meta))

    def class_counts(self) -> np.ndarray:
        """Targets per class: one per sample, or one per position (per-position targets, e.g. charlm's);
        ignored targets (negative: ``ignore_index``, which charlm's held-out windows use) are not counted."""
        y = np.asarray(self.y).reshape(-1)
        return np.bincount(y[y >= 0], minlength=self.num_classes)

    def summary(self) -> str:
        return f"{self.name}: {len(self)} samples, input {self.input_shape}, {self.num_classes} classes"


@dataclass
class DatasetSplits:
    """train / val / test of one dataset, plus the fitted standardizer.

    ``val`` or ``test`` may be ``None`` when the source has no such split.
    ``standardizer`` is a fitted :class:`~distnn.data.transforms.Standardizer`
    (fitted on ``train`` only) or ``None``; ``info`` records how the splits were
    made (sizes, seed, fractions) so a run can log and reproduce them.
    """

    train: Dataset
    val: Dataset | None = None
    test: Dataset | None = None
    standardizer: object | None = None
    info: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.train.name

    @property
    def num_classes(self) -> int:
        return self.train.num_classes

    @property
    def input_shape(self) -> tuple:
        return self.train.input_shape

    @property
    def class_names(self) -> list:
        return self.train.class_names

    @property
    def meta(self) -> dict:
        return self.train.meta

    def __getitem__(self, split: str) -> Dataset | None:
        if split not in ("train", "val", "test"):
            raise KeyError(f"unknown split {split!r} (expected 'train', 'val' or 'test')")
        return getattr(self, split)

    def items(self):
        """(split name, Dataset) for the splits that exist."""
        return [(k, d) for k, d in (("train", self.train), ("val", self.val), ("test", self.test)) if d is not None]

    def summary(self) -> str:
        sizes = " / ".join(f"{k} {len(d)}" for k, d in self.items())
        return f"{self.name}: {sizes}; input {self.input_shape}; {self.num_classes} classes"
