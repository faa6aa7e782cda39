"""PyTorch's positional ``DistributedSampler(dataset, num_replicas, rank)`` is a clear error here.

distnn's second argument is the communicator, so ``DistributedSampler(10, 2, 1)`` failed with
"AttributeError: 'int' object has no attribute 'size'", which says nothing about the cause.
"""
import pytest

from distnn.distributed import DistributedSampler


def test_an_integer_communicator_says_to_use_keywords():
    with pytest.raises(TypeError, match=r"num_replicas=\.\.\., rank=\.\.\."):
        DistributedSampler(10, 2, 1)


def test_the_keywords_shard_as_pytorch():
    assert list(DistributedSampler(10, num_replicas=3, rank=2, shuffle=False)) == [2, 5, 8, 1]
    assert list(DistributedSampler(10, num_replicas=3, rank=2, shuffle=False, drop_last=True)) == [2, 5, 8]
