"""torch.utils.data's samplers and random_split in distnn.data, against PyTorch.

Deterministic orders (sequential, batching, DistributedSampler without shuffle) must equal
PyTorch's index lists; random ones draw from numpy generators, so they are checked for their
exact properties (permutations, partitions, lengths, PyTorch's structure of repeats), their
distribution on fixed seeds, and reproducibility. Errors: PyTorch's types, the gist of its messages.
"""
import warnings

import numpy as np
import pytest

import distnn.data as D

torch = pytest.importorskip("torch")
T = torch.utils.data

from data_torch_oracle import same_error  # noqa: E402


DATA = list(range(100, 111))  # 11 samples


def test_sequential_sampler():
    assert list(D.SequentialSampler(DATA)) == list(T.SequentialSampler(DATA))
    assert len(D.SequentialSampler(DATA)) == len(T.SequentialSampler(DATA)) == 11
    assert list(D.SequentialSampler(4)) == [0, 1, 2, 3]  # distnn's shorthand: a length


def test_random_sampler_permutations_and_torch_structure_of_repeats():
    for num_samples in (None, 4, 11, 25):
        s = D.RandomSampler(DATA, num_samples=num_samples, generator=np.random.default_rng(1))
        order = list(s)
        assert len(order) == len(s) == len(T.RandomSampler(DATA, num_samples=num_samples)) == (num_samples or 11)
        # PyTorch's: whole permutations of the indices, then the start of another
        for start in range(0, len(order), 11):
            part = order[start:start + 11]
            assert len(set(part)) == len(part) and set(part) <= set(range(11))
    drawn = list(D.RandomSampler(DATA, replacement=True, num_samples=40, generator=np.random.default_rng(2)))
    assert len(drawn) == 40 and set(drawn) <= set(range(11)) and len(set(drawn)) < 40


def test_random_sampler_reproducibility():
    def orders(gen_seed=None, epoch=None, passes=2):
        s = D.RandomSampler(DATA, generator=None if gen_seed is None else np.random.default_rng(gen_seed))
        if epoch is not None:
            s.set_epoch(epoch)
        return [list(s) for _ in range(passes)]

    assert orders(5) == orders(5)
    a, b = orders(5)
    assert a != b and sorted(a) == sorted(b) == list(range(11))  # a generator goes on: each pass anew
    assert orders(epoch=3) == orders(epoch=3) and orders(epoch=3) != orders(epoch=4)
    p, q = orders(epoch=3)
    assert p == q  # without a generator, the order belongs to the epoch (what the DataLoader's resume needs)


def test_random_sampler_uniform_with_replacement():
    counts = np.bincount(list(D.RandomSampler(10, True, 100_000, generator=np.random.default_rng(0))), minlength=10)
    assert np.abs(counts / 100_000 - 0.1).max() < 0.005
    # each index is first of a permutation equally often
    firsts = np.bincount([next(iter(D.RandomSampler(5, seed=s))) for s in range(5000)], minlength=5)
    assert np.abs(firsts / 5000 - 0.2).max() < 0.03


def test_random_sampler_errors_match_torch():
    same_error(lambda: D.RandomSampler(DATA, replacement=1), lambda: T.RandomSampler(DATA, replacement=1),
               "replacement should be a boolean value, but got replacement=1")
    for n in (0, -2, 2.5):
        same_error(lambda: D.RandomSampler(DATA, num_samples=n), lambda: T.RandomSampler(DATA, num_samples=n),
                   f"num_samples should be a positive integer value, but got num_samples={n}")
    same_error(lambda: D.RandomSampler([]), lambda: T.RandomSampler([]), "num_samples=0")
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        D.RandomSampler(DATA, generator=torch.Generator())


