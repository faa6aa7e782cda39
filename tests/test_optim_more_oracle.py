"""The optimizers and schedulers added after the first set (Adamax, NAdam, RAdam, Adadelta, Rprop, ASGD;
CyclicLR, PolynomialLR, ConstantLR, MultiplicativeLR, ChainedScheduler) against torch.optim in float64:
parameters and state after every step, state_dict layout and exact resume, LR sequences, argument checks.

``DISTNN_OPTIM_ORACLE_STEPS`` sets the number of steps of the trajectory oracle (default 25).
"""
import os

import numpy as np
import pytest

import distnn.optim as O
from distnn.nn import Parameter
from memory_peak import peak_bytes
from optim_oracle import compare_state, load_torchs_state_and_continue, torch_state, train_steps, two_groups
from state_io import saved_and_loaded

STEPS = int(os.environ.get("DISTNN_OPTIM_ORACLE_STEPS", "25"))
# one tensor larger than a float64 chunk (32768 elements), so chunk boundaries are crossed; a matrix,
# a vector and a 0-d parameter
SHAPES = [(200, 170), (5, 4), (6,), ()]
RTOL, ATOL = 1e-12, 1e-14
SPLIT = 2  # (parameters [:2] in the default group, the rest in one with the case's overrides)


@pytest.fixture
def torch64(torch):
    """The oracle with float64 as its default dtype: PyTorch then keeps scalar state (NAdam's mu_product,
    ASGD's eta and mu) in double precision, as distnn does (float32 by default)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(old)


def _init(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in SHAPES]


def _grads(t, seed=7):
    """Step t's gradients: zeros (single entries and whole steps), sign changes, large values, a missing one."""
    rng = np.random.default_rng((seed, t))
    out = []
    for i, s in enumerate(SHAPES):
        g = rng.standard_normal(s)
        g = g * (rng.random(s) > 0.1)  # exact zeros here and there
        if i == 0 and t % 5 == 2:
            g = g * 30.0  # a large step
        if i == 1 and t % 7 == 3:
            g = np.zeros(s)  # a whole zero gradient
        if i == 2:
            g = np.abs(g) * (-1.0) ** (t // 2)  # the sign flips every second step
        if i == 3 and t % 4 == 1:
            g = None  # no gradient: the parameter is skipped (its step count falls behind)
        out.append(None if g is None else np.asarray(g, dtype=np.float64))
    return out


# (name, defaults, overrides of the second group [params 2 and 3]); the second group differs in every case
CASES = [
    ("Adamax", dict(), dict(lr=0.01)),
    ("Adamax", dict(lr=0.01, betas=(0.3, 0.8), eps=1e-6, weight_decay=0.1), dict(maximize=True, weight_decay=0.0)),
    ("NAdam", dict(), dict(lr=0.01, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1), dict(decoupled_weight_decay=True, betas=(0.5, 0.9))),
    ("NAdam", dict(lr=0.01, weight_decay=0.05, decoupled_weight_decay=True, maximize=True),
     dict(weight_decay=0.0, eps=1e-3)),
    ("RAdam", dict(), dict(lr=0.01, betas=(0.9, 0.8))),  # beta2 = 0.8: rho_t > 5 from the 6th step
    ("RAdam", dict(lr=0.01, weight_decay=0.1, betas=(0.9, 0.6)), dict(decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True, betas=(0.7, 0.7)),
     dict(lr=0.003)),
    ("Adadelta", dict(), dict(lr=0.5, rho=0.5)),
    ("Adadelta", dict(lr=0.3, rho=0.95, eps=1e-4, weight_decay=0.1), dict(maximize=True)),
    ("Rprop", dict(), dict(lr=0.1, etas=(0.3, 1.5))),
    ("Rprop", dict(lr=0.05, step_sizes=(1e-3, 0.2)), dict(maximize=True, step_sizes=(0.0, 1.0))),
    ("ASGD", dict(), dict(lr=0.05, lambd=1e-2)),
    ("ASGD", dict(lr=0.05, lambd=0.01, alpha=0.5, t0=5, weight_decay=0.1), dict(t0=0, maximize=True)),
]


@pytest.mark.parametrize("name,kw,over", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_trajectory_and_state_match_torch(torch64, name, kw, over):
    torch = torch64
    params = [Parameter(a) for a in _init()]
    tparams = [torch.tensor(a, requires_grad=True) for a in _init()]
    opt = getattr(O, name)(two_groups(params, SPLIT, over), **kw)
    topt = getattr(torch.optim, name)(two_groups(tparams, SPLIT, over), foreach=False, **kw)
    for t in range(STEPS):
        for p, tp, g in zip(params, tparams, _grads(t)):
            p.grad = None if g is None else g.copy()
            tp.grad = None if g is None else torch.from_numpy(g.copy())
        opt.step()
        topt.step()
        for i, (p, tp) in enumerate(zip(params, tparams)):
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=RTOL, atol=ATOL,
                                       err_msg=f"step {t}: parameter {i}")
        compare_state(opt.state_dict()["state"], torch_state(topt, tparams), f"step {t}", RTOL, ATOL)
    for p, a in zip(params, _init()):
        assert not np.array_equal(p.data, a)  # every parameter moved
    tgroups = topt.state_dict()["param_groups"]
    for g, tg in zip(opt.state_dict()["param_groups"], tgroups):
        assert {k: v for k, v in tg.items() if k not in ("foreach", "differentiable", "capturable")} == g


NAMES = ["Adamax", "NAdam", "RAdam", "Adadelta", "Rprop", "ASGD"]


@pytest.mark.parametrize("name", NAMES)
def test_defaults_match_torch(torch, name):
    ours = getattr(O, name)([Parameter(np.zeros(3))]).param_groups[0]
    theirs = getattr(torch.optim, name)([torch.zeros(3, requires_grad=True)]).param_groups[0]
    assert set(ours) == set(theirs) - {"foreach", "differentiable", "capturable"}
    for key, value in ours.items():
        if key != "params":
            assert theirs[key] == value, (name, key)


RESUME = [("Adamax", dict(lr=0.01, weight_decay=0.01)), ("NAdam", dict(lr=0.01, decoupled_weight_decay=True,
                                                                       weight_decay=0.1)),
          ("RAdam", dict(lr=0.01, betas=(0.9, 0.7))), ("Adadelta", dict(rho=0.8)), ("Rprop", dict(lr=0.05)),
          ("ASGD", dict(lr=0.05, lambd=0.01, t0=3))]


def _train(opt, params, t0, t1):
    train_steps(opt, params, _grads, t0, t1)


@pytest.mark.parametrize("via", ["pickle", "npz"])
@pytest.mark.parametrize("name,kw", RESUME, ids=[n for n, _ in RESUME])
def test_resume_from_state_dict_is_bitwise_identical(name, kw, via):
    cls = getattr(O, name)
    params = [Parameter(a.astype(np.float32)) for a in _init()]
    opt = cls(two_groups(params, SPLIT, {"lr": 0.02}), **kw)
    _train(opt, params, 0, 6)
    snapshot = [p.data.copy() for p in params]
    loaded = saved_and_loaded(opt.state_dict(), via)
    _train(opt, params, 6, 14)  # uninterrupted
    params2 = [Parameter(a.copy()) for a in snapshot]
    opt2 = cls(two_groups(params2, SPLIT, {}), lr=123.0)  # hyperparameters come from the state
    opt2.load_state_dict(loaded)
    _train(opt2, params2, 6, 14)
    for a, b in zip(params, params2):
        assert a.data.dtype == b.data.dtype == np.float32
        np.testing.assert_array_equal(a.data, b.data)
    sa, sb = opt.state_dict(), opt2.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for i in sa["state"]:
        for k, v in sa["state"][i].items():
            w = sb["state"][i][k]
            assert type(v) is type(w), (i, k)
            np.testing.assert_array_equal(v, w)


@pytest.mark.parametrize("default_dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,kw", RESUME, ids=[n for n, _ in RESUME])
def test_a_pytorch_state_dict_loads_and_continues_as_pytorch(torch, name, kw, default_dtype):
    """PyTorch's state (0-d float tensors for step, mu_product, eta, mu, in its default dtype) loads as it is,
    a 0-d parameter included (whose shape those tensors share), and the next steps are PyTorch's."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, default_dtype))
    try:
        _load_theirs_and_continue(torch, name, kw, default_dtype)
    finally:
        torch.set_default_dtype(old)


def _load_theirs_and_continue(torch, name, kw, default_dtype):
    tparams = [torch.tensor(a, requires_grad=True) for a in _init()]
    topt = getattr(torch.optim, name)(tparams, foreach=False, **kw)

    def check_loaded(opt):
        for s in opt.state.values():
            assert type(s["step"]) is int
            for k in ("mu_product", "eta", "mu"):
                assert type(s.get(k, 0.0)) is float  # even for the 0-d parameter, whose shape matches

    params = load_torchs_state_and_continue(torch, topt, tparams, lambda ps: getattr(O, name)(ps, **kw), _grads,
                                            check_loaded)
    for p, tp in zip(params, tparams):
        # (PyTorch's float32 scalar state against distnn's doubles: equal to float32 rounding)
        tol = dict(rtol=RTOL, atol=ATOL) if default_dtype == "float64" else dict(rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(p.data, tp.detach().numpy(), **tol)


BAD = [
    ("Adamax", dict(lr=-1.0), "learning rate lr"),
    ("Adamax", dict(betas=(1.0, 0.9)), "betas\\[0\\]"),
    ("Adamax", dict(eps=-1.0), "eps"),
    ("NAdam", dict(momentum_decay=-0.1), "momentum_decay"),
    ("NAdam", dict(betas=(0.9, 1.0)), "betas\\[1\\]"),
    ("NAdam", dict(weight_decay=-0.1), "weight_decay"),
    ("RAdam", dict(betas=0.9), "betas: 0.9 .must be a pair"),
    ("RAdam", dict(lr="0.1"), "learning rate lr: '0.1' .must be a number"),
    ("Adadelta", dict(rho=1.5), "rho"),
    ("Adadelta", dict(rho=-0.5), "rho"),
    ("Adadelta", dict(eps=-1e-6), "eps"),
    ("Rprop", dict(etas=(1.2, 0.5)), "eta values"),
    ("Rprop", dict(etas=(0.0, 1.2)), "eta values"),
    ("Rprop", dict(etas=0.5), "eta values"),
    ("Rprop", dict(step_sizes=(1.0, 0.1)), "step_sizes"),
    ("Rprop", dict(lr=-0.1), "learning rate lr"),
    ("ASGD", dict(weight_decay=-1.0), "weight_decay"),
    ("ASGD", dict(lr=-1.0), "learning rate lr"),
    ("ASGD", dict(t0="5"), "t0"),
]


@pytest.mark.parametrize("name,kw,match", BAD, ids=[f"{n}-{'-'.join(k)}-{i}" for i, (n, k, _) in enumerate(BAD)])
def test_bad_hyperparameters_are_refused(torch, name, kw, match):
    with pytest.raises(ValueError, match=match):
        getattr(O, name)([Parameter(np.zeros(2))], **kw)
    with pytest.raises(ValueError, match=match):  # in a group added later too
        getattr(O, name)([Parameter(np.zeros(2))]).add_param_group({"params": [Parameter(np.zeros(2))], **kw})
    if not any(isinstance(v, str) for v in kw.values()) and name != "ASGD" and "step_sizes" not in kw:
        with pytest.raises((ValueError, TypeError)):  # PyTorch refuses these too
            getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **kw)


@pytest.mark.parametrize("name", NAMES)
def test_float32_state_and_no_parameter_sized_temporaries(name):
    n = 1 << 20
    p = Parameter(np.ones(n, dtype=np.float32))
    p.grad = np.linspace(-1, 1, n, dtype=np.float32)
    opt = getattr(O, name)([p])
    opt.step()  # allocates the state
    for v in opt.state[p].values():
        if isinstance(v, np.ndarray):
            assert v.dtype == np.float32 and v.shape == (n,)
    peak = peak_bytes(opt.step)
    assert p.data.dtype == np.float32
    assert peak < 64 * 1024, f"{name}.step() allocated {peak} bytes at peak"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # (inf * 0, overflow)
def test_rprop_nan_and_inf_products_follow_pytorch(torch64):
    """inf * 0 and NaN gradients: PyTorch's sign(NaN) is 0, so the step size stays and the parameter stays."""
    torch = torch64
    w0 = np.array([0.0, 1.0, 2.0, 3.0])
    grads = [np.array([1.0, np.inf, 1.0, -1.0]), np.array([np.nan, 1e308, -1.0, -1.0]),
             np.array([1.0, 1e308, 1.0, 0.0])]
    p, tp = Parameter(w0.copy()), torch.tensor(w0.copy(), requires_grad=True)
    opt, topt = O.Rprop([p], lr=0.1), torch.optim.Rprop([tp], lr=0.1, foreach=False)
    for g in grads:
        p.grad, tp.grad = g.copy(), torch.from_numpy(g.copy())
        opt.step()
        topt.step()
        np.testing.assert_array_equal(p.data, tp.detach().numpy())
        np.testing.assert_array_equal(opt.state[p]["step_size"], topt.state[tp]["step_size"].numpy())


# ------------------------------------------------------------------ schedulers
SCHED_STEPS = 120


def _opt_pair(torch, name="SGD", **kw):
    """The same two-group optimizer in distnn and in PyTorch (the second group with its own rate)."""
    kw = {"momentum": 0.9, **kw} if name == "SGD" else kw
    ours = [Parameter(np.zeros(3)), Parameter(np.zeros(2))]
    theirs = [torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)]
    make = [getattr(O, name), getattr(torch.optim, name)]
    return [m([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.01}], lr=0.1, **kw)
            for m, ps in zip(make, (ours, theirs))]


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g.get("momentum", 0.0) for g in opt.param_groups]


