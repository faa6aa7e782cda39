"""distnn.data: datasets, splits, transforms and the DataLoader.

``load_dataset(name, **options)`` returns ``DatasetSplits`` (train / val /
test ``Dataset`` objects plus the standardizer fitted on train);
``list_datasets()`` names what is available. ``DataLoader`` iterates numpy
batches over a sampler (a ``DistributedSampler`` shard, or the local
``RandomSampler``/``SequentialSampler``), reshuffling per epoch, applying
per-batch transforms with a generator derived from (seed, rank, epoch, batch).
Bad input raises ``DataError`` (a ``ValueError``) with a one-line message.

``torch.utils.data``'s building blocks, with its names and behaviour:
``TensorDataset``, ``StackDataset``, ``ConcatDataset``, ``Subset``
(``combine.py``), ``IterableDataset``, ``ChainDataset``, ``get_worker_info``
(``iterable.py``), ``random_split``, the samplers (``samplers.py``,
``distributed_sampler.py``) and ``default_collate``; the ``DataLoader`` takes
them (``sampler=``, ``batch_sampler=``, ``collate_fn=``; ``batch_size=None``: each sample through
``default_convert``), with PyTorch's whole signature (``loader_options.py``).
"""
from .dataset import Dataset, DatasetSplits
from .datasets import (RawData, as_token_ids, check_dataset_options, get_dataset_entry, list_dataset_options, list_datasets, load_dataset, make_splits,
                       register_dataset)
from .errors import DataError
from .files import check_labels, load_csv, load_npz
from .idx import find_mnist_files, load_idx_pair, read_idx, write_idx
from .loader import DataLoader
from .collate import default_collate, default_convert
from .combine import ConcatDataset, StackDataset, Subset, TensorDataset
from .distributed_sampler import DistributedSampler
from .iterable import ChainDataset, IterableDataset, get_worker_info
from .random_split import random_split
from .samplers import (BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
                       WeightedRandomSampler)
from .split import split_sizes, stratified_split
from .image_augment import ColorJitter, RandomHorizontalFlip, flip_images, jitter_images
from .transforms import (Compose, GaussianNoise, RandomAffine, Standardizer, affine_images, build_transforms)

__all__ = [
    "Dataset", "DatasetSplits", "DataError", "DataLoader", "RandomSampler", "SequentialSampler", "RawData",
    "load_dataset", "list_datasets", "list_dataset_options", "register_dataset", "get_dataset_entry",
    "make_splits", "as_token_ids", "check_dataset_options", "load_csv", "load_npz", "check_labels", "read_idx", "write_idx", "find_mnist_files",
    "load_idx_pair", "stratified_split", "split_sizes", "Standardizer", "RandomAffine", "GaussianNoise",
    "Compose", "affine_images", "build_transforms", "RandomHorizontalFlip", "ColorJitter", "flip_images",
    "jitter_images", "TensorDataset", "StackDataset", "ConcatDataset", "ChainDataset", "IterableDataset", "Subset",
    "random_split", "Sampler", "BatchSampler", "SubsetRandomSampler", "WeightedRandomSampler", "DistributedSampler",
    "default_collate", "default_convert", "get_worker_info",
]
