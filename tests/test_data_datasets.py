"""distnn.data's data sets: split sizes and stratification (as sklearn's), the digits split, bundled tabular
sets offline, the registry, synthetic and sequence tasks, the character language model's windows."""
import numpy as np
import pytest

import distnn.data as D
from distnn.data import DataError


def test_split_sizes_follow_sklearn_rounding():
    assert D.split_sizes(1797, 0.1, 0.2) == (1257, 180, 360)
    assert D.split_sizes(100, 0.1, 0.2) == (70, 10, 20)  # 100 * 0.2 must not round up to 21
    assert D.split_sizes(10, 0.0, 0.0) == (10, 0, 0)
    with pytest.raises(DataError, match="must be < 1"):
        D.split_sizes(10, 0.5, 0.5)
    with pytest.raises(DataError, match=r"test_fraction must be in \[0, 1\)"):
        D.split_sizes(10, 0.1, -0.1)


def test_stratified_split_proportions_disjoint_and_deterministic():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), [100, 50, 30, 20])
    rng.shuffle(y)
    tr, va, te = D.stratified_split(y, 0.1, 0.2, seed=3)
    assert (len(tr), len(va), len(te)) == (140, 20, 40)
    assert len(np.intersect1d(tr, va)) == len(np.intersect1d(tr, te)) == len(np.intersect1d(va, te)) == 0
    assert np.array_equal(np.sort(np.concatenate([tr, va, te])), np.arange(len(y)))
    counts = np.bincount(y)
    for idx, frac in ((te, 0.2), (va, 0.1)):
        # Every class within one sample of its exact share.
        assert np.all(np.abs(np.bincount(y[idx], minlength=4) - counts * frac) <= 1)
    again = D.stratified_split(y, 0.1, 0.2, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))
    other = D.stratified_split(y, 0.1, 0.2, seed=4)
    assert not np.array_equal(te, other[2])


def test_digits_split_is_fixed_and_stratified():
    s = D.load_dataset("digits")
    assert [len(s.train), len(s.val), len(s.test)] == [1257, 180, 360]
    assert s.input_shape == (64,) and s.num_classes == 10 and s.class_names[3] == "3"
    assert s.train.x.dtype == np.float32 and 0 <= s.train.x.min() and s.train.x.max() <= 1
    assert np.bincount(s.test.y).min() >= 35 and np.bincount(s.test.y).max() <= 37
    s2 = D.load_dataset("digits", flatten=False)
    assert s2.input_shape == (1, 8, 8)
    np.testing.assert_array_equal(s2.test.x.reshape(360, 64), s.test.x)  # same split in both layouts
    np.testing.assert_array_equal(s2.test.y, s.test.y)
    assert s.info["sizes"] == {"train": 1257, "val": 180, "test": 360}


@pytest.mark.parametrize("name,n,d,k", [("iris", 150, 4, 3), ("wine", 178, 13, 3), ("breast_cancer", 569, 30, 2)])
def test_bundled_tabular_datasets_load_offline(name, n, d, k):
    s = D.load_dataset(name)
    assert len(s.train) + len(s.val) + len(s.test) == n
    assert s.input_shape == (d,) and s.num_classes == k and len(s.class_names) == k
    assert set(np.unique(s.test.y)) == set(range(k))


def test_registry_lists_descriptions_and_rejects_unknown_names():
    names = dict(D.list_datasets())
    for n in ("digits", "iris", "wine", "breast_cancer", "mnist", "fashion_mnist", "npz", "csv", "xor",
              "noisy_xor", "spirals", "blobs", "seq_parity", "seq_sorted", "seq_majority", "charlm"):
        assert n in names and names[n]
    with pytest.raises(DataError, match="did you mean 'digits'"):
        D.load_dataset("digts")
    with pytest.raises(DataError, match="has no option 'flaten' \\(did you mean 'flatten'\\?\\)"):
        D.load_dataset("digits", flaten=False)


def test_load_dataset_from_config_table_ignores_training_keys():
    spec = {"name": "digits", "flatten": False, "batch_size": 64, "augment": {"shift": 1}, "path": None,
            "split_seed": 0, "standardize": "channel"}
    s = D.load_dataset(spec)
    assert s.input_shape == (1, 8, 8) and s.standardizer.mode == "channel"


