"""The README as a new user reads it: its Python runs, and what it names exists.

* every ```python block runs as written (in a subprocess from a scratch directory, one process: the
  library example's ``dist.init()`` is then one local rank; none needs MPI or a GPU today, and a block
  that does is to be marked in ``NEEDS_MPI_OR_GPU`` and skipped here, saying so);
* every ``python -m distnn SUB ...`` line of the ```bash blocks names a subcommand that exists and only
  options that subcommand's parser has;
* every config key the README names (``train.precision``, ``checkpoint.every_seconds``, ...) is a key of
  the schema, or a model argument / dataset option some model / dataset takes;
* the first screen has exactly the two set-up commands, and the layout section names every package
  directory under ``distnn/``.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

# A python block that needs MPI ranks or a GPU: its first line, with why (skipped, never silently).
NEEDS_MPI_OR_GPU: dict = {}

SECTIONS = ("run", "data", "model", "optimizer", "schedule", "train", "early_stopping", "checkpoint", "ensemble",
            "distributed")
# Dotted names in the README that look like config keys but are files or modules.
NOT_KEYS = {"data.train.x", "data.train.y", "model.json", "model.npz", "model.parameters", "optimizer.step",
            "run.sh", "train.sh", "train.sbatch", "train.adversarial.fgsm", "train.inference.predict_proba",
            "train.job.run_training", "distributed.simulate"}


def blocks(language):
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def _python_blocks():
    return [pytest.param(b, id=f"block{i}", marks=[pytest.mark.skip(reason=NEEDS_MPI_OR_GPU[b.splitlines()[0]])]
                         if b.splitlines()[0] in NEEDS_MPI_OR_GPU else []) for i, b in enumerate(blocks("python"))]


def test_the_readme_has_python_examples():
    assert blocks("python"), "the README's ```python blocks were not found"


@pytest.mark.parametrize("code", _python_blocks())
def test_python_block_runs_as_written(code, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLCONFIGDIR=str(tmp_path),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for var in [v for v in env if v.startswith(("PMI_", "PMIX_", "OMPI_", "HYDRA_", "MPI_LOCALRANKID"))]:
        del env[var]  # (a block run by a test under mpiexec is still one process of its own)
    (tmp_path / "example.py").write_text(code)
    r = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, f"README block failed:\n{code}\n--- stderr:\n{r.stderr[-3000:]}"


def _cli_lines():
    for block in blocks("bash"):
        for line in block.splitlines():
            command = line.split("#")[0].split()
            if "-m" in command and command[command.index("-m") + 1:command.index("-m") + 2] == ["distnn"]:
                yield command[command.index("-m") + 2:]


def test_cli_lines_name_real_subcommands_and_options():
    from distnn.cli_parser import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    lines = list(_cli_lines())
    assert len(lines) >= 10, lines
    for args in lines:
        assert args[0] in commands, args
        options = commands[args[0]]._option_string_actions
        for word in args[1:]:
            if word.startswith("--"):
                assert word.split("=")[0] in options, f"{' '.join(args)}: {word} is no option of {args[0]}"


def _named_keys():
    found = set(re.findall(rf"\b(?:{'|'.join(SECTIONS)})\.[a-z_]+(?:\.[a-z_]+)?", README))
    return sorted(found - NOT_KEYS)


def test_config_keys_named_in_the_readme_exist():
    from distnn.train.config_schema import SCHEMA, TABLES
    from distnn.train.open_keys import describe_open_key

    keys = _named_keys()
    assert {"train.precision", "distributed.sync_batchnorm", "model.init", "optimizer.max_norm"} <= set(keys)
    unknown = [k for k in keys if k not in SCHEMA and k not in TABLES and describe_open_key(k) is None]
    assert not unknown, f"the README names config keys the schema does not have: {unknown}"


def test_first_screen_has_exactly_the_two_setup_commands():
    first = blocks("bash")[0]
    assert README.index(first) < README.index("\n## "), "the set-up commands are not on the first screen"
    commands = [line.split("#")[0].strip() for line in first.splitlines() if line.split("#")[0].strip()]
    assert commands == ["./launch/quickstart.sh", "./tests/run.sh"]
    for script in commands:
        assert os.access(ROOT / script, os.X_OK), script


def test_layout_names_every_package_directory():
    layout = README.split("## Layout", 1)[1]
    packages = sorted(p.parent.name for p in (ROOT / "distnn").glob("*/__init__.py"))
    assert len(packages) >= 10, packages
    missing = [p for p in packages if f"`{p}/`" not in layout]
    assert not missing, f"README's layout section leaves out distnn/{missing}"
