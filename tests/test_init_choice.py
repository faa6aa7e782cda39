"""Initialisation schemes by name: init_model_, build_model(init=...), and the config key model.init."""
import json
import math

import numpy as np
import pytest

import distnn
from distnn import nn
from distnn.cli import main
from distnn.distributed import simulate
from distnn.models import build_model
from distnn.nn.init_schemes import INIT_SCHEMES, init_model_
from distnn.train.config_schema import SCHEMA


def _layers():
    """A Linear (fan_in 400, fan_out 300) and a Conv2d (fan_in 16*5*5 = 400, fan_out 24*5*5 = 600), big
    enough that the sample statistics are within a few percent of the formula's."""
    return nn.Sequential(nn.Linear(400, 300), nn.ReLU(), nn.Conv2d(16, 24, 5))


# scheme -> (fan_in, fan_out) -> (uniform bound or None, standard deviation)
FORMULAS = {
    "kaiming_uniform": lambda fi, fo: (math.sqrt(6 / fi), math.sqrt(2 / fi)),
    "kaiming_normal": lambda fi, fo: (None, math.sqrt(2 / fi)),  # the notes' N(0, 2/n)
    "xavier_uniform": lambda fi, fo: (math.sqrt(6 / (fi + fo)), math.sqrt(2 / (fi + fo))),
    "xavier_normal": lambda fi, fo: (None, math.sqrt(2 / (fi + fo))),
}


@pytest.mark.parametrize("scheme", sorted(FORMULAS))
def test_weights_follow_the_formula_and_biases_are_zero(scheme):
    model = init_model_(_layers(), scheme, generator=np.random.default_rng(0))
    for layer, fan_in, fan_out in ((model[0], 400, 300), (model[2], 400, 600)):
        w = layer.weight.data.astype(np.float64)
        bound, std = FORMULAS[scheme](fan_in, fan_out)
        assert abs(w.mean()) < 0.05 * std
        assert w.std() == pytest.approx(std, rel=0.03)
        if bound is not None:  # uniform: inside the bound, and filling it
            assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
        else:  # normal: tails beyond 3 std exist (a uniform of that std would have none)
            assert np.abs(w).max() > 3.5 * std
        np.testing.assert_array_equal(layer.bias.data, 0.0)


def test_default_leaves_the_layers_own_initialisation():
    distnn.manual_seed(1)
    a = _layers()
    distnn.manual_seed(1)
    b = init_model_(_layers(), "default")
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k])
    assert np.abs(b[0].bias.data).max() > 0  # PyTorch's default: a small uniform bias


def test_build_model_init_is_seeded_and_touches_linear_and_conv_only():
    def build(seed, init):
        distnn.manual_seed(seed)
        return build_model("lstm", vocab_size=20, input_shape=[7], num_classes=3, init=init).state_dict()

    a, b, c, default = build(3, "xavier_normal"), build(3, "xavier_normal"), build(4, "xavier_normal"), \
        build(3, "default")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)  # the same seed, the same weights
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    for k in a:
        if k.startswith(("embedding", "lstm")):  # drawn as the model built itself, before the scheme's draws
            np.testing.assert_array_equal(a[k], default[k], err_msg=k)
        elif k.endswith("bias"):
            np.testing.assert_array_equal(a[k], 0.0, err_msg=k)
        else:
            assert not np.array_equal(a[k], default[k]), k
    lenet = build_model("lenet", input_shape=[1, 28, 28], num_classes=10, init="kaiming_uniform")
    conv = lenet.conv1.weight.data if hasattr(lenet, "conv1") else next(
        m.weight.data for m in lenet.modules() if isinstance(m, nn.Conv2d))
    assert np.abs(conv).max() <= math.sqrt(6 / np.prod(conv.shape[1:]))


def test_bad_scheme_names_the_allowed_values(capsys):
    with pytest.raises(ValueError, match="init must be one of 'default', 'kaiming_uniform'.*got 'he'"):
        build_model("mlp", sizes=[4, 3], init="he")
    with pytest.raises(ValueError, match="init must be one of"):
        init_model_(_layers(), "orthogonal")
    assert main(["train", "--config", "xor", "--set", "model.init=kaiming", "--out", "unused"]) == 2
    err = capsys.readouterr().err
    assert "model.init must be one of 'default', 'kaiming_uniform', 'kaiming_normal', 'xavier_uniform', " \
           "'xavier_normal'" in err and "did you mean 'kaiming_normal'" in err
    assert SCHEMA["model.init"].choices == INIT_SCHEMES


def test_every_rank_builds_the_same_model_from_run_seed():
    from distnn.train.job import Job

    def build(comm):
        job = Job("digits_mlp", ["model.init=kaiming_uniform", "run.seed=5", "train.epochs=1"], comm, quiet=True)
        return job.model.state_dict(), job.model_spec

    (one, spec), (two, _) = simulate(2, build)
    assert spec["kwargs"]["init"] == "kaiming_uniform"
    distnn.manual_seed(5)  # what model.json records rebuilds the very same initial model
    again = build_model(spec["name"], **spec["kwargs"]).state_dict()
    for k in one:
        np.testing.assert_array_equal(one[k], two[k], err_msg=k)
        np.testing.assert_array_equal(one[k], again[k], err_msg=k)
    assert np.abs(one["0.weight"]).max() <= math.sqrt(6 / 64)
    distnn.manual_seed(5)
    default = build_model(spec["name"], **{**spec["kwargs"], "init": "default"}).state_dict()
    assert not np.array_equal(one["0.weight"], default["0.weight"])  # the scheme was applied


def test_a_run_records_the_scheme_and_reloads(tmp_path, capsys):
    from distnn.train.run_dir import load_model

    out = tmp_path / "run"
    assert main(["train", "--config", "digits_mlp", "--set", "train.epochs=1", "--set", "model.init=xavier_uniform",
                 "--set", "run.plots=false", "--quiet", "--out", str(out)]) == 0
    assert 'init = "xavier_uniform"' in (out / "config.toml").read_text()
    meta = json.loads((out / "model.json").read_text())
    assert meta["model"]["kwargs"]["init"] == "xavier_uniform"
    model, _, _ = load_model(str(out))
    saved = np.load(out / "model.npz")
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, saved[k], err_msg=k)
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 0 and "accuracy" in capsys.readouterr().out
    # resuming from the recorded config: the scheme is no change (train.epochs is), one more epoch trained
    assert main(["train", "--config", str(out / "config.toml"), "--set", "train.epochs=2", "--quiet",
                 "--out", str(out), "--resume", "auto"]) == 0
    err = capsys.readouterr().err
    assert "train.epochs: 1 -> 2" in err and "model.init" not in err and "resumed from" in err
