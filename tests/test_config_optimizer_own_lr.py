"""``optimizer.lr`` left unset: the chosen optimizer's own default (torch.optim's where PyTorch has it), as
momentum, weight_decay and eps are (tests/test_config_optimizer_own_defaults.py).

The config gave every optimizer lr 0.01: Adam ten times PyTorch's 1e-3, Adadelta a hundredth of its 1.0.
LARS, whose lr is required, keeps 0.01. A run records the value it used (``[defaults.optimizer.NAME]``),
and a config.toml written before, which holds ``lr = 0.01`` under ``[optimizer]``, re-runs and resumes
with exactly that.
"""
import inspect
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from distnn import optim
from distnn.train.config import dump_run_config, loads_config
from distnn.train.config_schema import SCHEMA
from distnn.train.optimizer_defaults import OPTIMIZER_CLASSES
from distnn.train.toml_writer import dumps as toml_dumps

NAMES = SCHEMA["optimizer.name"].choices
XOR = (Path(__file__).resolve().parents[1] / "distnn" / "configs" / "xor.toml").read_text()
NO_LR = XOR.replace("lr = 0.05\n", "")  # (the built-in xor gives its lr: a config of one's own may not)


def test_the_built_in_config_file_is_the_one_edited():
    assert NO_LR != XOR and "lr =" not in NO_LR


@pytest.mark.parametrize("name", NAMES)
def test_an_unset_lr_is_the_optimizers_own(name):
    cfg = loads_config(NO_LR, [f"optimizer.name={name}"])
    default = inspect.signature(getattr(optim, OPTIMIZER_CLASSES[name]).__init__).parameters["lr"].default
    assert cfg.optimizer.lr == (0.01 if name == "lars" else default)  # (LARS requires its lr)


def test_the_lrs_are_pytorchs():
    torch = pytest.importorskip("torch")
    p = [torch.nn.Parameter(torch.zeros(1))]
    for name in NAMES:
        cls = getattr(torch.optim, OPTIMIZER_CLASSES[name], None)
        if cls is not None:
            assert loads_config(NO_LR, [f"optimizer.name={name}"]).optimizer.lr == cls(p).defaults["lr"], name
    assert loads_config(NO_LR, ["optimizer.name=adadelta"]).optimizer.lr == 1.0
    assert loads_config(NO_LR, ["optimizer.name=adam"]).optimizer.lr == 1e-3


def test_a_given_lr_wins_and_the_record_holds_the_own_one_for_that_optimizer_alone():
    assert loads_config(NO_LR, ["optimizer.name=adadelta", "optimizer.lr=0.5"]).optimizer.lr == 0.5
    assert loads_config(XOR, ["optimizer.name=adadelta"]).optimizer.lr == 0.05  # (the file's)
    text = dump_run_config(loads_config(NO_LR, ["optimizer.name=adadelta"]))
    saved = tomllib.loads(text)
    assert "lr" not in saved["optimizer"] and saved["defaults"]["optimizer"]["adadelta"]["lr"] == 1.0
    assert loads_config(text).optimizer.lr == 1.0
    assert loads_config(text, ["optimizer.name=adam"]).optimizer.lr == 1e-3  # (adam's, not adadelta's)


def _old_record(name):
    """A run's config.toml as distnn wrote it before: ``lr = 0.01`` under [optimizer] whatever the optimizer
    (then the schema's one default), no [defaults.optimizer]."""
    saved = tomllib.loads(dump_run_config(loads_config(NO_LR, [f"optimizer.name={name}"])))
    saved["defaults"].pop("optimizer")
    saved["optimizer"] = {"name": name, "lr": 0.01, **{k: v for k, v in saved["optimizer"].items() if k != "name"}}
    saved["defaults"] = saved.pop("defaults")
    return toml_dumps(saved, header="distnn run configuration (resolved: every key, defaults filled in;\n"
                                    "[defaults.model.NAME] and [defaults.data.NAME] hold the model's and the "
                                    "dataset's,\nwhich apply while model.name and data.name name them)")


@pytest.mark.parametrize("name", ["sgd", "adam", "adadelta", "lars"])
def test_a_config_toml_from_before_re_runs_with_lr_0_01(name):
    assert loads_config(_old_record(name)).optimizer.lr == 0.01


def _distnn(args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLCONFIGDIR=str(cwd))
    return subprocess.run([sys.executable, "-m", "distnn", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def _lrs(run_dir):
    from distnn.train import checkpoint as ck

    _, state, _ = ck.resolve_and_load(str(run_dir), None)
    return {g["lr"] for g in state["optimizer"]["param_groups"]}


def test_train_uses_the_own_lr_and_an_old_record_trains_and_resumes_with_its_0_01(tmp_path):
    base = ["train", "--quiet", "--set", "train.epochs=2", "--set", "checkpoint.enabled=true", "--set",
            "run.plots=false"]
    (tmp_path / "mine.toml").write_text(NO_LR)
    r = _distnn([*base, "--config", "mine.toml", "--out", "new"], tmp_path)  # (xor's optimizer: adam)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _lrs(tmp_path / "new") == {1e-3}  # (was 0.01)
    (tmp_path / "old.toml").write_text(_old_record("adam"))
    r = _distnn([*base, "--config", "old.toml", "--out", "old"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _lrs(tmp_path / "old") == {0.01}
    r = _distnn(["train", "--resume", "auto", "--out", "old", "--set", "train.epochs=3", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "differs from the checkpoint's: train.epochs: 2 -> 3. " in r.stderr  # (lr: no change)
    assert _lrs(tmp_path / "old") == {0.01}
