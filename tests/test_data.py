"""distnn.data: splits, bundled/synthetic datasets, IDX/CSV/npz files, transforms, DataLoader."""
import gzip
import json
import os

import numpy as np
import pytest

import distnn.data as D
from distnn.data import DataError


# ---------------------------------------------------------------- splits

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


# ---------------------------------------------------------------- synthetic

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


# ---------------------------------------------------------------- IDX

def _write_mnist(tmp_path, n_train=30, n_test=10, gz=False, side=6):
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    data = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        D.write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{ext}", imgs)
        D.write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{ext}", labels)
        data[prefix] = (imgs, labels)
    return data


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip_plain_and_gzip(tmp_path, gz):
    ext = ".gz" if gz else ""
    for dtype in (np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64):
        a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
        p = tmp_path / f"a_{np.dtype(dtype).name}{ext}"
        D.write_idx(p, a)
        b = D.read_idx(p)
        assert b.dtype == a.dtype and b.shape == a.shape
        np.testing.assert_array_equal(a, b)
    if gz:
        with open(tmp_path / f"a_uint8{ext}", "rb") as f:
            assert f.read(2) == b"\x1f\x8b"


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_directory_loads_with_t10k_as_test(tmp_path, gz):
    data = _write_mnist(tmp_path, gz=gz)
    s = D.load_dataset("mnist", path=str(tmp_path), val_fraction=0.2)
    assert len(s.test) == 10 and len(s.val) == 6 and len(s.train) == 24
    assert s.input_shape == (36,) and s.meta["image_shape"] == (1, 6, 6)
    np.testing.assert_allclose(s.test.x, data["t10k"][0].reshape(10, -1) / 255.0, rtol=1e-6)
    img = D.load_dataset("mnist", path=str(tmp_path), flatten=False)
    assert img.input_shape == (1, 6, 6)
    f = D.load_dataset("fashion_mnist", path=str(tmp_path / f"train-images-idx3-ubyte{'.gz' if gz else ''}"))
    assert f.class_names[0] == "T-shirt/top" and len(f.train) + len(f.val) + len(f.test) == 30


def test_idx_wrong_magic_truncation_and_mismatch_name_the_file(tmp_path):
    _write_mnist(tmp_path)
    img = tmp_path / "train-images-idx3-ubyte"
    lab = tmp_path / "train-labels-idx1-ubyte"
    raw = img.read_bytes()
    bad = tmp_path / "bad-images-idx3-ubyte"
    bad.write_bytes(b"\x12\x34" + raw[2:])
    with pytest.raises(DataError, match=r"'.*bad-images-idx3-ubyte' has a wrong magic number 0x12340803"):
        D.read_idx(bad)
    with pytest.raises(DataError, match="wrong magic number 0x00000801.*expected an image file"):
        D.load_idx_pair(lab, lab)
    bad.write_bytes(raw[:-7])
    with pytest.raises(DataError, match=r"bad-images-idx3-ubyte' is truncated: header says 30 x 6 x 6 of uint8 "
                                        r"\(1080 bytes of data\), found 1073"):
        D.read_idx(bad)
    bad.write_bytes(raw[:10])
    with pytest.raises(DataError, match="truncated: header needs 16 bytes"):
        D.read_idx(bad)
    bad.write_bytes(raw + b"xx")
    with pytest.raises(DataError, match="2 unexpected bytes"):
        D.read_idx(bad)
    bad.write_bytes(gzip.compress(raw)[:-8])
    with pytest.raises(DataError, match="damaged gzip"):
        D.read_idx(bad)
    D.write_idx(lab, np.zeros(29, np.uint8))
    with pytest.raises(DataError, match=r"disagree: 30 images but 29 labels"):
        D.load_dataset("mnist", path=str(tmp_path))
    D.write_idx(lab, np.full(30, 12, np.uint8))
    with pytest.raises(DataError, match=r"labels must be 0..9; offending labels \[12\]"):
        D.load_dataset("mnist", path=str(tmp_path))
    os.remove(lab)
    with pytest.raises(DataError, match="has train-images-idx3-ubyte but no train-labels file"):
        D.load_dataset("mnist", path=str(tmp_path))
    with pytest.raises(DataError, match="needs data.path"):
        D.load_dataset("mnist")
    with pytest.raises(DataError, match="not found"):
        D.read_idx(tmp_path / "nope")


