"""distnn.data's file formats: IDX (plain and gzip, MNIST directories), CSV and npz, with bad input naming the
file, line and column."""
import gzip
import os

import numpy as np
import pytest

import distnn.data as D
from distnn.data import DataError


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
