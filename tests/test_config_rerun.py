"""A run's config.toml re-run: with the model or the dataset changed by --set it works as the config it came
from does. The model's and the dataset's defaults it records ([defaults.model.NAME], [defaults.data.NAME])
apply to that model and dataset alone; before, they were model.*/data.* keys, unknown to another model."""
import json
import tomllib

import numpy as np
import pytest

from distnn.cli import main
from distnn.train.config import ConfigError, dump_config, load_config
from test_run_dir_checksums import unmark_config

FAST = ["--set", "train.epochs=1", "--set", "train.max_steps=2", "--set", "run.plots=false",
        "--set", "checkpoint.enabled=false", "--quiet"]


def train(config, out, *sets):
    argv = ["train", "--config", str(config), "--out", str(out), *FAST]
    for s in sets:
        argv += ["--set", s]
    return main(argv)


def _rerun_with_set(tmp_path, capsys, name, text, setting):
    """Train the config ``text`` (run a), re-run a's saved config with ``--set setting`` (b) and the original
    with it (c): b must train and resolve to c's config. Returns a's saved config.toml."""
    original = tmp_path / name
    original.write_text(text)
    assert train(original, tmp_path / "a") == 0
    saved = tmp_path / "a" / "config.toml"
    assert train(saved, tmp_path / "b", setting) == 0, capsys.readouterr().err
    assert train(original, tmp_path / "c", setting) == 0
    assert (tmp_path / "b" / "config.toml").read_text() == (tmp_path / "c" / "config.toml").read_text()
    return saved


def test_a_saved_config_with_another_model_by_set_trains_as_the_original_does(tmp_path, capsys):
    # (failed: unknown keys 'model.activation', 'model.dropout', 'model.hidden_sizes' for model 'lenet')
    saved = _rerun_with_set(tmp_path, capsys, "mlp.toml", '[model]\nname = "mlp"\n', "model.name=lenet")
    assert tomllib.loads(saved.read_text())["model"] == {"name": "mlp", "init": "default"}  # (its defaults: recorded apart)
    assert tomllib.loads((tmp_path / "b" / "config.toml").read_text())["defaults"]["model"] == {
        "lenet": {"channels": [6, 16], "hidden": [120, 84]}}


def test_a_saved_config_with_another_dataset_by_set_trains_as_the_original_does(tmp_path, capsys):
    # (failed: unknown keys 'data.noise' and 'data.turns' for dataset 'blobs')
    saved = _rerun_with_set(tmp_path, capsys, "spirals.toml", '[data]\nname = "spirals"\n[model]\nname = "mlp"\n',
                            "data.name=blobs")
    assert tomllib.loads(saved.read_text())["defaults"]["data"] == {
        "spirals": {"n_samples": 600, "n_classes": 3, "noise": 0.15, "turns": 1.0, "seed": 0}}


def test_recorded_defaults_are_what_the_model_is_built_with_while_it_is_the_chosen_one(tmp_path):
    (tmp_path / "a.toml").write_text('[model]\nname = "mlp"\n')
    text = dump_config(load_config(str(tmp_path / "a.toml")))
    # a default recorded by an earlier version (the signature's is "relu" now): the run is built as it was
    path = tmp_path / "saved.toml"
    path.write_text(text.replace('activation = "relu"', 'activation = "tanh"'))
    cfg = load_config(str(path))
    assert cfg.model.activation == "tanh"
    assert dump_config(cfg) == path.read_text()  # (saved again as a default: still that model's alone)
    assert "activation" not in load_config(str(path), ["model.name=lenet"]).model
    # a value given in [model] wins over the recorded one
    assert load_config(str(path), ["model.activation=gelu"]).model.activation == "gelu"
    # one the model's rules refuse is a problem, as a given one is
    path.write_text(text.replace('activation = "relu"', 'activation = "swish"'))
    with pytest.raises(ConfigError, match="model.activation must be one of"):
        load_config(str(path))


def test_a_config_toml_with_the_defaults_in_model_as_before_still_loads(tmp_path):
    (tmp_path / "old.toml").write_text('[model]\nname = "mlp"\nactivation = "relu"\n[data]\nflatten = true\n')
    cfg = load_config(str(tmp_path / "old.toml"))
    assert cfg.model.activation == "relu" and cfg.data.flatten is True
    assert tomllib.loads(dump_config(cfg))["model"]["activation"] == "relu"  # (given there: stays there)


