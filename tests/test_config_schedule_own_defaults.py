"""``schedule.gamma`` and ``schedule.factor`` left unset: the chosen schedule's own default, PyTorch's (StepLR's
gamma 0.1, CyclicLR's 1.0; ReduceLROnPlateau's factor 0.1, ConstantLR's 1/3), recorded under
``[defaults.schedule.NAME]`` as the optimizer's are.

They were resolved into ``[schedule]``: a record of a cyclic exp_range run re-run with ``--set
schedule.name=step`` decayed by CyclicLR's 1.0 (no decay at all), and an ensemble resolved them once, so a
member whose override chose exp_range or constant_factor got the step decays' 0.1. A config.toml from before
holds them under ``[schedule]`` and re-runs and resumes with exactly those.
"""
import os
import subprocess
import sys
import tomllib

import pytest

from distnn.train.callbacks.resume import config_changes
from distnn.train.config import ConfigError, RUN_RECORD_HEADER, dump_run_config, load_config, loads_config
from distnn.train.ensemble import member_config
from distnn.train.schedule_defaults import SCHEDULE_DEFAULTS
from distnn.train.toml_writer import dumps as toml_dumps

#: what each schedule needs besides its name
REQUIRED = {"step": ["schedule.step_size=2"], "multistep": ["schedule.milestones=[2]"],
            "cyclic": ["schedule.max_lr=0.5", "schedule.step_size_up=2"]}
EXP_RANGE = ["schedule.name=cyclic", *REQUIRED["cyclic"], "schedule.cycle_mode=exp_range"]
#: what a given key needs to be read (cyclic reads gamma in its exp_range mode alone)
READS = {("cyclic", "gamma"): ["schedule.cycle_mode=exp_range"]}


def _load(name, *sets):
    return load_config("xor", [f"schedule.name={name}", *REQUIRED.get(name, []), *sets])


@pytest.mark.parametrize("key, name", [(k, n) for k, by in SCHEDULE_DEFAULTS.items() for n in by])
def test_an_unset_key_is_the_schedules_own_default_and_a_given_one_wins(key, name):
    assert _load(name).schedule[key] == SCHEDULE_DEFAULTS[key][name]
    assert _load(name, f"schedule.{key}=0.5", *READS.get((name, key), [])).schedule[key] == 0.5


def test_a_schedule_that_takes_neither_holds_neither():
    s = _load("cosine").schedule
    assert "gamma" not in s and "factor" not in s


def test_the_record_holds_them_for_that_schedule_alone():
    text = dump_run_config(load_config("xor", EXP_RANGE))
    saved = tomllib.loads(text)
    assert "gamma" not in saved["schedule"] and saved["defaults"]["schedule"] == {"cyclic": {"gamma": 1.0}}
    assert loads_config(text).schedule.gamma == 1.0 and dump_run_config(loads_config(text)) == text
    # re-run with another schedule: that schedule's own (was: CyclicLR's 1.0 for StepLR)
    assert loads_config(text, ["schedule.name=step", "schedule.step_size=2"]).schedule.gamma == 0.1
    text = dump_run_config(_load("constant_factor"))
    assert tomllib.loads(text)["defaults"]["schedule"] == {"constant_factor": {"factor": 1 / 3}}
    assert loads_config(text).schedule.factor == 1 / 3
    assert loads_config(text, ["schedule.name=plateau"]).schedule.factor == 0.1  # (was 1/3)
    # a recorded value is checked as a given one is
    with pytest.raises(ConfigError, match=r"schedule.factor must be in \(0, 1\), got 2"):
        loads_config(text.replace("factor = 0.3333333333333333", "factor = 2"))


def test_an_ensemble_member_that_chooses_its_schedule_gets_its_own_default():
    cfg = load_config("xor", ["schedule.name=step", *REQUIRED["step"], "ensemble.members=3",
                              'ensemble.overrides=[{}, {"schedule.name" = "cyclic", "schedule.cycle_mode" = '
                              '"exp_range", "schedule.max_lr" = 0.5, "schedule.step_size_up" = 2}, '
                              '{"schedule.name" = "constant_factor"}]'])
    assert "gamma" not in cfg.schedule  # (each member's config resolves its own)
    assert member_config(cfg, 0).schedule.gamma == 0.1
    assert member_config(cfg, 1).schedule.gamma == 1.0  # (was the ensemble's 0.1)
    assert member_config(cfg, 2).schedule.factor == 1 / 3  # (was 0.1)


