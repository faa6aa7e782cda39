"""``optimizer.momentum``, ``optimizer.weight_decay`` and ``optimizer.eps`` left unset: the chosen optimizer's
own defaults, its constructor's (torch.optim's where PyTorch has the optimizer).

The config gave every optimizer one number (eps 1e-8, momentum 0, weight decay 0): Adagrad ran with eps
1e-8 (PyTorch's 1e-10), LAMB with 1e-8 (its own 1e-6), LARS without momentum (its own 0.9), AdamW without
weight decay (PyTorch's 0.01). A run records the values it used (``[defaults.optimizer.NAME]`` of its
config.toml), and a config.toml written before, which holds the old numbers under ``[optimizer]``, re-runs
with them.
"""
import inspect
import json
import os
import subprocess
import re
import sys
import tomllib

import pytest

from distnn import optim
from distnn.train.callbacks.resume import config_changes
from distnn.train.config import RUN_RECORD_HEADER, dump_run_config, load_config, loads_config
from distnn.train.config_checks import OPTIMIZER_OPTIONS
from distnn.train.optimizer_defaults import OPTIMIZER_CLASSES
from distnn.train.config_schema import OPTIMIZER_OWN_DEFAULTS as OWN, SCHEMA
from distnn.train.ensemble import member_config
from distnn.train.toml_writer import dumps as toml_dumps

NAMES = SCHEMA["optimizer.name"].choices
#: the keys here: xor gives its lr (tests/test_config_optimizer_own_lr.py has lr's own default)
OPTIMIZER_OWN_DEFAULTS = tuple(k for k in OWN if k != "lr")
#: what a config.toml held under [optimizer] for every optimizer before
BEFORE = {"momentum": 0.0, "weight_decay": 0.0, "eps": 1e-8}
#: the optimizers there were then (a config.toml from before names one of them)
OLD_NAMES = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "lars", "lamb")


def _takes(name, key):
    """Whether optimizer ``name`` has the argument ``key`` (rprop has no weight decay at all)."""
    params = inspect.signature(getattr(optim, OPTIMIZER_CLASSES[name]).__init__).parameters
    return (key not in OPTIMIZER_OPTIONS or name in OPTIMIZER_OPTIONS[key]) and key in params


@pytest.mark.parametrize("name", NAMES)
def test_an_unset_key_is_the_optimizers_own_default(name):
    cfg = load_config("xor", [f"optimizer.name={name}"])
    params = inspect.signature(getattr(optim, OPTIMIZER_CLASSES[name]).__init__).parameters
    for k in OPTIMIZER_OWN_DEFAULTS:
        if _takes(name, k):
            assert cfg.optimizer[k] == params[k].default, (name, k)
        else:
            assert k not in cfg.optimizer, (name, k)  # (nothing to record for a key it does not take)


