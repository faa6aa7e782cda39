"""DistributedSampler (disjoint, complete, reshuffled per epoch, padding marked, resumable) and sharded metrics."""
import math

import numpy as np
import pytest

import distnn

from distnn.distributed import Accuracy, DistributedSampler, Mean, Sum, reduce_sum_count, simulate


@pytest.mark.parametrize("n,size", [(10, 2), (10, 3), (7, 4), (2, 3), (12, 4)])
def test_disjoint_complete_and_padding_marked(n, size):
    samplers = [DistributedSampler(n, num_replicas=size, rank=r, seed=5) for r in range(size)]
    lens = {len(s) for s in samplers}
    assert lens == {-(-n // size)}  # every rank the same number of steps
    real = []
    for s in samplers:
        idx, valid = s.indices_and_mask()
        assert list(s) == idx.tolist() and len(idx) == len(s)
        assert np.array_equal(s.valid_mask, valid)
        real += idx[valid].tolist()
    assert sorted(real) == list(range(n))  # each sample exactly once among the valid ones
    padded = sum((~s.valid_mask).sum() for s in samplers)
    assert padded == len(samplers[0]) * size - n


def test_drop_last_drops_the_tail_instead():
    samplers = [DistributedSampler(10, num_replicas=3, rank=r, drop_last=True) for r in range(3)]
    seen = [i for s in samplers for i in s]
    assert all(len(s) == 3 for s in samplers) and len(set(seen)) == 9 and all(s.valid_mask.all() for s in samplers)


def test_order_changes_per_epoch_and_repeats_for_same_seed_and_epoch():
    a = DistributedSampler(50, num_replicas=2, rank=0, seed=1)
    b = DistributedSampler(50, num_replicas=2, rank=0, seed=1)
    c = DistributedSampler(50, num_replicas=2, rank=0, seed=2)
    e0 = list(a)
    a.set_epoch(1)
    e1 = list(a)
    b.set_epoch(1)
    assert e0 != e1 and list(b) == e1 and list(c) != e0
    a.set_epoch(0)
    assert list(a) == e0


def test_no_shuffle_is_strided_identity():
    s = DistributedSampler(7, num_replicas=2, rank=1, shuffle=False)
    assert list(s) == [1, 3, 5, 0] and s.valid_mask.tolist() == [True, True, True, False]


def test_global_order_is_independent_of_world_size():
    # The union over ranks, position by position, is the same global order for any number of ranks.
    orders = []
    for size in (1, 2, 4):
        samplers = [DistributedSampler(20, num_replicas=size, rank=r, seed=3) for r in range(size)]
        per = [s.indices_and_mask()[0] for s in samplers]
        orders.append([int(per[p % size][p // size]) for p in range(20)])
    assert orders[0] == orders[1] == orders[2]


@pytest.mark.parametrize("new_size", [2, 3])
def test_resume_mid_epoch_on_the_same_or_another_world_size(new_size):
    n, size, consumed = 23, 2, 4  # every rank consumed 4 samples of epoch 3, then the job stopped
    before = [DistributedSampler(n, num_replicas=size, rank=r, seed=9) for r in range(size)]
    for s in before:
        s.set_epoch(3)
    done = [i for s in before for i in list(s)[:consumed]]
    position = before[0].position_after(consumed)
    assert position == consumed * size
    after = [DistributedSampler(n, num_replicas=new_size, rank=r, seed=9) for r in range(new_size)]
    rest = []
    for s in after:
        s.load_state_dict({"epoch": 3, "start": position})
        idx, valid = s.indices_and_mask()
        rest += idx[valid].tolist()
    assert sorted(done + rest) == list(range(n))  # nothing lost, nothing repeated
    assert after[0].global_order()[position:].tolist()[:1] == [after[0].indices_and_mask()[0][0]]
    after[0].set_epoch(4)
    assert after[0].start == 0


def test_sampler_takes_rank_and_size_from_comm():
    res = simulate(3, lambda comm: (len(DistributedSampler(10, comm)), DistributedSampler(10, comm).rank))
    assert res == [(4, 0), (4, 1), (4, 2)]


def test_bad_arguments():
    with pytest.raises(ValueError, match="invalid rank 3 for num_replicas 3"):
        DistributedSampler(10, num_replicas=3, rank=3)
    with pytest.raises(ValueError, match="outside the dataset"):
        DistributedSampler(10, num_replicas=1, rank=0).set_start(11)


# --------------------------------------------------------------------------- metrics
def test_sharded_evaluation_with_padding_equals_one_process():
    rng = np.random.default_rng(0)
    n, classes = 23, 4
    logits = rng.standard_normal((n, classes))
    labels = rng.integers(0, classes, n)
    losses = rng.random(n)

    def fn(comm):
        s = DistributedSampler(n, comm, shuffle=True, seed=1)
        idx, valid = s.indices_and_mask()
        acc, loss, total = Accuracy(comm), Mean(comm), Sum(comm)
        for part in np.array_split(np.arange(len(idx)), 2):  # two eval batches
            acc.update(logits[idx[part]], labels[idx[part]], mask=valid[part])
            loss.update(losses[idx[part]], mask=valid[part])
            total.update(np.ones(len(part)), mask=valid[part])
        return acc.compute(), loss.compute(), total.compute()

    for size in (2, 3, 5):
        for a, m, t in simulate(size, fn):
            assert a == (logits.argmax(1) == labels).mean()
            assert m == math.fsum(losses) / n  # exact sum over any sharding, rounded once, as one process
            assert t == n


def test_mean_of_batch_means_with_counts_and_reduce_sum_count():
    def fn(comm):
        m = Mean(comm)
        m.update(2.0 + comm.rank, count=1 + comm.rank)  # rank r: mean 2+r over 1+r samples
        return m.compute(), reduce_sum_count(comm, 1.5, comm.rank)

    for mean, (s, c) in simulate(3, fn):
        assert mean == pytest.approx((2 * 1 + 3 * 2 + 4 * 3) / 6)
        assert (s, c) == (4.5, 3.0)


def test_a_batch_mean_may_be_a_one_element_array_and_anything_larger_is_named():
    from distnn.distributed.local_comm import LocalCommunicator

    m = Mean(LocalCommunicator())
    m.update(np.array([5.0]), count=2)  # (a 1-element array was a TypeError from float() under numpy 2)
    m.update(distnn.Tensor(np.float32(2.0)), count=1)
    assert m.compute() == 4.0
    with pytest.raises(ValueError, match=r"Mean.update\(values, count=...\).*one number; got shape \(2,\)"):
        m.update(np.array([1.0, 2.0]), count=2)


def test_metric_errors_are_clear():
    from distnn.distributed.local_comm import LocalCommunicator

    acc = Accuracy(LocalCommunicator())
    with pytest.raises(ValueError, match="do not match targets"):
        acc.update(np.zeros((3, 2)), np.zeros(4, dtype=int))
    assert np.isnan(Mean(LocalCommunicator()).compute())


@pytest.mark.parametrize("start", [0, 24])
def test_a_samples_augmentation_is_the_same_on_any_number_of_ranks(start):
    # each sample of a global batch is shifted / noised alike on 1, 2 or 3 ranks (also from a resumed
    # position): its draws are its rows of the global batch's draws, seeded by the batch, not the rank
    from distnn.data import DataLoader
    from distnn.data.transforms import Compose, GaussianNoise, RandomAffine

    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 64)).astype(np.float32)
    y = np.arange(50) % 10
    tf = Compose([RandomAffine(shift=1, image_shape=(8, 8)), GaussianNoise(0.5)])
    seen = {}
    for world in (1, 2, 3):
        out = {}
        for r in range(world):
            s = DistributedSampler(50, num_replicas=world, rank=r, seed=4)
            s.set_epoch(2)
            s.set_start(start)
            loader = DataLoader((x, y), batch_size=12 // world, sampler=s, transform=tf, seed=9, with_mask=True)
            loader.set_epoch(2)
            idx = s.indices_and_mask()[0]
            k = 0
            for xb, _, valid in loader:
                for row, ok in zip(xb, valid):
                    if ok:
                        out[int(idx[k])] = row
                    k += 1
        seen[world] = out
    assert set(seen[1]) == set(seen[2]) == set(seen[3]) and len(seen[1]) == 50 - start
    for i in seen[1]:
        assert not np.array_equal(seen[1][i], x[i])  # augmented
        np.testing.assert_array_equal(seen[2][i], seen[1][i])
        np.testing.assert_array_equal(seen[3][i], seen[1][i])
