"""The config's tables of options against what their builders use, as test_config_optimizer_options.py does for
the optimizer's: every option a table allows is really used, and every option a builder reads is allowed.

* models (``model.*``, what ``config-keys model.X`` names): every argument a config may give has a rule, and
  building the model as the trainer does (its input shape and classes from the data) with the argument off
  its default gives another model. LeNet's and ResNet's ``in_channels`` (and LeNet's ``image_size``) were
  accepted and recorded, but the input shape the trainer always gives overrode them: now refused.
* schedules (``schedule.*``): ``config_checks.SCHEDULE_OPTIONS`` says which keys each schedule takes, as
  ``build_schedule`` reads them; a --set key the schedule does not take is refused (was: ignored).
* datasets (``data.*``): the schema's keys are those ``load_dataset`` and the trainer read; every option of
  every dataset changes the data it loads.
"""
import re

import numpy as np
import pytest

import distnn
from distnn.data import DataError, datasets as D
from distnn.data.idx import write_idx
from distnn.data.transforms import AUGMENTS
from distnn.distributed import LocalCommunicator
from distnn.models import registry
from distnn.models.arguments import arguments_of, config_problems
from distnn.nn import Parameter
from distnn.optim import SGD
from distnn.train.config import Config, ConfigError, default_config, load_config, loads_config
from distnn.train.config_checks import SCHEDULE_OPTIONS, data_decided_arguments, model_arguments
from distnn.train.config_schema import SCHEMA
from distnn.train.job import Job, build_schedule


# ------------------------------------------------------------------ models
def _classes():
    return {registry._MODELS[m].__name__: m for m in registry.available_models()}  # (one name per class)


FEATURES = {"input_shape": (64,), "num_classes": 10}      # flat digits
IMAGES = {"input_shape": (1, 8, 8), "num_classes": 10}
TOKENS = {"input_shape": (12,), "num_classes": 3, "vocab_size": 10}   # the trainer fills vocab_size from the data
CHARS = {"input_shape": (16,), "num_classes": 10}           # charlm: next-token classes = the vocabulary
#: per model: (the context the trainer builds it in, {argument: (an off-default value, the context's own
#: arguments)}); every argument a config may give is listed, so a new one must say how it is used
OFF_DEFAULT = {
    "MLP": (FEATURES, {
        "sizes": ([64, 7, 10], {}), "hidden_sizes": ([16], {}), "activation": ("tanh", {}), "dropout": (0.5, {}),
        "norm": ("layer", {}), "norm_position": ("after_activation", {"norm": "batch"})}),
    "LeNet": (IMAGES, {"channels": ([4, 8], {}), "hidden": ([32, 16], {})}),
    "ResNet": (IMAGES, {"layers": ([1, 1, 1], {}), "widths": ([8, 16, 32], {})}),
    "LSTMClassifier": (TOKENS, {
        "input_size": (8, {"vocab_size": None, "input_shape": (64,)}), "hidden_size": (16, {}),
        "num_layers": (2, {}), "vocab_size": (12, {}), "embedding_dim": (8, {}), "bidirectional": (True, {}),
        "dropout": (0.5, {"num_layers": 2}), "padding_idx": (0, {})}),
    "TransformerClassifier": (TOKENS, {
        "vocab_size": (12, {}), "input_size": (8, {"vocab_size": None, "input_shape": (64,)}),
        "d_model": (32, {}), "nhead": (2, {}), "num_layers": (1, {}), "dim_feedforward": (32, {}),
        "dropout": (0.3, {}), "max_len": (20, {}), "norm_first": (False, {}), "activation": ("relu", {}),
        "padding_idx": (0, {})}),
    "CharLM": (CHARS, {
        "vocab_size": (12, {}), "arch": ("lstm", {}), "d_model": (32, {}), "nhead": (2, {}), "num_layers": (1, {}),
        "dim_feedforward": (64, {}), "dropout": (0.3, {}), "max_len": (32, {}), "hidden_size": (32, {"arch": "lstm"})}),
}


