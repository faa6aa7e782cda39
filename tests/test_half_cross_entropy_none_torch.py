"""float16 per-sample cross-entropy and NLL ('none') are PyTorch's values bitwise, and their gradients are
PyTorch's (bitwise but for a rare last-bit difference of the float32 exp), against torch on the same inputs.

PyTorch rounds each op of the composition to float16 (log_softmax; -logp[t] * w[t]; with label smoothing the
smoothing sum and the two scalar products); distnn used to compute the loss in one piece and round once, one
unit off in ~18 % of samples. 'mean'/'sum' forward values stay distnn's own (test_float16_cross_entropy_mean)."""
import numpy as np
import pytest
import torch

import distnn
import distnn.functional as F
from half_units import units_apart as _units_apart




def _near(got, expected, units=2):
    """Within ``units`` float16 units of the largest |gradient| of the batch: a difference in one
    log-probability or in the divisor moves every gradient of its row (or batch) by about that much in value,
    which is many units for the gradients that cancel to near 0."""
    scale = float(np.abs(expected.astype(np.float32)).max())
    return bool((np.abs(got.astype(np.float32) - expected.astype(np.float32)) <= units * np.spacing(np.float16(scale))).all())


def _draw(rng, shape, ignore, weighted):
    x = (rng.standard_normal(shape) * rng.uniform(0.3, 8)).astype(np.float16)
    c = shape[0] if len(shape) == 1 else shape[1]
    target_shape = () if len(shape) == 1 else (shape[0],) + tuple(shape[2:])
    y = rng.integers(0, c, target_shape)
    if ignore:
        y = np.where(rng.random(target_shape) < 0.2, -100, y)
    w = rng.uniform(0.2, 3, c).astype(np.float16) if weighted else None
    return x, np.asarray(y, np.int64), w


def _both(x, y, w, reduction, eps=0.0, nll=False, seed=0):
    """(torch loss, distnn loss, torch grad, distnn grad), the loss given a random float16 upstream gradient."""
    tx = torch.from_numpy(x.copy()).requires_grad_()
    tw = None if w is None else torch.from_numpy(w)
    dx = distnn.tensor(x.copy(), requires_grad=True)
    dw = None if w is None else distnn.tensor(w)
    if nll:
        tl = torch.nn.functional.nll_loss(tx, torch.from_numpy(y), weight=tw, reduction=reduction)
        dl = F.nll_loss(dx, distnn.tensor(y), weight=dw, reduction=reduction)
    else:
        tl = torch.nn.functional.cross_entropy(tx, torch.from_numpy(y), weight=tw, reduction=reduction,
                                               label_smoothing=eps)
        dl = F.cross_entropy(dx, distnn.tensor(y), weight=dw, reduction=reduction, label_smoothing=eps)
    g = np.random.default_rng(seed).standard_normal(tuple(tl.shape)).astype(np.float16)
    tl.backward(torch.from_numpy(g))
    dl.backward(distnn.tensor(g))
    assert np.asarray(dl.data).dtype == np.float16 and np.asarray(dx.grad.data).dtype == np.float16
    return tl.detach().numpy(), np.asarray(dl.data), tx.grad.numpy(), np.asarray(dx.grad.data)


CONFIGS = [(ignore, weighted, eps) for ignore in (False, True) for weighted in (False, True)
           for eps in (0.0, 0.1, 1 / 3)]


@pytest.mark.parametrize("ignore,weighted,eps", CONFIGS)
def test_per_sample_losses_are_torch_bitwise(ignore, weighted, eps):
    rng = np.random.default_rng(100 + len(CONFIGS) * ignore + 3 * weighted + int(eps * 10))
    for _ in range(12):
        shape = (int(rng.integers(1, 200)), int(rng.integers(2, 50)))
        x, y, w = _draw(rng, shape, ignore, weighted)
        tl, dl, _, _ = _both(x, y, w, "none", eps)
        np.testing.assert_array_equal(dl.view(np.uint16), tl.view(np.uint16))


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_one_sample_and_nll_loss_are_torch_bitwise(eps):
    rng = np.random.default_rng(7)
    for _ in range(30):
        x, y, w = _draw(rng, (int(rng.integers(2, 40)),), False, rng.random() < 0.5)
        tl, dl, tg, dg = _both(x, y, w, "none", eps)
        assert dl.shape == () and dl.view(np.uint16) == tl.view(np.uint16)
        assert _near(dg, tg)
    for _ in range(20):  # nll_loss on float16 log-probabilities, with ignored samples (+0 loss, 0 gradient)
        x, y, w = _draw(rng, (int(rng.integers(1, 100)), int(rng.integers(2, 30))), True, rng.random() < 0.5)
        logp = torch.log_softmax(torch.from_numpy(x).float(), 1).half().numpy()
        tl, dl, tg, dg = _both(logp, y, w, "none", nll=True)
        np.testing.assert_array_equal(dl.view(np.uint16), tl.view(np.uint16))
        np.testing.assert_array_equal(dg.view(np.uint16), tg.view(np.uint16))


