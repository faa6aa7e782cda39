"""Channel dropout, alpha dropout, RReLU and fractional max pooling draw from the per-sample streams: N ranks
equal one process.

Under the trainer a training forward pass runs under a :class:`BatchShareGenerator` that belongs to the
batch's samples (see :mod:`distnn.data.batch_random`). As with ``Dropout``, a rank's rows of the global
batch must get the masks (and RReLU slopes) those samples get in the whole batch on one process: checked
op by op with the generator itself, then end to end by training on 1 and 2 simulated ranks.
"""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn
from distnn import random as dn_random
from distnn.data import load_dataset
from distnn.data.batch_random import BatchShareGenerator
from distnn.distributed import LocalCommunicator, simulate
from distnn.optim import Adam
from distnn.train.trainer import Trainer

SEED = [9, 0, 3, 1]

# (name, op on a batch-major input, the per-sample input's shape after the batch axis)
OPS = [
    ("dropout1d", lambda x: F.dropout1d(x, 0.4), (5, 3)),
    ("dropout2d", lambda x: F.dropout2d(x, 0.4), (5, 2, 3)),
    ("dropout3d", lambda x: F.dropout3d(x, 0.4), (4, 2, 1, 3)),
    ("alpha_dropout", lambda x: F.alpha_dropout(x, 0.3, training=True), (6, 7)),
    ("feature_alpha_dropout", lambda x: F.feature_alpha_dropout(x, 0.3, training=True), (5, 4)),
    ("rrelu", lambda x: F.rrelu(x, 0.1, 0.6, training=True), (6, 7)),
    ("torch.feature_dropout_", lambda x: distnn.feature_dropout_(x * 1.0, 0.4, True), (5, 2, 3)),
    ("torch.dropout_", lambda x: distnn.dropout_(x * 1.0, 0.4, True), (6, 7)),
    # fractional max pooling's window starts: one sample per (sample, channel, axis)
    ("fractional_max_pool2d", lambda x: F.fractional_max_pool2d(x, 2, output_ratio=(0.7, 0.7)), (3, 12, 12)),
    ("FractionalMaxPool3d", lambda x: nn.FractionalMaxPool3d((2, 1, 2), output_ratio=0.7)(x), (2, 9, 5, 10)),
    ("modules", lambda x: nn.RReLU(0.05, 0.5)(nn.Dropout1d(0.3)(nn.AlphaDropout(0.2)(x))), (5, 3)),
    # time-major (T, N, H) elementwise ops, samples on axis 1: said with batch_dim
    ("alpha_dropout-time-major", lambda x: F.alpha_dropout(x.transpose(0, 1), 0.3, True, batch_dim=1)
     .transpose(0, 1), (6, 7)),
    ("rrelu-time-major", lambda x: F.rrelu(x.transpose(0, 1), 0.1, 0.6, True, batch_dim=1).transpose(0, 1), (6, 7)),
]


def _run(op, x, rows, total):
    """Output and input gradient of rows ``rows`` of the global batch ``x`` under their per-sample generator,
    as a rank of the trainer runs them (two draws in a row: the second mask index too)."""
    inp = distnn.tensor(np.ascontiguousarray(x[rows]), requires_grad=True)
    with dn_random.use_generator(BatchShareGenerator(SEED, total, rows)):
        out = op(op(inp))
    (out * out).sum().backward()
    return out.numpy(), inp.grad


@pytest.mark.parametrize("name, op, rest", OPS, ids=[o[0] for o in OPS])
@pytest.mark.parametrize("total, world", [(12, 2), (12, 3), (7, 2)])
def test_a_ranks_rows_get_the_draws_they_get_in_the_whole_batch(name, op, rest, total, world):
    x = np.random.default_rng(1).standard_normal((total,) + rest) - 0.3
    whole = _run(op, x, np.arange(total), total)
    for rank in range(world):
        rows = np.arange(rank, total, world)  # the trainer deals a global batch round-robin
        for what, a, b in zip(("output", "input grad"), _run(op, x, rows, total), whole):
            np.testing.assert_allclose(a, b[rows], rtol=1e-13, atol=1e-13, err_msg=f"{what}, rank {rank}/{world}")
    micro = np.arange(1, total, 2)[1:3]  # a micro-batch: a slice of a rank's rows
    np.testing.assert_allclose(_run(op, x, micro, total)[0], whole[0][micro], rtol=1e-13, atol=1e-13)
    # the draws do something: the next draw of the same generator gives other numbers
    with dn_random.use_generator(BatchShareGenerator(SEED, total, np.arange(total))):
        assert not np.allclose(op(distnn.tensor(x)).numpy(), op(distnn.tensor(x)).numpy())


