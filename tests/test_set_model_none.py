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


def test_set_sizes_none_leaves_the_mlp_its_hidden_sizes(tmp_path):
    # sizes = None is no sizes: the MLP builds from hidden_sizes. The file's hidden_sizes was dropped as if a
    # --set sizes list replaced it (the MLP then trained the default 128 units), and a --set hidden_sizes next
    # to it was refused as "both given".
    cfg = load_config("digits_mlp", ["model.sizes=none"])  # (the file gives hidden_sizes = [256, 128])
    assert cfg.model.get("sizes") is None and cfg.model.hidden_sizes == [256, 128]
    assert "hidden_sizes = [256, 128]" in dump_config(cfg)
    path = tmp_path / "sizes.toml"
    path.write_text('[model]\nname = "mlp"\nsizes = [64, 32, 10]\n')
    cfg = load_config(str(path), ["model.sizes=none", "model.hidden_sizes=[8]"])
    assert cfg.model.get("sizes") is None and cfg.model.hidden_sizes == [8]
    with pytest.raises(ConfigError, match="model.sizes and model.hidden_sizes are both given"):
        load_config(str(path), ["model.sizes=[64, 8, 10]", "model.hidden_sizes=[8]"])