def _run(sched, opt, steps):
    """lr and momentum of each group after construction and after each step."""
    out = [sched.get_last_lr() + _momenta(opt)]
    for _ in range(steps):
        opt.step()
        sched.step()
        assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]
        out.append(sched.get_last_lr() + _momenta(opt))
    return np.array(out, dtype=np.float64)


def _build(lib, opt, spec):
    """``spec``: (name, kwargs) or ("ChainedScheduler", [specs]); lambdas are called with the library."""
    name, kw = spec
    if name == "ChainedScheduler":
        return lib.ChainedScheduler([_build(lib, opt, s) for s in kw])
    return getattr(lib, name)(opt, **{k: (v(lib) if callable(v) and k == "schedulers" else v) for k, v in kw.items()})


def _decay(t):
    return 0.97 if t % 3 else 1.02


SCHEDULES = [
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=7)),
    ("CyclicLR", dict(base_lr=[0.01, 0.002], max_lr=[0.1, 0.05], step_size_up=5, step_size_down=11,
                      mode="triangular2", base_momentum=[0.7, 0.8], max_momentum=0.95)),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=4, mode="exp_range", gamma=0.98)),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=6, step_size_down=0, cycle_momentum=False)),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=3, scale_fn=lambda x: 1 / (1 + x),
                      scale_mode="iterations")),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=3, scale_fn=lambda x: 0.5 ** x)),
    ("PolynomialLR", dict()),
    ("PolynomialLR", dict(total_iters=90, power=2.0)),
    ("PolynomialLR", dict(total_iters=50, power=0.5)),
    ("ConstantLR", dict()),
    ("ConstantLR", dict(factor=0.3, total_iters=17)),
    ("MultiplicativeLR", dict(lr_lambda=lambda t: 0.97)),
    ("MultiplicativeLR", dict(lr_lambda=[_decay, lambda t: 1.0 - 0.002 * t])),
    ("ChainedScheduler", [("ConstantLR", dict(factor=0.1, total_iters=2)), ("ExponentialLR", dict(gamma=0.9))]),
    ("ChainedScheduler", [("LinearLR", dict(start_factor=0.2, total_iters=10)), ("StepLR", dict(step_size=15)),
                          ("MultiplicativeLR", dict(lr_lambda=_decay)), ("PolynomialLR", dict(total_iters=100))]),
    ("ChainedScheduler", [("CosineAnnealingLR", dict(T_max=200)), ("MultiStepLR", dict(milestones=[20, 50])),
                          ("ConstantLR", dict(factor=0.5, total_iters=30))]),
    # one that sets its rate outright overrides what came before; the chainable ones after scale it
    ("ChainedScheduler", [("ExponentialLR", dict(gamma=0.9)), ("LambdaLR", dict(lr_lambda=lambda t: 1 / (1 + t))),
                          ("ConstantLR", dict(factor=0.5, total_iters=8)), ("StepLR", dict(step_size=5))]),
    ("ChainedScheduler", [("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=5)),
                          ("ExponentialLR", dict(gamma=0.95))]),
]


