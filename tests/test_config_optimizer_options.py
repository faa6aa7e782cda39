"""The ``[optimizer]`` keys each optimizer takes: the config's table (``config_checks.OPTIMIZER_OPTIONS``), what
the job's builder passes (``Job._build_optimizer``) and what the optimizer's constructor accepts must agree, for
every ``optimizer.name`` the config accepts, so a new optimizer or option cannot drift from the others.

The drift this stops: LARS takes ``nesterov`` (the builder passed it) but the table listed it for sgd alone, so
``optimizer.name = "lars"`` with ``nesterov = true`` was refused, and ``--set optimizer.name=lars`` on digits_mlp
silently reset its Nesterov momentum to plain momentum; LARS's ``eps`` was neither passed nor allowed.
"""
import inspect
import re
import types

import numpy as np
import pytest

from distnn import optim
from distnn._launcher_env import launcher_env
from distnn.cli import main
from distnn.distributed import LocalCommunicator
from distnn.models import build_model
from distnn.train import checkpoint as ck
from distnn.train.config import ConfigError, default_config, load_config
from distnn.train.config_checks import OPTIMIZER_NAMESAKES, OPTIMIZER_OPTIONS
from distnn.train.config_schema import SCHEMA
from distnn.train.job import Job

NAMES = SCHEMA["optimizer.name"].choices
KEYS = [k.split(".", 1)[1] for k in SCHEMA if k.startswith("optimizer.") and k != "optimizer.name"]
#: a valid value off its default for every [optimizer] key (momentum > 0, as nesterov needs)
OFF_DEFAULT = {"lr": 0.123, "momentum": 0.5, "nesterov": True, "weight_decay": 0.01, "l1": 0.001, "max_norm": 3.0,
               "betas": [0.8, 0.95], "eps": 1e-7, "alpha": 0.9, "no_decay_bias_norm": False,
               "rho": 0.5, "momentum_decay": 0.01, "decoupled_weight_decay": True, "etas": [0.4, 1.3],
               "step_sizes": [1e-5, 10.0], "lambd": 1e-3, "t0": 100.0, "beta2_decay": -0.5, "d": 2.0}


LISTS = ("betas", "etas", "step_sizes")  # (tuples in the optimizer's groups)


def _record_constructions(monkeypatch):
    """Make every optimizer class of distnn.optim record ``(class, keyword arguments)`` when built."""
    made = []
    for attr in dir(optim):
        cls = getattr(optim, attr)
        if isinstance(cls, type) and issubclass(cls, optim.Optimizer) and cls is not optim.Optimizer:
            def record(params, _cls=cls, **kwargs):
                made.append((_cls, kwargs))
                return _cls(params, **kwargs)

            monkeypatch.setattr(optim, attr, record)
    return made


def _built_by_the_job(monkeypatch, optimizer: dict):
    """(class, keyword arguments) the job's builder constructs for the [optimizer] table ``optimizer``, every
    other key at its default; unchecked by the config, so that it shows what the builder passes by itself."""
    cfg = default_config()
    cfg.optimizer.update(optimizer)
    made = _record_constructions(monkeypatch)
    job = types.SimpleNamespace(cfg=cfg, model=build_model("mlp", sizes=[4, 3, 2]))
    opt = Job._build_optimizer(job)
    assert len(made) == 1 and isinstance(opt, made[0][0]), made
    return made[0]


def _constructor_keys(cls) -> set:
    return {p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "params")}


def test_every_optimizer_key_has_an_off_default_value_here():
    assert sorted(OFF_DEFAULT) == sorted(KEYS)  # (a new key: give it one, so that the tests below cover it)
    assert all(OFF_DEFAULT[k] != SCHEMA[f"optimizer.{k}"].default for k in KEYS)
    assert set(OPTIMIZER_OPTIONS) <= set(KEYS) and all(set(t) <= set(NAMES) for t in OPTIMIZER_OPTIONS.values())


