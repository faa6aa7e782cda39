"""float16 cross-entropy 'mean' is distnn's own, on purpose: the per-sample losses are added up in float32 and
rounded once (as every float16 reduction in distnn), which lands within one float16 unit of the float64 mean.
PyTorch 2.13's CPU ``nll_loss`` adds them up in float16 (a cascade of partial sums, each addition rounded) and
can be a few units further off; these tests pin distnn's to the float64 reference, not to PyTorch's."""
import numpy as np
import pytest

import distnn
import distnn.functional as F


def _logsumexp64(x):
    m = x.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]


def _units_off(got, reference):
    ref16 = np.float16(reference)
    return abs(float(got) - float(ref16)) / float(np.spacing(abs(ref16)))


def _batch(seed):
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(500, 3000)), int(rng.integers(2, 40))
    x = (rng.standard_normal((n, c)) * rng.uniform(0.5, 8)).astype(np.float16)
    return rng, x, rng.integers(0, c, n)


@pytest.mark.parametrize("seed", range(12))
def test_mean_is_within_one_unit_of_the_float64_mean(seed):
    _, x, y = _batch(seed)
    got = F.cross_entropy(distnn.tensor(x), distnn.tensor(y))
    assert got.dtype == np.float16
    x64 = x.astype(np.float64)
    reference = (_logsumexp64(x64) - x64[np.arange(len(y)), y]).mean()
    assert _units_off(got.data, reference) <= 1


@pytest.mark.parametrize("seed", range(6))
def test_weighted_mean_with_ignored_samples_is_within_two_units(seed):
    """Weighted: the weighted sum and the weight total are each rounded to float16 before the division."""
    rng, x, y = _batch(seed)
    y = np.where(rng.random(len(y)) < 0.1, -100, y)
    w = rng.uniform(0.5, 2, x.shape[1]).astype(np.float16)
    got = F.cross_entropy(distnn.tensor(x), distnn.tensor(y), weight=distnn.tensor(w))
    kept = y != -100
    x64, w64 = x.astype(np.float64)[kept], w.astype(np.float64)[y[kept]]
    per = _logsumexp64(x64) - x64[np.arange(kept.sum()), y[kept]]
    assert _units_off(got.data, (per * w64).sum() / w64.sum()) <= 2


def test_mean_of_many_equal_losses_does_not_stall():
    """4096 samples of loss log(2) (two equal logits): a float16 running sum would stall at 2048 (its unit is
    2 there); the float32 sum does not."""
    x = np.zeros((4096, 2), np.float16)
    y = np.zeros(4096, np.int64)
    for reduction, expected in (("mean", np.log(2)), ("sum", 4096 * np.log(2))):
        got = F.cross_entropy(distnn.tensor(x), distnn.tensor(y), reduction=reduction)
        assert _units_off(got.data, expected) <= 1
