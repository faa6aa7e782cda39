"""``python -m distnn`` training end to end (1 process and --simulate-ranks against it), the run directory's
contents, evaluate and predict, the summary's lines and the latest/best pointers."""
import csv
import json
import os
import tomllib

import numpy as np
import pytest

from distnn.backend import gpu_available
from distnn.cli import main
from distnn.train.callbacks import CSV_COLUMNS, read_metrics_csv

from cli_cases import run_cli, trained


def test_run_directory_contents(trained):
    for name, world in (("one", 1), ("sim2", 2)):
        d = trained[name]
        for f in ("config.toml", "metrics.jsonl", "metrics.csv", "curves.png", "summary.json", "model.npz",
                  "model.json"):
            assert os.path.isfile(os.path.join(d, f)), f
        assert not [f for f in os.listdir(d) if f.endswith(".tmp") or f.startswith(".distnn")]
        with open(os.path.join(d, "config.toml"), "rb") as f:
            cfg = tomllib.load(f)
        assert cfg["train"]["epochs"] == 3
        rows = [json.loads(line) for line in open(os.path.join(d, "metrics.jsonl"))]
        assert [r["epoch"] for r in rows] == [1, 2, 3]
        with open(os.path.join(d, "metrics.csv")) as f:
            table = list(csv.reader(f))
        assert table[0] == CSV_COLUMNS and len(table) == 4
        # every cell is a plain number (val_loss once read "np.float64(...)"), and the reader takes it back
        csv_rows = read_metrics_csv(os.path.join(d, "metrics.csv"))
        for r, c in zip(rows, csv_rows):
            assert all(isinstance(c[k], (int, float)) for k in CSV_COLUMNS) and c["val_loss"] == r["val_loss"]
        for r in rows:
            assert 0 < r["train_loss"] < 3 and 0 <= r["val_accuracy"] <= 1 and r["samples_per_sec"] > 0
            assert r["lr"] > 0 and r["wall_time"] > 0
        assert rows[-1]["train_loss"] < rows[0]["train_loss"]
        with open(os.path.join(d, "curves.png"), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        s = json.load(open(os.path.join(d, "summary.json")))
        assert s["world_size"] == world and s["epochs_run"] == 3 and s["stopped_early"] is False
        assert s["skipped_steps"] == 0
        # (what run.device = "auto" resolved to)
        assert s["device"] == ("gpu" if gpu_available() else "cpu") and s["dtype"] == "float32"
        assert 0.8 < s["test_accuracy"] <= 1 and s["test_loss"] > 0 and s["test_samples"] == 360
        assert s["global_batch_size"] == cfg["data"]["batch_size"] and 1 <= s["best_epoch"] <= 3
        for key in ("samples_per_sec", "wall_time"):
            assert s[key] > 0
        meta = json.load(open(os.path.join(d, "model.json")))
        assert meta["num_classes"] == 10 and meta["standardizer"] is not None


def test_summary_counts_skipped_non_finite_steps(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTNN_FAULT_NONFINITE_AT", "0:4,0:9")  # a NaN in the gradient at steps 4 and 9
    out = str(tmp_path / "run")
    assert main(["train", "--config", "digits_mlp", "--set", "train.epochs=1", "--set", "train.nonfinite=skip",
                 "--out", out, "--quiet"]) == 0
    s = json.load(open(os.path.join(out, "summary.json")))
    assert s["skipped_steps"] == 2 and s["global_steps"] == 20


def test_simulated_ranks_match_one_process_up_to_rounding(trained):
    # same global batch: 1 rank with B and 2 simulated ranks with B/2 each give the same run
    a = json.load(open(os.path.join(trained["one"], "summary.json")))
    b = json.load(open(os.path.join(trained["sim2"], "summary.json")))
    assert a["test_accuracy"] == pytest.approx(b["test_accuracy"], abs=1e-9)
    assert a["test_loss"] == pytest.approx(b["test_loss"], abs=2e-5)


def test_default_config_with_dropout_and_augmentation_on_two_simulated_ranks_matches_one_process(tmp_path):
    # digits_mlp as shipped: dropout and shift augmentation, both drawn per sample (not per rank)
    summaries = []
    for name, extra in (("one", []), ("sim2", ["--simulate-ranks", "2"])):
        out = str(tmp_path / name)
        assert main(["train", "--config", "digits_mlp", "--set", "train.epochs=2", "--out", out, "--quiet",
                     "--set", "run.plots=false", *extra]) == 0
        summaries.append(json.load(open(os.path.join(out, "summary.json"))))
    a, b = summaries
    assert a["world_size"] == 1 and b["world_size"] == 2
    assert a["test_accuracy"] == pytest.approx(b["test_accuracy"], abs=1e-9)
    assert a["test_loss"] == pytest.approx(b["test_loss"], rel=1e-4)
    assert a["final_train_loss"] == pytest.approx(b["final_train_loss"], rel=1e-4)


def test_evaluate_and_predict(trained, tmp_path, capsys):
    d = trained["one"]
    s = json.load(open(os.path.join(d, "summary.json")))
    code, out, _ = run_cli(["evaluate", d], capsys)
    assert code == 0
    assert f"accuracy {s['test_accuracy']:.4f}" in out
    assert "confusion matrix" in out and "precision" in out and "macro avg" in out
    code, out, _ = run_cli(["evaluate", d, "--split", "val"], capsys)
    assert code == 0 and "val split: 180 samples" in out

    from distnn.data import load_dataset

    test = load_dataset("digits").test
    inp = tmp_path / "inputs.csv"
    np.savetxt(inp, test.x[:25], delimiter=",", fmt="%.6f")
    labelled = tmp_path / "labelled.csv"
    np.savetxt(labelled, np.column_stack([test.x[:25], test.y[:25]]), delimiter=",", fmt="%.6f")
    preds = tmp_path / "preds.csv"
    code, out, _ = run_cli(["predict", d, "--input", str(inp), "--output", str(preds)], capsys)
    assert code == 0 and "25" in out
    with open(preds) as f:
        table = list(csv.reader(f))
    assert table[0][:2] == ["predicted_label", "predicted_class"] and len(table[0]) == 12 and len(table) == 26
    probs = np.array([[float(v) for v in r[2:]] for r in table[1:]])
    labels = np.array([int(r[0]) for r in table[1:]])
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-4)
    np.testing.assert_array_equal(labels, probs.argmax(axis=1))
    assert (labels == test.y[:25]).mean() > 0.8
    code, out, _ = run_cli(["evaluate", d, "--data", str(labelled)], capsys)
    assert code == 0 and "25 samples" in out
    acc = float(out.split("accuracy ")[1].split()[0])
    assert acc == pytest.approx((labels == test.y[:25]).mean(), abs=1e-4)


def test_the_summary_names_the_curves_only_when_they_were_drawn(tmp_path, capsys):
    code, out, _ = run_cli(["train", "--config", "xor", "--set", "train.epochs=1", "--set", "run.plots=false",
                            "--out", str(tmp_path / "run")], capsys)
    assert code == 0 and "run directory:" in out and "curves:" not in out
    assert not (tmp_path / "run" / "curves.png").exists()


def test_the_summary_names_the_final_report_best_when_no_validation_counted(tmp_path, capsys):
    # one epoch validated every 2nd: its validation is the last epoch's report, no judged best; at the end it
    # scores the weights the run ends with, the best there is (it named no best epoch, for those weights)
    code, out, _ = run_cli(["train", "--config", "xor", "--set", "train.epochs=1", "--set", "train.eval_every=2",
                            "--set", "run.plots=false", "--out", str(tmp_path / "run")], capsys)
    assert code == 0 and "(1 epoch, best epoch 1, 1 rank," in out
    code, out, _ = run_cli(["train", "--config", "xor", "--set", "train.epochs=2", "--set", "train.eval_every=2",
                            "--set", "run.plots=false", "--out", str(tmp_path / "run2")], capsys)
    assert code == 0 and "(2 epochs, best epoch 2, 1 rank," in out


def test_the_latest_and_best_pointers_name_their_checkpoint(trained, tmp_path, capsys):
    # <run>/checkpoints/latest is a pointer file: evaluate said "run directory ... does not exist" and
    # --resume said "no valid checkpoint found"
    d = trained["one"]
    latest = os.path.join(d, "checkpoints", "latest")
    assert os.path.isfile(latest)
    code, out, err = run_cli(["evaluate", latest], capsys)
    assert code == 0 and "accuracy" in out, err
    from distnn.train import checkpoint as ck

    path, state, _ = ck.resolve_and_load(latest, None)
    assert path == os.path.join(d, "checkpoints", ck.read_pointer(os.path.dirname(latest))) and state
    stale = tmp_path / "checkpoints"
    stale.mkdir()
    (stale / "best").write_text("step-00000999\n")
    code, _, err = run_cli(["evaluate", str(stale / "best")], capsys)
    assert code == 2 and "points at 'step-00000999', which is not a checkpoint here" in err


def test_the_epoch_lines_eta_counts_the_steps_max_steps_leaves(tmp_path, capsys):
    # it assumed train.epochs: "epoch 2/150 ... eta 49s" when max_steps ended the run at that epoch
    code, _, err = run_cli(["train", "--quiet", "--set", "train.max_steps=40", "--set", "run.plots=false",
                            "--set", "checkpoint.enabled=false", "--out", str(tmp_path / "r")], capsys)
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if "] epoch " in ln]
    assert [ln.split("] ")[1].split(" train")[0] for ln in lines] == ["epoch 1/150", "epoch 2/150"]
    assert "| eta " in lines[0] and "eta" not in lines[1], lines
