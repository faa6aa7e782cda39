"""distnn.optim.lr_scheduler: LR sequences against torch.optim.lr_scheduler, warmup composition,
OneCycle momentum, ReduceLROnPlateau, exact resume, linear scaling rule."""
import math
import pickle

import numpy as np
import pytest

from distnn.nn import Parameter
from distnn.optim import SGD, Adam, linear_scaling_warmup, scaled_lr
from distnn.optim import lr_scheduler as S
from state_io import saved_and_loaded

STEPS = 50


def _ours(opt_cls=SGD, **kw):
    params = [Parameter(np.zeros(3)), Parameter(np.zeros(2))]
    return opt_cls([{"params": params[:1]}, {"params": params[1:], "lr": 0.01}], lr=0.1, **kw)


def _theirs(torch, opt_cls=None, **kw):
    params = [torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)]
    opt_cls = opt_cls or torch.optim.SGD
    return opt_cls([{"params": params[:1]}, {"params": params[1:], "lr": 0.01}], lr=0.1, **kw)


def _sequence(sched, steps=STEPS, metrics=None):
    out = [sched.get_last_lr()]
    for t in range(steps):
        sched.optimizer.step()  # no grads: a no-op, but the call order torch expects
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[t])
        out.append(sched.get_last_lr())
    return np.array(out, dtype=np.float64)


def _compare(ours, theirs):
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-15)
    assert len(np.unique(theirs[:, 0])) > 1  # the schedule actually changed the rate


SIMPLE = [
    ("StepLR", dict(step_size=7, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[5, 12, 12, 30], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.93)),
    ("CosineAnnealingLR", dict(T_max=20, eta_min=0.001)),
    ("CosineAnnealingLR", dict(T_max=17)),
    # PyTorch's other schedulers (they were missing)
    ("LinearLR", dict(start_factor=0.2, end_factor=0.9, total_iters=13)),
    ("LinearLR", dict()),
    ("CosineAnnealingWarmRestarts", dict(T_0=7, eta_min=0.002)),
    ("CosineAnnealingWarmRestarts", dict(T_0=3, T_mult=2)),
]


@pytest.mark.parametrize("name,kw", SIMPLE, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SIMPLE)])
def test_schedule_matches_torch(torch, name, kw):
    ours = _sequence(getattr(S, name)(_ours(), **kw))
    theirs = _sequence(getattr(torch.optim.lr_scheduler, name)(_theirs(torch), **kw))
    _compare(ours, theirs)


@pytest.mark.parametrize("T_0,T_mult", [(1, 3), (3, 3), (1, 10), (2, 2)])
def test_warm_restarts_restart_at_every_period_start(torch, T_0, T_mult):
    # the periods' starts where a closed form through math.log rounded down (3^5 = 243, 10^3 = 1000)
    steps = 400 if T_mult != 10 else 1200
    kw = dict(T_0=T_0, T_mult=T_mult, eta_min=0.001)
    ours = _sequence(S.CosineAnnealingWarmRestarts(_ours(), **kw), steps)
    theirs = _sequence(torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(_theirs(torch), **kw), steps)
    _compare(ours, theirs)
    starts, length = [0], T_0
    while starts[-1] + length <= steps:
        starts.append(starts[-1] + length)
        length *= T_mult
    assert np.all(ours[starts, 0] == 0.1)


@pytest.mark.parametrize("start_factor", [1.0 / 3, 0.05])
def test_linear_warmup_alone_matches_linear_lr(torch, start_factor):
    ours = _sequence(S.LinearWarmup(_ours(), warmup_steps=10, start_factor=start_factor))
    theirs = _sequence(torch.optim.lr_scheduler.LinearLR(_theirs(torch), start_factor=start_factor, total_iters=10))
    _compare(ours, theirs)