def _fingerprint(name, kwargs):
    """What tells two models apart: their parameters' names and shapes and a training-mode forward pass from
    the same seeds (or the error building or running one raises)."""
    kwargs = dict(kwargs)
    shape = kwargs["input_shape"]
    tokens = kwargs.get("vocab_size") is not None or registry._MODELS[name].__name__ == "CharLM"
    try:
        distnn.manual_seed(0)
        model = registry.build_model(name, **kwargs)
        model.train()
        rng = np.random.default_rng(0)
        x = rng.integers(0, 10, size=(3, *shape)) if tokens else rng.standard_normal((3, *shape)).astype(np.float32)
        distnn.manual_seed(1)
        out = model(x if tokens else distnn.Tensor(x))
    except (ValueError, TypeError) as e:
        return ("error", str(e))
    shapes = sorted((k, tuple(v.shape)) for k, v in model.state_dict().items())
    return shapes, np.asarray(out.data).round(5).tobytes()


def test_every_zoo_model_is_listed_here_with_every_argument_a_config_may_give():
    assert sorted(OFF_DEFAULT) == sorted(_classes())
    for cls_name, m in _classes().items():
        assert sorted(OFF_DEFAULT[cls_name][1]) == sorted(model_arguments(m)), cls_name


@pytest.mark.parametrize("cls_name", sorted(OFF_DEFAULT))
def test_every_argument_of_a_model_has_a_rule_and_the_table_names_only_arguments(cls_name):
    name = _classes()[cls_name]
    table, args = arguments_of(name), model_arguments(name)
    decided = data_decided_arguments(name)
    # a rule for each argument a config may give (else an unchecked value reaches the model), none for another
    assert sorted(table.rules) == sorted([*args, *decided])
    assert set(decided).isdisjoint(args)  # (the data decides them: a config may not give them)
    assert all(k in args and o.other in args for k, o in table.only_with.items())


@pytest.mark.parametrize("cls_name,arg", [(c, a) for c, (_, args) in OFF_DEFAULT.items() for a in args])
def test_every_argument_a_config_may_give_changes_the_model_the_trainer_builds(cls_name, arg):
    name = _classes()[cls_name]
    context, args = OFF_DEFAULT[cls_name]
    value, own = args[arg]
    base = {k: v for k, v in {**context, **own}.items() if v is not None}
    given = {k: v for k, v in base.items() if k not in ("input_shape", "num_classes")}
    # (a value the config's checks of the model's arguments accept)
    assert not config_problems(registry._MODELS[name], {**given, arg: value}), (arg, value)
    assert _fingerprint(name, base) != _fingerprint(name, {**base, arg: value}), f"{cls_name} ignores {arg}={value!r}"


@pytest.mark.parametrize("model,arg,value", [("resnet", "in_channels", 3), ("lenet", "in_channels", 1),
                                             ("lenet", "image_size", 28)])
def test_an_argument_the_data_decides_is_refused(model, arg, value):
    # (was: accepted and recorded in the run's config.toml, and the model built from the data's input shape)
    text = f"[data]\nname = 'digits'\nflatten = false\n[model]\nname = '{model}'\n"
    message = rf"model\.{arg} is set by the trainer from the data \(its input shape\) for model '{model}'; remove it"
    with pytest.raises(ConfigError, match=message + rf" from the config \(model\.{arg} set by --set, model\.name from"):
        loads_config(text, [f"model.{arg}={value}"])
    with pytest.raises(ConfigError, match=message + "[^(]*$"):
        loads_config(text + f"{arg} = {value}\n")


def test_a_run_record_holding_an_argument_the_data_decides_still_loads_without_it(tmp_path):
    # a config.toml written before the refusal: the run was built from the data's input shape, as now
    cfg = load_config("digits_cnn")
    text = cfg.to_toml().replace("[model]\n", "[model]\nin_channels = 3\n")
    assert "in_channels = 3" in text
    again = loads_config(text)
    assert "in_channels" not in again.model and again.model == cfg.model
    with pytest.raises(ConfigError, match="model.in_channels is set by the trainer"):  # (a config a user wrote)
        loads_config(text.split("\n", 3)[-1])


