"""distnn's DataLoader with torch.utils.data's options (sampler, batch_sampler, collate_fn, iterable
datasets, drop_last, shuffle with a generator), against PyTorch's DataLoader on the same script."""

import numpy as np
import pytest

import distnn as dn
import distnn.data as D
from distnn.data import DataError

torch = pytest.importorskip("torch")
T = torch.utils.data

from data_torch_oracle import plain, same_error  # noqa: E402


def assert_same_batches(ours, theirs):
    ours, theirs = [plain(b) for b in ours], [plain(b) for b in theirs]
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        _same(a, b)


def _same(a, b):
    if isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(b, tuple):
        assert a[0] == b[0] and len(a[1]) == len(b[1])
        for k, v in (b[1].items() if b[0] == "dict" else enumerate(b[1])):
            _same(a[1][k], v)
    else:
        assert a == b


X = np.arange(44, dtype=np.float32).reshape(11, 4)
Y = (np.arange(11) * 7 % 5).astype(np.int64)


def pair_of_datasets():
    """The same ConcatDataset of a TensorDataset and a Subset of one, in both libraries."""
    ours = D.ConcatDataset([D.TensorDataset(dn.tensor(X), dn.tensor(Y)),
                            D.Subset(D.TensorDataset(dn.tensor(X * 2), dn.tensor(Y + 1)), [9, 0, 4, 4, 2])])
    theirs = T.ConcatDataset([T.TensorDataset(torch.tensor(X), torch.tensor(Y)),
                              T.Subset(T.TensorDataset(torch.tensor(X * 2), torch.tensor(Y + 1)), [9, 0, 4, 4, 2])])
    return ours, theirs


@pytest.mark.parametrize("batch_size", [1, 4, 16])
@pytest.mark.parametrize("drop_last", [False, True])
def test_batch_sampler_over_concat_subset_tensor_datasets_gives_torch_batches(batch_size, drop_last):
    ours, theirs = pair_of_datasets()
    order = [15, 0, 3, 12, -1, 7, 11, 2, 14, 5, 5, 1]  # (a negative index: ConcatDataset's own)
    a = D.DataLoader(ours, batch_sampler=D.BatchSampler(order, batch_size, drop_last))
    b = T.DataLoader(theirs, batch_sampler=T.BatchSampler(order, batch_size, drop_last))
    assert len(a) == len(b)
    assert_same_batches(a, b)
    assert_same_batches(a, b)  # (a second pass: the same batches)


@pytest.mark.parametrize("batch_size", [1, 3, 16])
@pytest.mark.parametrize("drop_last", [False, True])
def test_map_style_datasets_batch_as_torch(batch_size, drop_last):
    ours, theirs = pair_of_datasets()
    a, b = D.DataLoader(ours, batch_size, drop_last=drop_last), T.DataLoader(theirs, batch_size, drop_last=drop_last)
    assert len(a) == len(b)
    assert_same_batches(a, b)
    order = [3, 1, 4, 1, 5, 9, 2, 6]  # any sized iterable of indices is a sampler
    assert_same_batches(D.DataLoader(ours, batch_size, sampler=order, drop_last=drop_last),
                        T.DataLoader(theirs, batch_size, sampler=order, drop_last=drop_last))


def test_dicts_strings_and_a_list_dataset_batch_as_torch():
    samples = [{"x": np.full(2, i, np.float64), "name": f"s{i}", "k": i} for i in range(7)]
    assert_same_batches(D.DataLoader(samples, 3), T.DataLoader(samples, 3))
    assert_same_batches(D.DataLoader(list(range(5)), 2), T.DataLoader(list(range(5)), 2))
    stacked = (D.StackDataset(a=list(range(5)), b=[float(i) for i in range(5)]),
               T.StackDataset(a=list(range(5)), b=[float(i) for i in range(5)]))
    assert_same_batches(D.DataLoader(stacked[0], 2), T.DataLoader(stacked[1], 2))


