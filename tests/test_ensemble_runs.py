"""Whole ensemble runs through the CLI: layout and summary, members differing and simulated ranks equal to one
process, evaluate and predict using every member, a member's config retraining it, checkpoint paths, epochs
counted per member."""
import os

import numpy as np
import pytest

import distnn
from distnn.backend import gpu_available
from distnn.train import ensemble as E

from ensemble_cases import ensemble_cfg, train_ensemble, member_weights


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 3-member ensemble trained in turns in one process, and the same on 3 simulated ranks at once."""
    root = tmp_path_factory.mktemp("ens")
    one = train_ensemble(root / "one", "ensemble.members=3")
    sim = train_ensemble(root / "sim", "ensemble.members=3", simulate_ranks=3)
    return {"one": (root / "one", one), "sim": (root / "sim", sim)}


def test_run_layout_and_summary(runs):
    path, s = runs["one"]
    for f in ("config.toml", "model.json", "summary.json", "metrics.jsonl", "metrics.csv"):
        assert (path / f).is_file(), f
    for m in range(3):
        for f in ("config.toml", "model.npz", "model.json", "summary.json", "metrics.jsonl"):
            assert (path / "members" / f"member-{m}" / f).is_file(), (m, f)
    assert s["ensemble"]["members"] == 3 and [r["seed"] for r in s["members"]] == [0, 1, 2]
    assert s["device"] == ("gpu" if gpu_available() else "cpu") and s["dtype"] in ("float32", "float64")
    accs = s["member_test_accuracy"]
    assert s["ensemble_gain_accuracy"] == pytest.approx(s["test_accuracy"] - np.mean(accs))
    assert s["ensemble_nll_reduction"] == pytest.approx(np.mean(s["member_test_loss"]) - s["test_loss"])
    # each member's own summary (float32 cross-entropy) agrees with the ensemble's float64 scoring
    import json

    for m in range(3):
        with open(path / "members" / f"member-{m}" / "summary.json") as f:
            ms = json.load(f)
        assert ms["test_accuracy"] == pytest.approx(accs[m], abs=1e-12)
        assert ms["test_loss"] == pytest.approx(s["member_test_loss"][m], rel=1e-5)
    rows = (path / "metrics.csv").read_text().splitlines()
    from distnn.train.ensemble_run import ENSEMBLE_CSV_COLUMNS

    assert rows[0].split(",") == ENSEMBLE_CSV_COLUMNS
    assert [r.split(",")[0] for r in rows[1:]] == ["member-0", "member-1", "member-2", "ensemble"]


def test_members_differ_and_simulated_ranks_equal_one_process(runs):
    (p1, s1), (p3, s3) = runs["one"], runs["sim"]
    assert s3["ensemble"]["groups"] == 3 and s1["ensemble"]["groups"] == 1
    for m in range(3):  # deterministic: the same member whichever schedule trained it
        w1, w3 = member_weights(p1, m), member_weights(p3, m)
        assert all(np.array_equal(w1[k], w3[k]) for k in w1)
    w0, w1 = member_weights(p1, 0), member_weights(p1, 1)
    assert not np.allclose(w0["0.weight"], w1["0.weight"])  # seeds differ
    for k in ("test_accuracy", "test_loss", "member_test_accuracy", "member_test_loss", "val_loss"):
        np.testing.assert_allclose(s1[k], s3[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_evaluate_and_predict_use_every_member(runs, tmp_path):
    from distnn.train import run_dir as rd
    from distnn.train.job import evaluate_run, predict_run

    path, s = runs["one"]
    text = evaluate_run(str(path))
    assert f"accuracy {s['test_accuracy']:.4f}" in text and f"loss     {s['test_loss']:.4f}" in text
    model, meta, tf = rd.load_model(str(path))
    assert isinstance(model, E.EnsembleModel) and len(model.members) == 3
    x = np.random.default_rng(0).uniform(0, 16, size=(9, 64)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    assert predict_run(str(path), str(tmp_path / "in.npz"), str(tmp_path / "out.csv")) == 9
    lines = (tmp_path / "out.csv").read_text().splitlines()
    got = np.array([[float(v) for v in ln.split(",")[2:]] for ln in lines[1:]])
    members = []
    for m in range(3):
        mm, _, mtf = rd.load_model(E.member_dir(path, m))
        members.append(mm(distnn.Tensor(mtf(x, None))).softmax(axis=-1).numpy().astype(np.float64))
    by_hand = E.average_probabilities(members)
    np.testing.assert_allclose(got, by_hand, rtol=1e-4, atol=1e-6)
    assert [int(ln.split(",")[0]) for ln in lines[1:]] == by_hand.argmax(1).tolist()


def test_member_config_retrains_that_member_bootstrap_and_overrides(tmp_path):
    s = train_ensemble(tmp_path / "ens", "ensemble.members=3", 'ensemble.vary=["bootstrap"]',
               'ensemble.overrides=[{}, {}, {"model.hidden_sizes" = [8], "optimizer.lr" = 0.02}]')
    assert s["ensemble"]["vary"] == ["bootstrap"] and [r["seed"] for r in s["members"]] == [0, 0, 0]
    w0, w1, w2 = (member_weights(tmp_path / "ens", m) for m in range(3))
    # same seed, same initial weights: members 0 and 1 differ only by their bootstrap resamples
    assert w0["0.weight"].shape == w1["0.weight"].shape == (16, 64)
    assert not np.allclose(w0["0.weight"], w1["0.weight"])
    assert w2["0.weight"].shape == (8, 64)  # the override
    from distnn.train.config import load_config

    c2 = load_config(E.member_dir(tmp_path / "ens", 2) + "/config.toml")
    assert c2.ensemble.member == 2 and c2.ensemble.members == 1 and c2.optimizer.lr == 0.02
    # member-2's config.toml alone retrains member 2 exactly (same bootstrap resample, same seed)
    from distnn.train.job import run_training

    run_training(E.member_dir(tmp_path / "ens", 2) + "/config.toml", [], out=str(tmp_path / "again"), quiet=True)
    from distnn.train import run_dir as rd

    again, _, _ = rd.load_model(str(tmp_path / "again"))
    assert all(np.array_equal(again.state_dict()[k], w2[k]) for k in w2)


def test_member_checkpoint_paths(tmp_path):
    cfg = ensemble_cfg(members=2)
    cfg["checkpoint"] = {"dir": "/ck/root", "resume": "auto"}
    sub = E.member_config(cfg, 1)
    assert sub["checkpoint"] == {"dir": "/ck/root/member-1", "resume": "auto"}
    # --resume RUN_DIR of an ensemble: each member resumes from its own run directory / checkpoint root
    os.makedirs(E.member_dir(tmp_path / "run", 1))
    os.makedirs(tmp_path / "root" / "member-1")
    cfg["checkpoint"] = {"resume": str(tmp_path / "run")}
    assert E.member_config(cfg, 1)["checkpoint"]["resume"] == E.member_dir(tmp_path / "run", 1)
    cfg["checkpoint"] = {"resume": str(tmp_path / "root")}
    assert E.member_config(cfg, 1)["checkpoint"]["resume"] == str(tmp_path / "root" / "member-1")
    cfg["checkpoint"] = {"resume": str(tmp_path / "elsewhere")}
    assert E.member_config(cfg, 1)["checkpoint"]["resume"] == str(tmp_path / "elsewhere")


def test_summary_counts_each_members_epochs(tmp_path):
    # Members may have their own train.epochs and stop early at different epochs: the top-level "epochs"
    # was member 0's alone (1 here), whatever the others ran.
    es = '"early_stopping.enabled"=true, "early_stopping.patience"=1, "early_stopping.min_delta"=1e9'
    s = train_ensemble(tmp_path / "ens", "ensemble.members=2", "train.epochs=1",
               f'ensemble.overrides=[{{}}, {{"train.epochs"=3, {es}}}]')  # member 1 stops after epoch 2 of 3
    assert s["epochs"] == [1, 3] and s["epochs_run"] == [1, 2]
    assert [(r["epochs"], r["epochs_run"], r["stopped_early"]) for r in s["members"]] == [(1, 1, False),
                                                                                          (3, 2, True)]
    import json

    with open(tmp_path / "ens" / "summary.json") as f:
        assert json.load(f)["epochs"] == [1, 3]
    lines = E.summary_lines(s)  # what `distnn train` prints
    assert "(seed 0, 1 of 1 epochs)" in lines[1] and "(seed 1, 2 of 3 epochs, stopped early)" in lines[2], lines