@pytest.mark.parametrize("spec", SCHEDULES, ids=[f"{s[0]}-{i}" for i, s in enumerate(SCHEDULES)])
@pytest.mark.parametrize("opt_name", ["SGD", "NAdam"])
def test_schedule_matches_torch(torch, spec, opt_name):
    ours_opt, their_opt = _opt_pair(torch, opt_name)
    ours = _run(_build(O.lr_scheduler, ours_opt, spec), ours_opt, SCHED_STEPS)
    theirs = _run(_build(torch.optim.lr_scheduler, their_opt, spec), their_opt, SCHED_STEPS)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-15)
    assert len(np.unique(theirs[:, 0])) > 1  # the schedule changed the rate


@pytest.mark.parametrize("via", ["pickle", "npz"])
@pytest.mark.parametrize("spec", SCHEDULES, ids=[f"{s[0]}-{i}" for i, s in enumerate(SCHEDULES)])
def test_schedule_resumes_from_state_dict_exactly(torch, spec, via):
    """Saved mid-way (with the optimizer's state), loaded into freshly built ones, continued: the same rates
    and momenta, bit for bit, as the run that went on."""
    opt = _opt_pair(torch, "SGD")[0]
    sched = _build(O.lr_scheduler, opt, spec)
    _run(sched, opt, 37)
    state = saved_and_loaded({"sched": sched.state_dict(), "opt": opt.state_dict()}, via)
    rest = _run(sched, opt, 60)
    opt2 = _opt_pair(torch, "SGD")[0]
    sched2 = _build(O.lr_scheduler, opt2, spec)
    opt2.load_state_dict(state["opt"])
    sched2.load_state_dict(state["sched"])
    np.testing.assert_array_equal(_run(sched2, opt2, 60), rest)