# ---------------------------------------------------------------- CSV

def _csv(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_csv_happy_paths(tmp_path):
    p = _csv(tmp_path, "a,b,label\n1,2,0\n3,4.5,1\n\n5,6,2\n")
    x, y, names = D.load_csv(p)
    np.testing.assert_array_equal(x, [[1, 2], [3, 4.5], [5, 6]])
    np.testing.assert_array_equal(y, [0, 1, 2])
    assert names == ["a", "b"]
    p2 = _csv(tmp_path, "1,0.5,2\n0,1.5,3\n", "n.csv")
    x, y, _ = D.load_csv(p2, label_column=0, header=False)
    np.testing.assert_array_equal(y, [1, 0])
    np.testing.assert_array_equal(x, [[0.5, 2], [1.5, 3]])
    p3 = _csv(tmp_path, "label,a,b\n1,1,2\n0,3,4\n", "h.csv")
    x, y, names = D.load_csv(p3, label_column="label")
    np.testing.assert_array_equal(y, [1, 0])
    assert names == ["a", "b"]
    with pytest.raises(DataError, match="has no column named 'lbl'"):
        D.load_csv(p3, label_column="lbl")
    s = D.load_dataset("csv", path=p, val_fraction=0.0, test_fraction=0.0)
    assert len(s.train) == 3 and s.num_classes == 3
    s = D.load_dataset(p, val_fraction=0.0, test_fraction=0.0)  # a path as the name
    assert s.name == "csv"


@pytest.mark.parametrize("text,pattern", [
    ("a,b,c\n1,2,0\n3,4\n", r"data file '.*d.csv' line 3: expected 3 columns, got 2"),
    ("1,2,0\n3,x,1\n", r"line 2 column 2: cannot parse 'x' as a number"),
    ("a,b,c\n1,,0\n", r"line 2 column 2 \('b'\): empty cell"),
    ("1,2,0\n3,4,1\nnan,1,0\n", r"line 3 column 1: non-finite feature value nan"),
    ("1,2,0\n3,inf,1\n", r"line 2 column 2: non-finite feature value inf"),
    ("1,2,0\n3,4,1\n5,6,5\n", r"labels must be integers 0..2 \(3 classes\); offending labels 5 \(first at line 3\)"),
    ("1,2,1\n3,4,2\n", r"offending labels 2 \(first at line 2\) \(labels look 1-based; subtract 1\)"),
    ("1,2,0\n3,4,1.5\n", r"offending labels 1.5 \(first at line 2\)"),
    ("1,2,0\n3,4,-1\n", r"offending labels -1"),
])
def test_csv_bad_input_names_file_line_and_column(tmp_path, text, pattern):
    with pytest.raises(DataError, match=pattern) as info:
        D.load_csv(_csv(tmp_path, text))
    assert "\n" not in str(info.value)


def test_csv_missing_file_and_num_classes(tmp_path):
    with pytest.raises(DataError, match=r"data file '.*missing.csv' not found"):
        D.load_csv(str(tmp_path / "missing.csv"))
    p = _csv(tmp_path, "1,2,0\n3,4,1\n")
    _, y, _ = D.load_csv(p, num_classes=5)  # fewer distinct labels than classes is fine
    with pytest.raises(DataError, match=r"labels must be integers 0..0 \(1 classes\); offending labels 1"):
        D.load_csv(p, num_classes=1)


# ---------------------------------------------------------------- npz

def test_npz_keys_presplit_and_errors(tmp_path):
    x = np.arange(20, dtype=np.float64).reshape(10, 2)
    y = np.arange(10) % 2
    np.savez(tmp_path / "a.npz", X=x, y=y)
    parts = D.load_npz(str(tmp_path / "a.npz"))
    np.testing.assert_array_equal(parts["all"][0], x.astype(np.float32))
    np.savez(tmp_path / "b.npz", feats=x, target=y)
    parts = D.load_npz(str(tmp_path / "b.npz"), x_key="feats", y_key="target")
    assert parts["all"][1].dtype == np.int64
    with pytest.raises(DataError, match=r"has no 'x' or 'X' array for features \(keys: \['feats', 'target'\]\)"):
        D.load_npz(str(tmp_path / "b.npz"))
    np.savez(tmp_path / "c.npz", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4])
    s = D.load_dataset("npz", path=str(tmp_path / "c.npz"), val_fraction=0.2)
    assert (len(s.train), len(s.val), len(s.test)) == (8, 2, 4)
    bad = x.copy()
    bad[7, 1] = np.nan
    np.savez(tmp_path / "d.npz", x=bad, y=y)
    with pytest.raises(DataError, match=r"d.npz' array 'x': non-finite feature value nan at row 7"):
        D.load_npz(str(tmp_path / "d.npz"))
    np.savez(tmp_path / "text.npz", x=np.array(["a"] * 10), y=y)
    with pytest.raises(DataError, match=r"text.npz' array 'x' must be numeric, got dtype <U1"):
        D.load_npz(str(tmp_path / "text.npz"))
    np.savez(tmp_path / "scalar.npz", x=np.float64(1.0), y=y)
    with pytest.raises(DataError, match=r"scalar.npz' array 'x' is a single number, not an array of samples"):
        D.load_npz(str(tmp_path / "scalar.npz"))
    np.savez(tmp_path / "shape.npz", x_train=x, y_train=y, x_test=x[:4, :1], y_test=y[:4])
    with pytest.raises(DataError, match=r"shape.npz': 'x_test' has samples of shape \(1,\) but 'x_train' has \(2,\)"):
        D.load_npz(str(tmp_path / "shape.npz"))
    three = np.arange(10) % 3  # the training split happens to lack class 1: still 3 classes
    np.savez(tmp_path / "lacks1.npz", x_train=x[three != 1], y_train=three[three != 1], x_test=x, y_test=three)
    parts = D.load_npz(str(tmp_path / "lacks1.npz"))
    assert sorted(set(parts["train"][1])) == [0, 2] and sorted(set(parts["test"][1])) == [0, 1, 2]
    np.savez(tmp_path / "emptyval.npz", x_train=x, y_train=y, x_val=np.array([]), y_val=np.array([]), x_test=x,
             y_test=y)  # a 1-D empty x_val: no validation split, not a shape mismatch
    assert len(D.load_npz(str(tmp_path / "emptyval.npz"))["val"][0]) == 0
    np.savez(tmp_path / "nosamples.npz", x_train=x[:0], y_train=y[:0], x_test=x, y_test=y)
    with pytest.raises(DataError, match=r"nosamples.npz' array 'x_train' has 0 samples"):
        D.load_npz(str(tmp_path / "nosamples.npz"))
    np.savez(tmp_path / "mixed.npz", x=x, y=y, x_test=x[:4], y_test=y[:4])  # its own test split, no x_train
    with pytest.raises(DataError, match=r"mixed.npz' has x_test but no 'x_train'"):
        D.load_npz(str(tmp_path / "mixed.npz"))
    assert len(D.load_npz(str(tmp_path / "mixed.npz"), x_key="x", y_key="y")["all"][0]) == 10
    np.savez(tmp_path / "e.npz", x=x, y=y + 3)
    with pytest.raises(DataError, match=r"offending labels 3, 4 \(first at row 0\)"):
        D.load_npz(str(tmp_path / "e.npz"))
    np.savez(tmp_path / "f.npz", x=x, y=y[:9])
    with pytest.raises(DataError, match="'x' has 10 rows but 'y' has 9"):
        D.load_npz(str(tmp_path / "f.npz"))
    (tmp_path / "g.npz").write_text("not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        D.load_npz(str(tmp_path / "g.npz"))
    with pytest.raises(DataError, match="not found"):
        D.load_npz(str(tmp_path / "h.npz"))


# ---------------------------------------------------------------- standardization

def test_standardization_uses_training_statistics_only():
    s = D.load_dataset("wine")
    std = s.standardizer
    np.testing.assert_allclose(std.mean, s.train.x.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(std.std, s.train.x.astype(np.float64).std(0), rtol=1e-12)
    all_x = np.concatenate([s.train.x, s.val.x, s.test.x]).astype(np.float64)
    assert not np.allclose(std.mean, all_x.mean(0))
    z = std(s.train.x)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-4)
    zt = std(s.test.x)
    np.testing.assert_allclose(zt, (s.test.x - std.mean) / std.std, rtol=1e-5, atol=1e-5)
    state = json.loads(json.dumps(std.state_dict()))  # plain lists: JSON-serializable
    again = D.Standardizer.from_state_dict(state)
    np.testing.assert_array_equal(again(s.test.x), zt)


def test_standardizer_modes_and_constant_features():
    x = np.random.default_rng(0).normal(3, 2, size=(50, 2, 4, 4)).astype(np.float32)
    x[:, :, 0, 0] = 5.0  # constant pixel: std 1, so it maps to 0 rather than inf
    f = D.Standardizer("feature").fit(x)
    assert f.mean.shape == (2, 4, 4) and f.std[0, 0, 0] == 1.0
    assert np.all(np.isfinite(f(x))) and np.all(f(x)[:, :, 0, 0] == 0)
    c = D.Standardizer("channel").fit(x)
    assert c.mean.shape == (2, 1, 1)
    g = D.Standardizer("global").fit(x)
    assert g.mean.size == 1
    np.testing.assert_allclose(g.mean.item(), x.astype(np.float64).mean(), rtol=1e-10)
    with pytest.raises(DataError, match="fitted on samples of shape"):
        f(x.reshape(50, -1))
    tiny = np.random.default_rng(1).normal(0, 1, size=(40, 3)) * np.array([1e-8, 1.0, 0.0]) + np.array([0, 0, 1e-9])
    t = D.Standardizer("feature").fit(tiny)  # a feature in small units is still scaled to std 1
    np.testing.assert_allclose(t(tiny).std(0), [1.0, 1.0, 0.0], atol=1e-6)
    assert t.std[2] == 1.0  # a constant (tiny) feature: std 1, mapped to 0


# ---------------------------------------------------------------- augmentation

def test_shift_is_exact_and_rotation_by_90_matches_rot90():
    img = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5) + 1
    out = D.affine_images(img, [0.0], [[1, -2]])  # down 1, left 2
    expected = np.zeros_like(img)
    expected[0, 0, 1:, :3] = img[0, 0, :4, 2:]
    np.testing.assert_array_equal(out, expected)
    rot = D.affine_images(img, [90.0], [[0, 0]])
    matches = [np.allclose(rot[0, 0], np.rot90(img[0, 0], k), atol=1e-4) for k in (1, -1)]
    assert any(matches)


