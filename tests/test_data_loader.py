"""distnn.data's loader: coverage and reshuffling as PyTorch's, its sampler's epoch and start, a mid-epoch start,
saved state resuming, sharded samplers with padding masks."""
import numpy as np
import pytest

import distnn.data as D
from distnn.data import DataError


def _ids(n):
    return np.arange(n, dtype=np.float32)[:, None], np.arange(n) % 3


def test_loader_covers_data_reshuffles_and_is_reproducible():
    data = _ids(23)
    loader = D.DataLoader(data, batch_size=5, shuffle=True, seed=7)
    assert len(loader) == 5
    orders = []
    for epoch in range(2):
        loader.set_epoch(epoch)
        batches = list(loader)
        assert [len(b[0]) for b in batches] == [5, 5, 5, 5, 3]
        order = np.concatenate([xb[:, 0] for xb, _ in batches]).astype(int)
        assert sorted(order) == list(range(23))
        for xb, yb in batches:
            np.testing.assert_array_equal(yb, xb[:, 0].astype(int) % 3)
        orders.append(order)
    assert not np.array_equal(orders[0], orders[1])
    again = D.DataLoader(data, batch_size=5, shuffle=True, seed=7)
    again.set_epoch(1)
    np.testing.assert_array_equal(np.concatenate([xb[:, 0] for xb, _ in again]).astype(int), orders[1])
    dl = D.DataLoader(data, batch_size=5, drop_last=True)
    assert len(dl) == 4 and sum(len(b[0]) for b in dl) == 20
    with pytest.raises(DataError, match="either sampler or shuffle"):
        D.DataLoader(data, 5, shuffle=True, sampler=D.SequentialSampler(23))


def _order_of(batches):
    return np.concatenate([b[0][:, 0] for b in batches]).astype(int).tolist()


def test_loader_reshuffles_every_pass_like_pytorch():
    data = _ids(23)
    loader = D.DataLoader(data, batch_size=5, shuffle=True, seed=7)
    passes = [_order_of(loader) for _ in range(3)]  # no set_epoch: each pass is the next epoch
    assert passes[0] != passes[1] != passes[2]
    for epoch, order in enumerate(passes):
        placed = D.DataLoader(data, batch_size=5, shuffle=True, seed=7)
        placed.set_epoch(epoch)
        assert _order_of(placed) == order
    it = iter(loader)  # a pass broken off: the next one is still a new epoch
    next(it)
    assert loader.epoch == 3
    placed = D.DataLoader(data, batch_size=5, shuffle=True, seed=7)
    placed.set_epoch(4)
    assert _order_of(loader) == _order_of(placed) and loader.epoch == 4
    loader.set_epoch(1)  # placed by hand: exactly that epoch
    assert _order_of(loader) == passes[1]


def test_loader_follows_its_samplers_epoch_and_start():
    from distnn.distributed.sampler import DistributedSampler

    data = _ids(20)
    for rank in range(2):
        sampler = DistributedSampler(20, shuffle=True, seed=1, num_replicas=2, rank=rank)
        loader = D.DataLoader(data, 2, sampler=sampler)
        for epoch in (0, 1, 2, 1):  # PyTorch's pattern: sampler.set_epoch(e), then iterate the loader
            sampler.set_epoch(epoch)
            reference = D.DataLoader(data, 2, sampler=DistributedSampler(20, shuffle=True, seed=1, num_replicas=2,
                                                                         rank=rank))
            reference.set_epoch(epoch)
            assert _order_of(loader) == _order_of(reference)
        sampler.set_epoch(0)  # the same epoch again before each pass (train, then evaluate): the same order
        assert _order_of(loader) == _order_of(loader)
        sampler.set_epoch(5)
        sampler.set_start(12)  # skip the first 12 samples of the global order: 4 left per rank, 2 batches
        assert len(loader) == 2
        tail = _order_of(loader)
        assert tail == sampler.global_order()[12:][rank::2].tolist()


