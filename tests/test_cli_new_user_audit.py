"""``python -m distnn`` as a new user follows the README: the problems an audit found there (h22).

* ``train --epochs 3`` (or ``--set train.epochs 3``) was answered with distnn's own usage line and no
  hint; now train's, with the ``--set KEY=VALUE`` meant, or the option misspelt;
* a run's ``config.toml`` recorded ``checkpoint.resume``: ``train --config RUN/config.toml`` of a resumed
  run asked for ``--out`` (``auto``) or resumed from the other run's checkpoint (a path) instead of
  training the same way afresh, as the README says it does;
* ``--out RUN/checkpoints`` (or a checkpoint) was taken for a new run directory: a run started from zero
  among the checkpoints, also with ``--resume auto``, which the user meant to continue;
* a resume into a new ``--out`` refused for another model left an empty directory behind;
* ``predict --output RUN/model.npz`` replaced the run's weights with the predictions table;
* under ``mpiexec -n 2``, ``datasets`` and ``config-keys`` printed their listing once per rank;
* ``evaluate RUN`` of a run whose training file has gone said only "data file ... not found";
* ``evaluate ENSEMBLE/members`` said "holds no trained model; is it a finished run directory?";
* ``evaluate RUN --header true`` (no ``--data``) and ``--header`` with an npz file were ignored without a word;
* an ensemble's ``curves.png`` hid a member validated once (a line of one point, no marker), and a short
  run's plots (single or ensemble) had ticks at fractional epochs; the ensemble's switched the process's
  matplotlib backend.

Each case runs the real command line in a subprocess, except the plots (in-process, to look at the figure).
"""
import os
import shutil
import sys
import tomllib

import pytest
from cli_run import distnn, ok

XOR = ["train", "--config", "xor", "--quiet", "--set", "run.plots=false", "--set", "checkpoint.enabled=true"]
MPIEXEC = os.path.join(os.path.dirname(sys.executable), "mpiexec")
if not os.path.exists(MPIEXEC):
    MPIEXEC = shutil.which("mpiexec")


