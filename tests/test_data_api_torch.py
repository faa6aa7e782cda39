"""torch.utils.data's datasets, default_collate and DataLoader options in distnn.data, against PyTorch.

Every test runs the same script on both libraries and compares what comes out (tensors as numpy:
values, dtypes, shapes and the container structure), or the errors (type and the gist of the message).
"""
import collections

import numpy as np
import pytest

import distnn as dn
import distnn.data as D

torch = pytest.importorskip("torch")
T = torch.utils.data

from data_torch_oracle import plain, same_error  # noqa: E402


def assert_same(a, b):
    """``a`` (distnn's) equals ``b`` (torch's): container types, values, dtypes and shapes."""
    assert_same_plain(plain(a), plain(b))


def assert_same_plain(a, b):
    if isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray), f"{type(a)} where torch has an array"
        assert a.dtype == b.dtype and a.shape == b.shape, f"{a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        np.testing.assert_array_equal(a, b)
    elif isinstance(b, tuple) and len(b) == 2 and isinstance(b[0], str):
        assert a[0] == b[0], f"{a[0]} where torch has {b[0]}"
        assert len(a[1]) == len(b[1])
        for k, v in (b[1].items() if b[0] == "dict" else enumerate(b[1])):
            assert_same_plain(a[1][k], v)
    else:
        assert a == b and type(a) is type(b), f"{a!r} vs {b!r}"


X = np.arange(30, dtype=np.float32).reshape(10, 3)
Y = np.arange(10, dtype=np.int64) % 3


def tensor_datasets():
    return D.TensorDataset(dn.tensor(X), dn.tensor(Y)), T.TensorDataset(torch.tensor(X), torch.tensor(Y))


# ---------------------------------------------------------------- datasets
def test_tensor_dataset_items_and_length():
    ours, theirs = tensor_datasets()
    assert len(ours) == len(theirs) == 10
    for i in (0, 3, 9, -1, -10):
        assert_same(list(ours[i]), list(theirs[i]))
    assert_same(list(ours[2:5]), list(theirs[2:5]))
    same_error(lambda: D.TensorDataset(dn.tensor(X), dn.tensor(Y[:4])),
               lambda: T.TensorDataset(torch.tensor(X), torch.tensor(Y[:4])), "Size mismatch between tensors")


def test_concat_dataset_cumulative_sizes_and_negative_indices():
    parts = [list(range(3)), list(range(10, 15)), [], list(range(20, 22))]
    ours, theirs = D.ConcatDataset(parts), T.ConcatDataset(parts)
    assert ours.cumulative_sizes == theirs.cumulative_sizes == [3, 8, 8, 10]
    assert len(ours) == len(theirs)
    for i in range(-len(theirs), len(theirs)):
        assert ours[i] == theirs[i]
    for bad in (len(theirs), -len(theirs) - 1):
        gist = "list index out of range" if bad > 0 else "should not exceed dataset length"
        same_error(lambda: ours[bad], lambda: theirs[bad], gist)
    same_error(lambda: D.ConcatDataset([]), lambda: T.ConcatDataset([]), "should not be an empty iterable")


def test_concat_of_tensor_datasets_and_add():
    (a, ta), (b, tb) = tensor_datasets(), tensor_datasets()
    ours, theirs = a + b, ta + tb
    assert type(ours) is D.ConcatDataset and len(ours) == len(theirs) == 20
    for i in (0, 9, 10, 19, -1, -11):
        assert_same(list(ours[i]), list(theirs[i]))
    split = D.Dataset(X, Y, 3)
    assert len(split + split) == 20 and (split + split)[12][1] == Y[2]


def test_subset_items_and_list_index():
    ours = D.Subset(list(range(100, 110)), [7, 2, 2, 9])
    theirs = T.Subset(list(range(100, 110)), [7, 2, 2, 9])
    assert len(ours) == len(theirs) == 4
    assert [ours[i] for i in range(4)] == [theirs[i] for i in range(4)]
    assert ours[-1] == theirs[-1]
    assert ours.__getitems__([3, 0]) == theirs.__getitems__([3, 0])
    arr = np.arange(10) * 2  # a dataset indexed by a list: the list goes through
    assert list(D.Subset(arr, [1, 4])[[0, 1]]) == list(T.Subset(arr, [1, 4])[[0, 1]])


def test_stack_dataset_tuple_and_dict_forms():
    a, b = list(range(5)), list("abcde")
    assert [D.StackDataset(a, b)[i] for i in range(5)] == [T.StackDataset(a, b)[i] for i in range(5)]
    assert [D.StackDataset(n=a, s=b)[i] for i in range(5)] == [T.StackDataset(n=a, s=b)[i] for i in range(5)]
    assert len(D.StackDataset(a, b)) == len(T.StackDataset(a, b)) == 5
    same_error(lambda: D.StackDataset(a, b[:3]), lambda: T.StackDataset(a, b[:3]), "Size mismatch between datasets")
    same_error(lambda: D.StackDataset(a, s=b), lambda: T.StackDataset(a, s=b), "but both types are given")
    same_error(lambda: D.StackDataset(), lambda: T.StackDataset(), "At least one dataset should be passed")


