"""distnn.train.config: schema defaults, validation messages, --set overrides, TOML round trip, built-ins."""
import json
import os
import tomllib

import numpy as np
import pytest

from distnn.train import config as C
from distnn.train.config import ConfigError, dump_config, load_config, loads_config


def test_defaults_and_default_config_name():
    d = C.default_config()
    assert d.optimizer.lr == 1e-3 and d.data.name == "digits" and d.data.batch_size == 64  # (SGD's own)
    assert d.train.epochs == 20 and d.data.augment.shift == 0 and d.optimizer.betas == [0.9, 0.999]
    assert "T_max" not in d.schedule and d.get_path("schedule.T_max") is None  # optional, unset
    cfg = load_config()  # the default: digits_mlp
    assert cfg.name == "digits_mlp" and cfg["model"]["name"] == "mlp"
    # keys the file leaves out come from the schema
    assert cfg.early_stopping.patience == C.SCHEMA["early_stopping.patience"].default
    # every schema key is present (or deliberately unset when optional)
    for path, key in C.SCHEMA.items():
        assert cfg.get_path(path) is not None or key.optional, path


@pytest.mark.parametrize("override,message", [
    ("optimizer.learning_rate=0.1", "unknown key 'optimizer.learning_rate' (did you mean 'optimizer.lr'?)"),
    ("optimizer.momentun=0.9", "unknown key 'optimizer.momentun' (did you mean 'optimizer.momentum'?)"),
    ("train.lr=0.1", "unknown key 'train.lr' (did you mean 'optimizer.lr'?)"),
    ("optimiser.lr=0.1", "unknown section 'optimiser' (did you mean 'optimizer'?)"),
    ("data.flaten=false", "unknown key 'data.flaten' (did you mean 'data.flatten'?)"),
    ("model.hiden_sizes=[8]", "unknown key 'model.hiden_sizes' (did you mean 'model.hidden_sizes'?)"),
])
def test_unknown_keys_suggest_the_closest(override, message):
    with pytest.raises(ConfigError) as info:
        load_config("digits_mlp", [override])
    assert message in str(info.value)


@pytest.mark.parametrize("override,message", [
    ("optimizer.lr=-1", "optimizer.lr must be > 0, got -1"),
    ("optimizer.lr=abc", "optimizer.lr must be a number, got 'abc' (string)"),
    ("train.epochs=2.5", "train.epochs must be an integer, got 2.5 (float)"),
    ("train.epochs=0", "train.epochs must be >= 1, got 0"),
    ("run.quiet=1", "run.quiet must be true or false, got 1 (integer)"),
    ("optimizer.momentum=1.0", "optimizer.momentum must be in [0, 1), got 1.0"),
    ("optimizer.betas=[0.9, 1.5]", "optimizer.betas[1] must be in [0, 1), got 1.5"),
    ("optimizer.betas=[0.9]", "optimizer.betas must have 2 entries, got 1"),
    ("optimizer.name=adma", "optimizer.name must be one of 'sgd', 'adam'"),
    ("data.augment.rotate=200", "data.augment.rotate must be in [0, 180], got 200"),
    ("data.name=digts", "data.name 'digts' is not a known dataset (did you mean 'digits'?)"),
    ("model.name=mpl", "model.name 'mpl' is not a known model (did you mean 'mlp'?)"),
    ("data=3", "data must be a table ([data]), got 3 (integer)"),
    ("model.num_classes=3", "model.num_classes is set by the trainer from the data"),
    ("data.path=/tmp/x", "data.path is set but dataset 'digits' reads no files"),
])
def test_wrong_types_and_ranges_name_the_dotted_key(override, message):
    with pytest.raises(ConfigError) as info:
        load_config("digits_mlp", [override])
    assert message in str(info.value)
    assert "set by --set" in str(info.value)  # ("(data.path set by --set, data.name from the config file)")
    assert isinstance(info.value, ValueError)