def test_the_job_passes_every_model_key_of_the_config_to_the_model(monkeypatch):
    import distnn.models as models

    seen = []
    real = models.build_model
    monkeypatch.setattr(models, "build_model", lambda name, **kw: seen.append(kw) or real(name, **kw))
    sets = ["model.hidden_sizes=[5, 3]", "model.activation=tanh", "model.dropout=0.2", "model.norm=layer",
            "model.norm_position=after_activation", "model.init=xavier_uniform", "train.epochs=1"]
    job = Job("xor", sets, LocalCommunicator(), quiet=True)
    assert len(seen) == 1
    for s in sets[:-1]:
        key, value = s.split("=")
        assert str(seen[0][key.split(".")[1]]) == value, (key, seen[0])
    assert job.model_spec["kwargs"] == {k: v for k, v in seen[0].items()}


# ------------------------------------------------------------------ schedules
SCHEDULES = SCHEMA["schedule.name"].choices
SCHEDULE_KEYS = [k.split(".", 1)[1] for k in SCHEMA if k.startswith("schedule.") and k != "schedule.name"]
#: a valid value off its default for every schedule key a table restricts
SCHEDULE_OFF_DEFAULT = {"step_size": 2, "gamma": 0.5, "milestones": [2, 4], "T_max": 5, "eta_min": 0.001,
                        "max_lr": 0.5, "monitor": "val_accuracy", "mode": "max", "patience": 2, "factor": 0.5,
                        "threshold": 0.01, "cooldown": 1, "min_lr": 0.001, "power": 2.0, "step_size_up": 3,
                        "step_size_down": 2, "cycle_mode": "exp_range", "total_iters": 3}


class _Reading(Config):
    """A [schedule] table that notes each key read."""

    def __init__(self, data, seen):
        super().__init__(data)
        object.__setattr__(self, "seen", seen)

    def __getitem__(self, key):
        self.seen.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.seen.add(key)
        return super().get(key, default)


def _read_by_build_schedule(name, **extra) -> set:
    cfg = default_config()
    cfg.schedule.update(name=name, **SCHEDULE_OFF_DEFAULT, **extra)
    seen = set()
    cfg["schedule"] = _Reading(cfg.schedule.to_dict(), seen)
    build_schedule(cfg, SGD([Parameter(np.zeros(2))], lr=0.1), steps_per_epoch=10)
    return seen


def test_the_schedule_table_names_schema_keys_and_schedules():
    assert sorted(SCHEDULE_OFF_DEFAULT) == sorted(SCHEDULE_OPTIONS)
    assert set(SCHEDULE_OPTIONS) <= set(SCHEDULE_KEYS)
    assert all(set(t) <= set(SCHEDULES) for t in SCHEDULE_OPTIONS.values())
    assert all(SCHEDULE_OFF_DEFAULT[k] != SCHEMA[f"schedule.{k}"].default for k in SCHEDULE_OPTIONS)


@pytest.mark.parametrize("name", SCHEDULES)
def test_build_schedule_reads_the_keys_the_table_gives_the_schedule_and_every_other_key(name):
    read = set()
    for warmup in ({"warmup_steps": 3}, {"warmup_epochs": 1}):
        read |= _read_by_build_schedule(name, linear_scaling=True, **({} if name == "onecycle" else warmup))
    takes = {k for k, t in SCHEDULE_OPTIONS.items() if name in t}
    assert read & set(SCHEDULE_OPTIONS) == takes
    others = set(SCHEDULE_KEYS) - set(SCHEDULE_OPTIONS)
    if name == "onecycle":  # (it warms up by itself: a warmup is refused)
        others -= {"warmup_epochs", "warmup_start_factor"}
    assert others <= read, others - read


