"""Edge cases of data loading met by real configs: mixed feature scales, held-out text stretches too short for
one window, and token models trained on user npz/csv files."""
import numpy as np
import pytest

import distnn.data as D
from distnn.cli import main
from distnn.data import DataError


# ---------------------------------------------------------------- standardization

def test_small_variance_feature_is_scaled_next_to_a_large_one():
    # One feature ~N(0, 1e5), one ~N(0.5, 0.005): the second's std (0.005) is far above 1e-7 of its own
    # magnitude, so it must be standardized, whatever the other feature's size.
    rng = np.random.default_rng(0)
    x = np.stack([rng.normal(0, 1e5, 500), rng.normal(0.5, 0.005, 500)], axis=1).astype(np.float32)
    s = D.Standardizer("feature").fit(x)
    np.testing.assert_allclose(s.std, x.astype(np.float64).std(axis=0), rtol=1e-6)
    z = s(x)
    np.testing.assert_allclose(z.std(axis=0), [1.0, 1.0], rtol=1e-3)
    # A truly constant feature beside a large one still gets std 1 (maps to 0, not inf).
    x[:, 1] = 0.5
    s = D.Standardizer("feature").fit(x)
    assert s.std[1] == 1.0 and np.all(s(x)[:, 1] == 0)


def test_channel_statistics_use_each_channels_own_scale():
    rng = np.random.default_rng(1)
    x = np.stack([rng.normal(0, 1e6, (40, 3, 3)), rng.normal(2.0, 1e-3, (40, 3, 3))], axis=1)
    c = D.Standardizer("channel").fit(x)
    np.testing.assert_allclose(c.std[:, 0, 0], x.std(axis=(0, 2, 3)), rtol=1e-9)