def test_loader_mid_epoch_start_reproduces_the_tail_with_augmentation():
    data = _ids(40)

    def noisy(x, rng):  # a random transform: the tail must see the same draws
        return x + rng.standard_normal(x.shape).astype(np.float32)

    full = D.DataLoader(data, 6, shuffle=True, seed=3, transform=noisy)
    full.set_epoch(2)
    whole = list(full)
    resumed = D.DataLoader(data, 6, shuffle=True, seed=3, transform=noisy)
    resumed.load_state_dict({"epoch": 2, "batch": 4, "seed": 3})
    tail = list(resumed)
    assert len(tail) == len(whole) - 4
    for (a, ya), (b, yb) in zip(whole[4:], tail):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ya, yb)
    assert resumed.state_dict() == {"epoch": 2, "batch": len(whole), "seed": 3}
    it = full.batches(epoch=2)
    next(it), next(it)
    assert full.state_dict()["batch"] == 2


@pytest.mark.parametrize("given_sampler", [False, True])
def test_loader_state_saved_at_an_epochs_end_resumes_with_the_next_epoch(given_sampler):
    # it resumed into the finished epoch's empty rest, and every later epoch came one epoch late
    from distnn.distributed import DistributedSampler

    data = _ids(10)

    def passes(loader, sampler, epochs):
        out = []
        for e in epochs:
            if sampler is not None:
                sampler.set_epoch(e)  # PyTorch's pattern with a given sampler
            out.append([yb.tolist() for _, yb in loader])
        return out

    def make():
        if not given_sampler:
            return D.DataLoader(data, 3, shuffle=True, seed=1), None
        s = DistributedSampler(10, num_replicas=1, rank=0, shuffle=True, seed=1)
        return D.DataLoader(data, 3, sampler=s), s

    whole = passes(*make(), range(3))
    first_loader, first_sampler = make()
    first = passes(first_loader, first_sampler, range(1))
    state = first_loader.state_dict()
    resumed_loader, resumed_sampler = make()
    resumed_loader.load_state_dict(state)
    assert first + passes(resumed_loader, resumed_sampler, range(1, 3)) == whole
    assert len(whole[1]) == 4


class _PaddingSampler:
    """A two-rank shard with one padded (repeated) sample, exposing the mask as a method."""

    def __init__(self, n, rank, size=2):
        self.n, self.rank, self.size, self.epoch = n, rank, size, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def _order(self):
        order = np.random.default_rng([0, self.epoch]).permutation(self.n)
        per = -(-self.n // self.size)
        order = np.concatenate([order, order[:per * self.size - self.n]])
        return order[self.rank::self.size], np.arange(self.rank, per * self.size, self.size) < self.n

    def __iter__(self):
        return iter(self._order()[0].tolist())

    def __len__(self):
        return -(-self.n // self.size)

    def valid_mask(self):
        return self._order()[1]


def test_loader_over_sharded_sampler_with_padding_masks():
    data = _ids(11)
    seen = []
    for rank in range(2):
        loader = D.DataLoader(data, 4, sampler=_PaddingSampler(11, rank), with_mask=True)
        loader.set_epoch(1)
        for xb, yb, mask in loader:
            seen.extend(xb[mask, 0].astype(int).tolist())
            assert mask.dtype == bool and len(mask) == len(xb)
    assert sorted(seen) == list(range(11))  # every sample exactly once among the valid ones


def test_loader_with_distributed_sampler_if_available():
    dist = pytest.importorskip("distnn.distributed.sampler", reason="distnn.distributed.sampler not built yet")
    data = _ids(10)
    seen = []
    for rank in range(3):
        sampler = dist.DistributedSampler(10, shuffle=True, seed=1, num_replicas=3, rank=rank)
        loader = D.DataLoader(data, 2, sampler=sampler, with_mask=True)
        assert loader.rank == rank
        loader.set_epoch(4)
        for xb, _, mask in loader:
            seen.extend(xb[mask, 0].astype(int).tolist())
    assert sorted(seen) == list(range(10))