def test_constant_lr_for_no_steps_is_the_base_rate(torch):
    """PyTorch's ConstantLR(total_iters=0) multiplies by factor at step 0 and never divides it out again (its
    step-by-step update undoes the factor only at step == total_iters, and step 0 takes the other branch);
    its own closed form, and this one, give the base rate."""
    opt = _opt_pair(torch, "SGD")[0]
    sched = O.lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=0)
    assert _run(sched, opt, 3)[:, :2].tolist() == [[0.1, 0.01]] * 4


def test_chained_scheduler_equals_the_product_of_its_parts(torch):
    opt = _opt_pair(torch, "SGD")[0]
    S = O.lr_scheduler
    chain = S.ChainedScheduler([S.ConstantLR(opt, factor=0.25, total_iters=4), S.ExponentialLR(opt, gamma=0.9)])
    for t in range(10):
        expect = [base * (0.25 if t < 4 else 1.0) * 0.9 ** t for base in (0.1, 0.01)]
        np.testing.assert_allclose(chain.get_last_lr(), expect, rtol=1e-14)
        opt.step()
        chain.step()


BAD_SCHEDULES = [
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, mode="triangle"), ValueError, "mode is invalid"),
    ("CyclicLR", dict(base_lr=[0.01], max_lr=0.1), ValueError, "expected 2 values for base_lr"),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=0), ValueError, "step_size_up"),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_down=-1), ValueError, "step_size_down"),
    ("ConstantLR", dict(factor=1.5), ValueError, "between 0 and 1"),
    ("ConstantLR", dict(factor=-0.1), ValueError, "between 0 and 1"),
    ("ConstantLR", dict(total_iters=2.5), ValueError, "total_iters"),
    ("PolynomialLR", dict(total_iters=-1), ValueError, "total_iters"),
    ("PolynomialLR", dict(power="2"), ValueError, "power"),
    ("MultiplicativeLR", dict(lr_lambda=0.9), TypeError, "lr_lambda should be a function"),
    ("MultiplicativeLR", dict(lr_lambda=[lambda t: 0.9]), ValueError, "Expected 2 lr_lambdas"),
]


@pytest.mark.parametrize("name,kw,exc,match", BAD_SCHEDULES, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD_SCHEDULES)])
def test_bad_scheduler_arguments_are_refused(torch, name, kw, exc, match):
    opt = _opt_pair(torch, "SGD")[0]
    with pytest.raises(exc, match=match):
        getattr(O.lr_scheduler, name)(opt, **kw)


def test_cyclic_momentum_needs_an_optimizer_with_momentum_and_chains_check_their_parts(torch):
    S = O.lr_scheduler
    opt = O.Adadelta([Parameter(np.zeros(2))])
    with pytest.raises(ValueError, match="must support momentum or beta1"):
        S.CyclicLR(opt, 0.01, 0.1)
    S.CyclicLR(opt, 0.01, 0.1, cycle_momentum=False)
    with pytest.raises(ValueError, match="at least one scheduler"):
        S.ChainedScheduler([])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        S.ChainedScheduler([S.ExponentialLR(opt, 0.9), S.ReduceLROnPlateau(opt)])
    other = O.SGD([Parameter(np.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match="same optimizer"):
        S.ChainedScheduler([S.ExponentialLR(opt, 0.9), S.StepLR(other, 3)])