@pytest.mark.parametrize("name", NAMES)
def test_the_option_table_the_builder_and_the_constructor_agree(monkeypatch, name):
    cls, passed = _built_by_the_job(monkeypatch, {"name": name, **OFF_DEFAULT})
    accepts = _constructor_keys(cls) - set(OPTIMIZER_NAMESAKES.get(name, ()))  # (another meaning, same name)
    # what the builder passes is the config's value of the key of that name
    for k, v in passed.items():
        assert k in KEYS, f"{name}: the builder passes {k}, which is no [optimizer] key"
        assert list(v) == OFF_DEFAULT[k] if k in LISTS else v == OFF_DEFAULT[k], (name, k, v)
    for k in KEYS:
        if k in OPTIMIZER_OPTIONS:  # an option of some optimizers: the table says which
            takes = name in OPTIMIZER_OPTIONS[k]
            assert (k in passed) == takes, f"{name}: the table says it takes {k}: {takes}; the builder passes it: " \
                                           f"{k in passed}"
            assert (k in accepts) == takes, f"{name}: the table says it takes {k}: {takes}; {cls.__name__}() " \
                                            f"accepts it: {k in accepts}"
        elif k in accepts:  # a key every optimizer takes (the table leaves it out)
            assert k in passed, f"{name}: {cls.__name__}() takes {k}, which the builder does not pass"
        else:  # a key the trainer applies (l1, max_norm) or the builder itself (no_decay_bias_norm)
            assert k not in passed


@pytest.mark.parametrize("name", NAMES)
def test_a_key_the_optimizer_takes_is_kept_and_reaches_it_and_one_it_does_not_take_is_refused(name):
    for k, takers in OPTIMIZER_OPTIONS.items():
        sets = ["optimizer.name=" + name, f"optimizer.{k}={str(OFF_DEFAULT[k]).lower()}", "train.epochs=1"]
        if k == "nesterov":
            sets.append(f"optimizer.momentum={OFF_DEFAULT['momentum']}")
        if name not in takers:
            with pytest.raises(ConfigError, match=rf"optimizer '{name}' does not take optimizer\.{k} "):
                load_config("xor", sets)
            continue
        cfg = load_config("xor", sets)
        assert cfg.optimizer[k] == OFF_DEFAULT[k]
        groups = Job(cfg, [], LocalCommunicator(), quiet=True).optimizer.param_groups
        assert all((list(g[k]) if k in LISTS else g[k]) == OFF_DEFAULT[k] for g in groups), (name, k)


@pytest.mark.parametrize("key", sorted(OPTIMIZER_OPTIONS))
def test_the_key_list_of_config_keys_names_the_optimizers_that_take_it(key):
    # (`distnn config-keys optimizer` said "Nesterov momentum (sgd; ...)": lars took it too)
    named = re.findall(rf"\b({'|'.join(NAMES)})\b", SCHEMA[f"optimizer.{key}"].doc.lower())
    assert sorted(set(named)) == sorted(OPTIMIZER_OPTIONS[key]), SCHEMA[f"optimizer.{key}"].doc


# ------------------------------------------------------------------ LARS with Nesterov momentum, end to end
def test_set_optimizer_name_lars_keeps_the_files_nesterov_momentum():
    # (was: reset to nesterov = false, as for an optimizer that does not take it)
    cfg = load_config("digits_mlp", ["optimizer.name=lars"])
    assert cfg.optimizer.nesterov is True and cfg.optimizer.momentum == 0.9
    cfg = load_config("digits_mlp", ["optimizer.name=lars", "optimizer.nesterov=false"])
    assert cfg.optimizer.nesterov is False