@pytest.mark.parametrize("after", ["cosine", "step", "exp"])
def test_linear_warmup_then_schedule_matches_sequential_lr(torch, after):
    def build(mod, opt):
        if after == "cosine":
            return mod.CosineAnnealingLR(opt, T_max=40, eta_min=1e-4)
        if after == "step":
            return mod.StepLR(opt, step_size=9, gamma=0.5)
        return mod.ExponentialLR(opt, gamma=0.95)

    opt = _ours()
    ours = _sequence(S.LinearWarmup(opt, warmup_steps=8, start_factor=0.1, after=build(S, opt)))
    topt = _theirs(torch)
    tl = torch.optim.lr_scheduler
    theirs = _sequence(tl.SequentialLR(topt, [tl.LinearLR(topt, start_factor=0.1, total_iters=8), build(tl, topt)],
                                       milestones=[8]))
    _compare(ours, theirs)


def test_linear_warmup_without_after_leaves_rate_to_plateau():
    opt = _ours()
    warm = S.LinearWarmup(opt, warmup_steps=3, start_factor=0.5)
    plateau = S.ReduceLROnPlateau(opt, factor=0.5, patience=0)
    for _ in range(3):
        warm.step()
    assert warm.get_last_lr() == [0.1, 0.01]
    plateau.step(1.0)
    plateau.step(2.0)  # worse: halve
    warm.step()  # past the warmup: must not undo the plateau's change
    assert warm.get_last_lr() == [0.05, 0.005]


ONECYCLE = [
    dict(max_lr=1.0, total_steps=STEPS),
    dict(max_lr=[1.0, 0.5], total_steps=STEPS, anneal_strategy="linear", pct_start=0.4),
    dict(max_lr=0.3, epochs=5, steps_per_epoch=10, three_phase=True, div_factor=10.0, final_div_factor=100.0),
]


@pytest.mark.parametrize("kw", ONECYCLE, ids=["cos", "linear", "three_phase"])
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_one_cycle_matches_torch_with_momentum(torch, kw, opt):
    if opt == "sgd":
        ours_opt, their_opt = _ours(SGD, momentum=0.9), _theirs(torch, torch.optim.SGD, momentum=0.9)
    else:
        ours_opt, their_opt = _ours(Adam), _theirs(torch, torch.optim.Adam)
    ours_s, their_s = S.OneCycleLR(ours_opt, **kw), torch.optim.lr_scheduler.OneCycleLR(their_opt, **kw)
    key = "momentum" if opt == "sgd" else "betas"
    for _ in range(STEPS):
        np.testing.assert_allclose(ours_s.get_last_lr(), their_s.get_last_lr(), rtol=1e-10, atol=1e-15)
        for g, tg in zip(ours_opt.param_groups, their_opt.param_groups):
            np.testing.assert_allclose(np.ravel(g[key]), np.ravel(tg[key]), rtol=1e-12)
        ours_s.step()
        their_opt.step()
        their_s.step()
    with pytest.raises(ValueError, match="total steps"):
        ours_s.step()


PLATEAU = [
    dict(),
    dict(mode="max", factor=0.5, patience=2, threshold=0.01, threshold_mode="abs", cooldown=2),
    dict(mode="min", factor=0.5, patience=1, threshold=0.05, threshold_mode="rel", cooldown=1, min_lr=[0.02, 1e-3]),
    dict(mode="min", factor=0.2, patience=0, min_lr=0.005, eps=1e-3),
]


@pytest.mark.parametrize("kw", PLATEAU, ids=["default", "max-abs-cooldown", "rel-minlr-list", "eps"])
def test_reduce_on_plateau_matches_torch(torch, kw):
    rng = np.random.default_rng(0)
    # A metric that improves, then stalls with noise, then improves a little, then stalls.
    metrics = np.concatenate([np.linspace(1.0, 0.5, 10), 0.5 + 0.01 * np.abs(rng.standard_normal(15)),
                              np.linspace(0.5, 0.45, 5), 0.45 + 0.02 * rng.standard_normal(20)])
    if kw.get("mode") == "max":
        metrics = -metrics
    ours = _sequence(S.ReduceLROnPlateau(_ours(), **kw), metrics=metrics)
    theirs = _sequence(torch.optim.lr_scheduler.ReduceLROnPlateau(_theirs(torch), **kw), metrics=metrics)
    _compare(ours, theirs)