def test_subset_random_sampler():
    indices = [7, 3, 3, 20, 5]
    s = D.SubsetRandomSampler(indices, generator=np.random.default_rng(0))
    assert len(s) == len(T.SubsetRandomSampler(indices)) == 5
    orders = [list(s) for _ in range(20)]
    assert all(sorted(o) == sorted(indices) for o in orders) and len({tuple(o) for o in orders}) > 1
    assert list(D.SubsetRandomSampler(indices, seed=4)) == list(D.SubsetRandomSampler(indices, seed=4))


def test_weighted_random_sampler_distribution():
    weights = [0.0, 1.0, 3.0, 6.0]
    drawn = np.array(list(D.WeightedRandomSampler(weights, 50_000, generator=np.random.default_rng(0))))
    assert len(drawn) == 50_000 and (drawn != 0).all()
    np.testing.assert_allclose(np.bincount(drawn, minlength=4) / 50_000, [0, 0.1, 0.3, 0.6], atol=0.01)
    once = list(D.WeightedRandomSampler(weights, 3, replacement=False, generator=np.random.default_rng(1)))
    assert sorted(once) == [1, 2, 3]  # each at most once; the zero weight never
    assert len(D.WeightedRandomSampler(weights, 7)) == len(T.WeightedRandomSampler(weights, 7)) == 7


def test_weighted_random_sampler_errors_match_torch():
    w = [1.0, 2.0]
    for bad in (0, True, 1.5):
        same_error(lambda: D.WeightedRandomSampler(w, bad), lambda: T.WeightedRandomSampler(w, bad),
                   f"num_samples should be a positive integer value, but got num_samples={bad}")
    same_error(lambda: D.WeightedRandomSampler(w, 2, replacement=0),
               lambda: T.WeightedRandomSampler(w, 2, replacement=0),
               "replacement should be a boolean value")
    same_error(lambda: D.WeightedRandomSampler([[1.0, 2.0]], 2), lambda: T.WeightedRandomSampler([[1.0, 2.0]], 2),
               r"weights should be a 1d sequence but given weights have shape \(1, 2\)")
    # on iteration, as torch.multinomial's
    same_error(lambda: list(D.WeightedRandomSampler(w, 3, replacement=False)),
               lambda: list(T.WeightedRandomSampler(w, 3, replacement=False)), "cannot sample n_sample > prob_dist")
    same_error(lambda: list(D.WeightedRandomSampler([1.0, -1.0], 2)),
               lambda: list(T.WeightedRandomSampler([1.0, -1.0], 2)),
               "(element|entry) < 0")  # (torch.multinomial words it two ways)


@pytest.mark.parametrize("batch_size", [1, 3, 4, 11, 12])
@pytest.mark.parametrize("drop_last", [False, True])
def test_batch_sampler_matches_torch(batch_size, drop_last):
    ours = D.BatchSampler(D.SequentialSampler(DATA), batch_size, drop_last)
    theirs = T.BatchSampler(T.SequentialSampler(DATA), batch_size, drop_last)
    assert list(ours) == list(theirs) and len(ours) == len(theirs)
    assert list(D.BatchSampler([5, 1, 4, 1, 5], 2, drop_last)) == list(T.BatchSampler([5, 1, 4, 1, 5], 2, drop_last))


def test_batch_sampler_errors_match_torch():
    for bad in (0, -1, True, 2.0):
        same_error(lambda: D.BatchSampler(DATA, bad, False), lambda: T.BatchSampler(DATA, bad, False),
                   f"batch_size should be a positive integer value, but got batch_size={bad}")
    same_error(lambda: D.BatchSampler(DATA, 2, 0), lambda: T.BatchSampler(DATA, 2, 0),
               "drop_last should be a boolean value, but got drop_last=0")


@pytest.mark.parametrize("n", [0, 1, 5, 10, 11])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("drop_last", [False, True])
def test_distributed_sampler_without_shuffle_gives_torch_index_lists(n, replicas, drop_last):
    data = list(range(n))
    for rank in range(replicas):
        ours = D.DistributedSampler(data, replicas, rank, shuffle=False, drop_last=drop_last)  # torch's positions
        theirs = T.DistributedSampler(data, replicas, rank, shuffle=False, drop_last=drop_last)
        ours.set_epoch(3)
        theirs.set_epoch(3)
        assert list(ours) == list(theirs)
        assert (len(ours), ours.num_samples, ours.total_size) == (len(theirs), theirs.num_samples, theirs.total_size)