@pytest.mark.parametrize("table, message", [
    ('defaults = 1', "defaults must be a table, got 1 (integer)"),
    ('[defaults.train.x]\ny = 1', "unknown key 'defaults.train': [defaults] records the model's, the dataset's, "
                                  "the optimizer's and the schedule's defaults only"),
    ('[defaults.schedule.step]\npatience = 1', "unknown key 'defaults.schedule.step.patience': "
                                              "[defaults.schedule.NAME] records the schedule's own defaults of gamma, "
                                              "factor only"),
    ('[defaults.optimizer.sgd]\nalpha = 1', "unknown key 'defaults.optimizer.sgd.alpha': [defaults.optimizer.NAME] "
                                            "records the optimizer's own defaults of lr, momentum, weight_decay, eps "
                                            "only"),
    ('[defaults]\nmodel = {mlp = 1}', "defaults.model must hold a table per name ([defaults.model.NAME])"),
])
def test_a_malformed_defaults_table_is_one_problem_naming_it(tmp_path, table, message):
    (tmp_path / "bad.toml").write_text(table + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(tmp_path / "bad.toml"))
    assert message in str(err.value)


# ------------------------------------------------------------------ an MLP given sizes
def test_an_mlp_given_sizes_records_no_hidden_sizes_and_its_config_runs_again(tmp_path, capsys):
    (tmp_path / "sizes.toml").write_text('[model]\nname = "mlp"\nsizes = [64, 32, 10]\n')
    assert train(tmp_path / "sizes.toml", tmp_path / "a") == 0
    text = (tmp_path / "a" / "config.toml").read_text()
    saved = tomllib.loads(text)
    # (hidden_sizes = [128] was recorded: an argument the MLP ignores beside sizes, read as if it mattered)
    assert saved["model"] == {"name": "mlp", "init": "default", "sizes": [64, 32, 10]}
    assert saved["defaults"]["model"] == {"mlp": {"activation": "relu", "dropout": 0.0,
                                                 "norm_position": "before_activation"}}
    assert train(tmp_path / "a" / "config.toml", tmp_path / "b") == 0, capsys.readouterr().err
    assert (tmp_path / "b" / "config.toml").read_text() == text
    # sizes given to a saved config that recorded hidden_sizes as the MLP's default: that one goes too
    (tmp_path / "mlp.toml").write_text('[model]\nname = "mlp"\n')
    assert train(tmp_path / "mlp.toml", tmp_path / "c") == 0
    assert train(tmp_path / "c" / "config.toml", tmp_path / "d", "model.sizes=[64, 32, 10]") == 0
    assert "hidden_sizes" not in (tmp_path / "d" / "config.toml").read_text()


def test_an_mlp_config_giving_sizes_and_hidden_sizes_is_refused(tmp_path, capsys):
    (tmp_path / "both.toml").write_text('[model]\nname = "mlp"\nsizes = [64, 32, 10]\nhidden_sizes = [16]\n')
    assert train(tmp_path / "both.toml", tmp_path / "a") == 2  # (trained 64-32-10, hidden_sizes ignored)
    err = capsys.readouterr().err
    assert "model.sizes and model.hidden_sizes are both given" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists()


def test_set_sizes_replaces_the_config_files_hidden_sizes_and_the_other_way_round(tmp_path, capsys):
    # digits_mlp gives hidden_sizes = [256, 128]: --set cannot remove it, so --set model.sizes means "these
    # sizes instead" (refused as both given before)
    assert main(["train", "--config", "digits_mlp", "--out", str(tmp_path / "a"), *FAST,
                 "--set", "model.sizes=[64, 32, 10]"]) == 0, capsys.readouterr().err
    saved = tomllib.loads((tmp_path / "a" / "config.toml").read_text())["model"]
    assert saved["sizes"] == [64, 32, 10] and "hidden_sizes" not in saved
    (tmp_path / "sizes.toml").write_text('[model]\nname = "mlp"\nsizes = [64, 32, 10]\n')
    assert train(tmp_path / "sizes.toml", tmp_path / "b", "model.hidden_sizes=[16]") == 0, capsys.readouterr().err
    saved = tomllib.loads((tmp_path / "b" / "config.toml").read_text())["model"]
    assert saved["hidden_sizes"] == [16] and "sizes" not in saved
    # both by --set: still a conflict
    assert train(tmp_path / "sizes.toml", tmp_path / "c", "model.hidden_sizes=[16]", "model.sizes=[64, 8, 10]") == 2
    assert "are both given" in capsys.readouterr().err