@pytest.mark.parametrize("replicas", [2, 3, 4])
def test_distributed_sampler_shards_a_tensor_dataset_as_torch(replicas):
    ours, theirs = pair_of_datasets()
    for rank in range(replicas):
        a = D.DataLoader(ours, 2, sampler=D.DistributedSampler(ours, replicas, rank, shuffle=False), with_mask=True)
        b = T.DataLoader(theirs, 2, sampler=T.DistributedSampler(theirs, replicas, rank, shuffle=False))
        batches = list(a)
        assert_same_batches([batch for batch, _ in batches], b)
        # distnn's padding mask: the positions past the dataset's end (torch's repeats) are marked
        positions = np.arange(rank, len(a.sampler) * replicas, replicas)
        np.testing.assert_array_equal(np.concatenate([m for _, m in batches]), positions < len(ours))


def test_collate_fn():
    ours, theirs = pair_of_datasets()
    keep = lambda batch: [(float(x.sum()), int(y)) for x, y in batch]  # noqa: E731
    assert list(D.DataLoader(ours, 5, collate_fn=keep)) == list(T.DataLoader(theirs, 5, collate_fn=keep))
    # distnn's own Dataset and (x, y) pairs take a collate_fn too: it gets (x_i, y_i) samples
    split = D.Dataset(X, Y, 5)
    for data in (split, (X, Y)):
        batches = list(D.DataLoader(data, 4, collate_fn=lambda b: b))
        assert [len(b) for b in batches] == [4, 4, 3]
        np.testing.assert_array_equal(batches[2][1][0], X[9])
        assert batches[2][1][1] == Y[9]
    assert_same_batches(D.DataLoader(split, 4, collate_fn=D.default_collate),
                        T.DataLoader(T.TensorDataset(torch.tensor(X), torch.tensor(Y)), 4))


class _Stream:
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter({"v": np.float32(i), "i": i} for i in range(self.n))


def _stream(lib, n, with_len):
    base = D.IterableDataset if lib == "distnn" else T.IterableDataset
    body = {"__len__": lambda self: self.n} if with_len else {}
    return type("Stream", (_Stream, base), body)(n)


@pytest.mark.parametrize("drop_last", [False, True])
def test_iterable_dataset_batches_as_torch(drop_last):
    a = D.DataLoader(_stream("distnn", 10, True), 4, drop_last=drop_last)
    b = T.DataLoader(_stream("torch", 10, True), 4, drop_last=drop_last)
    assert len(a) == len(b) == (2 if drop_last else 3)
    assert_same_batches(a, b)
    same_error(lambda: len(D.DataLoader(_stream("distnn", 10, False), 4)),
               lambda: len(T.DataLoader(_stream("torch", 10, False), 4)), "has no len()")
    assert_same_batches(D.DataLoader(_stream("distnn", 5, False), 2), T.DataLoader(_stream("torch", 5, False), 2))


def test_iterable_dataset_refuses_shuffle_and_samplers_as_torch():
    for key, value in (("shuffle", True), ("sampler", [0, 1]), ("batch_sampler", [[0, 1]])):
        same_error(lambda: D.DataLoader(_stream("distnn", 4, True), **{key: value}),
                   lambda: T.DataLoader(_stream("torch", 4, True), **{key: value}),
                   f"DataLoader with IterableDataset: expected unspecified {key} option")