def test_the_defaults_that_changed_are_pytorchs_and_the_optimizers_own():
    changed = {name: {k: load_config("xor", [f"optimizer.name={name}"]).optimizer[k] for k in
                      OPTIMIZER_OWN_DEFAULTS if _takes(name, k)} for name in NAMES}
    assert changed["adagrad"]["eps"] == 1e-10 and changed["lamb"]["eps"] == 1e-6
    assert changed["lars"]["momentum"] == 0.9 and changed["adamw"]["weight_decay"] == 0.01
    assert changed["sgd"] == {"momentum": 0.0, "weight_decay": 0.0}  # (the quickstart's optimizer: as before)
    assert changed["adam"] == {"weight_decay": 0.0, "eps": 1e-8}
    torch = pytest.importorskip("torch")
    p = [torch.nn.Parameter(torch.zeros(1))]
    for name, cls in (("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                      ("rmsprop", torch.optim.RMSprop), ("adagrad", torch.optim.Adagrad)):
        own = cls(p, lr=0.1).defaults
        assert all(own[k] == v for k, v in changed[name].items()), (name, own)


def test_a_given_value_wins_and_none_unsets_it_again():
    cfg = load_config("xor", ["optimizer.name=adagrad", "optimizer.eps=1e-8"])
    assert cfg.optimizer.eps == 1e-8
    cfg = load_config("digits_mlp", ["optimizer.weight_decay=none"])  # (its file gives 5e-4)
    assert cfg.optimizer.weight_decay == 0.0


def test_the_record_holds_the_value_used_for_that_optimizer_alone():
    cfg = load_config("xor", ["optimizer.name=adagrad"])
    text = dump_run_config(cfg)
    saved = tomllib.loads(text)
    assert "eps" not in saved["optimizer"] and saved["defaults"]["optimizer"] == {
        "adagrad": {"weight_decay": 0.0, "eps": 1e-10}}
    assert loads_config(text).to_dict() == cfg.to_dict()
    # the record re-run with another optimizer: that one's own, not adagrad's eps
    assert loads_config(text, ["optimizer.name=adam"]).optimizer.eps == 1e-8
    assert loads_config(text, ["optimizer.name=lamb"]).optimizer.eps == 1e-6
    # a recorded default stands for the constructor's (a later release's other default changes no re-run)
    assert loads_config(text.replace("eps = 1e-10", "eps = 3e-10")).optimizer.eps == 3e-10


def _old_record(name):
    """A run's config.toml as distnn wrote it before: the shared numbers under [optimizer] (in schema order),
    [defaults] for the model (and the dataset) alone, the header of then."""
    saved = tomllib.loads(dump_run_config(load_config("xor", [f"optimizer.name={name}"])))
    saved["defaults"].pop("optimizer")
    merged = {**saved["optimizer"], **BEFORE}
    saved["optimizer"] = {k: merged[k] for k in (p.split(".", 1)[1] for p in SCHEMA if p.startswith("optimizer."))
                          if k in merged}
    saved["defaults"] = saved.pop("defaults")  # (last, as it was written)
    return toml_dumps(saved, header="distnn run configuration (resolved: every key, defaults filled in;\n"
                                    "[defaults.model.NAME] and [defaults.data.NAME] hold the model's and the "
                                    "dataset's,\nwhich apply while model.name and data.name name them)")


@pytest.mark.parametrize("name", OLD_NAMES)
def test_a_config_toml_from_before_re_runs_with_the_values_it_holds(name):
    text = _old_record(name)
    assert "[defaults.optimizer" not in text and "eps = 1e-08" in text and text.startswith(RUN_RECORD_HEADER)
    cfg = loads_config(text)
    for k, v in BEFORE.items():
        assert cfg.optimizer.get(k) == (v if _takes(name, k) else None), (name, k)
    # the same config resolved today is no change for a resume to warn of, but for the keys whose default moved
    changes = config_changes(text, dump_run_config(load_config("xor", [f"optimizer.name={name}"])))
    moved = {"adagrad": ["optimizer.eps"], "lamb": ["optimizer.eps"], "lars": ["optimizer.momentum"],
             "adamw": ["optimizer.weight_decay"]}.get(name, [])
    assert [c.split(":")[0] for c in changes] == moved, changes


def test_an_ensemble_whose_members_choose_their_optimizers_gives_each_its_own():
    cfg = load_config("xor", ["ensemble.members=2", 'ensemble.overrides=[{}, {"optimizer.name" = "adagrad"}]'])
    assert "eps" not in cfg.optimizer  # (each member's config resolves its own)
    assert member_config(cfg, 0).optimizer.eps == 1e-8 and member_config(cfg, 1).optimizer.eps == 1e-10
    cfg = load_config("xor", ["optimizer.name=adagrad", "ensemble.members=2"])
    assert all(member_config(cfg, k).optimizer.eps == 1e-10 for k in range(2))


# ------------------------------------------------------------------ through the command line
def _distnn(args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLCONFIGDIR=str(cwd))
    return subprocess.run([sys.executable, "-m", "distnn", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def _groups(run_dir):
    from distnn.train import checkpoint as ck

    _, state, _ = ck.resolve_and_load(str(run_dir), None)
    return state["optimizer"]["param_groups"]


def test_train_builds_the_optimizer_with_its_own_defaults_and_an_old_record_with_its_values(tmp_path):
    base = ["train", "--quiet", "--set", "train.epochs=2", "--set", "checkpoint.enabled=true", "--set",
            "run.plots=false"]
    r = _distnn([*base, "--config", "xor", "--set", "optimizer.name=adagrad", "--out", "new"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert {g["eps"] for g in _groups(tmp_path / "new")} == {1e-10}  # (was 1e-8)
    saved = tomllib.loads((tmp_path / "new" / "config.toml").read_text())
    assert saved["defaults"]["optimizer"]["adagrad"]["eps"] == 1e-10
    # a config.toml from before: the run it describes, again (eps 1e-8), as with that value given
    (tmp_path / "old.toml").write_text(_old_record("adagrad"))
    r = _distnn([*base, "--config", "old.toml", "--out", "old"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert {g["eps"] for g in _groups(tmp_path / "old")} == {1e-8}
    r = _distnn([*base, "--config", "xor", "--set", "optimizer.name=adagrad", "--set", "optimizer.eps=1e-8",
                 "--out", "given"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    losses = [[{k: v for k, v in json.loads(line).items() if "loss" in k or "acc" in k}
               for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()] for d in ("old", "given")]
    assert len(losses[0]) == 2 and losses[0] == losses[1]
    # resumed with its own config.toml (which now holds eps = 1e-8 as given): the one change is the --set
    r = _distnn(["train", "--resume", "auto", "--out", "old", "--set", "train.epochs=3", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "differs from the checkpoint's: train.epochs: 2 -> 3. " in r.stderr
    assert {g["eps"] for g in _groups(tmp_path / "old")} == {1e-8}


def test_config_keys_says_each_optimizers_own_default(tmp_path):
    r = _distnn(["config-keys", "optimizer.eps"], tmp_path)
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip()
    assert "(optimizer's)" in line and "adagrad 1e-10" in line and re.search(r"lamb(, \w+)* 1e-06", line), line