def one_error(r, *words):
    """Status 2 and one stderr line, ``distnn: error: ...``, holding every one of ``words``."""
    lines = [line for line in r.stderr.strip().splitlines() if not line.startswith("[rank 0] ")]
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("distnn: error: "), r.stderr[-2000:]
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished 2-epoch xor run with checkpoints (one step an epoch): ``(cwd, "run")``."""
    cwd = tmp_path_factory.mktemp("audit")
    ok(distnn([*XOR, "--set", "train.epochs=2", "--out", "run"], cwd))
    return cwd, "run"


# ------------------------------------------------------------------ options a framework user tries
@pytest.mark.parametrize("args, hint", [
    (["train", "--epochs", "3"], "(config values are set with --set KEY=VALUE: --set train.epochs=3)"),
    (["train", "--max-epochs=3"], "--set train.epochs=3"),
    (["train", "--lr", "0.1"], "--set optimizer.lr=0.1"),
    (["train", "--batch-size", "32"], "--set data.batch_size=32"),
    (["train", "--set", "train.epochs", "3"], "(--set takes KEY=VALUE as one argument: --set train.epochs=3)"),
    (["train", "--qiet"], "(did you mean --quiet?)"),
    (["train", "--simulate_ranks", "2"], "(did you mean --simulate-ranks?)"),
    (["evaluate", "run", "--splt", "val"], "(did you mean --split?)"),
    (["train", "digits_cnn"], "(a config is given with --config: --config digits_cnn)"),
    (["train", "my.toml"], "--config my.toml"),
    (["train", "."], "(a run directory is given with --out: --out .; --resume auto continues it)"),
])
def test_an_unknown_argument_is_reported_by_its_command_with_what_was_meant(tmp_path, args, hint):
    # (was: distnn's own usage line, "usage: distnn [-h] <command> ...", and no hint)
    r = distnn(args, tmp_path)
    assert r.returncode == 2 and r.stderr.startswith(f"usage: distnn {args[0]} "), r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith(f"distnn {args[0]}: error: unrecognized arguments: ") and hint in line, line
    assert not (tmp_path / "runs").exists()


# ------------------------------------------------------------------ config.toml of a resumed run
def test_the_config_toml_of_a_resumed_run_trains_afresh_as_the_readme_says(tmp_path):
    ok(distnn([*XOR, "--set", "train.epochs=1", "--out", "a"], tmp_path))
    ok(distnn(["train", "--resume", "auto", "--out", "a", "--set", "train.epochs=2", "--quiet"], tmp_path))
    ok(distnn(["train", "--resume", "a", "--out", "b", "--quiet"], tmp_path))  # a fork of a
    for run in ("a", "b"):  # (it held resume = "auto" and resume = "a")
        saved = tomllib.loads((tmp_path / run / "config.toml").read_text())
        assert "resume" not in saved["checkpoint"], saved["checkpoint"]
    # (was: "--resume auto (checkpoint.resume = "auto") needs --out RUN_DIR")
    r = ok(distnn(["train", "--config", "a/config.toml", "--set", "run.run_name=again"], tmp_path))
    assert "resum" not in r.stderr and (tmp_path / "runs" / "again" / "summary.json").exists()
    # (was: resumed from a's checkpoint, "nothing left to train")
    r = ok(distnn(["train", "--config", "b/config.toml", "--out", "c"], tmp_path))
    assert "resum" not in r.stderr and "nothing left to train" not in r.stderr
    assert (tmp_path / "c" / "metrics.csv").read_text().splitlines()[1].startswith("1,")
    # a resume still works from the saved config, and says where it resumes from
    r = ok(distnn(["train", "--resume", "auto", "--out", "c", "--set", "train.epochs=3", "--quiet"], tmp_path))
    assert "resumed from c/checkpoints/step-00000002" in r.stderr


# ------------------------------------------------------------------ --out at the checkpoints
@pytest.mark.parametrize("resume", [[], ["--resume", "auto"]])
def test_out_naming_a_runs_checkpoints_is_refused_naming_the_run_directory(run, resume):
    cwd, name = run
    before = sorted(os.listdir(cwd / name / "checkpoints"))
    line = one_error(distnn([*XOR, "--set", "train.epochs=1", "--out", f"{name}/checkpoints", *resume], cwd),
                     f"--out '{name}/checkpoints' is a checkpoint directory", "not a run directory",
                     f"--resume auto --out '{name}'", f"--resume '{name}/checkpoints' --out NEW_DIR")
    assert "already holds a run" not in line
    assert sorted(os.listdir(cwd / name / "checkpoints")) == before  # (a run's files were written there)
    step = f"{name}/checkpoints/step-00000002"
    one_error(distnn([*XOR, "--set", "train.epochs=1", "--out", step, *resume], cwd), f"--out '{step}' is a checkpoint, not a run directory",
              f"--resume auto --out '{name}'")
    assert sorted(os.listdir(cwd / step)) == sorted(os.listdir(cwd / name / "checkpoints" / "step-00000001"))


def test_the_advice_works_and_a_run_with_its_checkpoints_in_its_own_directory_still_resumes(run, tmp_path):
    cwd, name = run
    r = ok(distnn(["train", "--resume", f"{name}/checkpoints", "--out", str(tmp_path / "fork"), "--quiet",
                   "--set", "train.epochs=3"], cwd))
    assert "resumed from" in r.stderr
    # checkpoint.dir = "." puts the checkpoints beside the run's own files: that is a run directory
    ok(distnn([*XOR, "--set", "train.epochs=1", "--set", "checkpoint.dir=.", "--out", "flat"], tmp_path))
    r = ok(distnn(["train", "--resume", "auto", "--out", "flat", "--set", "train.epochs=2", "--quiet"], tmp_path))
    assert "resumed from flat/./step-00000001" in r.stderr


def test_a_refused_resume_into_a_new_out_leaves_no_directory(run):
    # (an empty directory was left: the refused checkpoint had restored the history, taken for an epoch trained)
    cwd, name = run
    one_error(distnn([*XOR, "--set", "model.hidden_sizes=[16]", "--resume", name, "--out", "fork16"], cwd),
              "cannot resume from", "shape mismatch")
    assert not (cwd / "fork16").exists()


# ------------------------------------------------------------------ evaluate when the training file is gone
def test_evaluate_names_the_missing_training_file_as_the_runs_and_points_to_data(tmp_path):
    rows = [f"{a},{b},{(a + b) % 2}" for a in range(2) for b in range(2)] * 10
    (tmp_path / "t.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    ok(distnn([*XOR, "--set", "train.epochs=1", "--set", "data.name=csv", "--set", "data.path=t.csv", "--out", "r"],
              tmp_path))
    (tmp_path / "t.csv").rename(tmp_path / "kept.csv")
    # (was: "data file '.../t.csv' not found", for a command that names no file)
    one_error(distnn(["evaluate", "r"], tmp_path), "t.csv' not found", "the run's training data (data.path)",
              "--data FILE")
    assert "accuracy" in ok(distnn(["evaluate", "r", "--data", "kept.csv"], tmp_path)).stdout


def test_evaluate_and_predict_of_an_ensembles_members_directory_name_what_to_give(tmp_path):
    ok(distnn([*XOR, "--set", "train.epochs=1", "--set", "ensemble.members=2", "--out", "ens"], tmp_path))
    (tmp_path / "x.csv").write_text("0,1\n")
    hint = ("'ens/members' holds an ensemble's members, not one model", "'ens' (the members' probabilities "
            "averaged)", "'ens/members/member-0'")
    # (was: "'ens/members' holds no trained model (model.npz is missing); is it a finished run directory?")
    one_error(distnn(["evaluate", "ens/members"], tmp_path), *hint)
    one_error(distnn(["predict", "ens/members", "--input", "x.csv", "--output", "-"], tmp_path), *hint)
    ok(distnn(["evaluate", "ens/members/member-0"], tmp_path))
    # an ensemble has no model.npz of its own: naming one evaluated the whole ensemble without a word
    for command in (["evaluate", "ens/model.npz"], ["predict", "ens/model.npz", "--input", "x.csv", "--output", "-"]):
        line = one_error(distnn(command, tmp_path), "'ens/model.npz' does not exist", "'ens'")
        assert "probabilities averaged" in line


# ------------------------------------------------------------------ --header where no CSV is read
def test_a_header_choice_that_decides_nothing_is_a_usage_error(run):
    cwd, name = run
    import numpy as np

    np.savez(cwd / "x.npz", x=np.array([[0.0, 1.0], [1.0, 1.0]]), y=np.array([1, 0]))
    one_error(distnn(["evaluate", name, "--header", "true"], cwd), "--header true", "without --data")
    one_error(distnn(["evaluate", name, "--split", "val", "--header", "false"], cwd), "--header false")
    one_error(distnn(["evaluate", name, "--data", "x.npz", "--header", "true"], cwd),
              "applies to CSV files", "--data 'x.npz'")
    one_error(distnn(["predict", name, "--input", "x.npz", "--output", "-", "--header", "false"], cwd),
              "applies to CSV files", "--input 'x.npz'")
    assert ok(distnn(["predict", name, "--input", "x.npz", "--output", "-", "--header", "auto"], cwd)).stdout


# ------------------------------------------------------------------ predict --output over a run's files
def test_predict_does_not_write_over_a_file_of_a_run_or_checkpoint(run):
    cwd, name = run
    (cwd / "x.csv").write_text("0,1\n1,1\n")
    for target in ("model.npz", "metrics.csv", "checkpoints/step-00000002/model.npz"):
        path = cwd / name / target
        before = path.read_bytes()
        one_error(distnn(["predict", name, "--input", "x.csv", "--output", f"{name}/{target}"], cwd),
                  f"--output '{name}/{target}'", "refusing to overwrite it")
        assert path.read_bytes() == before
    ok(distnn(["evaluate", name], cwd))  # (was: "model.npz: not an npz (zip) archive")
    ok(distnn(["predict", name, "--input", "x.csv", "--output", f"{name}/predictions.csv"], cwd))
    ok(distnn(["predict", name, "--input", "x.csv", "--output", f"{name}/predictions.csv"], cwd))  # (its own: again)
    assert (cwd / name / "predictions.csv").read_text().startswith("predicted_label,")


# ------------------------------------------------------------------ listings under mpiexec
@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found (install distnn[mpi] into the venv)")
@pytest.mark.timeout(300)
def test_datasets_and_config_keys_print_once_under_mpiexec(tmp_path):
    pytest.importorskip("mpi4py")
    two = [MPIEXEC, "-n", "2"]
    r = ok(distnn(["datasets"], tmp_path, two))
    assert r.stdout.count("built-in configs") == 1
    r = ok(distnn(["config-keys", "optimizer.lr"], tmp_path, two))
    assert r.stdout.count("optimizer.lr") == 1
    r = ok(distnn(["config-keys"], tmp_path, two))
    assert r.stdout.count("[optimizer]") == 1
    r = distnn(["config-keys", "optimzer"], tmp_path, two)  # a mistake: status 2 on every rank, said once
    one_error(r, "no config section or key 'optimzer'")


# ------------------------------------------------------------------ curves.png
@pytest.fixture
def figures(monkeypatch):
    """What every figure saved holds: per axes, the x ticks in view and the markers of the member lines."""
    from matplotlib.figure import Figure

    seen, save = [], Figure.savefig

    def spy(fig, *args, **kwargs):
        fig.canvas.draw()
        seen.append([([t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]],
                      [line.get_marker() for line in ax.get_lines() if line.get_label().startswith("member")])
                     for ax in fig.axes])
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    return seen


def test_short_runs_plot_whole_epochs_and_every_member(tmp_path, figures, clean_preemption_flags):
    import matplotlib

    from distnn.cli import main

    before = matplotlib.get_backend()
    matplotlib.use("svg")  # (a caller's own backend: the ensemble's plot switched it to Agg)
    try:
        fast = ["--config", "xor", "--quiet", "--set", "train.epochs=1"]
        assert main(["train", *fast, "--out", str(tmp_path / "one")]) == 0
        assert main(["train", *fast, "--set", "ensemble.members=2", "--out", str(tmp_path / "ens")]) == 0
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    assert len(figures) == 4  # the single run, the two members' own, the ensemble's
    for fig in figures:
        for ticks, _ in fig:
            assert ticks == [1.0], ticks  # (was 0.96, 0.98, 1.00, 1.02, 1.04: 1.0 among them, by chance)
    ensemble = figures[-1]
    assert all(markers == ["o", "o"] for _, markers in ensemble)  # (was "None": a 1-point line is invisible)
