"""Review finding in distnn.data.DataLoader, with torch.utils.data (2.13) as the oracle: a map-style list (or
tuple) of exactly two samples is a two-sample dataset, as in PyTorch; only two arrays make an ``(x, y)`` pair."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
from distnn.data import DataLoader  # noqa: E402


def _plain(b):
    if isinstance(b, dict):
        return {k: _plain(v) for k, v in b.items()}
    if isinstance(b, (list, tuple)):
        return [_plain(v) for v in b]
    if isinstance(b, torch.Tensor):
        return b.numpy().tolist()
    if isinstance(b, distnn.Tensor):
        return np.asarray(distnn.to_numpy(b)).tolist()
    return b


@pytest.mark.parametrize("dataset", [[1, 2], [(1, 10), (2, 20)], [(1.5, 10), (2.5, 20)], [[1, 2], [3, 4]],
                                     [{"a": 1}, {"a": 2}], ([1, 2, 3], [4, 5, 6])])
@pytest.mark.parametrize("batch_size", [1, 2])
def test_a_dataset_of_two_samples_is_not_an_x_y_pair(dataset, batch_size):
    ours = [_plain(b) for b in DataLoader(dataset, batch_size=batch_size)]
    theirs = [_plain(b) for b in torch.utils.data.DataLoader(dataset, batch_size=batch_size)]
    assert ours == theirs


def test_two_arrays_are_still_an_x_y_pair():
    x, y = np.arange(10.0).reshape(5, 2), np.arange(5)
    batches = list(DataLoader((x, y), batch_size=2))
    assert len(batches) == 3
    np.testing.assert_array_equal(batches[0][0], x[:2])
    np.testing.assert_array_equal(batches[2][1], y[4:])
