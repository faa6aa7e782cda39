"""Plain BatchNorm leaves sampler-padded rows out of its statistics, as SyncBatchNorm does.

A sharded batch may repeat samples so every rank holds the same row count; the trainer masks them out
of the loss and marks them with ``valid_rows``. BatchNorm1d/2d in training mode then takes its batch
statistics (and running statistics) from the real rows only: the real rows' outputs and gradients, the
parameter gradients and the running statistics are those of BatchNorm on the real rows alone.
"""
import numpy as np
import pytest

import distnn
import distnn.nn as nn
from distnn.data import Dataset
from distnn.distributed import LocalCommunicator, valid_rows
from distnn.optim import SGD
from distnn.testing import check_grad
from distnn.train.trainer import Trainer

D = np.float64


def _padded(shape, n_valid, seed=0):
    """(x, mask): ``n_valid`` real rows, then rows that repeat the first ones (as the sampler pads)."""
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((n_valid,) + shape) * 2 + 3
    pad = np.arange(3) % n_valid  # three padded rows: repeats of real samples
    x = np.concatenate([real, real[pad] + 5.0])  # (shifted, so a padded row that counted would show)
    return x, np.arange(len(x)) < n_valid


@pytest.mark.parametrize("cls, shape", [(nn.BatchNorm1d, (4,)), (nn.BatchNorm1d, (3, 5)),
                                        (nn.BatchNorm2d, (3, 2, 4))])
@pytest.mark.parametrize("momentum", [0.3, None])
def test_padded_rows_are_left_out_of_statistics_gradients_and_running_stats(cls, shape, momentum):
    c, n_valid = shape[0], 5
    x, mask = _padded(shape, n_valid)
    gy = np.random.default_rng(1).standard_normal(x.shape)
    gy[~mask] = 0  # the loss ignores padded rows

    def train(bn, data, g, steps=2):
        for _ in range(steps):  # twice: the running statistics average two batches
            bn.zero_grad()
            xt = distnn.Tensor(data, requires_grad=True)
            out = bn(xt)
            (out * distnn.Tensor(g)).sum().backward()
        return out.numpy(), xt.grad

    ref, bn = cls(c, momentum=momentum, dtype=D), cls(c, momentum=momentum, dtype=D)
    for m in (ref, bn):
        m.weight.data[...], m.bias.data[...] = np.linspace(0.5, 2, c), np.linspace(-1, 1, c)
    out_r, gx_r = train(ref, x[mask], gy[mask])
    with valid_rows(mask):
        out, gx = train(bn, x, gy)

    np.testing.assert_allclose(out[mask], out_r, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx[mask], gx_r, rtol=1e-10, atol=1e-12)
    assert not gx[~mask].any()  # padded rows pass nothing back
    np.testing.assert_allclose(bn.weight.grad, ref.weight.grad, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.bias.grad, ref.bias.grad, rtol=1e-10, atol=1e-12)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(getattr(bn, name).numpy(), getattr(ref, name).numpy(), rtol=1e-13,
                                   err_msg=name)
    # padded rows are normalized with the real rows' statistics
    axes = (0,) + tuple(range(2, x.ndim))
    bc = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = x[mask].mean(axis=axes), x[mask].var(axis=axes)
    expect = (x[~mask] - mean.reshape(bc)) / np.sqrt(var.reshape(bc) + 1e-5) * bn.weight.numpy().reshape(bc) \
        + bn.bias.numpy().reshape(bc)
    np.testing.assert_allclose(out[~mask], expect, rtol=1e-12, atol=1e-12)