def test_spatial_losses_are_within_one_unit_and_almost_all_bitwise():
    """(N, C, d...): PyTorch's log_softmax over a non-last dim keeps its sums in float32 (the last-dim kernel
    rounds them to float16); distnn follows it, so only its float32 exp can differ from PyTorch's, rarely."""
    rng = np.random.default_rng(11)
    differ = total = 0
    for i in range(40):
        shape = (int(rng.integers(1, 30)), int(rng.integers(2, 20))) + tuple(rng.integers(1, 6, int(rng.integers(1, 3))))
        x, y, w = _draw(rng, shape, i % 2 == 0, i % 3 == 0)
        tl, dl, _, _ = _both(x, y, w, "none", (0.0, 0.1)[i % 2])
        assert dl.shape == tl.shape
        apart = _units_apart(dl, tl)
        assert apart.max() <= 1
        differ, total = differ + int((apart != 0).sum()), total + apart.size
    assert differ <= total * 0.002, (differ, total)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_gradients_are_torch_bitwise_but_for_rare_last_bits(reduction):
    """Weighted or not: PyTorch's backward chain, rounding where it rounds (a weighted 'mean' dividing by its
    float16 cascade total weight, test_float16_weighted_mean_grad_torch); its
    log_softmax_backward's fused multiply-add included. What is left comes from PyTorch's float32 exp (a
    vectorised one numpy has not): a last-bit difference rounding to another float16 log-probability or
    gradient, about 1 gradient in 70,000 over 1.4 million checked (see _near for how far)."""
    rng = np.random.default_rng({"none": 1, "sum": 2, "mean": 3}[reduction])
    differ = total = 0
    for i in range(60):
        weighted = i % 2 == 1
        x, y, w = _draw(rng, (int(rng.integers(1, 150)), int(rng.integers(2, 40))), i % 3 == 0, weighted)
        _, _, tg, dg = _both(x, y, w, reduction, (0.0, 0.1, 0.25)[i % 3], seed=i)
        apart = _units_apart(dg, tg)
        assert _near(dg, tg)
        differ, total = differ + int((apart != 0).sum()), total + apart.size
    assert differ <= total * 1e-4, (differ, total)


def test_weighted_mean_gradient_is_near_torchs():
    """Weighted 'mean': PyTorch divides the gradient by its own total weight, which its CPU nll_loss adds up in
    float16 (a cascade of rounded partial sums); so does distnn's backward (its forward divides by the float32
    total, rounded once), so the gradients are PyTorch's but for the rare exp last bit."""
    rng = np.random.default_rng(5)
    for i in range(30):
        x, y, w = _draw(rng, (int(rng.integers(1, 150)), int(rng.integers(2, 40))), i % 2 == 0, True)
        _, _, tg, dg = _both(x, y, w, "mean", (0.0, 0.1)[i % 2], seed=i)
        assert _near(dg, tg)


def test_ignored_samples_have_zero_loss_and_zero_gradient():
    x = np.array([[1.0, np.nan, 2.0], [0.5, 0.25, -1.0], [3.0, 1.0, 0.0]], np.float16)
    y = np.array([-100, 2, -100])
    for eps in (0.0, 0.3):
        tl, dl, tg, dg = _both(x, y, None, "none", eps)
        np.testing.assert_array_equal(dl.view(np.uint16), tl.view(np.uint16))
        assert dl[0].view(np.uint16) == 0 and dl[2].view(np.uint16) == 0  # +0, as PyTorch writes
        np.testing.assert_array_equal(dg[[0, 2]], 0)  # (distnn's rule: PyTorch's row 0 is 0 * NaN)
        np.testing.assert_array_equal(dg[1].view(np.uint16), tg[1].view(np.uint16))
