"""``python -m distnn`` as a new user meets it: bad input ends with status 2, ONE line on stderr
naming the problem (no traceback), and nothing left behind (no run directory where there was none).

Each case runs the real command line in a subprocess (one process: none of these is about ranks).
"""
import os
import shutil
import tempfile

import numpy as np
import pytest
from cli_run import distnn

XOR = ["train", "--config", "xor", "--set", "train.epochs=1", "--quiet"]
NOBODY = 65534


def one_error(r, *words):
    """Status 2 and one stderr line, ``distnn: error: ...``, holding every one of ``words``."""
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("distnn: error: "), r.stderr[-2000:]
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def write_csv(path, labels, header="a,b,label"):
    rng = np.random.default_rng(0)
    rows = [f"{a:.3f},{b:.3f},{y}" for (a, b), y in zip(rng.normal(size=(len(labels), 2)), labels)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")


# ------------------------------------------------------------------ config and --set
def test_a_problem_in_the_config_file_is_not_blamed_on_a_set_of_another_key(tmp_path):
    # the file misspells [train]; the --set of train.epochs is fine, and the hint names 'train'
    (tmp_path / "c.toml").write_text('[data]\nname = "xor"\n[trian]\nepochs = 2\n')
    line = one_error(distnn(["train", "--config", "c.toml", "--set", "train.epochs=1", "--out", "r"], tmp_path),
                     "unknown section 'trian'", "did you mean 'train'")
    assert "set by --set" not in line
    assert not (tmp_path / "r").exists()
    # a problem of the --set itself still says so
    one_error(distnn([*XOR, "--set", "optimizer.lr=-1", "--out", "r"], tmp_path), "optimizer.lr", "(set by --set)")


@pytest.mark.parametrize("setting,key", [
    ("data.n_samples=99999999999999999999999", "data.n_samples"),
    ("model.hidden_sizes=[99999999999999999999]", "model.hidden_sizes"),
    ("data.batch_size=99999999999999999999", "data.batch_size"),
])
def test_an_integer_beyond_64_bits_is_refused_naming_its_key(tmp_path, setting, key):
    r = distnn([*XOR, "--set", "data.name=blobs", "--set", setting, "--out", "r"], tmp_path)
    one_error(r, key, "64-bit")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("members", [1, 2])
def test_a_setup_that_runs_out_of_memory_is_one_line_not_a_traceback(tmp_path, members):
    # 10**15 samples: petabytes, more than any address space, so the allocation fails everywhere
    r = distnn([*XOR, "--set", "data.name=blobs", "--set", "data.n_samples=1000000000000000",
                "--set", f"ensemble.members={members}", "--out", "r"], tmp_path)
    one_error(r, "memory", "Unable to allocate")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("option", ["--out", "--resume"])
def test_an_empty_out_or_resume_is_an_error_not_ignored(tmp_path, option):
    # (an unset shell variable: --resume "$CKPT" would silently start from scratch in a new directory)
    r = distnn([*XOR, option, ""], tmp_path)
    one_error(r, option, "empty")
    assert os.listdir(tmp_path) == []


def test_no_command_says_so_on_stderr(tmp_path):
    r = distnn([], tmp_path)
    assert r.returncode == 2 and "train" in r.stdout
    assert r.stderr.strip().splitlines() == ["distnn: error: no command given: choose one of train, evaluate, "
                                             "predict, datasets, config-keys"]


# ------------------------------------------------------------------ data files
def test_a_single_class_is_refused(tmp_path):
    write_csv(tmp_path / "one.csv", [0] * 30)
    r = distnn([*XOR, "--set", "data.name=csv", "--set", "data.path=one.csv", "--out", "r"], tmp_path)
    one_error(r, "one.csv", "only one class", "at least 2")
    assert not (tmp_path / "r").exists()
    np.savez(tmp_path / "one.npz", x=np.ones((30, 2), np.float32), y=np.zeros(30, np.int64))
    r = distnn([*XOR, "--set", "data.name=npz", "--set", "data.path=one.npz", "--out", "r"], tmp_path)
    one_error(r, "one.npz", "only one class")
    assert not (tmp_path / "r").exists()


def test_a_model_that_does_not_fit_the_datasets_targets_is_named_before_training(tmp_path):
    # charlm text (a target per position) into the default MLP failed at the first step inside
    # cross_entropy: "target shape (64, 64) does not match input batch shape (64,)"
    r = distnn(["train", "--set", "data.name=charlm", "--set", "data.augment.shift=0", "--set", "train.epochs=1",
                "--quiet", "--out", "r"], tmp_path)
    one_error(r, "model 'mlp'", "dataset 'charlm'", "per position", "model.name")
    assert not (tmp_path / "r").exists()


def test_a_diverging_run_stopped_by_the_nonfinite_policy_prints_its_one_line_only(tmp_path):
    # numpy's RuntimeWarnings (overflow in matmul, invalid value in subtract, ...) came before it
    r = distnn(["train", "--set", "train.epochs=2", "--set", "optimizer.lr=1e30", "--set", "train.nonfinite=error",
                "--quiet", "--out", "r"], tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1].startswith("distnn: error: non-finite loss or gradients at step")
    assert "Warning" not in r.stderr, r.stderr[-2000:]


@pytest.mark.parametrize("config,sets", [("xor", ["data.name=csv"]), ("charlm", [])])
def test_a_data_path_that_is_a_directory_is_named_as_such(tmp_path, config, sets):
    (tmp_path / "d").mkdir()
    args = ["train", "--config", config, "--set", "train.epochs=1", "--quiet", "--out", "r"]
    for s in sets + ["data.path=d"]:
        args += ["--set", s]
    line = one_error(distnn(args, tmp_path), "d'", "is a directory")
    assert "not found" not in line
    assert not (tmp_path / "r").exists()


def _as_nobody():
    """(command prefix, directory): a user that cannot read a mode-000 file, and a directory it may use."""
    if os.geteuid() != 0:
        return (), tempfile.mkdtemp()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a mode-000 file stays readable to root")
    d = tempfile.mkdtemp()
    os.chmod(d, 0o777)
    return (setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"), d


@pytest.mark.parametrize("kind", ["csv", "idx", "text", "config"])
def test_an_unreadable_file_is_named_with_the_reason(kind):
    as_user, d = _as_nobody()
    try:
        from pathlib import Path

        d = Path(d)
        if kind == "csv":
            write_csv(d / "f.csv", [0, 1] * 10)
            bad, args = d / "f.csv", ["--set", "data.name=csv", "--set", "data.path=f.csv"]
        elif kind == "idx":
            (d / "m").mkdir()
            (d / "m" / "train-images-idx3-ubyte").write_bytes(b"\0\0\x08\x03" + b"\0" * 12)
            (d / "m" / "train-labels-idx1-ubyte").write_bytes(b"\0\0\x08\x01\0\0\0\0")
            bad, args = d / "m" / "train-images-idx3-ubyte", ["--config", "mnist_mlp", "--set", "data.path=m"]
        elif kind == "text":
            (d / "t.txt").write_text("some text " * 50)
            bad, args = d / "t.txt", ["--config", "charlm", "--set", "data.path=t.txt"]
        else:
            (d / "c.toml").write_text('[data]\nname = "xor"\n')
            bad, args = d / "c.toml", ["--config", "c.toml"]
        os.chmod(bad, 0)
        for p in [d, *d.rglob("*")]:
            if as_user and p != bad:
                os.chown(p, NOBODY, -1)
        r = distnn([*XOR, *args, "--out", "r"], d, as_user)
        line = one_error(r, bad.name, "cannot be read", "Permission denied")
        assert "Errno" not in line
        assert not (d / "r").exists()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_synthetic_features_that_overflow_name_the_option(tmp_path):
    r = distnn([*XOR, "--set", "data.name=noisy_xor", "--set", "data.noise=1e308", "--out", "r"], tmp_path)
    one_error(r, "noise", "1e+308")  # (and no RuntimeWarning lines: one_error counts them)
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------ run directory and checkpoints
def test_a_checkpoint_dir_that_is_a_file_is_refused_before_training(tmp_path):
    (tmp_path / "f").write_text("not a directory")
    r = distnn([*XOR, "--set", "checkpoint.enabled=true", "--set", f"checkpoint.dir={tmp_path / 'f'}",
                "--out", "r"], tmp_path)
    one_error(r, "checkpoint.dir", "not a directory")
    assert not (tmp_path / "r").exists()  # no half run directory (config.toml and metrics of epoch 1)
    assert (tmp_path / "f").read_text() == "not a directory"
    # checkpoint.on_error = "continue" trains on without checkpoints, as it says
    r = distnn([*XOR, "--set", "checkpoint.enabled=true", "--set", f"checkpoint.dir={tmp_path / 'f'}",
                "--set", "checkpoint.on_error=continue", "--out", "r2"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]


def test_resume_from_a_path_that_does_not_exist_fails_before_the_run_directory_is_made(tmp_path):
    r = distnn([*XOR, "--set", "checkpoint.enabled=true", "--resume", "nope", "--out", "r"], tmp_path)
    one_error(r, "--resume", "nope", "no such checkpoint or run directory")
    assert not (tmp_path / "r").exists()


def test_an_empty_checkpoint_resume_in_the_config_is_an_error_not_ignored(tmp_path):
    one_error(distnn([*XOR, "--set", "checkpoint.resume=", "--out", "r"], tmp_path), "checkpoint.resume is empty")
    (tmp_path / "c.toml").write_text('[data]\nname = "xor"\n[checkpoint]\nresume = ""\n')
    one_error(distnn(["train", "--config", "c.toml", "--out", "r"], tmp_path), "checkpoint.resume is empty")
    assert sorted(os.listdir(tmp_path)) == ["c.toml"]


def test_class_names_in_the_label_column_say_labels_are_indices(tmp_path):
    (tmp_path / "names.csv").write_text("a,b,species\n" + "1,2,cat\n3,4,dog\n" * 10)
    r = distnn([*XOR, "--set", "data.name=csv", "--set", "data.path=names.csv", "--out", "r"], tmp_path)
    one_error(r, "line 2 column 3 ('species')", "'cat'", "the label column", "class indices")
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------ run directories that hold results
def test_resume_auto_on_a_finished_run_without_checkpoints_keeps_its_results(tmp_path):
    # checkpointing off: the finished run leaves results and no checkpoint. "--resume auto" used to find
    # none, start from scratch and overwrite model.npz, summary.json and the metrics.
    r = distnn([*XOR, "--set", "checkpoint.enabled=false", "--out", "run"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    before = {n: (tmp_path / "run" / n).read_bytes() for n in ("model.npz", "summary.json", "metrics.csv")}
    one_error(distnn([*XOR, "--set", "train.epochs=2", "--resume", "auto", "--out", "run"], tmp_path),
              "holds a finished run", "no valid checkpoint")
    assert {n: (tmp_path / "run" / n).read_bytes() for n in before} == before


@pytest.mark.parametrize("name", ["model.json", "metrics.jsonl", "curves.png"])
def test_a_directory_holding_a_file_a_run_writes_is_not_overwritten(tmp_path, name):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / name).write_text("the user's own")
    one_error(distnn([*XOR, "--out", "mine"], tmp_path), "already holds a run", name)
    assert (tmp_path / "mine" / name).read_text() == "the user's own"


# ------------------------------------------------------------------ evaluate / predict messages
@pytest.fixture(scope="module")
def xor_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("xorrun")
    r = distnn([*XOR, "--out", "run"], d)
    assert r.returncode == 0, r.stderr[-2000:]
    np.savez(d / "x.npz", x=np.zeros((4, 2), np.float32))
    return d


def test_evaluate_of_a_file_says_it_is_a_file(xor_run):
    (xor_run / "notes.txt").write_text("not a run")
    line = one_error(distnn(["evaluate", "notes.txt"], xor_run), "notes.txt", "is a file")
    assert "does not exist" not in line


@pytest.mark.parametrize("output,words", [("x.npz/p.csv", ("x.npz", "is a file")), ("", ("--output is empty",))])
def test_predict_output_problems_are_named(xor_run, output, words):
    line = one_error(distnn(["predict", "run", "--input", "x.npz", "--output", output], xor_run), *words)
    assert "does not exist" not in line and "Is a directory" not in line


def test_an_unreadable_model_is_named_with_the_reason(xor_run):
    as_user, d = _as_nobody()
    try:
        shutil.copytree(xor_run / "run", os.path.join(d, "run"))
        for root, dirs, files in os.walk(d):
            for n in dirs + files:
                if as_user:
                    os.chown(os.path.join(root, n), NOBODY, -1)
        os.chmod(os.path.join(d, "run", "model.npz"), 0)
        line = one_error(distnn(["evaluate", "run"], d, as_user), "model.npz", "Permission denied")
        assert "Errno" not in line
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_resume_auto_on_a_finished_run_whose_checkpoints_are_all_corrupt_keeps_its_results(tmp_path):
    r = distnn([*XOR, "--set", "checkpoint.keep_last=1", "--out", "run"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    for d in (tmp_path / "run" / "checkpoints").glob("step-*"):
        (d / "model.npz").write_bytes(b"damaged")
    before = (tmp_path / "run" / "model.npz").read_bytes()
    r = distnn([*XOR, "--set", "train.epochs=2", "--resume", "auto", "--out", "run"], tmp_path)
    assert r.returncode == 2 and "no valid checkpoint" in r.stderr, r.stderr[-2000:]
    assert (tmp_path / "run" / "model.npz").read_bytes() == before


def test_batch_norm_on_a_last_batch_of_one_sample_says_how_to_drop_it(tmp_path):
    """digits has 1,257 training samples: batches of 628 leave a last batch of 1, on which batch norm
    cannot train (PyTorch refuses it too); the one line says how to drop that batch."""
    r = distnn(["train", "--config", "digits_mlp", "--out", str(tmp_path / "run"), "--quiet",
                "--set", 'model.norm="batch"', "--set", "data.batch_size=628", "--set", "train.epochs=1"], tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]  # (after the run's header lines)
    assert last.startswith("distnn: error: ") and "more than 1 value per channel" in last, last
    assert "data.drop_last = true" in last, last
    ok = distnn(["train", "--config", "digits_mlp", "--out", str(tmp_path / "run2"), "--quiet",
                 "--set", 'model.norm="batch"', "--set", "data.batch_size=628", "--set", "train.epochs=1",
                 "--set", "data.drop_last=true"], tmp_path)
    assert ok.returncode == 0, ok.stderr[-2000:]