@pytest.mark.parametrize("n,replicas,drop_last", [(10, 3, False), (10, 3, True), (4, 3, False), (12, 4, False)])
def test_distributed_sampler_shuffle_partitions(n, replicas, drop_last):
    def shards(epoch, seed=0):
        out = []
        for rank in range(replicas):
            s = D.DistributedSampler(n, replicas, rank, True, seed, drop_last)
            s.set_epoch(epoch)
            out.append(list(s))
        return out

    a = shards(0)
    lengths = [len(T.DistributedSampler(range(n), replicas, r, True, 0, drop_last)) for r in range(replicas)]
    assert [len(s) for s in a] == lengths
    # the global order is a permutation; rank r takes its positions r, r + R, ...; padding repeats its start
    order = [a[p % replicas][p // replicas] for p in range(sum(lengths))]
    real = min(n, len(order))
    assert len(set(order[:real])) == real and order[real:] == order[:len(order) - real]
    if not drop_last:
        assert set(order) == set(range(n))
    assert shards(0) == a and shards(1) != a and shards(0, seed=1) != a


def test_distributed_sampler_errors_match_torch():
    same_error(lambda: D.DistributedSampler(DATA, 2, 2), lambda: T.DistributedSampler(DATA, 2, 2),
               r"Invalid rank 2, rank should be in the interval \[0, 1\]")
    same_error(lambda: D.DistributedSampler(DATA, 2, -1), lambda: T.DistributedSampler(DATA, 2, -1),
               r"Invalid rank -1, rank should be in the interval \[0, 1\]")


@pytest.mark.parametrize("n,lengths", [
    (10, [3, 7]), (10, [0, 10, 0]), (11, [0.5, 0.5]), (10, [0.3, 0.3, 0.4]), (7, [0.1, 0.2, 0.7]),
    (5, [0.25, 0.25, 0.25, 0.25]), (3, [1.0]), (23, [0.7, 0.2, 0.1])])
def test_random_split_lengths_partition_and_reproducibility(n, lengths):
    data = list(range(100, 100 + n))
    with warnings.catch_warnings(record=True) as theirs_warned:
        warnings.simplefilter("always")
        theirs = T.random_split(data, lengths, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as ours_warned:
        warnings.simplefilter("always")
        ours = D.random_split(data, lengths, generator=np.random.default_rng(0))
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    assert [str(w.message) for w in ours_warned] == [str(w.message) for w in theirs_warned]
    items = [s[i] for s in ours for i in range(len(s))]
    assert sorted(items) == data and all(isinstance(s, D.Subset) and s.dataset is data for s in ours)
    again = D.random_split(data, lengths, generator=np.random.default_rng(0))
    assert [s.indices for s in again] == [s.indices for s in ours]
    if n > 3:
        other = D.random_split(data, lengths, generator=np.random.default_rng(1))
        assert [s.indices for s in other] != [s.indices for s in ours]


def test_random_split_errors_match_torch():
    data = list(range(10))
    same_error(lambda: D.random_split(data, [3, 3]), lambda: T.random_split(data, [3, 3]),
               "Sum of input lengths does not equal the length of the input dataset!")
    same_error(lambda: D.random_split(data, [1.5, -0.5]), lambda: T.random_split(data, [1.5, -0.5]),
               "Fraction at index 0 is not between 0 and 1")
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        D.random_split(data, [5, 5], generator=torch.Generator())


def test_random_split_default_generator_follows_manual_seed():
    import distnn as dn

    dn.manual_seed(7)
    a = [s.indices for s in D.random_split(range(20), [0.5, 0.5])]
    dn.manual_seed(7)
    assert [s.indices for s in D.random_split(range(20), [0.5, 0.5])] == a