def test_augmentation_deterministic_shape_preserving():
    s = D.load_dataset("digits")
    aug = D.RandomAffine(shift=1, rotate=10, image_shape=(1, 8, 8))
    x = s.train.x[:16]
    a = aug(x, np.random.default_rng(5))
    b = aug(x, np.random.default_rng(5))
    c = aug(x, np.random.default_rng(6))
    assert a.shape == x.shape and a.dtype == x.dtype
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    img = x.reshape(16, 1, 8, 8)
    np.testing.assert_array_equal(aug(img, np.random.default_rng(5)).reshape(16, 64), a)
    n = D.GaussianNoise(0.5)(np.zeros((2000, 4), np.float32), np.random.default_rng(0))
    assert abs(n.std() - 0.5) < 0.02 and n.dtype == np.float32
    train_tf, eval_tf = D.build_transforms(s, {"shift": 1, "rotate": 5.0, "noise": 0.1})
    assert train_tf(x, np.random.default_rng(0)).shape == x.shape and eval_tf is s.standardizer
    with pytest.raises(DataError, match=r"data.augment.shift = 1 needs image data; dataset 'iris' \(data.name\)"):
        D.build_transforms(D.load_dataset("iris"), {"shift": 1})
    with pytest.raises(DataError, match="unknown augmentation option"):
        D.build_transforms(s, {"blur": 1})


