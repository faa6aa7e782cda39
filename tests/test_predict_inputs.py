"""``distnn predict`` / ``evaluate --data`` inputs: token models, where the output goes, a CSV's first row,
unlabelled IDX images, and one-line messages for bad files (CSV headers and columns more:
test_predict_csv_columns.py)."""
import csv
import io
import os
import stat

import numpy as np
import pytest

from distnn.cli import main

FAST = ["--set", "train.epochs=1", "--quiet"]
# Small versions of the built-in token configs (the same models and data, fewer samples and layers).
TOKEN_RUNS = {
    "sequence_lstm": ["--set", "data.n_samples=200"],
    "sequence_transformer": ["--set", "data.n_samples=200", "--set", "model.num_layers=1"],
    "charlm": ["--set", "model.num_layers=1", "--set", "data.seq_len=16"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny trained run per config the tests need (1 epoch each)."""
    root = tmp_path_factory.mktemp("predict_runs")
    out = {}
    for config, extra in [("digits_mlp", ["--set", "model.dropout=0.0"]), *TOKEN_RUNS.items()]:
        path = str(root / config)
        assert main(["train", "--config", config, *FAST, *extra, "--out", path]) == 0
        out[config] = path
    return out


def cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(code, err, *must):
    """Exit status 2 with a single 'distnn: error:' line containing every string of ``must``."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("distnn: error:"), err
    for m in must:
        assert m in lines[0], (m, lines[0])
    return lines[0]


def read_table(path_or_text):
    text = open(path_or_text).read() if os.path.exists(str(path_or_text)) else path_or_text
    return list(csv.reader(io.StringIO(text)))


def model_and_split(run):
    """The run's model (rebuilt from its directory) and its built-in test split: the oracle."""
    from distnn.data import load_dataset
    from distnn.train.run_dir import load_model

    model, meta, _ = load_model(run)
    return model, load_dataset(meta["data"]).test


def direct_probs(model, x):
    import distnn

    with distnn.no_grad():
        return model(distnn.Tensor(x)).softmax(axis=-1).numpy()


# ------------------------------------------------------------------ token models
@pytest.mark.parametrize("config", list(TOKEN_RUNS))
def test_token_models_predict_and_evaluate_files(runs, config, tmp_path, capsys):
    run = runs[config]
    model, test = model_and_split(run)
    x, y = test.x[:12], test.y[:12]
    assert x.dtype.kind == "i"  # the built-in splits hold integer token ids
    probs = direct_probs(model, x)
    want = probs[:, -1, :] if probs.ndim == 3 else probs  # CharLM: the token after each sequence

    np.savez(tmp_path / "ids.npz", x=x, y=y)
    np.savez(tmp_path / "ids_f64.npz", x=x.astype(np.float64))  # integer-valued floats convert exactly
    np.savetxt(tmp_path / "ids.csv", x.astype(np.float64), delimiter=",", fmt="%.1f")  # "3.0": integral
    tables = []
    for name in ("ids.npz", "ids_f64.npz", "ids.csv"):
        code, out, err = cli(["predict", run, "--input", tmp_path / name, "--output", tmp_path / f"{name}.out"],
                             capsys)
        assert code == 0, err
        assert "wrote 12 predictions" in out
        tables.append(read_table(tmp_path / f"{name}.out"))
    assert tables[0] == tables[1] == tables[2]
    table = tables[0]
    assert len(table) == 13 and len(table[0]) == 2 + want.shape[1]
    got = np.array([[float(v) for v in r[2:]] for r in table[1:]])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal([int(r[0]) for r in table[1:]], want.argmax(axis=1))

    code, out, err = cli(["evaluate", run, "--data", tmp_path / "ids.npz"], capsys)
    assert code == 0, err
    pred = probs.argmax(axis=-1)
    assert f"accuracy {(pred == y).mean():.4f}" in out
    assert f"{y.size} samples" in out  # CharLM: one target per position


def test_token_ids_must_be_whole_numbers_in_the_vocabulary(runs, tmp_path, capsys):
    run = runs["sequence_lstm"]  # vocab_size 10, sequences of 12
    _, test = model_and_split(run)
    x = test.x[:4].astype(np.float64)
    frac = x.copy()
    frac[1, 2] = 1.5
    np.savetxt(tmp_path / "frac.csv", frac, delimiter=",", fmt="%g")
    out = tmp_path / "p.csv"
    code, _, err = cli(["predict", run, "--input", tmp_path / "frac.csv", "--output", out], capsys)
    one_error(code, err, "frac.csv", "whole numbers", "1.5", "line 2 column 3")
    for bad, value in ((10, "10"), (-1, "-1")):
        ids = test.x[:4].copy()
        ids[3, 5] = bad
        np.savez(tmp_path / "oov.npz", x=ids)
        code, _, err = cli(["predict", run, "--input", tmp_path / "oov.npz", "--output", out], capsys)
        one_error(code, err, "oov.npz", f"token id {value} at row 3 position 5", "outside the vocabulary 0..9")
        np.savez(tmp_path / "oov_labelled.npz", x=ids, y=test.y[:4])
        code, _, err = cli(["evaluate", run, "--data", tmp_path / "oov_labelled.npz"], capsys)
        one_error(code, err, "oov_labelled.npz", f"token id {value}")
    huge = x.copy()
    huge[0, 0] = 1e30  # integral as a float, but no id (and no int64 either)
    np.savez(tmp_path / "huge.npz", x=huge)
    code, _, err = cli(["predict", run, "--input", tmp_path / "huge.npz", "--output", out], capsys)
    one_error(code, err, "huge.npz", "token id 1e+30", "outside the vocabulary")
    assert not out.exists()


# ------------------------------------------------------------------ where the output goes
def _digits_inputs(path, n=6):
    from distnn.data import load_dataset

    x = load_dataset("digits").test.x[:n]
    np.savetxt(path, x, delimiter=",", fmt="%.4f")
    return x


def test_output_equal_to_input_is_refused(runs, tmp_path, capsys):
    run = runs["digits_mlp"]
    inp = tmp_path / "in.csv"
    _digits_inputs(inp)
    before = inp.read_bytes()
    link = tmp_path / "link.csv"
    link.symlink_to(inp)
    for output in (inp, tmp_path / "." / "in.csv", link):
        code, _, err = cli(["predict", run, "--input", inp, "--output", output], capsys)
        one_error(code, err, "is the input file", "refusing")
        assert inp.read_bytes() == before and link.is_symlink()


def test_no_file_beside_the_output_is_overwritten_and_a_new_output_gets_the_usual_mode(runs, tmp_path, capsys):
    # predictions went through OUTPUT + ".tmp": an input (or any file) of that name was overwritten, then
    # renamed over the output
    run = runs["digits_mlp"]
    inp = tmp_path / "in.csv"
    _digits_inputs(inp)
    beside = tmp_path / "preds.csv.tmp"
    beside.write_text("a user's file\n")
    out = tmp_path / "preds.csv"
    code, _, err = cli(["predict", run, "--input", inp, "--output", out], capsys)
    assert code == 0, err
    assert beside.read_text() == "a user's file\n"
    assert sorted(os.listdir(tmp_path)) == ["in.csv", "preds.csv", "preds.csv.tmp"]
    assert len(read_table(out)) == 7
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o666 & ~umask
    os.chmod(out, 0o640)  # a replaced output keeps its permissions
    assert cli(["predict", run, "--input", inp, "--output", out], capsys)[0] == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o640


def test_output_fifo_is_written_in_place_not_replaced(runs, tmp_path, capsys):
    run = runs["digits_mlp"]
    inp = tmp_path / "in.csv"
    _digits_inputs(inp)
    fifo = tmp_path / "preds.fifo"
    os.mkfifo(fifo)
    # A reader opened first (non-blocking) lets the writer open the FIFO; 6 rows fit in the pipe buffer.
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        code, _, err = cli(["predict", run, "--input", inp, "--output", fifo], capsys)
        assert code == 0, err
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still the FIFO, not a regular file renamed over it
        data = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    table = read_table(data.decode())
    assert table[0][:2] == ["predicted_label", "predicted_class"] and len(table) == 7
    assert not (tmp_path / "preds.fifo.tmp").exists()


def test_a_checkpoint_pointer_is_not_overwritten(runs, tmp_path, capsys):
    # checkpoints/latest and best are files of the run (they say which checkpoint a resume and evaluate read):
    # predictions written over one left the run pointing nowhere
    run = runs["digits_mlp"]
    inp = tmp_path / "in.csv"
    _digits_inputs(inp)
    for which in ("latest", "best"):
        pointer = os.path.join(run, "checkpoints", which)
        before = open(pointer, "rb").read()
        code, _, err = cli(["predict", run, "--input", inp, "--output", pointer], capsys)
        one_error(code, err, f"--output {pointer!r}", "refusing to overwrite it")
        assert open(pointer, "rb").read() == before


def test_output_symlink_is_written_through(runs, tmp_path, capsys):
    run = runs["digits_mlp"]
    inp = tmp_path / "in.csv"
    _digits_inputs(inp)
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "preds.csv"
    target.write_text("old\n")
    link = tmp_path / "preds.csv"
    link.symlink_to(target)
    code, _, err = cli(["predict", run, "--input", inp, "--output", link], capsys)
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == str(target)
    table = read_table(target)
    assert table[0][0] == "predicted_label" and len(table) == 7
    assert sorted(os.listdir(tmp_path / "real")) == ["preds.csv"]  # no temporary file left beside it


def test_output_dash_is_standard_output(runs, tmp_path, capsys):
    run = runs["digits_mlp"]
    inp = tmp_path / "in.csv"
    _digits_inputs(inp)
    file_out = tmp_path / "preds.csv"
    assert cli(["predict", run, "--input", inp, "--output", file_out], capsys)[0] == 0
    code, out, err = cli(["predict", run, "--input", inp, "--output", "-"], capsys)
    assert code == 0, err
    assert not (tmp_path / "-").exists()
    assert out == file_out.read_text()  # the same table, and nothing else, on standard output
    assert "wrote" in err  # the summary line goes to stderr then


# ------------------------------------------------------------------ CSV header rule
def test_first_row_mixing_numbers_and_text_is_an_error(runs, tmp_path, capsys):
    run = runs["digits_mlp"]
    inp = tmp_path / "in.csv"
    _digits_inputs(inp, n=4)
    rows = inp.read_text().splitlines()
    cells = rows[0].split(",")
    cells[5] = "abc"  # one bad cell in a headerless file: not a header, and not silently dropped
    (tmp_path / "mixed.csv").write_text("\n".join([",".join(cells)] + rows[1:]) + "\n")
    out = tmp_path / "p.csv"
    code, _, err = cli(["predict", run, "--input", tmp_path / "mixed.csv", "--output", out], capsys)
    one_error(code, err, "mixed.csv", "line 1 column 6", "'abc'")
    assert not out.exists()
    # a real header (no numeric cell) is still skipped
    (tmp_path / "header.csv").write_text(",".join(f"f{j}" for j in range(64)) + "\n" + "\n".join(rows) + "\n")
    code, out_text, err = cli(["predict", run, "--input", tmp_path / "header.csv", "--output", out], capsys)
    assert code == 0 and "wrote 4 predictions" in out_text, err


# ------------------------------------------------------------------ IDX images without labels
def test_predict_unlabelled_idx_images(runs, tmp_path, capsys):
    from distnn.data import load_dataset, write_idx

    run = runs["digits_mlp"]
    x = load_dataset("digits").test.x[:5]
    images = tmp_path / "new-images-idx3-ubyte"
    write_idx(str(images), np.clip(x.reshape(5, 8, 8) * 16, 0, 255).astype(np.uint8))
    out = tmp_path / "p.csv"
    code, text, err = cli(["predict", run, "--input", images, "--output", out], capsys)
    assert code == 0, err
    assert "wrote 5 predictions" in text and len(read_table(out)) == 6
    code, _, err = cli(["evaluate", run, "--data", images], capsys)  # scoring still needs the labels
    one_error(code, err, "no matching labels file")


# ------------------------------------------------------------------ one-line messages
def test_bad_input_files_get_one_line_naming_the_problem(runs, tmp_path, capsys):
    run = runs["digits_mlp"]
    out = tmp_path / "p.csv"
    x = np.zeros((3, 64))

    def predict_fails(name, *must):
        code, _, err = cli(["predict", run, "--input", tmp_path / name, "--output", out], capsys)
        one_error(code, err, name, *must)
        assert not out.exists()

    (tmp_path / "garbage.npz").write_bytes(b"\x00\x01 this is not a zip archive")
    predict_fails("garbage.npz", "not a readable .npz archive", "not a zip file")
    np.save(tmp_path / "plain.npy", x)
    os.replace(tmp_path / "plain.npy", tmp_path / "plain.npz")
    predict_fails("plain.npz", "single .npy array")
    np.savez(tmp_path / "objects.npz", x=np.array([[1, "a"]] * 3, dtype=object))
    predict_fails("objects.npz", "array 'x' holds Python objects")
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 64)))
    predict_fails("empty.npz", "has 0 samples")
    np.savez(tmp_path / "text.npz", x=np.array([["a"] * 64] * 3))
    predict_fails("text.npz", "array 'x' must be numeric, got dtype <U1")
    np.savez(tmp_path / "scalar.npz", x=np.float64(3.0))
    predict_fails("scalar.npz", "array 'x' is a single number, not an array of samples")
    (tmp_path / "empty.csv").write_text(",".join(f"f{j}" for j in range(64)) + "\n")
    predict_fails("empty.csv", "has 0 samples")
    big = x.copy()
    big[2, 7] = 1e300
    np.savez(tmp_path / "big.npz", x=big)
    predict_fails("big.npz", "value 1e+300 at row 2", "out of float32 range")
    np.savetxt(tmp_path / "big.csv", big, delimiter=",", fmt="%g")
    predict_fails("big.csv", "value 1e+300 at line 3 column 8", "out of float32 range")