@pytest.mark.parametrize("name", SCHEDULES)
def test_a_schedule_key_the_schedule_does_not_take_is_refused_by_set_and_kept_when_it_does(name):
    for k, takers in SCHEDULE_OPTIONS.items():
        value = SCHEDULE_OFF_DEFAULT[k]
        sets = [f"schedule.name={name}", f"schedule.{k}={value}", "train.epochs=1"]
        sets += [f"schedule.{o}={SCHEDULE_OFF_DEFAULT[o]}" for o in ("step_size", "milestones", "max_lr", "step_size_up")
                 if name in SCHEDULE_OPTIONS[o] and o != k]  # (required there)
        if (name, k) == ("cyclic", "gamma"):  # (read in exp_range alone: test_config_switched_off.py)
            sets.append("schedule.cycle_mode=exp_range")
        if name not in takers:
            # (was: accepted, and ignored)
            with pytest.raises(ConfigError, match=rf"schedule '{name}' does not take schedule\.{k} \(an option "
                                                  rf"of .*\): {name} would ignore it"):
                load_config("digits_mlp", sets)
        else:
            assert load_config("digits_mlp", sets).schedule[k] == value


def test_set_schedule_name_puts_the_files_options_of_another_schedule_back_to_their_defaults(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[schedule]\nname = "cosine"\nT_max = 7\neta_min = 0.001\ngamma = 0.5\n')
    cfg = load_config(str(path), ["schedule.name=step", "schedule.step_size=3"])
    assert "T_max" not in cfg.schedule and cfg.schedule.eta_min == 0.0 and cfg.schedule.gamma == 0.5
    # the file's own schedule: an option of another is refused, as a --set one is (was: left, and ignored;
    # tests/test_config_options_in_files.py)
    with pytest.raises(ConfigError, match=r"schedule 'cosine' does not take schedule\.gamma \(an option of step, "
                                          r"multistep, exponential and cyclic\): cosine would ignore it; remove gamma"):
        load_config(str(path))


@pytest.mark.parametrize("key", sorted(SCHEDULE_OPTIONS))
def test_the_key_list_of_config_keys_names_the_schedules_that_take_it(key):
    named = re.findall(rf"\b({'|'.join(SCHEDULES)})\b", SCHEMA[f"schedule.{key}"].doc.lower())
    assert sorted(set(named)) == sorted(SCHEDULE_OPTIONS[key]), SCHEMA[f"schedule.{key}"].doc


# ------------------------------------------------------------------ datasets
def test_the_schemas_data_keys_are_those_load_dataset_and_the_trainer_read():
    import inspect

    keys = {k.split(".")[1] for k in SCHEMA if k.startswith("data.")}
    loader = set(inspect.signature(D.load_dataset).parameters) - {"options", "token_vocab",  # (a run record's)
                                                                  "check_split_keys"}
    assert keys == loader | D.TRAINING_KEYS | {"path"}
    assert sorted(AUGMENTS) == sorted(k.split(".")[2] for k in SCHEMA if k.startswith("data.augment."))


def _files(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 3)).astype(np.float32), np.arange(40) % 2
    np.savez(tmp_path / "d.npz", x=x, y=y, feats=x[:, :2], labels=1 - y)
    rows = "\n".join(f"{a:.3f};{b:.3f};{c}" for (a, b, _), c in zip(x, y))
    (tmp_path / "d.csv").write_text("a;b;label\n" + rows + "\n")
    for prefix, n in (("train", 30), ("t10k", 10)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 6, 6), dtype=np.uint8))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    (tmp_path / "t.txt").write_text("a tiny text, read one character at a time. " * 20)