class _Counting:
    def __init__(self, lib, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


def _iterable(lib, n, with_len=True):
    base = (D.IterableDataset if lib == "distnn" else T.IterableDataset)
    cls = type("Counting", (_Counting, base) if with_len else (base,),
               {} if with_len else {"__init__": _Counting.__init__, "__iter__": _Counting.__iter__})
    return cls(lib, n)


def test_chain_dataset_and_iterable_add():
    for lib, mod in (("distnn", D), ("torch", T)):
        chained = mod.ChainDataset([_iterable(lib, 3), _iterable(lib, 2)])
        assert list(chained) == [0, 1, 2, 0, 1] and len(chained) == 5
        assert list(_iterable(lib, 2) + _iterable(lib, 1)) == [0, 1, 0]
        assert isinstance(_iterable(lib, 2) + _iterable(lib, 1), mod.ChainDataset)
    same_error(lambda: list(D.ChainDataset([[1, 2]])), lambda: list(T.ChainDataset([[1, 2]])),
               "ChainDataset only supports IterableDataset")
    same_error(lambda: D.ConcatDataset([_iterable("distnn", 2)]), lambda: T.ConcatDataset([_iterable("torch", 2)]),
               "ConcatDataset does not support IterableDataset")
    with pytest.raises(NotImplementedError):
        iter(D.IterableDataset())


# ---------------------------------------------------------------- default_collate
Point = collections.namedtuple("Point", "x y")


def _same_samples(make):
    """make(lib) -> a list of samples built with that library's tensors."""
    return D.default_collate(make(dn.tensor)), T.default_collate(make(torch.tensor))


@pytest.mark.parametrize("make", [
    lambda t: [t(np.arange(3.0)), t(np.arange(3.0) + 1)],
    lambda t: [np.arange(6).reshape(2, 3), np.ones((2, 3), np.int32)],
    lambda t: [(np.float32(1.5), 2, "a"), (np.float32(-1.0), 3, "b")],
    lambda t: [1.5, 2.0, -3.25],
    lambda t: [1, 2, 3],
    lambda t: [True, False],
    lambda t: [np.int16(3), np.int16(-4)],
    lambda t: [b"ab", b"cd"],
    lambda t: [{"a": t(np.arange(2)), "b": [1.0, 2]}, {"a": t(np.arange(2) * 3), "b": [3.0, 4]}],
    lambda t: [Point(np.zeros(2, np.float32), 1), Point(np.ones(2, np.float32), 2)],
    lambda t: [[np.arange(2), (1, "z")], [np.arange(2) + 5, (2, "y")]],
    lambda t: [collections.OrderedDict(k=1.0), collections.OrderedDict(k=2.0)],
], ids=["tensors", "arrays", "tuples", "floats", "ints", "bools", "np-scalars", "bytes", "dicts", "namedtuples",
        "nested-lists", "ordered-dict"])
def test_default_collate_matches_torch(make):
    ours, theirs = _same_samples(make)
    assert_same(ours, theirs)
    if isinstance(theirs, collections.OrderedDict):
        assert type(ours) is collections.OrderedDict


def test_default_collate_gives_distnn_tensors():
    out = D.default_collate([(np.zeros(2, np.float32), 1)] * 4)
    assert isinstance(out, list) and all(isinstance(t, dn.Tensor) for t in out)
    assert out[0].shape == (4, 2) and out[1].shape == (4,)


def test_default_collate_errors_match_torch():
    same_error(lambda: D.default_collate([dn.tensor(np.zeros(3)), dn.tensor(np.zeros(4))]),
               lambda: T.default_collate([torch.zeros(3, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)]),
               r"stack expects each tensor to be equal size, but got \[3\] at entry 0 and \[4\] at entry 1")
    same_error(lambda: D.default_collate([np.zeros(3), np.zeros(2)]),
               lambda: T.default_collate([np.zeros(3), np.zeros(2)]),
               r"stack expects each tensor to be equal size, but got \[3\] at entry 0 and \[2\] at entry 1")
    same_error(lambda: D.default_collate([(1, 2), (1, 2, 3)]), lambda: T.default_collate([(1, 2), (1, 2, 3)]),
               "each element in list of batch should be of equal size")
    same_error(lambda: D.default_collate([object(), object()]), lambda: T.default_collate([object(), object()]),
               "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
               "found <class 'object'>")
    same_error(lambda: D.default_collate([np.array(["a"]), np.array(["b"])]),
               lambda: T.default_collate([np.array(["a"]), np.array(["b"])]), "batch must contain tensors")


def test_get_worker_info_is_none_also_inside_a_loader():
    # distnn's loader has no worker processes: as PyTorch's with num_workers=0, there is no worker info.
    assert D.get_worker_info() is None and T.get_worker_info() is None
    seen = []

    class Probe(D.IterableDataset):
        def __iter__(self):
            seen.append(D.get_worker_info())
            return iter(range(3))

    assert len(list(D.DataLoader(Probe(), batch_size=2))) == 2 and seen == [None]
