"""A value a config FILE gives that cannot take effect is refused as a ``--set`` one is (was: accepted and
silently ignored): an option of another optimizer (``betas`` for sgd: PyTorch's SGD raises TypeError) or
schedule (``T_max`` for step), and a split key of a dataset that brings its own split (``data.split_seed`` for
xor or charlm). A setting that is merely off (``early_stopping.patience`` while early stopping is disabled, a
``warmup_start_factor`` with no warmup) warns instead. A run's own config.toml (a record: every key) that holds
such a value still loads, compares equal to its config resolved now and resumes.
"""
import json
import os
import subprocess
import sys
import tomllib
import warnings

import pytest

from distnn.cli import main
from distnn.data import datasets as D
from distnn.train import config_checks
from distnn.train.callbacks.resume import config_changes
from distnn.train.config import SCHEMA, ConfigError, dump_run_config, load_config, loads_config
from distnn.train.ensemble import member_config
from distnn.train.toml_writer import dumps


def _file(tmp_path, text, name="c.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("optimizer, line, key, takers", [
    ("sgd", "betas = [0.8, 0.9]", "betas", "adam, adamw, lamb, adamax, nadam and radam"),
    ("adam", "momentum = 0.5", "momentum", "sgd, rmsprop and lars"),
    ("adamw", "alpha = 0.9", "alpha", "rmsprop"),
    ("sgd", "eps = 1e-6", "eps", "adam, adamw, rmsprop, adagrad, lars, lamb, adamax, nadam, radam and adadelta"),
])
def test_an_optimizer_option_in_a_file_for_another_optimizer_is_refused(tmp_path, optimizer, line, key, takers):
    path = _file(tmp_path, f'[optimizer]\nname = "{optimizer}"\nlr = 0.1\n{line}\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [
        f"optimizer '{optimizer}' does not take optimizer.{key} (an option of {takers}): {optimizer} would ignore "
        f"it; remove {key} from [optimizer], or choose an optimizer that takes it"]
    # --set of the optimizer wins over the file's option, as before; one that takes it keeps it
    assert load_config(path, ["optimizer.name=asgd"]).optimizer.get(key) == SCHEMA[f"optimizer.{key}"].default
    taker = takers.split(",")[0].split(" ")[0]
    assert load_config(path, [f"optimizer.name={taker}"]).optimizer[key] == tomllib.loads(line)[key]


@pytest.mark.parametrize("schedule, lines, key, takers", [
    ("step", "step_size = 3\nT_max = 7", "T_max", "cosine"),
    ("cosine", "step_size = 3", "step_size", "step"),
    ("constant", "gamma = 0.5", "gamma", "step, multistep, exponential and cyclic"),
    ("exponential", "patience = 2", "patience", "plateau"),
])
def test_a_schedule_option_in_a_file_for_another_schedule_is_refused(tmp_path, schedule, lines, key, takers):
    path = _file(tmp_path, f'[schedule]\nname = "{schedule}"\n{lines}\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [
        f"schedule '{schedule}' does not take schedule.{key} (an option of {takers}): {schedule} would ignore it; "
        f"remove {key} from [schedule], or choose a schedule that takes it"]


def test_set_schedule_name_still_puts_the_files_options_of_another_back_to_their_defaults(tmp_path):
    path = _file(tmp_path, '[schedule]\nname = "step"\nstep_size = 3\ngamma = 0.5\n')
    cfg = load_config(path, ["schedule.name=cosine"])
    assert cfg.schedule.name == "cosine" and "step_size" not in cfg.schedule and "gamma" not in cfg.schedule
    path = _file(tmp_path, '[schedule]\nname = "cosine"\nT_max = 7\neta_min = 0.001\n')
    cfg = load_config(path, ["schedule.name=step", "schedule.step_size=2"])
    assert "T_max" not in cfg.schedule and cfg.schedule.eta_min == 0.0 and cfg.schedule.gamma == 0.1


def test_the_command_line_refuses_the_file_with_one_line_naming_the_key(tmp_path):
    path = _file(tmp_path, '[data]\nname = "xor"\n[optimizer]\nname = "sgd"\nlr = 0.1\nbetas = [0.8, 0.9]\n'
                           '[train]\nepochs = 1\n')
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLCONFIGDIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "distnn", "train", "--config", path, "--out", "run"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "optimizer 'sgd' does not take optimizer.betas (an option of adam, " in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()