def test_option_conflicts_refused_as_torch():
    ours, theirs = pair_of_datasets()
    for extra in ({"batch_size": 2}, {"shuffle": True}, {"sampler": [0, 1]}, {"drop_last": True}):
        same_error(lambda: D.DataLoader(ours, batch_sampler=[[0, 1]], **extra),
                   lambda: T.DataLoader(theirs, batch_sampler=[[0, 1]], **extra),
                   "batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and drop_last")
    same_error(lambda: D.DataLoader(ours, sampler=[0, 1], shuffle=True),
               lambda: T.DataLoader(theirs, sampler=[0, 1], shuffle=True),
               "sampler option is mutually exclusive with shuffle")
    same_error(lambda: D.DataLoader(ours, num_workers=-1), lambda: T.DataLoader(theirs, num_workers=-1),
               "num_workers option should be non-negative")
    with pytest.raises(DataError, match="no worker processes"):
        D.DataLoader(ours, num_workers=2)
    with pytest.raises(DataError, match="map-style dataset"):
        D.DataLoader(5)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        D.DataLoader(ours, shuffle=True, generator=torch.Generator())
    with pytest.raises(DataError, match="transform"):
        D.DataLoader(ours, transform=lambda x, rng: x)


def _orders(loader, passes):
    return [np.concatenate([np.asarray(b[0].data) for b in loader])[:, 0].tolist() for _ in range(passes)]


def test_shuffle_with_generator_is_reproducible_and_reshuffles_each_pass():
    ours, _ = pair_of_datasets()
    first = _orders(D.DataLoader(ours, 4, shuffle=True, generator=np.random.default_rng(3)), 3)
    assert first == _orders(D.DataLoader(ours, 4, shuffle=True, generator=np.random.default_rng(3)), 3)
    assert first != _orders(D.DataLoader(ours, 4, shuffle=True, generator=np.random.default_rng(4)), 3)
    everything = sorted(np.concatenate([np.asarray(ours[i][0].data)[None] for i in range(len(ours))])[:, 0].tolist())
    assert all(sorted(o) == everything for o in first) and len({tuple(o) for o in first}) == 3


def test_a_given_random_sampler_reshuffles_each_pass_as_torch():
    # PyTorch's RandomSampler draws anew each pass; distnn's per epoch, and the loader moves the epoch on
    ours, _ = pair_of_datasets()
    loader = D.DataLoader(ours, 4, sampler=D.RandomSampler(ours))
    orders = _orders(loader, 3)
    assert len({tuple(o) for o in orders}) == 3
    again = _orders(D.DataLoader(ours, 4, sampler=D.RandomSampler(ours)), 3)
    assert again == orders


@pytest.mark.parametrize("kind", ["shuffle", "batch_sampler", "random_sampler"])
def test_generic_path_resumes_mid_epoch_exactly(kind):
    ours, _ = pair_of_datasets()

    def make():
        if kind == "shuffle":
            return D.DataLoader(ours, 3, shuffle=True, seed=5)
        if kind == "random_sampler":
            return D.DataLoader(ours, 3, sampler=D.RandomSampler(ours, seed=5))
        return D.DataLoader(ours, batch_sampler=D.BatchSampler(D.RandomSampler(ours, seed=5), 3, False))

    full = make()
    list(full)
    uninterrupted = [np.asarray(b[0].data) for b in full]  # epoch 1 (epoch 0 was the pass above)
    partial = make()
    partial.set_epoch(1)
    it = iter(partial)
    for _ in range(2):
        next(it)
    resumed = make()
    resumed.load_state_dict(partial.state_dict())
    rest = [np.asarray(b[0].data) for b in resumed]
    assert len(rest) == len(uninterrupted) - 2 and resumed.state_dict()["batch"] == len(resumed)
    for a, b in zip(rest, uninterrupted[2:]):
        np.testing.assert_array_equal(a, b)


def test_iterable_dataset_resumes_mid_pass():
    full = [b["i"].data.tolist() for b in D.DataLoader(_stream("distnn", 10, False), 3)]
    partial = D.DataLoader(_stream("distnn", 10, False), 3)
    it = iter(partial)
    next(it)
    assert partial.state_dict()["batch"] == 1
    resumed = D.DataLoader(_stream("distnn", 10, False), 3)
    resumed.load_state_dict(partial.state_dict())
    assert [b["i"].data.tolist() for b in resumed] == full[1:] == [[3, 4, 5], [6, 7, 8], [9]]
    assert resumed.state_dict()["batch"] == 4
