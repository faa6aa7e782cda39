"""A value a config sets that the model would ignore is refused, naming the key and why (it was accepted and
silently unused): CharLM's per-arch arguments (``hidden_size`` sizes its LSTM; ``nhead``, ``dim_feedforward``
and ``max_len`` its transformer), the sequence classifiers' ``input_size`` beside ``vocab_size`` (token inputs)
and their embedding's ``embedding_dim``/``padding_idx`` without it. Defaults never trigger it, ``--set`` of the
deciding key wins over the file's (as for the optimizer's options), an ensemble member's override of it over the
ensemble's config (for that member alone), and a run's config.toml that holds such a
value still loads (its model was built without it). An LSTM's dropout with one layer warns, as PyTorch's does.
"""
import tomllib

import pytest

from distnn import nn
from distnn.train.config import ConfigError, dump_run_config, load_config, loads_config
from distnn.train.ensemble import member_config


@pytest.mark.parametrize("config, sets, key, other", [
    ("charlm", ["model.hidden_size=32"], "hidden_size", "arch = 'transformer'"),
    ("charlm", ["model.arch=lstm", "model.nhead=2"], "nhead", "arch = 'lstm'"),
    ("charlm", ["model.arch=lstm", "model.max_len=128"], "max_len", "arch = 'lstm'"),
    ("sequence_lstm", ["model.input_size=4"], "input_size", "vocab_size = 10"),
    ("sequence_transformer", ["model.input_size=4"], "input_size", "vocab_size = 4"),
    ("sequence_lstm", ["model.vocab_size=none", "model.input_size=1", "model.padding_idx=0"], "padding_idx",
     "vocab_size = None"),
])
def test_a_model_argument_the_model_would_ignore_is_refused(config, sets, key, other):
    with pytest.raises(ConfigError, match=rf"model\.{key} is ignored with model\.{other}: the model uses it only"):
        load_config(config, sets)