def test_trajectory_with_schedule_matches_torch(torch):
    """Optimizer and scheduler together: SGD+Nesterov under warmup+cosine, 50 steps, float64."""
    rng = np.random.default_rng(5)
    w0 = rng.standard_normal((20, 10))
    p = Parameter(w0.copy())
    tp = torch.tensor(w0.copy(), requires_grad=True)
    opt = SGD([p], lr=0.2, momentum=0.9, nesterov=True, weight_decay=1e-3)
    topt = torch.optim.SGD([tp], lr=0.2, momentum=0.9, nesterov=True, weight_decay=1e-3, foreach=False)
    sched = S.LinearWarmup(opt, 5, start_factor=0.2, after=S.CosineAnnealingLR(opt, T_max=45))
    tl = torch.optim.lr_scheduler
    tsched = tl.SequentialLR(topt, [tl.LinearLR(topt, 0.2, total_iters=5), tl.CosineAnnealingLR(topt, 45)], [5])
    for t in range(STEPS):
        g = np.sin(p.data) + 0.1 * np.random.default_rng(t).standard_normal(p.data.shape)
        tg = np.sin(tp.detach().numpy()) + 0.1 * np.random.default_rng(t).standard_normal(p.data.shape)
        p.grad, tp.grad = g, torch.from_numpy(tg)
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-6, atol=1e-12)
    assert not np.allclose(p.data, w0)


# ------------------------------------------------------------------ resume
def _make(kind, opt):
    if kind == "warmup-cosine":
        return S.LinearWarmup(opt, 6, start_factor=0.1, after=S.CosineAnnealingLR(opt, T_max=30))
    if kind == "onecycle":
        return S.OneCycleLR(opt, max_lr=0.5, total_steps=40)
    if kind == "multistep":
        return S.MultiStepLR(opt, milestones=[4, 9, 15], gamma=0.5)
    return S.ReduceLROnPlateau(opt, factor=0.5, patience=1, cooldown=1)


def _drive(sched, opt, params, t0, t1, lrs):
    for t in range(t0, t1):
        for p in params:
            p.grad = np.cos(p.data) + 0.01 * t
        opt.step()
        if isinstance(sched, S.ReduceLROnPlateau):
            sched.step([3.0, 2.0, 2.5, 2.4, 2.6, 1.0, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 0.5, 0.6, 0.7, 0.8][t % 16])
        else:
            sched.step()
        lrs.append(sched.get_last_lr())


@pytest.mark.parametrize("order", ["built-then-loaded", "built-after-the-optimizer-loaded", "scheduler-first"])
@pytest.mark.parametrize("via", ["pickle", "npz"])
@pytest.mark.parametrize("kind", ["warmup-cosine", "onecycle", "multistep", "plateau"])
def test_scheduler_resume_is_bitwise_identical(kind, via, order):
    # built after the optimizer's state was loaded, a scheduler's construction wrote its step-0 rate (and
    # OneCycle's momentum) into the optimizer, and loading its state left them: one step at the wrong rate
    def fresh(loaded=None):
        params = [Parameter(np.linspace(-1, 1, 6).reshape(2, 3)), Parameter(np.ones(3))]
        opt = SGD(params, lr=0.1, momentum=0.9)
        if loaded is not None and order == "built-after-the-optimizer-loaded":
            opt.load_state_dict(loaded["optimizer"])
        return params, opt, _make(kind, opt)

    params, opt, sched = fresh()
    lrs = []
    _drive(sched, opt, params, 0, 12, lrs)
    ckpt = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "params": [p.data.copy() for p in params]}
    loaded = saved_and_loaded(ckpt, via)
    _drive(sched, opt, params, 12, 30, lrs)
    params2, opt2, sched2 = fresh(loaded)
    for p, a in zip(params2, loaded["params"]):
        p.data[...] = a
    if order == "scheduler-first":
        sched2.load_state_dict(loaded["scheduler"])
        opt2.load_state_dict(loaded["optimizer"])
    else:
        if order == "built-then-loaded":
            opt2.load_state_dict(loaded["optimizer"])
        sched2.load_state_dict(loaded["scheduler"])
    lrs2 = lrs[:12]
    _drive(sched2, opt2, params2, 12, 30, lrs2)
    assert lrs2 == lrs
    for a, b in zip(params, params2):
        assert np.array_equal(a.data, b.data)