#: per dataset: (its required options, {option: an off-default value}); every option is listed
def _dataset_options(tmp):
    idx = {"path": str(tmp)}
    return {
        "digits": ({}, {"flatten": False}),
        "mnist": (idx, {"flatten": False}), "fashion_mnist": (idx, {"flatten": False}),
        "npz": ({"path": str(tmp / "d.npz")}, {"x_key": "feats", "y_key": "labels", "num_classes": 3}),
        "csv": ({"path": str(tmp / "d.csv"), "delimiter": ";"},
                {"label_column": 0, "header": False, "delimiter": ";", "num_classes": 3}),
        "noisy_xor": ({}, {"n_samples": 200, "noise": 0.3, "seed": 1}),
        "spirals": ({}, {"n_samples": 300, "n_classes": 2, "noise": 0.3, "turns": 2.0, "seed": 1}),
        "blobs": ({}, {"n_samples": 300, "n_classes": 2, "n_features": 3, "spread": 2.0, "seed": 1}),
        "seq_parity": ({}, {"n_samples": 300, "length": 6, "seed": 1}),
        "seq_sorted": ({}, {"n_samples": 300, "length": 6, "vocab_size": 5, "seed": 1}),
        "seq_majority": ({}, {"n_samples": 300, "length": 6, "vocab_size": 3, "seed": 1}),
        "charlm": ({}, {"path": str(tmp / "t.txt"), "seq_len": 16, "stride": 4}),
        "iris": ({}, {}), "wine": ({}, {}), "breast_cancer": ({}, {}), "xor": ({}, {}),
    }


def _data_fingerprint(name, options):
    try:
        s = D.load_dataset(name, **options)
    except DataError as e:
        return ("error", str(e))
    return s.num_classes, s.train.x.shape, s.train.x.dtype, s.train.x.tobytes(), s.train.y.tobytes()


def test_every_option_of_every_dataset_changes_the_data_it_loads(tmp_path):
    pytest.importorskip("sklearn")
    _files(tmp_path)
    table = _dataset_options(tmp_path)
    assert sorted(table) == sorted(n for n, _ in D.list_datasets())
    for name, (base, off) in table.items():
        options = set(D.list_dataset_options(name))
        assert sorted(off) == sorted(options - ({"path"} if "path" in base else set())), name
        for k, value in off.items():
            plain = {o: v for o, v in base.items() if o != k}  # (the option at its default)
            assert _data_fingerprint(name, plain) != _data_fingerprint(name, {**plain, k: value}), (name, k)


# ------------------------------------------------------------------ the schedules added later
def _lrs(sets, steps, opt=None):
    cfg = load_config("digits_mlp", sets)
    opt = opt or SGD([Parameter(np.zeros(2))], lr=0.1, momentum=0.9)
    (cb,) = build_schedule(cfg, opt, steps_per_epoch=4)
    out = [[opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]]]
    for _ in range(steps):
        cb.scheduler.step()
        out.append([opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]])
    return np.array(out)


def test_a_cyclic_schedule_from_the_config_cycles_per_step_between_lr_and_max_lr_and_momentum_inversely():
    sets = ["optimizer.lr=0.1", "schedule.name=cyclic", "schedule.max_lr=0.5", "schedule.step_size_up=1",
            "schedule.step_size_down=2", "schedule.linear_scaling=false"]
    got = _lrs(sets, 12)  # (epochs: 4 steps of the rise, 8 of the fall)
    np.testing.assert_allclose(got[[0, 4, 8, 12]], [[0.1, 0.9], [0.5, 0.8], [0.3, 0.85], [0.1, 0.9]], rtol=1e-14)
    for key in ("max_lr", "step_size_up"):
        with pytest.raises(ConfigError, match=f"schedule.{key} is required when schedule.name = 'cyclic'"):
            load_config("digits_mlp", [s for s in sets if not s.startswith(f"schedule.{key}=")])


def test_a_polynomial_schedule_from_the_config_decays_to_zero_at_the_end_of_the_run():
    sets = ["optimizer.lr=0.1", "train.epochs=5", "schedule.name=polynomial",
            "schedule.power=2", "schedule.interval=step", "schedule.linear_scaling=false"]
    got = _lrs(sets, 20)[:, 0]
    np.testing.assert_allclose(got, 0.1 * (1 - np.arange(21) / 20) ** 2, rtol=1e-12, atol=1e-18)
