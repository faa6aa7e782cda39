"""``python -m distnn`` as a new user meets it: what the h22 audit left (h23).

* an option was taken by a prefix of its name: ``predict --out X`` meant ``--output X`` without a word
  (argparse's ``allow_abbrev``, now off on every parser);
* ``--mc-samples 1 --mc-seed 4`` used no seed and said nothing; a model without dropout asked for
  ``--mc-samples`` was refused naming ``mc_samples``, the library's argument, not the option typed;
* ``evaluate --split val`` of a run with ``data.val_fraction = 0`` said only "has no val split";
* ``config-keys model.dropout`` (an argument of some models) was an error, exit 2;
* under ``--log-all-ranks`` every rank logged "checkpoint PATH (MB, ms)" of rank 0's write;
* ``config-keys checkpoint.dir`` did not say what a relative directory is relative to;
* an ensemble's ``curves.png`` title had no rank count, a single run's has.

Each case runs the real command line in a subprocess, except the plot titles (in-process, to read them).
"""
import os

import pytest
from cli_run import distnn, ok

XOR = ["train", "--config", "xor", "--quiet", "--set", "run.plots=false"]


def error_line(r):
    """The one ``... error: ...`` line of a status-2 run."""
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    lines = [line for line in r.stderr.strip().splitlines() if "error: " in line]
    assert len(lines) == 1, r.stderr[-2000:]
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished 1-epoch xor run (its MLP has no dropout) and an input file: ``(cwd, "run")``."""
    cwd = tmp_path_factory.mktemp("leftovers")
    ok(distnn([*XOR, "--set", "train.epochs=1", "--out", "run"], cwd))
    (cwd / "x.csv").write_text("0,1\n1,1\n")
    return cwd, "run"


# ------------------------------------------------------------------ no option taken by a prefix
@pytest.mark.parametrize("args, given, hint", [
    (["predict", "run", "--input", "x.csv", "--out", "p.csv"], "--out p.csv", "(did you mean --output?)"),
    (["predict", "run", "--input", "x.csv", "--output", "p.csv", "--out=q.csv"], "--out=q.csv", "--output?"),
    (["predict", "run", "--inp", "x.csv", "--output", "p.csv"], "--inp x.csv", "(did you mean --input?)"),
    (["evaluate", "run", "--spl", "val"], "--spl val", "(did you mean --split?)"),
    (["evaluate", "run", "--mc-s", "3"], "--mc-s 3", "(did you mean --mc-samples or --mc-seed?)"),
    (["train", "--conf", "xor"], "--conf xor", "(did you mean --config?)"),
    (["train", "--res", "auto", "--out", "r"], "--res auto", "(did you mean --resume?)"),
    (["train", "--log", "--quiet"], "--log", "(did you mean --log-all-ranks?)"),
])
def test_an_option_is_not_taken_by_a_prefix_of_its_name(tmp_path, args, given, hint):
    # (was: argparse's abbreviations: --out was --output, and the predictions went to p.csv without a word)
    line = error_line(distnn(args, tmp_path))
    assert line.startswith(f"distnn {args[0]}: error: unrecognized arguments: {given}") and hint in line, line
    assert not os.listdir(tmp_path)  # (nothing run: no runs/, no p.csv)


def test_every_parser_refuses_abbreviations():
    from distnn.cli import build_parser

    parser = build_parser()
    assert not parser.allow_abbrev and all(not p.allow_abbrev for p in parser.commands.values())


# ------------------------------------------------------------------ Monte Carlo dropout options
def test_a_seed_where_dropout_stays_off_is_run_with_a_warning(run):
    cwd, name = run
    plain = ok(distnn(["predict", name, "--input", "x.csv", "--output", "-"], cwd))
    for n in ("0", "1"):  # (a sweep's baseline: it runs, as before, and now says the seed was not used)
        r = ok(distnn(["predict", name, "--input", "x.csv", "--output", "-", "--mc-samples", n, "--mc-seed", "4"],
                      cwd))
        assert r.stdout == plain.stdout
        assert (f"distnn: warning: --mc-seed 4 is not used: --mc-samples {n} keeps dropout off "
                "(Monte Carlo dropout samples for N > 1 only; 1 is not one random pass)") in r.stderr
    assert "warning" not in plain.stderr
    # without --mc-samples nothing asks for Monte Carlo dropout: still a usage error
    error_line(distnn(["evaluate", name, "--mc-seed", "4"], cwd))


@pytest.mark.parametrize("command", [["evaluate"], ["predict", "--input", "x.csv", "--output", "-"]])
def test_a_model_without_dropout_refuses_mc_samples_naming_the_option_typed(run, command):
    cwd, name = run
    line = error_line(distnn([command[0], name, *command[1:], "--mc-samples", "3"], cwd))
    # (was: "mc_samples = 3 needs dropout ... (use 0 or 1)": the library's argument)
    assert "distnn: error: --mc-samples 3 needs dropout" in line and "drop --mc-samples" in line, line
    assert "mc_samples" not in line


# ------------------------------------------------------------------ a split the run's config held out none for
def test_evaluate_of_a_split_the_config_held_out_no_samples_for_names_the_key(tmp_path):
    rows = [f"{a},{b},{(a + b) % 2}" for a in range(2) for b in range(2)] * 10
    (tmp_path / "t.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    data = ["--set", "data.name=csv", "--set", "data.path=t.csv", "--set", "train.epochs=1"]
    ok(distnn([*XOR, *data, "--set", "data.val_fraction=0", "--out", "noval"], tmp_path))
    # (was: "dataset 'csv' has no val split")
    line = error_line(distnn(["evaluate", "noval", "--split", "val"], tmp_path))
    for words in ("has no val split", "data.val_fraction = 0", "--split test or --split train", "--data FILE"):
        assert words in line, (words, line)
    ok(distnn([*XOR, *data, "--set", "data.test_fraction=0", "--out", "notest"], tmp_path))
    line = error_line(distnn(["evaluate", "notest"], tmp_path))  # (the default split: test)
    assert "data.test_fraction = 0" in line and "--split val or --split train" in line, line
    assert "accuracy" in ok(distnn(["evaluate", "notest", "--split", "val"], tmp_path)).stdout


# ------------------------------------------------------------------ config-keys of a model's or dataset's key
def test_config_keys_describes_a_key_only_some_models_take(tmp_path):
    # (was: "'model.dropout' is no key of the config schema but ...", exit 2)
    out = ok(distnn(["config-keys", "model.dropout"], tmp_path)).stdout
    assert out.startswith("model.dropout: an argument of the model, for these models")
    mlp = next(line for line in out.splitlines() if line.split()[0] == "mlp")
    assert "default 0.0" in mlp and "a number in [0, 1)" in mlp and "(distnn.models.MLP)" in mlp
    transformer = next(line for line in out.splitlines() if line.split()[0] == "transformer,")
    assert "default 0.1" in transformer
    assert "other models (" in out and "lenet" in out.splitlines()[-1] and "resnet" in out.splitlines()[-1]
    out = ok(distnn(["config-keys", "optimizer.lr", "data.flatten"], tmp_path)).stdout
    assert out.splitlines()[0].startswith("optimizer.lr ")
    assert "data.flatten: an option of the dataset" in out and "default true" in out
    # an argument the trainer sets from the data is no key a config can give; a misspelt one is unknown
    line = error_line(distnn(["config-keys", "model.in_channels"], tmp_path))
    assert "sets from the data" in line and "distnn.models.LeNet" in line
    line = error_line(distnn(["config-keys", "model.nrom"], tmp_path))
    assert "no config section or key 'model.nrom' (did you mean 'model.norm'?)" in line


def test_config_keys_says_what_a_relative_checkpoint_dir_is_relative_to(tmp_path):
    out = ok(distnn(["config-keys", "checkpoint.dir"], tmp_path)).stdout
    assert "relative to the run directory" in out  # (was: only its default, <run dir>/checkpoints)
    ok(distnn([*XOR, "--set", "train.epochs=1", "--set", "checkpoint.enabled=true", "--set", "checkpoint.dir=ck",
               "--out", "r"], tmp_path))
    assert (tmp_path / "r" / "ck" / "step-00000001").is_dir() and not (tmp_path / "ck").exists()


# ------------------------------------------------------------------ --log-all-ranks and checkpoints
def test_only_the_rank_that_writes_a_checkpoint_logs_it(tmp_path):
    r = ok(distnn([*XOR, "--set", "train.epochs=2", "--set", "checkpoint.enabled=true", "--simulate-ranks", "2",
                   "--log-all-ranks", "--out", "r"], tmp_path))
    saved = [line for line in r.stderr.splitlines() if "] checkpoint r/checkpoints/step-" in line]
    # (was: a "[rank 1] checkpoint ..." line after each of rank 0's)
    assert [line.split()[:3] for line in saved] == [["[rank", "0]", "checkpoint"]] * 2, saved


# ------------------------------------------------------------------ plot titles
def test_the_ensembles_plot_title_gives_the_rank_count_as_a_single_runs_does(tmp_path, monkeypatch,
                                                                               clean_preemption_flags):
    from matplotlib.figure import Figure

    from distnn.cli import main

    titles, save = [], Figure.savefig

    def spy(fig, *args, **kwargs):
        titles.append(fig._suptitle.get_text() if fig._suptitle is not None else "")
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    fast = ["--config", "xor", "--quiet", "--set", "train.epochs=1"]
    assert main(["train", *fast, "--out", str(tmp_path / "one")]) == 0
    assert main(["train", *fast, "--set", "ensemble.members=2", "--out", str(tmp_path / "ens")]) == 0
    # the single run's, the two members' own, the ensemble's (was "xor: ensemble of 2")
    assert titles == ["xor (1 rank)"] * 3 + ["xor: ensemble of 2 (1 rank)"], titles
