"""A split key that the data files' own splits leave unused is refused when the dataset is loaded, naming the
key and why (it was silently ignored): ``data.test_fraction`` beside MNIST's t10k test files, the fractions
beside an .npz's own x_val/x_test, and ``data.split_seed`` when both are there (the training split is then the
whole training data). The files decide it, so a config cannot be checked for it when it is loaded
(tests/test_config_options_in_files.py: xor's, which never depend on files). Defaults never trigger it; a run
trained with such a value before still evaluates and resumes.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from distnn.cli import main
from distnn.data import DataError, load_dataset, write_idx


def _mnist(directory, with_test=True):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10))[:2 if with_test else 1]:
        write_idx(directory / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 6, 6), dtype=np.uint8))
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    return str(directory)


def _npz(path, *splits):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 3)).astype(np.float32), np.arange(40) % 2
    arrays = {"x_train": x[:24], "y_train": y[:24]}
    for split, part in zip(("val", "test"), (slice(24, 32), slice(32, 40))):
        if split in splits:
            arrays.update({f"x_{split}": x[part], f"y_{split}": y[part]})
    np.savez(path, **arrays)
    return str(path)


def test_mnists_test_fraction_beside_its_t10k_files_is_refused(tmp_path):
    path = _mnist(tmp_path)
    with pytest.raises(DataError, match=rf"^dataset 'mnist' ignores data\.test_fraction = 0\.3: data\.path "
                                        rf"'{tmp_path}' brings its own test split \(its t10k-\* files\); remove "
                                        rf"test_fraction from \[data\]$"):
        load_dataset("mnist", path=path, test_fraction=0.3)
    with pytest.raises(DataError, match=r"ignores data\.test_fraction = 0\.0"):  # (0: still the t10k split)
        load_dataset("mnist", path=path, test_fraction=0.0)
    # the default, and a val_fraction (carved from the training file) are what they were
    s = load_dataset("mnist", path=path, val_fraction=0.2)
    assert (len(s.train), len(s.val), len(s.test)) == (24, 6, 10)
    assert len(load_dataset("mnist", path=path, split_seed=3).test) == 10  # (val still drawn: the seed is read)
    # without t10k files the fraction is what splits off the test set
    bare = tmp_path / "bare"
    bare.mkdir()
    assert len(load_dataset("mnist", path=_mnist(bare, with_test=False), test_fraction=0.3).test) == 9


@pytest.mark.parametrize("splits, refused", [
    (("val", "test"), ["val_fraction", "test_fraction", "split_seed"]),
    (("test",), ["test_fraction"]),
    (("val",), ["val_fraction"]),
])
def test_an_npzs_own_splits_refuse_the_fractions_they_replace(tmp_path, splits, refused):
    path = _npz(tmp_path / "d.npz", *splits)
    given = {"val_fraction": 0.25, "test_fraction": 0.25, "split_seed": 3}
    with pytest.raises(DataError) as err:
        load_dataset("npz", path=path, **given)
    named = [p.split(" = ")[0].split("data.")[1] for p in str(err.value).split("; dataset ")]
    assert named == refused, str(err.value)
    assert f"brings its own {splits[0]} split (its x_{splits[0]}/y_{splits[0]} arrays)" in str(err.value)
    # the others are read; the defaults never trigger it
    s = load_dataset("npz", path=path, **{k: v for k, v in given.items() if k not in refused})
    assert len(s.train) == 24 - sum(int(np.ceil(0.25 * 24)) for k in ("val", "test") if k not in splits)
    load_dataset(path)


def test_the_command_line_refuses_it_with_one_line_and_writes_nothing(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(f'[data]\nname = "mnist"\npath = "{_mnist(tmp_path)}"\ntest_fraction = 0.5\n'
                      '[train]\nepochs = 1\n[run]\nplots = false\n')
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLCONFIGDIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "distnn", "train", "--config", str(config), "--out", "run"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "distnn: error: dataset 'mnist' ignores data.test_fraction = 0.5: " in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()


def test_a_run_trained_with_one_before_still_evaluates_and_resumes(tmp_path, monkeypatch, capsys):
    from distnn.data import datasets

    monkeypatch.setattr(datasets, "refuse_unused_split_keys", lambda *a: None)  # (the code of before)
    path, run = _mnist(tmp_path), tmp_path / "run"
    sets = ["data.name=mnist", f"data.path={path}", "data.test_fraction=0.5", "train.epochs=1", "run.plots=false"]
    argv = ["train", "--config", "digits_mlp", *(a for s in sets for a in ("--set", s)), "--out", str(run), "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    monkeypatch.undo()
    with pytest.raises(DataError, match="ignores data.test_fraction"):
        load_dataset("mnist", path=path, test_fraction=0.5)
    assert main(["evaluate", str(run)]) == 0, capsys.readouterr().err
    assert main(["train", "--out", str(run), "--resume", "auto", "--set", "train.epochs=2", "--quiet"]) == 0, \
        capsys.readouterr().err
