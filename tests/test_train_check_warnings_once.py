"""Each config warning (a key without effect while its switch is off) is printed exactly once by
``train --check`` and by ``train``, whatever the warning filters.

A job loads its config more than once: a look whether it is an ensemble, the check's look at its data path
(quiet), the set-up of each rank (simulated ranks are threads of one process). ``train --check`` printed
each warning twice; ``train`` printed it once only because Python's default filter drops a repeat from the
same place: under ``-W always`` twice, four times with two simulated ranks.
"""
import pytest

from test_train_check import _distnn, _env

# (two keys off their defaults whose switches are off: two warnings, each to be said once)
CONFIG = 'name = "w"\n[data]\nname = "xor"\n[early_stopping]\npatience = 3\n[schedule]\nwarmup_start_factor = 0.5\n'
WARNED = ["distnn: warning: config 'w.toml': early_stopping.patience = 3 has no effect while "
          "early_stopping.enabled = false",
          "distnn: warning: config 'w.toml': schedule.warmup_start_factor = 0.5 has no effect with no warmup"]

HOW = {
    "check": ["--check"],
    "check of 2 ranks": ["--check", "--check-ranks", "2"],
    "check of an ensemble": ["--check", "--set", "ensemble.members=2"],
    "check without the data here": ["--check", "--set", "data.name=npz", "--set", "data.path=/on-the-nodes/d{rank}.npz"],
    "check of an ensemble without the data here": ["--check", "--set", "ensemble.members=2", "--set", "data.name=npz",
                                                   "--set", "data.path=/on-the-nodes/d{rank}.npz"],
    "run": ["--out", "run"],
    "run of 2 simulated ranks": ["--simulate-ranks", "2", "--out", "run"],
    "run of an ensemble on 2 simulated ranks": ["--set", "ensemble.members=2", "--simulate-ranks", "2", "--out", "run"],
}


@pytest.mark.parametrize("filters", ["default", "always"])
@pytest.mark.parametrize("how", sorted(HOW))
def test_each_config_warning_is_printed_once(tmp_path, how, filters):
    (tmp_path / "w.toml").write_text(CONFIG)
    r = _distnn(["train", "--config", "w.toml", "--quiet", "--set", "train.epochs=1", "--set", "run.plots=false",
                 *HOW[how]], tmp_path, env={**_env(), "PYTHONWARNINGS": filters})
    assert r.returncode == 0, r.stderr
    said = [line for line in r.stderr.splitlines() if line.startswith("distnn: warning:")]
    assert len(said) == len(WARNED), r.stderr
    for start in WARNED:
        assert sum(line.startswith(start) for line in said) == 1, r.stderr


@pytest.mark.parametrize("how", ["check", "run"])
def test_each_config_warning_is_printed_once_under_mpiexec(tmp_path, how):
    from mpi_child import require_mpiexec, run_under_mpiexec

    require_mpiexec()
    (tmp_path / "w.toml").write_text(CONFIG)
    env = {**_env(), "PYTHONWARNINGS": "always", "DISTNN_COLLECTIVE_TIMEOUT": "300"}
    r = run_under_mpiexec(2, ["-m", "distnn", "train", "--config", "w.toml", "--quiet", "--set", "train.epochs=1",
                              "--set", "run.plots=false", *(["--check"] if how == "check" else ["--out", "run"])],
                          env=env, deadline=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for start in WARNED:
        assert sum(line.startswith(start) for line in r.stderr.splitlines()) == 1, r.stderr
