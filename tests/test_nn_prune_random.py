"""nn.utils.prune's random methods, which draw from distnn's generator (PyTorch's stream cannot be matched): the
counts and structure of what they prune, on top of earlier pruning, and their reproducibility; and a pruned
model (random, structured and global pruning) under DataParallel on 2 simulated ranks gives one process's
training, its pruned entries untouched. The PyTorch oracle: test_nn_prune_torch.py."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn
from distnn.distributed import DataParallel, LocalCommunicator, simulate
from distnn.nn.utils import prune


# ------------------------------------------------------------------------------ the random methods
@pytest.mark.parametrize("amount", [5, 0.25])
def test_random_unstructured_prunes_that_many_more_each_time(amount):
    d = nn.Conv2d(3, 4, 3, dtype=np.float64)
    prune.random_unstructured(d, "weight", amount=amount)
    first = d.weight_mask.data.copy()
    k = amount if isinstance(amount, int) else round(amount * 108)
    assert int((first == 0).sum()) == k and set(np.unique(first)) <= {0.0, 1.0}
    prune.random_unstructured(d, "weight", amount=amount)
    second = d.weight_mask.data
    k2 = amount if isinstance(amount, int) else round(amount * (108 - k))  # (a fraction of what is left)
    assert int((second == 0).sum()) == k + k2 and np.all(second[first == 0] == 0)
    np.testing.assert_array_equal(d.weight.data, d.weight_orig.data * second)


def test_random_structured_prunes_whole_channels_among_the_unpruned():
    d = nn.Conv2d(3, 6, 3, dtype=np.float64)
    prune.random_structured(d, "weight", amount=2, dim=0)
    per_channel = d.weight_mask.data.reshape(6, -1)
    pruned = np.flatnonzero(per_channel.sum(1) == 0)
    assert len(pruned) == 2 and np.all(per_channel[per_channel.sum(1) != 0] == 1)
    prune.random_structured(d, "weight", amount=0.5, dim=0)  # (half of the 4 left)
    per_channel = d.weight_mask.data.reshape(6, -1)
    now = np.flatnonzero(per_channel.sum(1) == 0)
    assert len(now) == 4 and set(pruned) <= set(now) and np.all(per_channel[per_channel.sum(1) != 0] == 1)
    prune.random_structured(d, "weight", amount=1, dim=1)  # (input channels now, on top)
    cols = d.weight_mask.data.sum(axis=(0, 2, 3))
    assert int((cols == 0).sum()) == 1


def test_random_pruning_draws_from_distnns_generator():
    masks = []
    for seed in (3, 3, 4):
        distnn.manual_seed(seed)
        d = nn.Linear(10, 10)
        prune.random_unstructured(d, "weight", amount=30)
        prune.random_structured(d, "weight", amount=3, dim=1)
        masks.append(d.weight_mask.data.copy())
    np.testing.assert_array_equal(masks[0], masks[1])
    assert not np.array_equal(masks[0], masks[2])
    counts = np.zeros(100)  # every entry is as likely to go
    for seed in range(200):
        distnn.manual_seed(seed)
        counts += (prune.RandomUnstructured(amount=20).compute_mask(
            distnn.Tensor(np.zeros(100)), distnn.Tensor(np.ones(100))).data == 0)
    assert counts.sum() == 4000 and 20 < counts.min() and counts.max() < 62  # (mean 40, sd 5.7)


# ------------------------------------------------------------------------- N ranks == one process
class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8, dtype=np.float64), nn.Linear(8, 3, dtype=np.float64)
        prune.random_unstructured(self.fc1, "weight", amount=0.4)
        prune.ln_structured(self.fc1, "weight", amount=2, n=2, dim=0)
        prune.global_unstructured([(self.fc1, "bias"), (self.fc2, "weight")], prune.L1Unstructured, amount=6)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def _train(comm):
    distnn.manual_seed(0)
    model = _Net()
    dp = DataParallel(model, comm) if comm.size > 1 else model
    opt = distnn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
        idx = np.arange(8)[comm.rank::comm.size]
        opt.zero_grad()
        F.cross_entropy(dp(distnn.Tensor(x[idx])), y[idx]).backward()  # (equal shards: the mean of the means)
        opt.step()
    return {k: np.array(v) for k, v in model.state_dict().items()}


def test_a_pruned_model_under_data_parallel_equals_one_process():
    ref = _train(LocalCommunicator())
    assert {"fc1.weight_orig", "fc1.weight_mask", "fc1.bias_mask", "fc2.weight_mask"} <= set(ref)
    distnn.manual_seed(0)
    start = _Net()  # (the pruned entries of the original did not move: their gradient is masked)
    pruned = ref["fc1.weight_mask"] == 0
    np.testing.assert_array_equal(ref["fc1.weight_orig"][pruned], start.fc1.weight_orig.data[pruned])
    assert not np.array_equal(ref["fc1.weight_orig"], start.fc1.weight_orig.data)
    states = simulate(2, _train)
    for k in ref:
        np.testing.assert_allclose(states[0][k], ref[k], rtol=1e-10, atol=1e-12, err_msg=k)
        np.testing.assert_array_equal(states[0][k], states[1][k], err_msg=k)