# ---------------------------------------------------------------- loader

def _ids(n):
    return np.arange(n, dtype=np.float32)[:, None], np.arange(n) % 3


def test_loader_covers_data_reshuffles_and_is_reproducible():
    data = _ids(23)
    loader = D.DataLoader(data, batch_size=5, shuffle=True, seed=7)
    assert len(loader) == 5
    orders = []
    for epoch in range(2):
        loader.set_epoch(epoch)
        batches = list(loader)
        assert [len(b[0]) for b in batches] == [5, 5, 5, 5, 3]
        order = np.concatenate([xb[:, 0] for xb, _ in batches]).astype(int)
        assert sorted(order) == list(range(23))
        for xb, yb in batches:
            np.testing.assert_array_equal(yb, xb[:, 0].astype(int) % 3)
        orders.append(order)
    assert not np.array_equal(orders[0], orders[1])
    again = D.DataLoader(data, batch_size=5, shuffle=True, seed=7)
    again.set_epoch(1)
    np.testing.assert_array_equal(np.concatenate([xb[:, 0] for xb, _ in again]).astype(int), orders[1])
    dl = D.DataLoader(data, batch_size=5, drop_last=True)
    assert len(dl) == 4 and sum(len(b[0]) for b in dl) == 20
    with pytest.raises(DataError, match="either sampler or shuffle"):
        D.DataLoader(data, 5, shuffle=True, sampler=D.SequentialSampler(23))