def test_a_run_whose_model_json_recorded_hidden_sizes_beside_sizes_still_loads(tmp_path, capsys):
    from distnn.train.inference import predict_proba
    from distnn.train.run_dir import load_model

    (tmp_path / "sizes.toml").write_text('[model]\nname = "mlp"\nsizes = [64, 32, 10]\n')
    assert train(tmp_path / "sizes.toml", tmp_path / "a") == 0
    x = np.random.default_rng(0).uniform(0, 1, (5, 64)).astype(np.float32)
    model, _, transform = load_model(tmp_path / "a")
    expected = predict_proba(model, x, transform)
    # as a run saved before the MLP refused both wrote it: the unused default beside sizes
    meta_path = tmp_path / "a" / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["model"]["kwargs"]["hidden_sizes"] = [128]
    del meta["checksums"]  # (a run saved then had no SHA256SUMS, nor this mark that it has one)
    meta_path.write_text(json.dumps(meta))
    (tmp_path / "a" / "SHA256SUMS").unlink()  # (this edit would fail its check)
    unmark_config(tmp_path / "a")  # (nor config.toml's mark)
    model, _, transform = load_model(tmp_path / "a")
    assert model.sizes == [64, 32, 10]
    np.testing.assert_array_equal(predict_proba(model, x, transform), expected)


def test_an_old_run_given_sizes_beside_the_files_hidden_sizes_resumes_and_reruns(tmp_path, capsys):
    # A run made before [defaults] with digits_mlp (hidden_sizes = [256, 128]) and --set model.sizes=[...]
    # recorded both in its config.toml (and the checkpoints' copies); its model was built from sizes alone.
    # Resuming it (without --config: that config.toml) failed: "model.sizes and model.hidden_sizes are both given".
    run = tmp_path / "run"
    assert main(["train", "--config", "digits_mlp", "--out", str(run), "--set", "train.epochs=1",
                 "--set", "run.plots=false", "--set", "model.sizes=[64, 32, 10]", "--quiet"]) == 0
    old = ('# distnn run configuration (resolved: every key, defaults filled in)\n\n'
           'name = "digits_mlp"\n\n[run]\nseed = 0\nplots = false\n\n[data]\nname = "digits"\nbatch_size = 64\n'
           'standardize = "global"\nflatten = true\n\n[data.augment]\nshift = 1\n\n'
           '[model]\nname = "mlp"\nhidden_sizes = [256, 128]\ndropout = 0.1\nsizes = [64, 32, 10]\n'
           'activation = "relu"\n\n[optimizer]\nname = "sgd"\nlr = 0.05\nmomentum = 0.9\nnesterov = true\n'
           'weight_decay = 5e-4\n\n[schedule]\nname = "cosine"\n\n[train]\nepochs = 1\n\n'
           '[checkpoint]\nevery_epochs = 15\n')
    (run / "config.toml").write_text(old)
    # (a run that old predates SHA256SUMS too: no list, and no mark in model.json; a listed config.toml that
    # fails its checksum is refused, tests/test_resume_checked_run_config.py)
    (run / "SHA256SUMS").unlink()
    meta = json.loads((run / "model.json").read_text())
    del meta["checksums"]
    (run / "model.json").write_text(json.dumps(meta))
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume", "auto", "--set", "train.epochs=2", "--quiet"]) == 0, \
        capsys.readouterr().err
    saved = tomllib.loads((run / "config.toml").read_text())["model"]
    assert saved["sizes"] == [64, 32, 10] and "hidden_sizes" not in saved
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == 2
    # re-run as a --config file, as before
    (tmp_path / "old.toml").write_text(old)
    assert train(tmp_path / "old.toml", tmp_path / "b") == 0, capsys.readouterr().err
    # a file a user wrote with both is still refused
    (tmp_path / "mine.toml").write_text(old.split("\n", 1)[1])
    assert train(tmp_path / "mine.toml", tmp_path / "c") == 2
    assert "are both given" in capsys.readouterr().err
