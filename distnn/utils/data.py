"""``torch.utils.data``'s names for what :mod:`distnn.data` has: the datasets, samplers, ``DataLoader``,
``random_split``, collation and ``get_worker_info``, the same objects under the same names. (PyTorch's
datapipes and runtime validation have no counterpart.)"""
from distnn.data import (BatchSampler, ChainDataset, ConcatDataset, DataLoader, Dataset, DistributedSampler,
                         IterableDataset, RandomSampler, Sampler, SequentialSampler, StackDataset, Subset,
                         SubsetRandomSampler, TensorDataset, WeightedRandomSampler, default_collate, default_convert,
                         get_worker_info, random_split)

__all__ = ["BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset", "DistributedSampler",
           "IterableDataset", "RandomSampler", "Sampler", "SequentialSampler", "StackDataset", "Subset",
           "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler", "default_collate", "default_convert",
           "get_worker_info", "random_split"]
