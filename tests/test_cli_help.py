"""``python -m distnn``'s help for every command, its examples' config keys, no command, the datasets and
config-keys listings, and the ``python -m`` entry point."""
import os
import subprocess
import sys

import pytest

from distnn.cli import main

from cli_cases import run_cli


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_help_for_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("train", "evaluate", "predict", "datasets", "config-keys"):
        assert cmd in out
    for cmd, must in (("train", ["--config", "--set", "--out", "--simulate-ranks", "--quiet", "mpiexec"]),
                      ("evaluate", ["--split", "--data", "confusion"]),
                      ("predict", ["--input", "--output", "prob_"]),
                      ("datasets", ["examples"]),
                      ("config-keys", ["NAME", "--all", "distnn/configs"])):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        text = capsys.readouterr().out
        assert "examples:" in text
        for m in must:
            assert m in text, (cmd, m)


def test_help_examples_use_config_keys_that_exist():
    import shlex

    from distnn.cli import _TRAIN_EPILOG
    from distnn.train.config import load_config

    examples = [line.split("#")[0] for line in _TRAIN_EPILOG.splitlines() if "python -m distnn train" in line]
    checked = 0
    for line in examples:
        words = shlex.split(line)
        config = words[words.index("--config") + 1] if "--config" in words else "digits_mlp"
        if config.endswith(".toml"):
            config = "digits_mlp"  # a user's file: only its overrides can be checked here
        sets = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
        load_config(config, sets)  # raises on an unknown section or key, naming it
        checked += len(sets)
    assert checked >= 2


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "train" in capsys.readouterr().out


def test_datasets_lists_datasets_and_configs(capsys):
    code, out, _ = run_cli(["datasets"], capsys)
    assert code == 0
    for name in ("digits", "mnist", "csv", "digits_mlp", "digits_cnn"):
        assert name in out
    # each dataset's own data.* options are listed under it, with their defaults as a config writes them
    from distnn.data import list_datasets
    from distnn.data.datasets import list_dataset_options

    blocks = {}
    for line in out.splitlines():
        if line.startswith("  ") and not line.startswith("   "):
            current = blocks.setdefault(line.split()[0], [])
        elif line.strip().startswith("options:"):
            current.append(line)
    for name, _ in list_datasets():
        for option in list_dataset_options(name):
            assert option in " ".join(blocks[name]), (name, option)
    assert 'header = "auto"' in " ".join(blocks["csv"]) and "path (required)" in " ".join(blocks["csv"])
    assert "flatten = true" in " ".join(blocks["digits"])
    assert "path (unset)" in " ".join(blocks["charlm"])  # charlm has a built-in text: no path required


def test_config_keys_lists_the_schema(capsys):
    from distnn.train.config_schema import SCHEMA

    code, out, _ = run_cli(["config-keys", "--all"], capsys)
    assert code == 0
    keys = [line.split()[0] for line in out.splitlines()]
    assert set(SCHEMA) <= set(keys) and "model.*" in keys
    line = out.splitlines()[keys.index("optimizer.lr")]
    assert "float" in line and "> 0" in line  # type, bounds and meaning, as describe_schema() gives them

    code, out, _ = run_cli(["config-keys", "optimizer", "data.augment"], capsys)
    keys = [line.split()[0] for line in out.splitlines()]
    assert code == 0 and "optimizer.lr" in keys and "data.augment.shift" in keys
    assert all(k.startswith(("optimizer.", "data.augment.")) for k in keys)

    code, out, err = run_cli(["config-keys", "optimzer"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("distnn: error:") and "did you mean 'optimizer'" in err and len(err.splitlines()) == 1


def test_python_dash_m_entry_point():
    # the module entry point and exit code, in a real subprocess
    r = subprocess.run([sys.executable, "-m", "distnn", "train", "--config", "no_such_config_xyz"],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("distnn: error:") and "no_such_config_xyz" in lines[0]
