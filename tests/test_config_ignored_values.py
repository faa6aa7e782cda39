"""A value a config sets that the model would ignore is refused, naming the key and why (it was accepted and
silently unused): CharLM's per-arch arguments (``hidden_size`` sizes its LSTM; ``nhead``, ``dim_feedforward``
and ``max_len`` its transformer), the sequence classifiers' ``input_size`` beside ``vocab_size`` (token inputs)
and their embedding's ``embedding_dim``/``padding_idx`` without it. Defaults never trigger it, ``--set`` of the
deciding key wins over the file's (as for the optimizer's options), and a run's config.toml that holds such a
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