# ------------------------------------------------------------------ argument checks and scaling
def test_invalid_arguments():
    opt = _ours()
    with pytest.raises(ValueError, match="step_size"):
        S.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="start_factor"):
        S.LinearWarmup(opt, 5, start_factor=1.5)
    with pytest.raises(ValueError, match="warmup_steps"):
        S.LinearWarmup(opt, -1)
    with pytest.raises(TypeError, match="ReduceLROnPlateau"):
        S.LinearWarmup(opt, 5, after=S.ReduceLROnPlateau(opt))
    with pytest.raises(ValueError, match="factor"):
        S.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode"):
        S.ReduceLROnPlateau(opt, mode="up")
    with pytest.raises(ValueError, match="total_steps"):
        S.OneCycleLR(opt, max_lr=0.1)
    with pytest.raises(TypeError, match="Optimizer"):
        S.StepLR(object(), step_size=2)


def test_linear_scaling_rule():
    assert scaled_lr(0.1, global_batch=1024, reference_batch=256) == pytest.approx(0.4)
    opt = _ours()
    sched = linear_scaling_warmup(opt, global_batch=1024, reference_batch=256, warmup_steps=4,
                                  after=lambda o: S.CosineAnnealingLR(o, T_max=10))
    lrs = [sched.get_last_lr()[0]]
    for _ in range(6):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    # Starts at the unscaled rate, reaches 4x at the end of the warmup, then the cosine starts there.
    np.testing.assert_allclose(lrs[:5], [0.1, 0.175, 0.25, 0.325, 0.4], rtol=1e-12)
    np.testing.assert_allclose(lrs[5], 0.4 * (1 + math.cos(math.pi / 10)) / 2, rtol=1e-12)
    assert opt.param_groups[1]["initial_lr"] == pytest.approx(0.04)
    with pytest.raises(RuntimeError, match="before creating schedulers"):
        linear_scaling_warmup(opt, global_batch=512, warmup_steps=2)


@pytest.mark.parametrize("make", [lambda o: S.StepLR(o, step_size=2),
                                  lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=10)],
                         ids=["StepLR", "OneCycleLR"])
def test_group_added_after_the_scheduler_is_a_clear_error(make):
    """A group added later has no initial_lr/max_lr: every schedule says so instead of a bare KeyError."""
    opt = _ours(momentum=0.9)
    sched = make(opt)
    opt.add_param_group({"params": [Parameter(np.zeros(2))]})
    with pytest.raises(RuntimeError, match=r"3 parameter groups \(added after the scheduler\?\)"):
        sched.step()


def test_lambda_and_sequential_lr_match_torch(torch):
    def lam(step):
        return 0.95 ** step if step % 2 else 1.0 / (1 + step)

    ours = _sequence(S.LambdaLR(_ours(), [lam, lambda s: 0.5 + 0.5 * math.cos(s / 5)]))
    theirs = _sequence(torch.optim.lr_scheduler.LambdaLR(_theirs(torch), [lam, lambda s: 0.5 + 0.5 * math.cos(s / 5)]))
    _compare(ours, theirs)

    def sequential(lib, opt):
        L = S if lib is S else torch.optim.lr_scheduler
        parts = [L.LinearLR(opt, start_factor=0.1, total_iters=5), L.ExponentialLR(opt, gamma=0.9),
                 L.CosineAnnealingLR(opt, T_max=9)]
        return L.SequentialLR(opt, parts, milestones=[5, 20])

    _compare(_sequence(sequential(S, _ours())), _sequence(sequential(None, _theirs(torch))))


def test_lambda_and_sequential_lr_resume_from_their_state():
    opt = _ours()
    sched = S.SequentialLR(opt, [S.LambdaLR(opt, lambda s: 1.0 / (1 + s)), S.StepLR(opt, step_size=3)], milestones=[4])
    for _ in range(6):
        sched.step()
    state = pickle.loads(pickle.dumps(sched.state_dict()))  # (functions are left out, as in PyTorch)
    opt2 = _ours()
    again = S.SequentialLR(opt2, [S.LambdaLR(opt2, lambda s: 1.0 / (1 + s)), S.StepLR(opt2, step_size=3)],
                           milestones=[4])
    again.load_state_dict(state)
    for _ in range(5):
        sched.step()
        again.step()
        assert again.get_last_lr() == sched.get_last_lr()
