"""The settings a config gives for a feature that is off warn (``config_inactive.SWITCHES``), for the switches
beyond early stopping, warmup, linear scaling and adversarial training (tests/test_config_options_in_files.py):
``checkpoint.*`` while ``checkpoint.enabled = false``, the best checkpoint's ``monitor`` and ``mode`` while
``checkpoint.keep_best = false``, ``train.max_nonfinite`` with ``train.nonfinite = "error"``,
``optimizer.no_decay_bias_norm`` with no decay to exempt from. The warning is a :class:`ConfigWarning` (a
UserWarning a caller can filter alone) located at the line that called ``load_config``, and the command line
prints it as ``distnn: warning: ...``. CyclicLR's ``gamma`` outside ``cycle_mode = "exp_range"`` is refused,
as an option of another schedule is: the mode picks the schedule's formula, as CharLM's ``arch`` its network.
"""
import os
import subprocess
import sys
import warnings

import pytest

from distnn.train import ConfigWarning
from distnn.train.config import ConfigError, dump_run_config, load_config, loads_config
from distnn.train.ensemble import member_config
from distnn.train.toml_writer import dumps


def _file(tmp_path, text, name="c.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("lines, key, state, on", [
    ("[checkpoint]\nenabled = false\nkeep_last = 5", "checkpoint.keep_last", "while checkpoint.enabled = false",
     ["checkpoint.enabled=true"]),
    ("[checkpoint]\nenabled = false\nevery_steps = 10", "checkpoint.every_steps", "while checkpoint.enabled = false",
     ["checkpoint.enabled=true"]),
    ("[checkpoint]\nenabled = false\nasync_save = true", "checkpoint.async_save", "while checkpoint.enabled = false",
     ["checkpoint.enabled=true"]),
    ('[checkpoint]\nkeep_best = false\nmonitor = "val_accuracy"', "checkpoint.monitor",
     "while checkpoint.keep_best = false", ["checkpoint.keep_best=true"]),
    ('[train]\nnonfinite = "error"\nmax_nonfinite = 3', "train.max_nonfinite", "with train.nonfinite = 'error'",
     ["train.nonfinite=skip"]),
    ('[optimizer]\nname = "adam"\nno_decay_bias_norm = false', "optimizer.no_decay_bias_norm",
     "with no weight decay or l1 penalty", ["optimizer.weight_decay=0.01"]),
])
def test_a_setting_of_a_feature_that_is_off_warns_and_loads(tmp_path, lines, key, state, on):
    path = _file(tmp_path, f'[data]\nname = "xor"\n{lines}\n')
    with pytest.warns(ConfigWarning, match=rf"^config '.*c\.toml': {key} = .* has no effect {state}"):
        cfg = load_config(path)
    assert cfg.get_path(key) != load_config("xor").get_path(key)  # (loaded as written)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_config(path, on)  # (on: used)
        loads_config(dump_run_config(cfg))  # (a run's record holds every key: quiet)
        for name in ("xor", "digits_mlp", "charlm"):  # (defaults and the built-in configs: quiet)
            load_config(name)


def test_quiet_where_set_turned_the_switch_off_and_for_the_settings_it_still_reads(tmp_path):
    path = _file(tmp_path, '[data]\nname = "xor"\n[checkpoint]\nkeep_last = 5\n[train]\nmax_nonfinite = 3\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_config(path, ["checkpoint.enabled=false", "train.nonfinite=error"])
        # a resume reads checkpoint.dir and checkpoint.resume with checkpointing off
        load_config("xor", ["checkpoint.dir=elsewhere", "checkpoint.resume=auto"])
        load_config("xor", ["optimizer.name=lars", "optimizer.no_decay_bias_norm=false"])  # (its layer adaptation)


def test_a_key_two_switches_leave_unused_is_named_once(tmp_path):
    path = _file(tmp_path, '[checkpoint]\nenabled = false\nkeep_best = false\nmode = "max"\n')
    with pytest.warns(ConfigWarning) as got:
        load_config(path)
    assert sorted(str(w.message).split(": ", 1)[1].split(" = ")[0] for w in got) == [
        "checkpoint.keep_best", "checkpoint.mode"]
    assert "checkpoint.enabled = false" in [str(w.message) for w in got if "mode" in str(w.message)][0]


# ------------------------------------------------------------------ the warning: category and location
def test_the_warning_is_a_config_warning_at_the_line_that_called_load_config(tmp_path):
    path = _file(tmp_path, "[early_stopping]\npatience = 3\n")
    assert issubclass(ConfigWarning, UserWarning)
    with pytest.warns(ConfigWarning) as got:
        load_config(path)  # (this line)
    assert [os.path.basename(w.filename) for w in got] == [os.path.basename(__file__)]  # (was: config.py)
    with pytest.warns(ConfigWarning) as got:
        loads_config(open(path).read(), source=repr(path))
    assert got[0].filename == __file__
    with warnings.catch_warnings():  # a caller silences them alone
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=ConfigWarning)
        load_config(path)