def test_one_the_config_file_gives_is_refused_too(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[data]\nname = "charlm"\n[model]\nname = "charlm"\narch = "lstm"\ndim_feedforward = 64\n')
    with pytest.raises(ConfigError, match=r"model\.dim_feedforward is ignored with model\.arch = 'lstm'") as err:
        load_config(str(path))
    assert "(set by --set)" not in str(err.value)


def test_set_of_the_deciding_key_wins_over_the_files_arguments():
    cfg = load_config("charlm", ["model.arch=lstm"])  # (the file gives nhead and dim_feedforward)
    assert cfg.model.arch == "lstm" and "nhead" not in cfg.model and "dim_feedforward" not in cfg.model
    cfg = load_config("sequence_lstm", ["model.vocab_size=none", "model.input_size=1"])
    assert "embedding_dim" not in cfg.model and cfg.model.input_size == 1


_LSTM_MEMBER = ["ensemble.members=2", 'ensemble.overrides=[{}, {"model.arch" = "lstm"}]']


def test_a_members_arch_drops_the_files_options_of_the_other_arch_for_that_member_alone(tmp_path):
    # charlm.toml gives arch = "transformer" with nhead and dim_feedforward. A member with arch = "lstm" was
    # refused ("ensemble.overrides[1]: model.nhead is ignored with model.arch = 'lstm'") where --set
    # model.arch=lstm drops them: a member's override wins over the ensemble's config as --set wins over the file.
    cfg = load_config("charlm", _LSTM_MEMBER)
    assert (cfg.model.arch, cfg.model.nhead, cfg.model.dim_feedforward) == ("transformer", 4, 256)
    assert member_config(cfg, 0).model == load_config("charlm").model
    assert member_config(cfg, 1).model == load_config("charlm", ["model.arch=lstm"]).model
    assert dict(member_config(cfg, 1).model)["hidden_size"] == 128  # (the LSTM's default, recorded)
    # the same overrides written in the file; the ensemble's record and the member's own reload
    path = tmp_path / "ens.toml"
    path.write_text('[data]\nname = "charlm"\n[model]\nname = "charlm"\nnhead = 2\ndim_feedforward = 64\n'
                    '[ensemble]\nmembers = 2\noverrides = [{}, { "model.arch" = "lstm" }]\n')
    cfg = load_config(str(path))
    assert loads_config(dump_run_config(cfg)) == cfg and member_config(cfg, 0).model.nhead == 2
    member = member_config(cfg, 1)
    assert member.model.arch == "lstm" and "nhead" not in member.model and "dim_feedforward" not in member.model
    assert loads_config(dump_run_config(member)) == member
    # the other way round: a transformer member of an LSTM config gets the transformer's defaults
    cfg = load_config("charlm", ["model.arch=lstm", "model.hidden_size=32", "ensemble.members=2",
                                 'ensemble.overrides=[{}, {"model.arch" = "transformer"}]'])
    assert cfg.model.hidden_size == 32 and member_config(cfg, 0).model.hidden_size == 32
    assert member_config(cfg, 1).model == load_config("charlm").model


def test_an_ensemble_with_an_lstm_member_of_a_transformer_config_trains_and_loads(tmp_path):
    from distnn.train.job import run_training
    from distnn.train.run_dir import load_model

    small = ["train.epochs=1", "run.plots=false", "checkpoint.enabled=false", "data.seq_len=16", "data.stride=64",
             "model.d_model=16", "model.dim_feedforward=32", "model.num_layers=1", "model.dropout=0.0"]
    run_training("charlm", [*small, *_LSTM_MEMBER], out=str(tmp_path / "run"), quiet=True)
    model, _, _ = load_model(str(tmp_path / "run"))
    assert [m.arch for m in model.members] == ["transformer", "lstm"]
    member = tomllib.loads((tmp_path / "run" / "members" / "member-1" / "config.toml").read_text())["model"]
    assert member["arch"] == "lstm" and "dim_feedforward" not in member and "nhead" not in member


@pytest.mark.parametrize("config, sets", [
    ("charlm", ["model.arch=lstm"]),  # (the file's nhead and dim_feedforward go)
    ("digits_mlp", ["model.sizes=[64, 32, 10]"]),  # (the file's hidden_sizes goes)
    ("digits_mlp", ["model.norm=none"]),
])
def test_a_set_that_wins_over_the_files_model_arguments_does_so_for_every_member(config, sets):
    # each member's config was checked from the file's [model] as if the --set were the file's own: with any
    # per-member overrides, "model.nhead is ignored with model.arch = 'lstm'" (or "both given", or "got 'none'")
    cfg = load_config(config, [*sets, "ensemble.members=2", 'ensemble.overrides=[{}, {"optimizer.lr" = 0.01}]'])
    assert member_config(cfg, 0).model == member_config(cfg, 1).model == load_config(config, sets).model
    # a member's own option of the other arch is still refused, as a second --set of it is
    with pytest.raises(ConfigError, match=r"ensemble\.overrides\[1\]: model\.nhead is ignored"):
        load_config("charlm", ["model.arch=lstm", "ensemble.members=2", 'ensemble.overrides=[{}, {"model.nhead" = 2}]'])


def test_a_members_own_option_of_another_arch_is_still_refused():
    with pytest.raises(ConfigError, match=r"ensemble\.overrides\[1\]: model\.nhead is ignored with model\.arch = "
                                          r"'lstm': the model uses it only with arch = 'transformer'") as err:
        load_config("charlm", ["ensemble.members=2",
                               'ensemble.overrides=[{}, {"model.arch" = "lstm", "model.nhead" = 2}]'])
    assert "dim_feedforward" not in str(err.value)  # (the file's: dropped for that member)
    with pytest.raises(ConfigError, match=r"ensemble\.overrides\[1\]: model\.hidden_size is ignored"):
        load_config("charlm", ["ensemble.members=2", 'ensemble.overrides=[{}, {"model.hidden_size" = 64}]'])


def test_a_members_sizes_replaces_the_files_hidden_sizes_for_that_member_alone():
    # as --set model.sizes=[...] does on digits_mlp (hidden_sizes = [256, 128]): it was refused as "both given"
    cfg = load_config("digits_mlp", ["ensemble.members=2", 'ensemble.overrides=[{}, {"model.sizes" = [64, 32, 10]}]'])
    assert member_config(cfg, 0).model.hidden_sizes == [256, 128]
    assert member_config(cfg, 1).model == load_config("digits_mlp", ["model.sizes=[64, 32, 10]"]).model
    with pytest.raises(ConfigError, match="model.sizes and model.hidden_sizes are both given"):
        load_config("digits_mlp", ["ensemble.members=2", 'ensemble.overrides=[{}, {"model.sizes" = [64, 32, 10], '
                                   '"model.hidden_sizes" = [8]}]'])


def test_defaults_never_trigger_it_and_are_not_recorded_for_the_other_arch():
    cfg = load_config("charlm")
    text = dump_run_config(cfg)
    assert "hidden_size" not in text  # (was recorded: 128, the LSTM's width, for a transformer)
    assert loads_config(text).model == cfg.model
    assert loads_config(text, ["model.arch=lstm"]).model.hidden_size == 128
    ens = load_config("charlm", ["ensemble.members=2", "train.epochs=1"])
    assert member_config(ens, 1).model == cfg.model


def test_a_run_record_holding_such_a_value_still_loads_without_it():
    saved = tomllib.loads(dump_run_config(load_config("charlm")))
    saved["model"]["hidden_size"] = 128  # (a record from before: every argument under [model])
    from distnn.train.toml_writer import dumps
    text = dumps(saved, header="distnn run configuration (resolved: every key, defaults filled in)")
    cfg = loads_config(text)
    assert "hidden_size" not in cfg.model and cfg.model == load_config("charlm").model
    with pytest.raises(ConfigError, match=r"model\.hidden_size is ignored"):  # (a config a user wrote)
        loads_config(text.split("\n", 1)[1])


def test_an_lstm_with_dropout_and_one_layer_warns_as_pytorchs_does(torch):
    import warnings

    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        torch.nn.LSTM(3, 4, num_layers=1, dropout=0.2)
    with pytest.warns(UserWarning) as ours:
        nn.LSTM(3, 4, num_layers=1, dropout=0.2)
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.LSTM(3, 4, num_layers=2, dropout=0.2)
        nn.LSTM(3, 4, num_layers=1)


# ------------------------------------------------------------------ schedule.interval
@pytest.mark.parametrize("name", ["constant", "plateau", "onecycle"])
def test_an_interval_the_schedule_ignores_is_refused(name, tmp_path):
    with pytest.raises(ConfigError, match=rf"schedule '{name}' ignores schedule\.interval = 'step' \(.*\): remove it"):
        load_config("xor", [f"schedule.name={name}", "schedule.interval=step"])
    path = tmp_path / "c.toml"
    path.write_text(f'[schedule]\nname = "{name}"\ninterval = "step"\n')
    with pytest.raises(ConfigError, match=r"ignores schedule\.interval"):
        load_config(str(path))
    # --set of the schedule wins over the file's interval; the default never triggers it
    assert load_config(str(path), ["schedule.name=cosine"]).schedule.interval == "step"
    path.write_text('[schedule]\nname = "cosine"\ninterval = "step"\n')
    assert load_config(str(path), [f"schedule.name={name}"]).schedule.interval == "epoch"
    assert load_config("xor", [f"schedule.name={name}"]).schedule.interval == "epoch"


def test_a_run_record_holding_an_ignored_interval_still_loads_and_compares_equal():
    from distnn.train.callbacks.resume import config_changes

    text = dump_run_config(load_config("xor", ["schedule.name=plateau"]))
    old = text.replace('interval = "epoch"', 'interval = "step"')
    assert old != text and loads_config(old).schedule.interval == "epoch"
    assert config_changes(old, text) == []