def test_dataset_options_are_typed_by_the_dataset(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,y\n1,2,0\n3,4,1\n")
    base = ["data.name=csv", f"data.path={path}", "data.augment.shift=0"]
    cfg = load_config("digits_mlp", base + ["data.header=true", "data.label_column='y'", "data.num_classes=2"])
    assert cfg.data.header is True and cfg.data.label_column == "y" and cfg.data.num_classes == 2
    with pytest.raises(ConfigError, match=r"data.label_column must be an integer or a string, got 1.5"):
        load_config("digits_mlp", base + ["data.label_column=1.5"])
    with pytest.raises(ConfigError, match=r"data.length must be an integer, got 3.0 \(float\)"):
        load_config("sequence_lstm", ["data.length=3.0"])
    with pytest.raises(ConfigError, match="unknown key 'data.lenght' \\(did you mean 'data.length'\\?\\)"):
        load_config("sequence_lstm", ["data.lenght=3"])
    with pytest.raises(ConfigError, match="data.path is required for dataset 'csv'"):
        load_config("digits_mlp", ["data.name=csv"])


def test_cross_checks_and_all_problems_at_once():
    with pytest.raises(ConfigError, match="schedule.step_size is required when schedule.name = 'step'"):
        load_config("digits_mlp", ["schedule.name=step"])
    with pytest.raises(ConfigError, match="schedule.milestones must be strictly increasing"):
        load_config("digits_mlp", ["schedule.name=multistep", "schedule.milestones=[5, 3]"])
    with pytest.raises(ConfigError, match="optimizer.nesterov needs"):
        load_config("digits_mlp", ["optimizer.momentum=0"])
    with pytest.raises(ConfigError, match=r"data.val_fraction \+ data.test_fraction must be < 1"):
        load_config("digits_mlp", ["data.val_fraction=0.5", "data.test_fraction=0.5"])
    with pytest.raises(ConfigError) as info:
        load_config("digits_mlp", ["run.seed=-1", "train.epochs=0", "optimizer.lr=0"])
    assert "3 problems" in str(info.value) and len(info.value.problems) == 3


def test_overrides_are_typed_against_the_schema():
    cfg = load_config("digits_mlp", [
        "optimizer.lr=0.2", "train.epochs=3", "model.hidden_sizes=[32, 16]", "run.quiet=true",
        "run.out_dir=/tmp/some dir", "run.run_name=123", "data.augment.rotate=5", "ensemble.vary=seed,bootstrap",
        "data.flatten=false", "schedule.T_max=7", "model.activation='tanh'",
    ])
    assert cfg.optimizer.lr == 0.2 and cfg.train.epochs == 3 and isinstance(cfg.train.epochs, int)
    assert cfg.model.hidden_sizes == [32, 16] and cfg.run.quiet is True
    assert cfg.run.out_dir == "/tmp/some dir" and cfg.run.run_name == "123"  # str keys keep the text
    assert cfg.data.augment.rotate == 5.0 and isinstance(cfg.data.augment.rotate, float)
    assert cfg.ensemble.vary == ["seed", "bootstrap"] and cfg.data.flatten is False
    assert cfg.schedule.T_max == 7 and cfg.model.activation == "tanh"
    cleared = load_config("digits_mlp", ["schedule.T_max=7", "schedule.T_max=none"])
    assert "T_max" not in cleared.schedule
    assert C.parse_override("data.path=/x=y") == ("data.path", "/x=y")
    with pytest.raises(ConfigError, match="--set expects key=value"):
        load_config("digits_mlp", ["optimizer.lr"])


def test_toml_round_trip_is_identical(tmp_path):
    cfg = load_config("digits_cnn", ["optimizer.lr=1e-5", "run.out_dir=a \"quoted\"\tdir", "schedule.T_max=9",
                                     "ensemble.members=2", 'ensemble.overrides=[{"optimizer.lr" = 0.1}]'])
    text = dump_config(cfg)
    assert tomllib.loads(text)["optimizer"]["lr"] == 1e-5
    again = loads_config(text)
    assert again.to_dict() == cfg.to_dict()
    path = tmp_path / "resolved.toml"
    C.save_config(cfg, path)
    assert load_config(str(path)).to_dict() == cfg.to_dict()
    assert dump_config(load_config(str(path))) == text


def test_config_files_errors_name_the_file(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text('[optimizer]\nlr = 0.5\nlearning_rate = 2\n')
    with pytest.raises(ConfigError, match=r"config '.*mine.toml': unknown key 'optimizer.learning_rate'"):
        load_config(str(p))
    p.write_text("[optimizer\nlr = 1")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(str(p))
    p.write_text("[optimizer]\nlr = 0.5\n")
    cfg = load_config(str(p))
    assert cfg.name == "mine" and cfg.optimizer.lr == 0.5
    with pytest.raises(ConfigError, match="neither a file nor a built-in config \\(did you mean 'digits_mlp'\\?\\)"):
        load_config("digits_mpl")


def test_every_builtin_config_loads_and_builds():
    from distnn.data import load_dataset
    from distnn.models import build_model

    names = [n for n, _ in C.list_configs()]
    for required in ("digits_mlp", "digits_cnn", "xor", "mnist_mlp", "sequence_lstm", "sequence_transformer",
                     "charlm"):
        assert required in names
    for name, description in C.list_configs():
        assert description, name
        if name == "mnist_mlp":
            with pytest.raises(ConfigError, match="data.path is required for dataset 'mnist'"):
                load_config(name)
            cfg = load_config(name, ["data.path=/nonexistent/mnist"])
            assert cfg.data.name == "mnist"
            continue
        cfg = load_config(name)
        assert cfg.name == name
        assert loads_config(dump_config(cfg)).to_dict() == cfg.to_dict()
        splits = load_dataset(cfg.data)
        kwargs = {k: v for k, v in cfg.model.items() if k != "name"}
        model = build_model(cfg.model.name, num_classes=splits.num_classes, input_shape=splits.input_shape, **kwargs)
        assert sum(int(np.prod(p.shape)) for p in model.parameters()) > 0


def test_ensemble_overrides_are_validated_per_member():
    cfg = load_config("digits_mlp", ["ensemble.members=2", 'ensemble.overrides=[{"optimizer.lr" = 0.1}, {}]'])
    assert cfg.ensemble.overrides == [{"optimizer.lr": 0.1}, {}]
    with pytest.raises(ConfigError, match=r"ensemble.overrides\[0\]: optimizer.lr must be > 0, got -1"):
        load_config("digits_mlp", ["ensemble.members=2", 'ensemble.overrides=[{"optimizer.lr" = -1}]'])
    with pytest.raises(ConfigError, match=r"ensemble.overrides\[0\]: 'data.name' cannot differ between members"):
        load_config("digits_mlp", ["ensemble.members=2", 'ensemble.overrides=[{"data.name" = "iris"}]'])
    with pytest.raises(ConfigError, match="ensemble.overrides has 3 entries for 2 members"):
        load_config("digits_mlp", ["ensemble.members=2", "ensemble.overrides=[{}, {}, {}]"])


def test_config_object_access_and_schema_description():
    cfg = load_config("xor")
    assert cfg.optimizer.name == cfg["optimizer"]["name"] == cfg.get_path("optimizer.name") == "adam"
    with pytest.raises(AttributeError):
        cfg.optimizer.nonexistent
    import copy

    clone = copy.deepcopy(cfg)
    clone.optimizer.lr = 1.0
    assert cfg.optimizer.lr == 0.05 and isinstance(clone, C.Config)
    again = load_config(cfg, ["train.epochs=5"])  # a Config can be re-validated with overrides
    assert again.train.epochs == 5 and cfg.train.epochs == 300
    text = C.describe_schema()
    for path in C.SCHEMA:
        assert path in text


# ---------------------------------------------------------------- audit: gaps in the validation

@pytest.mark.parametrize("override,message", [
    ("optimizer.lr=inf", "optimizer.lr must be a finite number > 0, got inf"),
    ("optimizer.lr=nan", "optimizer.lr must be a finite number > 0, got nan"),
    ("optimizer.weight_decay=inf", "optimizer.weight_decay must be a finite number >= 0, got inf"),
    ("optimizer.eps=inf", "optimizer.eps must be a finite number > 0, got inf"),
    ("optimizer.betas=[0.9, nan]", "optimizer.betas[1] must be a finite number in [0, 1), got nan"),
    ("train.grad_clip=inf", "train.grad_clip must be a finite number >= 0, got inf"),
    ("train.label_smoothing=nan", "train.label_smoothing must be a finite number in [0, 1), got nan"),
    ("schedule.max_lr=inf", "schedule.max_lr must be a finite number > 0, got inf"),
    ("schedule.eta_min=inf", "schedule.eta_min must be a finite number >= 0, got inf"),
    ("early_stopping.min_delta=inf", "early_stopping.min_delta must be a finite number >= 0, got inf"),
    ("data.augment.noise=inf", "data.augment.noise must be a finite number >= 0, got inf"),
    ("distributed.bucket_mb=inf", "distributed.bucket_mb must be a finite number > 0, got inf"),
    ("distributed.timeout=nan", "distributed.timeout must be >= 1 (or inf: no limit), got nan"),
    ("distributed.timeout=-inf", "distributed.timeout must be >= 1 (or inf: no limit), got -inf"),
])
def test_non_finite_numbers_are_refused(override, message):
    with pytest.raises(ConfigError) as info:
        load_config("digits_mlp", [override])
    assert str(info.value).endswith(message + " (set by --set)")


def test_non_finite_numbers_are_refused_in_files_and_dataset_options(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text("[optimizer]\nlr = inf\nweight_decay = -inf\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(p))
    assert info.value.problems == ["optimizer.lr must be a finite number > 0, got inf",
                                   "optimizer.weight_decay must be a finite number >= 0, got -inf"]
    with pytest.raises(ConfigError, match=r"data.spread must be a finite number, got inf"):
        load_config("digits_mlp", ["data.name=blobs", "data.spread=inf"])


def test_collective_timeout_has_a_sane_minimum_and_inf_means_no_limit():
    for bad, shown in (("1e-9", "1e-09"), ("0.5", "0.5"), ("0", "0")):
        with pytest.raises(ConfigError, match=rf"distributed.timeout must be >= 1 \(or inf: no limit\), got {shown}"):
            load_config("digits_mlp", [f"distributed.timeout={bad}"])
    assert load_config("digits_mlp", ["distributed.timeout=1"]).distributed.timeout == 1.0
    cfg = load_config("digits_mlp", ["distributed.timeout=inf"])  # as DISTNN_COLLECTIVE_TIMEOUT=inf: never
    assert cfg.distributed.timeout == float("inf")
    assert loads_config(dump_config(cfg)).to_dict() == cfg.to_dict()


def _npz(path, with_val):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 4)).astype(np.float32), np.arange(40) % 2
    arrays = {"x_train": x[:30], "y_train": y[:30], "x_val": x[30:], "y_val": y[30:]} if with_val else {"x": x, "y": y}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return str(path)


def test_validation_monitors_need_a_validation_split(tmp_path):
    no_val = ["data.val_fraction=0"]
    with pytest.raises(ConfigError) as info:
        load_config("digits_mlp", no_val + ["early_stopping.enabled=true", "schedule.name=plateau"])
    assert info.value.problems == [
        "early_stopping.monitor is 'val_loss' (early_stopping.enabled = true) but data.val_fraction = 0 leaves no "
        "validation split: set data.val_fraction > 0, or monitor 'train_loss' (early_stopping.enabled set by "
        "--set, data.val_fraction set by --set, early_stopping.monitor at its default)",
        "schedule.monitor is 'val_loss' (schedule.name = 'plateau') but data.val_fraction = 0 leaves no "
        "validation split: set data.val_fraction > 0, or monitor 'train_loss' (schedule.name set by --set, "
        "data.val_fraction set by --set, schedule.monitor at its default)"]
    with pytest.raises(ConfigError, match="early_stopping.monitor is 'val_accuracy'"):
        load_config("digits_mlp", no_val + ["early_stopping.enabled=true", "early_stopping.monitor=val_accuracy"])
    # Fine: training metrics, a disabled early stopping, and checkpoint.keep_best (it warns and keeps the newest).
    load_config("digits_mlp", no_val + ["early_stopping.enabled=true", "early_stopping.monitor=train_loss",
                                        "schedule.name=plateau", "schedule.monitor=train_accuracy"])
    load_config("digits_mlp", no_val + ["checkpoint.keep_best=true", "checkpoint.monitor=val_loss"])
    # Datasets that bring their own validation split regardless of data.val_fraction.
    load_config("xor", ["early_stopping.enabled=true"])  # (its 4 points are every split: a val_fraction is refused)
    with pytest.raises(ConfigError, match=r"dataset 'xor' brings its own split .* ignores data\.val_fraction = 0"):
        load_config("xor", no_val + ["early_stopping.enabled=true"])
    own = _npz(tmp_path / "own.npz", with_val=True)
    load_config("digits_mlp", no_val + ["data.name=npz", f"data.path={own}", "early_stopping.enabled=true"])
    load_config("digits_mlp", no_val + [f"data.name={own}", "early_stopping.enabled=true"])
    flat = _npz(tmp_path / "flat.npz", with_val=False)
    with pytest.raises(ConfigError, match="early_stopping.monitor is 'val_loss'"):
        load_config("digits_mlp", no_val + ["data.name=npz", f"data.path={flat}", "early_stopping.enabled=true"])


def test_a_validation_monitor_without_validation_fails_before_the_run_directory(tmp_path):
    from distnn.train.job import run_training

    out = tmp_path / "run"
    with pytest.raises(ValueError, match="early_stopping.monitor is 'val_loss'"):
        run_training("digits_mlp", ["data.val_fraction=0", "early_stopping.enabled=true", "train.epochs=2",
                                    "run.plots=false"], out=str(out), quiet=True)
    assert not out.exists()


@pytest.mark.parametrize("config,override,message", [
    ("digits_mlp", "model.hidden_sizes=[1.9]", "model.hidden_sizes must be a list of positive integers, got [1.9]"),
    ("digits_mlp", "model.hidden_sizes=abc", "model.hidden_sizes must be a list of positive integers, got 'abc'"),
    ("digits_mlp", "model.hidden_sizes=64", "model.hidden_sizes must be a list of positive integers, got 64"),
    ("digits_mlp", "model.hidden_sizes=[64, 0]", "model.hidden_sizes must be a list of positive integers, got [64, 0]"),
    ("digits_mlp", "model.dropout=2", "model.dropout must be a number in [0, 1), got 2"),
    ("digits_mlp", "model.dropout=1.0", "model.dropout must be a number in [0, 1), got 1.0"),
    ("digits_mlp", "model.activation=relu6", "model.activation must be one of 'relu', 'tanh'"),
    ("digits_mlp", "model.norm=group", "model.norm must be one of None, 'batch', 'layer', got 'group'"),
    ("digits_cnn", "model.widths=[16, 0]", "model.widths must be a list of positive integers (at least one), "
                                           "got [16, 0]"),
    ("digits_cnn", "model.layers=[1]", "model.layers [1] and model.widths"),
    ({"model": {"name": "lenet"}}, "model.channels=[6]", "model.channels must be a list of 2 positive integers, "
                                                         "got [6]"),
    ("sequence_lstm", "model.num_layers=0", "model.num_layers must be a positive integer, got 0"),
    ("sequence_lstm", "model.hidden_size=2.5", "model.hidden_size must be a positive integer, got 2.5"),
    ("sequence_lstm", "model.bidirectional=1", "model.bidirectional must be true or false, got 1"),
    ("sequence_transformer", "model.d_model=30", "model.nhead (4) must divide model.d_model (30)"),
    ("sequence_transformer", "model.nhead=0", "model.nhead must be a positive integer, got 0"),
    ("sequence_transformer", "model.dropout=-0.1", "model.dropout must be a number in [0, 1), got -0.1"),
    ("charlm", "model.arch=rnn", "model.arch must be one of 'transformer', 'lstm', got 'rnn'"),
    ("charlm", "model.max_len=0", "model.max_len must be a positive integer (or None), got 0"),
])
def test_model_arguments_are_typed_and_ranged(config, override, message):
    with pytest.raises(ConfigError) as info:
        load_config(config, [override])
    assert len(info.value.problems) == 1 and message in info.value.problems[0]


def test_model_argument_relations_use_the_models_defaults():
    load_config("charlm", ["model.arch=lstm", "model.d_model=30"])  # no attention: nhead does not matter
    load_config("sequence_transformer", ["model.d_model=32", "model.nhead=8"])
    with pytest.raises(ConfigError, match=r"model.padding_idx \(20\) must be in \[-10, 10\) for model.vocab_size"):
        load_config("sequence_lstm", ["model.vocab_size=10", "model.padding_idx=20"])


def test_models_check_their_own_arguments_the_same_way():
    from distnn import models

    cases = [
        (lambda: models.MLP(hidden_sizes=[1.9], num_classes=3, input_shape=[4]),
         "MLP: hidden_sizes must be a list of positive integers, got [1.9]"),
        (lambda: models.MLP([4, 8, 3], dropout=2), "MLP: dropout must be a number in [0, 1), got 2"),
        (lambda: models.MLP([4.0, 3]), "MLP: sizes must be a list of at least 2 positive integers"),
        (lambda: models.LeNet(channels=(6,)), "LeNet: channels must be a list of 2 positive integers, got (6,)"),
        (lambda: models.ResNet(widths=(0, 1, 2)), "ResNet: widths must be a list of positive integers"),
        (lambda: models.LSTMClassifier(input_size=3, dropout=1.5), "LSTMClassifier: dropout must be a number in "
                                                                   "[0, 1), got 1.5"),
        (lambda: models.TransformerClassifier(input_size=3, d_model=30, nhead=4),
         "TransformerClassifier: nhead (4) must divide d_model (30)"),
        (lambda: models.CharLM(vocab_size=5, arch="gru"), "CharLM: arch must be one of 'transformer', 'lstm'"),
    ]
    for build, message in cases:
        with pytest.raises(ValueError) as info:
            build()
        assert str(info.value).startswith(message), str(info.value)
    # numpy integers are integers
    assert models.MLP([np.int64(4), np.int32(3)]).sizes == [4, 3]


def test_a_relative_data_path_is_resolved_against_the_working_directory(tmp_path, monkeypatch):
    from distnn.train.inference import evaluate_run
    from distnn.train.job import run_training

    monkeypatch.chdir(tmp_path)
    _npz(tmp_path / "inp" / "moved.npz", with_val=False)
    absolute = str(tmp_path / "inp" / "moved.npz")
    cfg = load_config("digits_mlp", ["data.name=npz", "data.path=inp/moved.npz"])
    assert cfg.data.path == absolute
    assert load_config("digits_mlp", ["data.name=inp/moved.npz"]).data.name == absolute
    home = load_config("digits_mlp", ["data.name=npz", "data.path=~/x.npz"]).data.path
    assert home == os.path.join(os.path.expanduser("~"), "x.npz")
    run_training("digits_mlp", ["data.name=npz", "data.path=inp/moved.npz", "data.augment.shift=0",
                                "data.augment.rotate=0", "data.batch_size=8", "train.epochs=1", "run.plots=false",
                                "checkpoint.enabled=false", "model.hidden_sizes=[8]"], out="run", quiet=True)
    saved = tomllib.loads((tmp_path / "run" / "config.toml").read_text())
    assert saved["data"]["path"] == absolute
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    assert meta["data"]["path"] == absolute
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # evaluating from another directory reads the same file
    assert "accuracy" in evaluate_run(str(tmp_path / "run"))


def test_a_table_given_to_a_section_sets_its_keys_and_keeps_the_others(tmp_path):
    # --set optimizer={lr=0.2} replaced the section: momentum 0.9 -> 0.0, nesterov -> false, weight decay -> 0,
    # and model={name="mlp"} dropped the hidden layers, with no word
    table = load_config("digits_mlp", ['optimizer={lr=0.2}', 'model={name="mlp", dropout=0.2}'])
    dotted = load_config("digits_mlp", ["optimizer.lr=0.2", "model.name=mlp", "model.dropout=0.2"])
    assert table.to_dict() == dotted.to_dict()
    assert table.optimizer.momentum == 0.9 and table.optimizer.lr == 0.2
    with pytest.raises(ConfigError, match=r"unknown key 'optimizer.l'.*set by --set"):
        load_config("digits_mlp", ["optimizer={l=0.2}"])


def test_a_config_file_with_a_byte_order_mark_is_read(tmp_path):
    # an editor's BOM was "invalid TOML: Invalid statement (at line 1, column 1)"
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf[train]\nepochs = 3\n")
    assert load_config(str(path)).train.epochs == 3