def _old_record(*sets) -> str:
    """A run's config.toml as distnn wrote it before: gamma = 0.1 and factor = 0.1 under [schedule] whatever
    the schedule."""
    saved = tomllib.loads(dump_run_config(load_config("xor", list(sets))))
    saved["schedule"].update(gamma=0.1, factor=0.1)
    saved.get("defaults", {}).pop("schedule", None)
    return toml_dumps(saved, header="distnn run configuration (resolved: every key, defaults filled in;\n"
                                    "[defaults.model.NAME] and [defaults.data.NAME] hold the model's and the "
                                    "dataset's,\nwhich apply while model.name and data.name name them)")


@pytest.mark.parametrize("sets, read, moved", [
    (["schedule.name=constant"], {}, []),
    (["schedule.name=step", *REQUIRED["step"]], {"gamma": 0.1}, []),
    (["schedule.name=plateau"], {"factor": 0.1}, []),
    (["schedule.name=cyclic", *REQUIRED["cyclic"]], {}, []),  # (triangular reads no gamma)
    (EXP_RANGE, {"gamma": 0.1}, ["schedule.gamma"]),  # (it ran with 0.1: it resumes with 0.1)
])
def test_a_config_toml_from_before_loads_with_the_values_it_ran_with(sets, read, moved):
    text = _old_record(*sets)
    assert text.startswith(RUN_RECORD_HEADER) and "[defaults.schedule" not in text
    s = loads_config(text).schedule
    for k, v in read.items():
        assert s[k] == v
    # the same config resolved today is no change for a resume to warn of, but for a default that moved
    changes = config_changes(text, dump_run_config(load_config("xor", sets)))
    assert [c.split(":")[0] for c in changes] == moved, changes


# ------------------------------------------------------------------ through the command line
def _distnn(args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLCONFIGDIR=str(cwd))
    return subprocess.run([sys.executable, "-m", "distnn", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def _gamma(run_dir):
    from distnn.train import checkpoint as ck

    _, state, _ = ck.resolve_and_load(str(run_dir), None)
    return state["callbacks"]["lr_schedule"]["gamma"]


def test_train_and_resume_an_old_record_with_its_gamma_and_a_new_one_with_torchs(tmp_path):
    base = ["train", "--quiet", "--set", "train.epochs=2", "--set", "checkpoint.enabled=true", "--set",
            "run.plots=false"]
    sets = [a for s in EXP_RANGE for a in ("--set", s)]
    r = _distnn([*base, "--config", "xor", *sets, "--out", "new"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _gamma(tmp_path / "new") == 1.0
    # its record re-run with a step decay decays by StepLR's own 0.1 (was CyclicLR's 1.0)
    r = _distnn([*base, "--config", "new/config.toml", "--set", "schedule.name=step", "--set",
                 "schedule.step_size=1", "--out", "step"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _gamma(tmp_path / "step") == 0.1
    # a config.toml from before: trained and resumed with the 0.1 it holds
    (tmp_path / "old.toml").write_text(_old_record(*EXP_RANGE))
    r = _distnn([*base, "--config", "old.toml", "--out", "old"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _gamma(tmp_path / "old") == 0.1
    r = _distnn(["train", "--resume", "auto", "--out", "old", "--set", "train.epochs=3", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "differs from the checkpoint's: train.epochs: 2 -> 3. " in r.stderr
    assert _gamma(tmp_path / "old") == 0.1


def test_config_keys_says_each_schedules_own_default(tmp_path):
    r = _distnn(["config-keys", "schedule.gamma"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "(schedule's)" in r.stdout and "step, multistep, exponential 0.1; cyclic 1.0" in r.stdout, r.stdout