def test_an_ensemble_whose_members_choose_a_schedule_may_give_that_schedules_options(tmp_path):
    path = _file(tmp_path, '[data]\nname = "xor"\n[schedule]\nname = "step"\nstep_size = 2\nT_max = 7\n'
                           '[ensemble]\nmembers = 3\noverrides = [{}, {"schedule.name" = "cosine"}]\n')
    cfg = load_config(path)  # (T_max is member 1's: cosine takes it)
    assert member_config(cfg, 1).schedule.T_max == 7 and member_config(cfg, 1).schedule.get("step_size") is None
    assert all("T_max" not in member_config(cfg, k).schedule for k in (0, 2))
    # an option no member's schedule takes is refused
    other = _file(tmp_path, open(path).read().replace('"cosine"', '"exponential"'), "d.toml")
    with pytest.raises(ConfigError, match=r"schedule 'step' does not take schedule\.T_max \(an option of cosine\): "
                                          r"step would ignore it, nor would the ensemble members' exponential use it"):
        load_config(other)


# ------------------------------------------------------------------ data split keys
def test_the_registry_declares_the_split_each_source_returns():
    for name, _ in D.list_datasets():
        entry = D.get_dataset_entry(name)
        if entry.needs_path:
            continue
        assert entry.source().split == entry.split, name
    assert D.split_keys_ignored("xor") == ("val_fraction", "test_fraction", "split_seed")
    assert D.split_keys_ignored("charlm") == ("split_seed",)  # (it takes the fractions as options)
    assert D.split_keys_ignored("digits") == () and D.split_keys_ignored("mnist") == ()


@pytest.mark.parametrize("dataset, line, key", [
    ("xor", "split_seed = 3", "split_seed"),
    ("xor", "val_fraction = 0.3", "val_fraction"),
    ("xor", "test_fraction = 0.0", "test_fraction"),
    ("charlm", "split_seed = 1", "split_seed"),
])
def test_a_split_key_of_a_dataset_with_its_own_split_is_refused(tmp_path, dataset, line, key):
    path = _file(tmp_path, f'[data]\nname = "{dataset}"\n{line}\n')
    with pytest.raises(ConfigError, match=rf"dataset '{dataset}' brings its own split \(.*\) and ignores "
                                          rf"data\.{key} = .*: remove {key} from \[data\]"):
        load_config(path)
    # (the same data loaded either way: what the key would have changed, nothing)
    value = tomllib.loads(line)[key]
    default = D.load_dataset(dataset)
    given = D.load_dataset(dataset, **{key: value})
    assert all((default[s].x == given[s].x).all() for s in ("train", "val", "test") if default[s] is not None)
    # the defaults never trigger it, --set data.name wins over the file's, and the datasets that read it take it
    load_config(dataset)
    assert load_config(path, ["data.name=digits"]).data[key] == value
    path = _file(tmp_path, f'[data]\nname = "digits"\n{line}\n', "d.toml")
    assert load_config(path, [f"data.name={dataset}"]).data[key] == load_config(dataset).data[key]
    with pytest.raises(ConfigError, match=rf"ignores data\.{key} .*\(set by --set\)|data\.{key} set by --set"):
        load_config(dataset, [f"data.{key}={value}"])


# ------------------------------------------------------------------ merely off: a warning
@pytest.mark.parametrize("section, lines, key, switch", [
    ("early_stopping", "patience = 3", "early_stopping.patience", "early_stopping.enabled = false"),
    ("early_stopping", 'monitor = "val_accuracy"', "early_stopping.monitor", "early_stopping.enabled = false"),
    ("schedule", "warmup_start_factor = 0.5", "schedule.warmup_start_factor", "no warmup"),
    ("schedule", "reference_batch = 64", "schedule.reference_batch", "schedule.linear_scaling = false"),
    ("train", "adversarial_weight = 0.2", "train.adversarial_weight", "train.adversarial_eps = 0"),
])
def test_a_setting_of_a_feature_that_is_off_warns_and_loads(tmp_path, section, lines, key, switch):
    path = _file(tmp_path, f"[{section}]\n{lines}\n")
    with pytest.warns(UserWarning, match=rf"{key} = .* has no effect (while|with) {switch}.*; it takes effect with"):
        cfg = load_config(path)
    assert cfg.get_path(key) == tomllib.loads(f"v = {lines.split(' = ')[1]}")["v"]
    on = {"early_stopping": ["early_stopping.enabled=true"], "train": ["train.adversarial_eps=0.1"],
          "schedule": ["schedule.warmup_steps=2", "schedule.linear_scaling=true"]}[section]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_config(path, on)  # (on: used)
        if section == "early_stopping":  # (turned off by --set: the user just did; quiet)
            _file(tmp_path, f"[{section}]\nenabled = true\n{lines}\n", "on.toml")
            load_config(str(tmp_path / "on.toml"), ["early_stopping.enabled=false"])
        loads_config(dump_run_config(cfg))  # (a run's record holds every key: quiet)
        load_config("digits_mlp")  # (defaults: quiet)