def _order_of(batches):
    return np.concatenate([b[0][:, 0] for b in batches]).astype(int).tolist()


def test_loader_reshuffles_every_pass_like_pytorch():
    data = _ids(23)
    loader = D.DataLoader(data, batch_size=5, shuffle=True, seed=7)
    passes = [_order_of(loader) for _ in range(3)]  # no set_epoch: each pass is the next epoch
    assert passes[0] != passes[1] != passes[2]
    for epoch, order in enumerate(passes):
        placed = D.DataLoader(data, batch_size=5, shuffle=True, seed=7)
        placed.set_epoch(epoch)
        assert _order_of(placed) == order
    it = iter(loader)  # a pass broken off: the next one is still a new epoch
    next(it)
    assert loader.epoch == 3
    placed = D.DataLoader(data, batch_size=5, shuffle=True, seed=7)
    placed.set_epoch(4)
    assert _order_of(loader) == _order_of(placed) and loader.epoch == 4
    loader.set_epoch(1)  # placed by hand: exactly that epoch
    assert _order_of(loader) == passes[1]


def test_loader_follows_its_samplers_epoch_and_start():
    from distnn.distributed.sampler import DistributedSampler

    data = _ids(20)
    for rank in range(2):
        sampler = DistributedSampler(20, shuffle=True, seed=1, num_replicas=2, rank=rank)
        loader = D.DataLoader(data, 2, sampler=sampler)
        for epoch in (0, 1, 2, 1):  # PyTorch's pattern: sampler.set_epoch(e), then iterate the loader
            sampler.set_epoch(epoch)
            reference = D.DataLoader(data, 2, sampler=DistributedSampler(20, shuffle=True, seed=1, num_replicas=2,
                                                                         rank=rank))
            reference.set_epoch(epoch)
            assert _order_of(loader) == _order_of(reference)
        sampler.set_epoch(0)  # the same epoch again before each pass (train, then evaluate): the same order
        assert _order_of(loader) == _order_of(loader)
        sampler.set_epoch(5)
        sampler.set_start(12)  # skip the first 12 samples of the global order: 4 left per rank, 2 batches
        assert len(loader) == 2
        tail = _order_of(loader)
        assert tail == sampler.global_order()[12:][rank::2].tolist()


def test_loader_mid_epoch_start_reproduces_the_tail_with_augmentation():
    data = _ids(40)

    def noisy(x, rng):  # a random transform: the tail must see the same draws
        return x + rng.standard_normal(x.shape).astype(np.float32)

    full = D.DataLoader(data, 6, shuffle=True, seed=3, transform=noisy)
    full.set_epoch(2)
    whole = list(full)
    resumed = D.DataLoader(data, 6, shuffle=True, seed=3, transform=noisy)
    resumed.load_state_dict({"epoch": 2, "batch": 4, "seed": 3})
    tail = list(resumed)
    assert len(tail) == len(whole) - 4
    for (a, ya), (b, yb) in zip(whole[4:], tail):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ya, yb)
    assert resumed.state_dict() == {"epoch": 2, "batch": len(whole), "seed": 3}
    it = full.batches(epoch=2)
    next(it), next(it)
    assert full.state_dict()["batch"] == 2


