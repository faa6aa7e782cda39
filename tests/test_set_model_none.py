"""``--set model.KEY=none`` unsets a model argument whose rule allows None (MLP's ``norm``).

TOML has no null, so a run's config.toml (or any file) giving ``norm = "layer"`` could not be switched
back to no norm from the command line: 'none' reached the model as a string and was refused with
"must be one of None, 'batch', 'layer', got 'none'". Schema keys already read none/null as unset.
"""
import pytest

from distnn.train.config import ConfigError, dump_config, load_config


def _saved(tmp_path, overrides):
    path = tmp_path / "run.toml"
    path.write_text(dump_config(load_config("digits_mlp", overrides)))
    return str(path)


@pytest.mark.parametrize("spelling", ["none", "None", "null"])
def test_set_none_unsets_the_files_norm(tmp_path, spelling):
    path = _saved(tmp_path, ["model.norm='layer'", "model.norm_position='after_activation'"])
    assert load_config(path).model.norm == "layer"
    cfg = load_config(path, ["model.norm_position='before_activation'", f"model.norm={spelling}"])
    assert cfg.model.get("norm") is None
    # the re-saved config runs without a norm too
    assert not any(line.startswith("norm =") for line in dump_config(cfg).splitlines())
    assert load_config(_saved(tmp_path, ["model.norm=none"])).model.get("norm") is None


def test_set_none_builds_the_model_without_a_norm(tmp_path):
    from distnn.train.job import run_training
    from distnn.train.run_dir import load_model

    path = _saved(tmp_path, ["model.norm='batch'", "model.hidden_sizes=[8]"])
    run_training(path, ["model.norm=none", "train.epochs=1", "run.plots=false", "checkpoint.enabled=false"],
                 out=str(tmp_path / "run"), quiet=True)
    model, _, _ = load_model(str(tmp_path / "run"))
    assert [type(m).__name__ for m in model.children()] == ["Linear", "ReLU", "Dropout", "Linear"]


def test_none_stays_an_error_where_the_argument_takes_no_none():
    with pytest.raises(ConfigError, match=r"model.activation .*got 'none'"):
        load_config("digits_mlp", ["model.activation=none"])
    with pytest.raises(ConfigError, match=r"model.dropout must be a number in \[0, 1\), got 'none'"):
        load_config("digits_mlp", ["model.dropout=none"])
