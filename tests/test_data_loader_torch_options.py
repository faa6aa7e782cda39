"""DataLoader with torch.utils.data.DataLoader's whole signature: batch_size=None (no batching,
default_convert), the worker/pinning options (no-ops or refused by name), PyTorch's validation errors."""
import inspect

import numpy as np
import pytest

import distnn as dn
import distnn.data as D
from distnn.data import DataError

torch = pytest.importorskip("torch")
T = torch.utils.data

from data_torch_oracle import same_error  # noqa: E402
from test_data_loader_torch import _stream, assert_same_batches, pair_of_datasets  # noqa: E402


def test_the_signature_is_torchs():
    ours = inspect.signature(D.DataLoader).parameters
    theirs = inspect.signature(T.DataLoader).parameters
    for name, p in theirs.items():
        assert name in ours, name
        assert ours[name].kind == p.kind, name  # positional order and keyword-only ones as torch's
        assert ours[name].default == p.default, name
    assert list(ours)[:len(theirs)] == list(theirs)


def test_batch_size_none_yields_each_sample_as_torch():
    ours, theirs = pair_of_datasets()
    a, b = D.DataLoader(ours, batch_size=None), T.DataLoader(theirs, batch_size=None)
    assert len(a) == len(b) == 16
    assert_same_batches(a, b)
    order = [3, 1, 4, 1, 5]
    assert_same_batches(D.DataLoader(ours, None, sampler=order), T.DataLoader(theirs, None, sampler=order))
    # default_convert: numpy arrays and numpy scalars become tensors; Python numbers, strings, dicts kept as samples
    samples = [{"x": np.full(2, i, np.float64), "name": f"s{i}", "k": i, "t": (np.int64(i), 1.5)} for i in range(4)]
    assert_same_batches(D.DataLoader(samples, None), T.DataLoader(samples, None))
    assert_same_batches(D.DataLoader(list(range(3)), None), T.DataLoader(list(range(3)), None))
    # an IterableDataset, and a collate_fn called per sample
    assert_same_batches(D.DataLoader(_stream("distnn", 5, True), None), T.DataLoader(_stream("torch", 5, True), None))
    assert_same_batches(D.DataLoader(samples, None, collate_fn=lambda s: s["k"] * 2),
                        T.DataLoader(samples, None, collate_fn=lambda s: s["k"] * 2))


def test_batch_size_none_over_arrays_and_resume():
    x, y = np.arange(12.0).reshape(6, 2), np.arange(6)
    loader = D.DataLoader((x, y), batch_size=None, shuffle=True, seed=3)
    first = [(s[0].numpy().tolist(), int(s[1].item())) for s in loader]
    assert sorted(first) == [([2.0 * i, 2.0 * i + 1], i) for i in range(6)]
    again = D.DataLoader((x, y), batch_size=None, shuffle=True, seed=3)
    again.set_epoch(0, start_batch=4)
    assert [(s[0].numpy().tolist(), int(s[1].item())) for s in again] == first[4:]
    with pytest.raises(DataError, match="transform"):
        D.DataLoader((x, y), batch_size=None, transform=lambda xb, rng: xb)


def test_default_convert_matches_torch():
    for data in (np.arange(3), np.float32(2.5), 3, "s", (np.ones(2), 4), [np.zeros(1), "a"], np.array(["a", "b"]),
                 {"a": np.arange(2), "b": [np.int64(1)]}):
        assert_same_batches([D.default_convert(data)], [T.default_convert(data)])


def test_options_without_effect_are_accepted():
    ours, theirs = pair_of_datasets()
    calls = []
    kw = dict(pin_memory=True, pin_memory_device="cuda", timeout=5.0, worker_init_fn=calls.append, in_order=False)
    a = D.DataLoader(ours, 4, **kw)
    assert (a.pin_memory, a.pin_memory_device, a.timeout, a.in_order) == (True, "cuda", 5.0, False)
    assert_same_batches(a, T.DataLoader(theirs, 4))
    assert calls == []  # (no worker processes to initialize: torch's loader with num_workers=0 calls it never)
    positional = D.DataLoader(ours, 4, False, None, None, 0, None, True, True)  # ..., pin_memory, drop_last
    assert positional.drop_last and len(positional) == 4


def test_worker_options_refused_as_torch():
    ours, theirs = pair_of_datasets()
    for kw, gist in (({"timeout": -1}, "timeout option should be non-negative"),
                     ({"prefetch_factor": 2}, "prefetch_factor option could only be specified in multiprocessing"),
                     ({"persistent_workers": True}, "persistent_workers option needs num_workers > 0"),
                     ({"multiprocessing_context": "spawn"},
                      r"multiprocessing_context can only be used with multi-process loading \(num_workers > 0\)"),
                     ({"batch_size": None, "drop_last": True},
                      "batch_size=None option disables auto-batching and is mutually exclusive with drop_last")):
        same_error(lambda: D.DataLoader(ours, **kw), lambda: T.DataLoader(theirs, **kw), gist)
    with pytest.raises(DataError, match="num_workers=2: distnn's DataLoader .* no worker processes"):
        D.DataLoader(ours, num_workers=2, prefetch_factor=2, persistent_workers=True)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        D.DataLoader(ours, batch_size=0)