def test_unit_uniform_is_per_sample_uniform_and_leaves_keep_masks_alone():
    n = 300
    g = BatchShareGenerator([1, 0, 0, 1], n, np.arange(n))
    u = g.unit_uniform((n, 7, 9))
    assert u.dtype == np.float64 and u.min() >= 0 and u.max() < 1
    assert np.all(u * 2 ** 32 == np.floor(u * 2 ** 32))  # multiples of 2**-32: the mask's 32 bits
    assert abs(u.mean() - 0.5) < 5 / np.sqrt(12 * u.size) and abs(u.var() - 1 / 12) < 0.003
    flat = u.reshape(n, -1)
    assert abs(np.corrcoef(flat[:, :-1].ravel(), flat[:, 1:].ravel())[0, 1]) < 5 / np.sqrt(flat.size)
    part = BatchShareGenerator([1, 0, 0, 1], n, np.arange(2, n, 3)).unit_uniform((n // 3, 7, 9))
    np.testing.assert_array_equal(part, u[2::3])
    # a draw takes a mask index: the keep mask after it is the one a second mask draw would give
    a, b = BatchShareGenerator([5], 10, np.arange(10)), BatchShareGenerator([5], 10, np.arange(10))
    a.unit_uniform((10, 4))
    b.keep_mask((10, 4), 0.5)
    np.testing.assert_array_equal(a.keep_mask((10, 33), 0.3), b.keep_mask((10, 33), 0.3))
    # and is the mask's bits: u >= p exactly where the mask keeps
    c, d = BatchShareGenerator([5], 10, np.arange(10)), BatchShareGenerator([5], 10, np.arange(10))
    np.testing.assert_array_equal(c.unit_uniform((10, 33)) >= 0.3, d.keep_mask((10, 33), 0.3))


# ---------------------------------------------------------------- end to end: the trainer on 1 and 2 ranks
class _Net(nn.Module):
    """digits (64 features) through every new random layer, float64."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 48)
        self.drop1d = nn.Dropout1d(0.3)          # (N, 6, 8)
        self.drop2d = nn.Dropout2d(0.3)          # (N, 6, 2, 4)
        self.drop3d = nn.Dropout3d(0.2)          # (N, 3, 2, 2, 4)
        self.alpha = nn.AlphaDropout(0.2)
        self.fc2 = nn.Linear(48, 32)
        self.rrelu = nn.RReLU()
        self.feature_alpha = nn.FeatureAlphaDropout(0.2)  # (N, 4, 8)
        self.fc3 = nn.Linear(32, 10)

    def forward(self, x):
        n = x.shape[0]
        h = self.drop1d(self.fc1(x).reshape(n, 6, 8))
        h = self.drop3d(self.drop2d(h.reshape(n, 6, 2, 4)).reshape(n, 3, 2, 2, 4))
        h = self.alpha(F.selu(h.reshape(n, 48)))
        h = self.feature_alpha(self.rrelu(self.fc2(h)).reshape(n, 4, 8))
        return self.fc3(h.reshape(n, 32))


def _fit(comm, data, p_scale=1.0):
    distnn.manual_seed(0)
    model = _Net()
    if p_scale == 0:
        for m in model.modules():
            if hasattr(m, "p"):
                m.p = 0.0
    model.to(np.float64)
    t = Trainer(model, Adam(model.parameters(), lr=1e-2), data.train.subset(np.arange(200)), data.val, comm=comm,
                batch_size=40, epochs=2, seed=3)
    return t.fit(), t.model.state_dict()


def test_training_with_the_new_layers_on_two_ranks_matches_one_rank():
    data = load_dataset("digits")
    one = _fit(LocalCommunicator(), data)
    two = simulate(2, lambda c: _fit(c, data))
    for ra, rb in zip(one[0], two[0][0]):
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            assert ra[key] == pytest.approx(rb[key], abs=1e-9), key
    for k in one[1]:
        np.testing.assert_allclose(one[1][k], two[0][1][k], rtol=1e-9, atol=1e-9, err_msg=k)
    # the layers did draw: without dropout (RReLU still random) the run differs
    off = _fit(LocalCommunicator(), data, p_scale=0)
    assert not np.allclose(off[1]["fc3.weight"], one[1]["fc3.weight"])
