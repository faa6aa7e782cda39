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


class _Doubled:
    """A PyTorch-style dataset that keeps its arrays as ``x`` and ``y`` and transforms in ``__getitem__``."""

    def __init__(self, module):
        self.x, self.y = np.arange(6.0), np.arange(6)
        self.module = module

    def __getitem__(self, i):
        return self.x[i] * 2, self.y[i] + 100

    def __len__(self):
        return len(self.x)


def test_a_dataset_with_x_y_attributes_and_its_own_getitem_is_read_through_getitem():
    ours = [_plain(b) for b in DataLoader(_Doubled(distnn), batch_size=4)]
    theirs = [_plain(b) for b in torch.utils.data.DataLoader(_Doubled(torch), batch_size=4)]
    assert ours == theirs
    assert ours[0][0] == [0.0, 2.0, 4.0, 6.0]


def test_distnn_dataset_keeps_the_array_fast_path():
    from distnn.data import Dataset

    ds = Dataset(np.arange(12.0).reshape(6, 2), np.arange(6), 6, "t")
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    assert isinstance(xb, np.ndarray) and xb.shape == (4, 2)