def test_the_command_line_prints_it_as_a_distnn_warning(tmp_path):
    path = _file(tmp_path, '[data]\nname = "xor"\n[train]\nepochs = 1\nnonfinite = "error"\nmax_nonfinite = 3\n'
                           '[run]\nplots = false\n')
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLCONFIGDIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "distnn", "train", "--config", path, "--out", "run", "--quiet"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    line = f"distnn: warning: config {path!r}: train.max_nonfinite = 3 has no effect with train.nonfinite = 'error'"
    assert line in r.stderr.splitlines()[0], r.stderr  # (was: distnn/train/config.py:287: UserWarning: ...)
    assert "config.py" not in r.stderr and "runpy" not in r.stderr


# ------------------------------------------------------------------ cyclic's gamma outside exp_range
CYCLIC = '[data]\nname = "xor"\n[schedule]\nname = "cyclic"\nmax_lr = 0.5\nstep_size_up = 2\n'


@pytest.mark.parametrize("mode", ["triangular", "triangular2"])
def test_cyclic_gamma_outside_exp_range_is_refused(tmp_path, mode):
    path = _file(tmp_path, CYCLIC + f'cycle_mode = "{mode}"\ngamma = 0.99\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [
        f"schedule 'cyclic' reads schedule.gamma only with schedule.cycle_mode = 'exp_range': with cycle_mode = "
        f"'{mode}' it would ignore gamma = 0.99; remove gamma from [schedule], or set cycle_mode = 'exp_range'"]
    with pytest.raises(ConfigError, match=r"it would ignore gamma = 0\.9; leave out --set schedule\.gamma, or set cycle_mode = "
                                          r"'exp_range' \(schedule\.gamma set by --set, "):
        load_config("xor", ["schedule.name=cyclic", "schedule.max_lr=0.5", "schedule.step_size_up=2",
                            "schedule.gamma=0.9"])
    # exp_range reads it; --set of the mode wins over the file's gamma; cyclic's own default (1.0) is no problem
    assert load_config(path, ["schedule.cycle_mode=exp_range"]).schedule.gamma == 0.99
    exp = _file(tmp_path, CYCLIC + 'cycle_mode = "exp_range"\ngamma = 0.99\n', "exp.toml")
    assert load_config(exp, [f"schedule.cycle_mode={mode}"]).schedule.gamma == 1.0
    assert load_config(_file(tmp_path, CYCLIC + "gamma = 1.0\n", "one.toml")).schedule.gamma == 1.0


def test_an_ensemble_whose_members_choose_exp_range_may_give_gamma_and_a_record_loads_without_it(tmp_path):
    path = _file(tmp_path, CYCLIC + 'gamma = 0.99\n[ensemble]\nmembers = 2\n'
                                    'overrides = [{}, {"schedule.cycle_mode" = "exp_range"}]\n')
    cfg = load_config(path)
    assert member_config(cfg, 1).schedule.gamma == 0.99 and member_config(cfg, 0).schedule.gamma == 1.0
    # the other way round: a member's triangular drops the ensemble's exp_range gamma for itself
    path = _file(tmp_path, CYCLIC + 'cycle_mode = "exp_range"\ngamma = 0.99\n[ensemble]\nmembers = 2\n'
                                    'overrides = [{}, {"schedule.cycle_mode" = "triangular"}]\n', "d.toml")
    cfg = load_config(path)
    assert member_config(cfg, 0).schedule.gamma == 0.99 and member_config(cfg, 1).schedule.gamma == 1.0
    # a run's config.toml from before, holding the gamma its triangular schedule never read
    clean = load_config(_file(tmp_path, CYCLIC, "clean.toml"))
    saved = dict(__import__("tomllib").loads(dump_run_config(clean)))
    saved["schedule"]["gamma"] = 0.99
    old = dumps(saved, header="distnn run configuration (resolved: every key, defaults filled in)")
    assert loads_config(old) == clean
