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
    assert tomllib.loads(text)["schedule"]["gamma"] == 1.0
    assert loads_config(text).schedule.gamma == 1.0
    # a config.toml from before holds the 0.1 it ran with: it resumes with exactly that
    assert loads_config(text.replace("gamma = 1.0", "gamma = 0.1")).schedule.gamma == 0.1
    # the step decays keep their 0.1, and the cycle modes that never read gamma are left as they were
    assert load_config("digits_mlp", ["schedule.name=step", "schedule.step_size=2"]).schedule.gamma == 0.1
    assert load_config("digits_mlp", CYCLIC[:-1]).schedule.gamma == 0.1