def test_lars_nesterov_in_a_file_is_accepted_and_without_momentum_refused_up_front(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[optimizer]\nname = "lars"\nmomentum = 0.9\nnesterov = true\n')
    assert load_config(str(path)).optimizer.nesterov is True  # (was: "optimizer 'lars' does not take ...")
    with pytest.raises(ConfigError) as info:
        load_config(str(path), ["optimizer.momentum=0"])
    # (as for sgd; it was LARS's ValueError once the data was loaded)
    assert "optimizer.nesterov needs optimizer.momentum > 0" in str(info.value)


SETS = ["optimizer.name=lars", "train.max_steps=1", "schedule.name=constant", "run.plots=false"]


def _one_step(tmp_path, tag, *sets):
    out = tmp_path / tag
    argv = ["train", "--config", "digits_mlp", "--quiet", "--out", str(out)]
    assert main(argv + [a for s in SETS + list(sets) for a in ("--set", s)]) == 0
    _, state, _ = ck.resolve_and_load(str(out), None)
    return out, state


def _state_index_names():
    """The model's parameter name of each optimizer state index (state_dict numbers the parameters group by
    group: LARS's no-decay group of biases comes after the weights)."""
    job = Job("digits_mlp", SETS, LocalCommunicator(), quiet=True)
    names = {id(p): n for n, p in job.model.named_parameters()}
    return [names[id(p)] for g in job.optimizer.param_groups for p in g["params"]]


@pytest.mark.skipif(launcher_env() is not None, reason="trains one process through the CLI: under mpiexec each "
                    "pytest process would be a rank of one job, each with its own --out")
def test_lars_with_nesterov_trains_from_the_command_line_with_the_lookahead_step(tmp_path, capsys):
    # One step from the same weights on the same batch (the same seed): LARS's buffer is buf = trust * d either
    # way; plain momentum steps w0 - lr * buf, Nesterov's look-ahead w0 - lr * (trust * d + momentum * buf)
    # = w0 - lr * (1 + momentum) * buf.
    out, nesterov = _one_step(tmp_path, "nesterov")  # (digits_mlp's own momentum = 0.9, nesterov = true)
    text = (out / "config.toml").read_text()
    section = text[text.index("[optimizer]"):].split("\n\n")[0]
    assert 'name = "lars"' in section and "nesterov = true" in section and "momentum = 0.9" in section
    assert all(g["nesterov"] and g["momentum"] == 0.9 for g in nesterov["optimizer"]["param_groups"])
    _, plain = _one_step(tmp_path, "plain", "optimizer.nesterov=false")
    assert not any(g["nesterov"] for g in plain["optimizer"]["param_groups"])
    lr, m = 0.05, 0.9
    names = _state_index_names()
    assert sorted(names) == sorted(plain["model"])
    for i, name in enumerate(names):
        buf = plain["optimizer"]["state"][i]["momentum_buffer"]
        np.testing.assert_array_equal(buf, nesterov["optimizer"]["state"][i]["momentum_buffer"])
        w0 = plain["model"][name].astype(np.float64) + lr * buf
        assert not np.allclose(nesterov["model"][name], plain["model"][name])  # (the step moved it)
        np.testing.assert_allclose(nesterov["model"][name], w0 - lr * (1 + m) * buf, rtol=1e-5, atol=1e-7)
    capsys.readouterr()


# ------------------------------------------------------------------ the optimizers added later
ADDED = {"adamax": optim.Adamax, "nadam": optim.NAdam, "radam": optim.RAdam, "adadelta": optim.Adadelta,
         "rprop": optim.Rprop, "asgd": optim.ASGD, "adafactor": optim.Adafactor}


@pytest.mark.parametrize("name", sorted(ADDED))
def test_the_added_optimizers_are_built_from_the_config_with_their_options(name):
    sets = [f"optimizer.name={name}", "optimizer.lr=0.05", "train.epochs=1"]
    sets += [f"optimizer.{k}={str(OFF_DEFAULT[k]).lower()}" for k, takers in OPTIMIZER_OPTIONS.items() if name in takers]
    opt = Job(load_config("xor", sets), [], LocalCommunicator(), quiet=True).optimizer
    assert type(opt) is ADDED[name] and opt.param_groups[0]["lr"] == 0.05
    if name == "asgd":
        assert opt.param_groups[0]["alpha"] == 0.75  # (PyTorch's: optimizer.alpha is RMSprop's, another thing)
    if name == "adafactor":  # (PyTorch's pair: optimizer.eps is a denominator's epsilon, another thing)
        assert opt.param_groups[0]["eps"] == (None, 1e-3)
        assert (opt.param_groups[0]["beta2_decay"], opt.param_groups[0]["d"]) == (-0.5, 2.0)


def test_rprop_is_refused_weight_decay_and_etas_or_step_sizes_out_of_order():
    with pytest.raises(ConfigError, match="optimizer 'rprop' takes no weight decay"):
        load_config("xor", ["optimizer.name=rprop", "optimizer.weight_decay=0.01"])
    with pytest.raises(ConfigError, match=r"optimizer.etas must satisfy 0 < etaminus < 1 < etaplus, got \[1.5, 2.0\]"):
        load_config("xor", ["optimizer.name=rprop", "optimizer.etas=[1.5, 2.0]"])
    with pytest.raises(ConfigError, match="optimizer.step_sizes must be .min, max. with min <= max"):
        load_config("xor", ["optimizer.name=rprop", "optimizer.step_sizes=[2.0, 1.0]"])