def test_xor_and_synthetic_sets_are_deterministic():
    s = D.load_dataset("xor")
    np.testing.assert_array_equal(s.train.y, [0, 1, 1, 0])
    assert s.val is s.train or np.array_equal(s.val.x, s.train.x)
    for name in ("noisy_xor", "spirals", "blobs"):
        a, b = D.load_dataset(name), D.load_dataset(name)
        np.testing.assert_array_equal(a.train.x, b.train.x)
        c = D.load_dataset(name, seed=1)
        assert not np.array_equal(a.train.x, c.train.x)
    nx = D.load_dataset("noisy_xor", noise=0.0, n_samples=40)
    x, y = nx.train.x, nx.train.y
    np.testing.assert_array_equal(y, (x[:, 0] != x[:, 1]).astype(np.int64))


def test_sequence_tasks_labels_and_balance():
    p = D.load_dataset("seq_parity", length=9, n_samples=400)
    assert p.train.x.dtype == np.int64 and p.standardizer is None
    np.testing.assert_array_equal(p.train.y, p.train.x.sum(1) % 2)
    s = D.load_dataset("seq_sorted", length=6, vocab_size=5, n_samples=400)
    sorted_ = np.all(np.diff(s.train.x, axis=1) >= 0, axis=1)
    np.testing.assert_array_equal(s.train.y, sorted_.astype(np.int64))
    m = D.load_dataset("seq_majority", length=9, vocab_size=3, n_samples=300)
    counts = np.stack([np.bincount(r, minlength=3) for r in m.train.x])
    np.testing.assert_array_equal(m.train.y, counts.argmax(1))
    assert m.meta["vocab_size"] == 3 and np.bincount(m.train.y).min() >= 60


def test_charlm_windows_are_next_character_and_splits_contiguous():
    s = D.load_dataset("charlm", seq_len=32, stride=8)
    vocab = s.meta["vocab"]
    assert s.num_classes == len(vocab) and s.train.x.shape[1] == 32
    np.testing.assert_array_equal(s.train.y[:, :-1], s.train.x[:, 1:])
    from distnn.data.text import BUILTIN_TEXT, decode
    text = decode(s.train.x[0], vocab) + decode(s.train.y[0, -1:], vocab)
    assert text == BUILTIN_TEXT[:33]
    val_text = decode(s.val.x[0], vocab)
    assert BUILTIN_TEXT.find(val_text) >= int(len(BUILTIN_TEXT) * 0.7) - 1  # val comes after train
    # per-position targets, the held-out windows' ignored ones (-100) not counted (a ValueError from bincount)
    for part in (s.train, s.val, s.test):
        scored = part.y[part.y >= 0]
        assert part.class_counts().tolist() == np.bincount(scored, minlength=s.num_classes).tolist()
    assert (s.val.y < 0).any() and s.val.class_counts().sum() == (s.val.y >= 0).sum()


def test_charlm_reads_a_user_text_file(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("abcdefghij" * 30)
    s = D.load_dataset("charlm", path=str(p), seq_len=16, stride=4)
    assert s.meta["vocab"] == list("abcdefghij") and s.num_classes == 10
    p.write_text("too short")
    with pytest.raises(DataError, match="too short for language modelling"):
        D.load_dataset("charlm", path=str(p))
    with pytest.raises(DataError, match="not found"):
        D.load_dataset("charlm", path=str(tmp_path / "missing.txt"))


def test_a_rare_class_keeps_a_training_sample():
    # One sample of class 2 against test_fraction 0.5: the split sent it to test, and the model never saw it.
    y = np.array([0] * 50 + [1] * 50 + [2])
    tr, va, te = D.stratified_split(y, 0.0, 0.5, 0)
    assert np.bincount(y[tr], minlength=3).tolist() == [24, 25, 1]
    assert (len(tr), len(va), len(te)) == (50, 0, 51)  # the sizes stay
    for seed in range(5):  # a split that keeps every class in training is unchanged: digits' sizes too
        y = np.arange(1797) % 10
        assert [len(p) for p in D.stratified_split(y, 0.1, 0.2, seed)] == [1257, 180, 360]
