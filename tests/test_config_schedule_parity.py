"""The config's schedules against torch.optim.lr_scheduler with PyTorch's defaults: cyclic's gamma left unset
is CyclicLR's 1.0 (it was the step decays' 0.1, which shrank an exp_range amplitude tenfold per step)."""
import tomllib

import numpy as np
import pytest

from distnn.nn import Parameter
from distnn.optim import SGD
from distnn.train.config import dump_run_config, load_config, loads_config
from distnn.train.job_setup import build_schedule

STEPS = 60


def _ours(sets, steps=STEPS, steps_per_epoch=4):
    cfg = load_config("digits_mlp", ["schedule.linear_scaling=false", *sets])
    opt = SGD([Parameter(np.zeros(2))], lr=cfg.optimizer.lr, momentum=0.9)
    (cb,) = build_schedule(cfg, opt, steps_per_epoch=steps_per_epoch)
    out = [[opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]]]
    for _ in range(steps):
        cb.scheduler.step()
        out.append([opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]])
    return np.array(out), cfg


def _theirs(torch, make, lr, steps=STEPS):
    opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=lr, momentum=0.9)
    sched = make(torch.optim.lr_scheduler, opt)
    out = [[opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]]]
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append([opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]])
    return np.array(out)


CYCLIC = ["optimizer.lr=0.01", "schedule.name=cyclic", "schedule.max_lr=0.1", "schedule.step_size_up=2",
          "schedule.interval=step", "schedule.cycle_mode=exp_range"]


def test_cyclic_exp_range_with_gamma_unset_is_torchs_default_of_one(torch):
    got, cfg = _ours(CYCLIC)
    assert cfg.schedule.gamma == 1.0
    want = _theirs(torch, lambda S, o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=2, mode="exp_range"),
                   0.01)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-16)
    assert got[:, 0].max() == pytest.approx(0.1)  # (every cycle reaches max_lr: no amplitude decay)
    assert got[-9:, 0].max() == pytest.approx(0.1)


def test_cyclic_exp_range_with_gamma_given_follows_torch(torch):
    # (interval epoch: step_size_up counts epochs of 4 steps; the schedule still moves every step)
    got, _ = _ours([*CYCLIC[:-2], "schedule.cycle_mode=exp_range", "schedule.gamma=0.97"])
    want = _theirs(torch, lambda S, o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=2 * 4, mode="exp_range",
                                                  gamma=0.97), 0.01)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-16)


def test_the_record_re_runs_gamma_and_one_from_before_resumes_with_its_own():
    cfg = load_config("digits_mlp", CYCLIC)
    text = dump_run_config(cfg)
    # (cyclic's own default: recorded for it alone, see test_config_schedule_own_defaults.py)
    assert tomllib.loads(text)["defaults"]["schedule"]["cyclic"]["gamma"] == 1.0
    assert loads_config(text).schedule.gamma == 1.0
    # a config.toml from before holds the 0.1 it ran with under [schedule]: it resumes with exactly that
    old = text.replace("[defaults.schedule.cyclic]\ngamma = 1.0\n", "").replace("[schedule]\n", "[schedule]\ngamma = 0.1\n")
    assert loads_config(old).schedule.gamma == 0.1
    # the step decays keep their 0.1; the cycle modes that never read gamma hold CyclicLR's default too
    assert load_config("digits_mlp", ["schedule.name=step", "schedule.step_size=2"]).schedule.gamma == 0.1
    assert load_config("digits_mlp", CYCLIC[:-1]).schedule.gamma == 1.0


# ------------------------------------------------------------------ constant_factor (ConstantLR)
def test_constant_factor_with_its_defaults_is_torchs_constantlr(torch):
    got, cfg = _ours(["optimizer.lr=0.1", "schedule.name=constant_factor", "schedule.interval=step"], steps=12)
    assert cfg.schedule.factor == 1 / 3 and cfg.schedule.total_iters == 5
    want = _theirs(torch, lambda S, o: S.ConstantLR(o), 0.1, steps=12)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    assert got[4, 0] == pytest.approx(0.1 / 3) and got[5, 0] == pytest.approx(0.1)


def test_constant_factor_given_counts_epochs_and_warms_up_before_it(torch):
    # per epoch: 2 epochs at lr * 0.5, then lr
    got, _ = _ours(["optimizer.lr=0.1", "schedule.name=constant_factor", "schedule.factor=0.5",
                    "schedule.total_iters=2"], steps=5, steps_per_epoch=4)
    want = _theirs(torch, lambda S, o: S.ConstantLR(o, factor=0.5, total_iters=2), 0.1, steps=5)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    # after a warmup of 3 steps, epoch counts become steps (2 epochs of 4)
    got, _ = _ours(["optimizer.lr=0.1", "schedule.name=constant_factor", "schedule.factor=0.5",
                    "schedule.total_iters=2", "schedule.warmup_steps=3"], steps=14, steps_per_epoch=4)
    assert got[3, 0] == pytest.approx(0.05) and got[3 + 7, 0] == pytest.approx(0.05)
    assert got[3 + 8, 0] == pytest.approx(0.1)


def test_constant_factor_record_re_runs_and_plateau_keeps_its_factor():
    cfg = load_config("digits_mlp", ["schedule.name=constant_factor"])
    text = dump_run_config(cfg)
    assert tomllib.loads(text)["defaults"]["schedule"]["constant_factor"]["factor"] == pytest.approx(1 / 3)
    assert loads_config(text).schedule.factor == cfg.schedule.factor
    assert load_config("digits_mlp", ["schedule.name=plateau"]).schedule.factor == 0.1