# ------------------------------------------------------------------ run records
def _record_with(*changes) -> str:
    """A run's config.toml as distnn wrote it before a config refused these values: they are in it."""
    saved = tomllib.loads(dump_run_config(load_config("xor", ["optimizer.name=sgd", "optimizer.lr=0.1",
                                                              "schedule.name=step", "schedule.step_size=2"])))
    for section, key, value in changes:
        saved[section][key] = value
    return dumps(saved, header="distnn run configuration (resolved: every key, defaults filled in)")


OLD_VALUES = [("optimizer", "betas", [0.8, 0.9]), ("schedule", "T_max", 7), ("data", "split_seed", 3)]


def test_a_run_record_holding_such_values_loads_without_them_and_compares_equal():
    old = _record_with(*OLD_VALUES)
    cfg = loads_config(old)
    clean = load_config("xor", ["optimizer.name=sgd", "optimizer.lr=0.1", "schedule.name=step",
                                "schedule.step_size=2"])
    assert cfg == clean and "T_max" not in cfg.schedule and cfg.data.split_seed == 0
    assert config_changes(old, dump_run_config(clean)) == []
    mine = old.split("\n", 1)[1]  # (the same text as a config a user wrote)
    with pytest.raises(ConfigError, match=r"ignores data\.split_seed = 3"):
        loads_config(mine)
    with pytest.raises(ConfigError) as err:
        loads_config(mine.replace("split_seed = 3", "split_seed = 0"))
    assert [p.split(" (an option")[0] for p in err.value.problems] == [
        "optimizer 'sgd' does not take optimizer.betas", "schedule 'step' does not take schedule.T_max"]


def test_an_old_ensemble_record_whose_members_choose_their_schedules_loads():
    saved = tomllib.loads(_record_with(("schedule", "T_max", 7), ("schedule", "eta_min", 0.01)))
    saved["ensemble"].update(members=2, overrides=[{}, {"schedule.name": "cosine"}])
    cfg = loads_config(dumps(saved, header="distnn run configuration (resolved: every key)"))
    assert member_config(cfg, 1).schedule.T_max == 7 and member_config(cfg, 1).schedule.eta_min == 0.01
    assert "T_max" not in member_config(cfg, 0).schedule


def test_a_run_written_with_such_values_resumes_and_evaluates(tmp_path, monkeypatch, capsys):
    # The run as the old code wrote it: its config file's values of another optimizer, schedule and split
    # accepted (the checks off), recorded in its config.toml and in its checkpoints'.
    monkeypatch.setattr(config_checks, "check_optimizer_options", lambda *a: None)
    monkeypatch.setattr(config_checks, "check_schedule_options", lambda *a: None)
    monkeypatch.setattr(config_checks, "check_split_keys", lambda *a: None)
    path = _file(tmp_path, '[data]\nname = "xor"\nsplit_seed = 3\nbatch_size = 4\n[optimizer]\nname = "sgd"\n'
                           'lr = 0.1\nbetas = [0.8, 0.9]\n[schedule]\nname = "step"\nstep_size = 2\nT_max = 7\n'
                           '[train]\nepochs = 1\n[run]\nplots = false\n')
    run = tmp_path / "run"
    assert main(["train", "--config", path, "--out", str(run), "--quiet"]) == 0, capsys.readouterr().err
    saved = tomllib.loads((run / "config.toml").read_text())
    assert saved["schedule"]["T_max"] == 7 and saved["optimizer"]["betas"] == [0.8, 0.9]
    assert saved["data"]["split_seed"] == 3
    monkeypatch.undo()
    with pytest.raises(ConfigError):
        load_config(path)  # (the user's file: refused now)
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume", "auto", "--set", "train.epochs=2", "--quiet"]) == 0, \
        capsys.readouterr().err
    err = capsys.readouterr().err
    assert "differs from the checkpoint's: train.epochs: 1 -> 2. " in err, err  # (and nothing else)
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == 2
    assert main(["evaluate", str(run)]) == 0, capsys.readouterr().err