def test_matches_pytorch_batchnorm_on_the_real_rows(torch):
    x, mask = _padded((3, 2, 2), 6, seed=3)
    gy = np.random.default_rng(2).standard_normal(x.shape)
    bn = nn.BatchNorm2d(3, momentum=0.2, dtype=D)
    xt = distnn.Tensor(x, requires_grad=True)
    with valid_rows(mask):
        out = bn(xt)
    (out * distnn.Tensor(gy * mask[:, None, None, None])).sum().backward()

    tb = torch.nn.BatchNorm2d(3, momentum=0.2).double()
    tx = torch.tensor(x[mask], requires_grad=True)
    to = tb(tx)
    (to * torch.tensor(gy[mask])).sum().backward()
    np.testing.assert_allclose(out.numpy()[mask], to.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xt.grad[mask], tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(bn.weight.grad, tb.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(bn.bias.grad, tb.bias.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(bn.running_mean.numpy(), tb.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), tb.running_var.numpy(), rtol=1e-12)


def test_gradient_with_padded_rows_is_the_derivative_of_the_forward():
    # a loss that also reads the padded rows' outputs (they depend on the real rows' statistics): the
    # gradients are still those of the forward, input and affine parameters alike
    x, mask = _padded((3, 4), 5, seed=4)
    bn = nn.BatchNorm1d(3, track_running_stats=False, dtype=D)
    bn.weight.data[...], bn.bias.data[...] = np.linspace(0.5, 2, 3), np.linspace(-1, 1, 3)
    u = np.random.default_rng(6).standard_normal(x.shape)

    def loss(inp):
        with valid_rows(mask):
            return (bn(inp) * distnn.Tensor(u)).sum()

    check_grad(loss, x)
    bn.zero_grad()
    loss(distnn.Tensor(x)).backward()
    for p in (bn.weight, bn.bias):  # central differences, one channel at a time
        for i in range(3):
            old, h = p.data[i], 1e-6
            p.data[i] = old + h
            up = loss(distnn.Tensor(x)).item()
            p.data[i] = old - h
            down = loss(distnn.Tensor(x)).item()
            p.data[i] = old
            assert p.grad[i] == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("n_valid", [0, 1])
def test_too_few_real_rows_leave_running_stats_alone(n_valid):
    # a rank's last batch may hold a single real row, or padding only: no variance to learn from, but no
    # error either (the batch trained before padded rows were left out); outputs stay finite
    x = np.random.default_rng(0).standard_normal((3, 4))
    mask = np.arange(3) < n_valid
    bn = nn.BatchNorm1d(4, dtype=D)
    xt = distnn.Tensor(x, requires_grad=True)
    with valid_rows(mask):
        out = bn(xt)
    out.sum().backward()
    assert np.isfinite(out.numpy()).all() and np.isfinite(xt.grad).all()
    assert not bn.running_mean.numpy().any() and (bn.running_var.numpy() == 1).all()
    assert int(bn.num_batches_tracked.numpy()) == 0


def test_eval_mode_and_unmatched_masks_ignore_the_rows():
    x, mask = _padded((4,), 5)
    bn = nn.BatchNorm1d(4, dtype=D)
    bn.running_mean.data[...] = 1.0
    bn.eval()
    plain = bn(distnn.Tensor(x)).numpy()
    with valid_rows(mask):
        np.testing.assert_array_equal(bn(distnn.Tensor(x)).numpy(), plain)  # running statistics: per row
    bn.train()
    plain = bn(distnn.Tensor(x)).numpy()
    with valid_rows(mask[:-1]):  # a mask for another batch size: not this input's rows
        np.testing.assert_array_equal(bn(distnn.Tensor(x)).numpy(), plain)


def _bn_model():
    distnn.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6, dtype=D), nn.BatchNorm1d(6, dtype=D), nn.ReLU(), nn.Linear(6, 3, dtype=D))


def test_trainer_step_with_padded_rows_equals_the_step_on_the_real_rows():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 4)) * 2 + 1, rng.integers(0, 3, 8)
    data = Dataset(x, y, num_classes=3)
    valid = np.arange(8) < 5  # the last three rows repeat samples 0..2, as the sampler pads
    xp, yp = x.copy(), y.copy()
    xp[5:], yp[5:] = x[:3], y[:3]

    def step(xb, yb, vb):
        model = _bn_model()
        t = Trainer(model, SGD(model.parameters(), lr=0.1), data, comm=LocalCommunicator(), batch_size=8)
        t.train_step(xb.copy(), yb.copy(), vb)
        return model.state_dict()

    padded = step(xp, yp, valid)
    real = step(x[:5], y[:5], np.ones(5, dtype=bool))
    for k in real:
        np.testing.assert_allclose(padded[k], real[k], rtol=1e-12, atol=1e-14, err_msg=k)