@pytest.mark.parametrize("given_sampler", [False, True])
def test_loader_state_saved_at_an_epochs_end_resumes_with_the_next_epoch(given_sampler):
    # it resumed into the finished epoch's empty rest, and every later epoch came one epoch late
    from distnn.distributed import DistributedSampler

    data = _ids(10)

    def passes(loader, sampler, epochs):
        out = []
        for e in epochs:
            if sampler is not None:
                sampler.set_epoch(e)  # PyTorch's pattern with a given sampler
            out.append([yb.tolist() for _, yb in loader])
        return out

    def make():
        if not given_sampler:
            return D.DataLoader(data, 3, shuffle=True, seed=1), None
        s = DistributedSampler(10, num_replicas=1, rank=0, shuffle=True, seed=1)
        return D.DataLoader(data, 3, sampler=s), s

    whole = passes(*make(), range(3))
    first_loader, first_sampler = make()
    first = passes(first_loader, first_sampler, range(1))
    state = first_loader.state_dict()
    resumed_loader, resumed_sampler = make()
    resumed_loader.load_state_dict(state)
    assert first + passes(resumed_loader, resumed_sampler, range(1, 3)) == whole
    assert len(whole[1]) == 4


class _PaddingSampler:
    """A two-rank shard with one padded (repeated) sample, exposing the mask as a method."""

    def __init__(self, n, rank, size=2):
        self.n, self.rank, self.size, self.epoch = n, rank, size, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def _order(self):
        order = np.random.default_rng([0, self.epoch]).permutation(self.n)
        per = -(-self.n // self.size)
        order = np.concatenate([order, order[:per * self.size - self.n]])
        return order[self.rank::self.size], np.arange(self.rank, per * self.size, self.size) < self.n

    def __iter__(self):
        return iter(self._order()[0].tolist())

    def __len__(self):
        return -(-self.n // self.size)

    def valid_mask(self):
        return self._order()[1]


def test_loader_over_sharded_sampler_with_padding_masks():
    data = _ids(11)
    seen = []
    for rank in range(2):
        loader = D.DataLoader(data, 4, sampler=_PaddingSampler(11, rank), with_mask=True)
        loader.set_epoch(1)
        for xb, yb, mask in loader:
            seen.extend(xb[mask, 0].astype(int).tolist())
            assert mask.dtype == bool and len(mask) == len(xb)
    assert sorted(seen) == list(range(11))  # every sample exactly once among the valid ones


def test_loader_with_distributed_sampler_if_available():
    dist = pytest.importorskip("distnn.distributed.sampler", reason="distnn.distributed.sampler not built yet")
    data = _ids(10)
    seen = []
    for rank in range(3):
        sampler = dist.DistributedSampler(10, shuffle=True, seed=1, num_replicas=3, rank=rank)
        loader = D.DataLoader(data, 2, sampler=sampler, with_mask=True)
        assert loader.rank == rank
        loader.set_epoch(4)
        for xb, _, mask in loader:
            seen.extend(xb[mask, 0].astype(int).tolist())
    assert sorted(seen) == list(range(10))


def test_a_rare_class_keeps_a_training_sample():
    # One sample of class 2 against test_fraction 0.5: the split sent it to test, and the model never saw it.
    y = np.array([0] * 50 + [1] * 50 + [2])
    tr, va, te = D.stratified_split(y, 0.0, 0.5, 0)
    assert np.bincount(y[tr], minlength=3).tolist() == [24, 25, 1]
    assert (len(tr), len(va), len(te)) == (50, 0, 51)  # the sizes stay
    for seed in range(5):  # a split that keeps every class in training is unchanged: digits' sizes too
        y = np.arange(1797) % 10
        assert [len(p) for p in D.stratified_split(y, 0.1, 0.2, seed)] == [1257, 180, 360]


def test_csv_with_another_delimiter_gets_a_hint(tmp_path):
    p = tmp_path / "semi.csv"
    p.write_text("a;b;label\n1;2;0\n3;4;1\n")
    with pytest.raises(DataError, match=r"need at least 2 columns .*got 1 \(its cells look separated by ';': set "
                                         r"data.delimiter = ';'\)"):
        D.load_csv(str(p))
    x, y, names = D.load_csv(str(p), delimiter=";")
    assert names == ["a", "b"] and len(x) == 2
    with pytest.raises(DataError, match=r"data.delimiter must be one character, got ';;'"):
        D.load_csv(str(p), delimiter=";;")
