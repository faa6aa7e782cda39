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


# ---------------------------------------------------------------- charlm held-out stretches

def test_charlm_val_split_too_short_for_one_window_is_an_error():
    # The built-in text has 3221 characters: val_fraction 0.1 gives 322, less than 400 + 1.
    with pytest.raises(DataError, match=r"the val split is 322 characters .*seq_len \+ 1 = 401"):
        D.load_dataset("charlm", seq_len=400, val_fraction=0.1, test_fraction=0.2)
    with pytest.raises(DataError, match=r"the test split is 322 characters .*seq_len \+ 1 = 401"):
        D.load_dataset("charlm", seq_len=400, val_fraction=0.2, test_fraction=0.1)
    # The suggested fraction is enough.
    s = D.load_dataset("charlm", seq_len=400, val_fraction=0.125, test_fraction=0.2)
    # val: 403 characters, test: 644: one window each, and a last one for the characters it leaves
    assert len(s.val) == 2 and len(s.test) == 2
    assert (s.val.y[1] >= 0).sum() == 2 and (s.test.y[1] >= 0).sum() == 243


@pytest.mark.parametrize("seq_len", [7, 10, 16])
def test_charlm_scores_every_held_out_character_once(tmp_path, seq_len):
    # the non-overlapping evaluation windows used to leave the end of a held-out stretch unscored
    from distnn.data.text import IGNORED, encode

    rng = np.random.default_rng(seq_len)
    text = "".join(rng.choice(list("abcdefghijklmnop"), 300))
    (tmp_path / "t.txt").write_text(text)
    s = D.load_dataset("charlm", path=str(tmp_path / "t.txt"), seq_len=seq_len, val_fraction=0.1,
                       test_fraction=0.1)
    ids, _ = encode(text, s.meta["vocab"])
    for split, (a, b) in (("val", (240, 270)), ("test", (270, 300))):
        d = getattr(s, split)
        scored = d.y[d.y != IGNORED]  # row by row: in text order
        np.testing.assert_array_equal(scored, ids[a + 1:b], err_msg=split)
        # inputs are the characters before each target, ignored targets included
        np.testing.assert_array_equal(d.x[:, 1:], np.where(d.y[:, :-1] == IGNORED, d.x[:, 1:], d.y[:, :-1]))


def test_charlm_tiny_fraction_asks_for_a_split_and_zero_gives_none():
    with pytest.raises(DataError, match=r"the val split is 1 character \(val_fraction 1e-06"):
        D.load_dataset("charlm", seq_len=16, val_fraction=1e-6)
    s = D.load_dataset("charlm", seq_len=16, val_fraction=0.0, test_fraction=0.1)
    assert s.val is None and len(s.test) > 0
    with pytest.raises(DataError, match="val_fraction must be in"):
        D.load_dataset("charlm", val_fraction=1.5)


def test_charlm_early_stopping_with_a_val_split_too_short_fails_before_any_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--config", "charlm", "--set", "data.seq_len=400", "--set", "data.batch_size=4",
            "--set", "early_stopping.enabled=true", "--set", "train.epochs=1", "--set", "model.num_layers=1",
            "--out", str(out), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "val split is 322 characters" in err
    assert not out.exists()


@pytest.mark.parametrize("setting", ["early_stopping.enabled=true", "schedule.name=plateau"])
def test_val_monitor_without_a_loaded_val_split_fails_before_any_run_directory(tmp_path, capsys, setting):
    # data.val_fraction > 0 passes the config check, but the archive's own x_val is empty: no val split.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    path = tmp_path / "noval.npz"
    np.savez(path, x_train=x, y_train=y, x_val=x[:0], y_val=y[:0], x_test=x[:8], y_test=y[:8])
    out = tmp_path / "run"
    code = main(["train", "--config", "xor", "--set", "data.name=npz", "--set", f"data.path={path}",
                 "--set", "train.epochs=1", "--set", setting, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "monitor is 'val_loss'" in err and "no validation split" in err and "train 64 / test 8" in err
    assert not out.exists()


# ---------------------------------------------------------------- token models on user files

TOKEN_CONFIG = """\
name = "tokens"
[data]
name = "npz"
batch_size = 8
[model]
name = "lstm"
embedding_dim = 8
hidden_size = 8
[optimizer]
name = "adam"
lr = 0.01
[train]
epochs = 1
[checkpoint]
enabled = false
"""


def _parity_npz(path, bad=None):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, size=(64, 8))
    y = x.sum(axis=1) % 2
    if bad is not None:
        x = x.astype(np.float64)
        x[10, 3] = bad
    np.savez(path, x=x, y=y)
    return x, y


def test_lstm_trains_on_an_integer_npz_and_evaluate_predict_read_it(tmp_path, capsys):
    cfg = tmp_path / "tokens.toml"
    cfg.write_text(TOKEN_CONFIG)
    data = tmp_path / "tok.npz"
    _parity_npz(data)
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--set", f"data.path={data}", "--set", "model.vocab_size=2",
                 "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 0  # the run's test split, reloaded as ids
    assert "evaluated npz test split" in capsys.readouterr().out
    assert main(["evaluate", str(out), "--data", str(data)]) == 0
    assert "64 samples" in capsys.readouterr().out
    assert main(["predict", str(out), "--input", str(data), "--output", str(tmp_path / "p.csv")]) == 0
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 65


@pytest.mark.parametrize("bad, words", [(5, "token id 5 at sample"), (0.5, "token ids must be whole numbers; 0.5")])
def test_token_outside_the_vocabulary_is_a_one_line_error(tmp_path, capsys, bad, words):
    cfg = tmp_path / "tokens.toml"
    cfg.write_text(TOKEN_CONFIG)
    data = tmp_path / "bad.npz"
    _parity_npz(data, bad=bad)
    out = tmp_path / "run"
    code = main(["train", "--config", str(cfg), "--set", f"data.path={data}", "--set", "model.vocab_size=2",
                 "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and words in err and "split" in err, err
    assert not out.exists()


def test_load_dataset_token_vocab_gives_ids_without_a_standardizer(tmp_path):
    x, y = _parity_npz(tmp_path / "tok.npz")
    x = x.astype(np.float32)
    csv = tmp_path / "tok.csv"
    np.savetxt(csv, np.column_stack([x, y]), delimiter=",", fmt="%g")
    for path in (tmp_path / "tok.npz", csv):
        s = D.load_dataset(str(path), token_vocab=2)
        assert s.standardizer is None and s.info["standardize"] == "none"
        for _, d in s.items():
            assert d.x.dtype == np.int64 and set(np.unique(d.x)) <= {0, 1}
        plain = D.load_dataset(str(path))
        np.testing.assert_array_equal(s.train.x, plain.train.x)  # same samples, same split
    with pytest.raises(DataError, match=r"token id 1 at sample \d+ position \d+ is outside the vocabulary 0..0"):
        D.load_dataset(str(csv), token_vocab=1)
