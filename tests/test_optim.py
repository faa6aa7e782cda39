"""distnn.optim optimizers: trajectories against torch.optim, LARS/LAMB against the papers' formulas,
closed-form steps, exact resume from state_dict, argument checks, in-place updates."""
import io

import numpy as np
import pytest

import distnn
from distnn.nn import Parameter
from distnn.optim import (
    LAMB, LARS, SGD, Adagrad, Adam, AdamW, RMSprop, flatten_state, unflatten_state,
)
from memory_peak import peak_bytes
from state_io import saved_and_loaded

# One tensor larger than a float64 chunk (32768 elements) so chunk boundaries are exercised,
# a matrix, a bias-like vector and a scalar.
SHAPES = [(300, 120), (5, 4), (4,), ()]
STEPS = 50


def _init_params(dtype=np.float64, seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def _grads(params, t, seed=1):
    """Deterministic gradients that depend on the current parameters (so trajectories can diverge)."""
    rng = np.random.default_rng((seed, t))
    return [np.asarray(np.tanh(p) * 0.5 + 0.3 * rng.standard_normal(p.shape), dtype=p.dtype) for p in params]


def _run_distnn(cls, kwargs, steps=STEPS, dtype=np.float64, groups=None):
    params = [Parameter(a) for a in _init_params(dtype)]
    opt = cls(params if groups is None else groups(params), **kwargs)
    for t in range(steps):
        for p, g in zip(params, _grads([p.data for p in params], t)):
            p.grad = g
        opt.step()
    return [p.data for p in params]


def _run_torch(torch, cls, kwargs, steps=STEPS, groups=None):
    params = [torch.tensor(a, requires_grad=True) for a in _init_params(np.float64)]
    opt = cls(params if groups is None else groups(params), foreach=False, **kwargs)
    for t in range(steps):
        for p, g in zip(params, _grads([p.detach().numpy() for p in params], t)):
            p.grad = torch.from_numpy(g)
        opt.step()
    return [p.detach().numpy() for p in params]


CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.8, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.5, weight_decay=0.1, nesterov=True, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.02, betas=(0.5, 0.9), eps=1e-6, weight_decay=0.05, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.05, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1, eps=1e-8)),
    ("Adagrad", dict(lr=0.05, maximize=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, centered=True, momentum=0.5, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, maximize=True, weight_decay=0.05)),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{'-'.join(k)}" for n, k in CASES])
def test_trajectory_matches_torch(torch, name, kwargs):
    ours = _run_distnn(getattr(distnn.optim, name), kwargs)
    ref = _run_torch(torch, getattr(torch.optim, name), kwargs)
    start = _init_params()
    for a, b, s in zip(ours, ref, start):
        assert not np.array_equal(b, s)  # the reference actually moved
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_param_groups_match_torch(torch):
    """Per-group hyperparameters override the defaults, as in torch."""
    def groups(ps):
        return [{"params": ps[:2]}, {"params": ps[2:], "lr": 0.5, "momentum": 0.0, "weight_decay": 0.1}]

    ours = _run_distnn(SGD, dict(lr=0.05, momentum=0.9), groups=groups)
    ref = _run_torch(torch, torch.optim.SGD, dict(lr=0.05, momentum=0.9), groups=groups)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_defaults_match_torch(torch):
    params = [Parameter(np.zeros(3))]
    tparams = [torch.zeros(3, requires_grad=True)]
    for name in ["SGD", "Adam", "AdamW", "Adagrad", "RMSprop"]:
        ours = getattr(distnn.optim, name)(params).param_groups[0]
        ref = getattr(torch.optim, name)(tparams).param_groups[0]
        for key, value in ours.items():
            if key != "params":
                assert ref[key] == value, (name, key)


# ------------------------------------------------------------------ closed forms (no torch)
def test_sgd_momentum_two_steps_by_hand():
    p = Parameter(np.array([1.0, -2.0]))
    opt = SGD([p], lr=0.1, momentum=0.9)
    g0, g1 = np.array([0.5, 1.0]), np.array([-1.0, 2.0])
    p.grad = g0.copy()
    opt.step()
    np.testing.assert_allclose(p.data, [1.0 - 0.1 * 0.5, -2.0 - 0.1 * 1.0], rtol=1e-15)
    p.grad = g1.copy()
    opt.step()
    buf = 0.9 * g0 + g1
    np.testing.assert_allclose(p.data, np.array([1.0, -2.0]) - 0.1 * g0 - 0.1 * buf, rtol=1e-15)
    np.testing.assert_allclose(opt.state[p]["momentum_buffer"], buf, rtol=1e-15)


def test_nesterov_step_by_hand():
    p = Parameter(np.array([0.0]))
    opt = SGD([p], lr=1.0, momentum=0.5, nesterov=True)
    p.grad = np.array([2.0])
    opt.step()  # buf = 2; d = 2 + 0.5*2 = 3
    assert p.data[0] == -3.0


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_adam_first_step_has_magnitude_lr(cls):
    """Bias correction makes m_hat = g and v_hat = g^2 at t=1, so the first update is lr * g/|g|."""
    g = np.array([1e-6, -3.0, 250.0, -1e-3])
    p = Parameter(np.zeros(4))
    opt = cls([p], lr=0.01, eps=1e-15, weight_decay=0.0)
    p.grad = g.copy()
    opt.step()
    np.testing.assert_allclose(p.data, -0.01 * np.sign(g), rtol=1e-7)


def test_adamw_decay_is_decoupled():
    """With a zero gradient AdamW only shrinks the weights by (1 - lr*wd); Adam's coupled decay does more."""
    p = Parameter(np.array([2.0, -4.0]))
    opt = AdamW([p], lr=0.1, weight_decay=0.5)
    p.grad = np.zeros(2)
    opt.step()
    np.testing.assert_allclose(p.data, [2.0 * 0.95, -4.0 * 0.95], rtol=1e-15)


def test_adagrad_one_step_by_hand():
    p = Parameter(np.array([1.0]))
    opt = Adagrad([p], lr=0.5, initial_accumulator_value=1.0, eps=0.0)
    p.grad = np.array([3.0])
    opt.step()  # sum = 1 + 9 = 10
    np.testing.assert_allclose(p.data, [1.0 - 0.5 * 3.0 / np.sqrt(10.0)], rtol=1e-15)


# ------------------------------------------------------------------ LARS / LAMB vs paper formulas
def _lars_reference(params, grads_fn, steps, lr, momentum, wds, eta, eps, adapt):
    """You, Gitman & Ginsburg (2017), Algorithm 1, with the global rate applied outside the buffer."""
    w = [p.copy() for p in params]
    v = [np.zeros_like(p) for p in params]
    for t in range(steps):
        g = grads_fn(w, t)
        for i in range(len(w)):
            wd = wds[i]
            wn, gn = np.linalg.norm(w[i]), np.linalg.norm(g[i])
            local = eta * wn / (gn + wd * wn + eps) if (adapt[i] and wn > 0 and gn > 0) else 1.0
            v[i] = momentum * v[i] + local * (g[i] + wd * w[i])
            w[i] = w[i] - lr * v[i]
    return w


def _lamb_reference(params, grads_fn, steps, lr, b1, b2, eps, wd, adapt):
    """You et al. (2019), Algorithm 2 (LAMB), phi = identity."""
    w = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t in range(1, steps + 1):
        g = grads_fn(w, t - 1)
        for i in range(len(w)):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            mh, vh = m[i] / (1 - b1 ** t), v[i] / (1 - b2 ** t)
            r = mh / (np.sqrt(vh) + eps) + wd * w[i]
            wn, rn = np.linalg.norm(w[i]), np.linalg.norm(r)
            trust = wn / rn if (adapt[i] and wn > 0 and rn > 0) else 1.0
            w[i] = w[i] - lr * trust * r
    return w


def _groups_excluding_vectors(ps, extra):
    return [{"params": [p for p in ps if p.data.ndim >= 2]},
            {"params": [p for p in ps if p.data.ndim < 2], "weight_decay": 0.0, **extra}]


@pytest.mark.parametrize("momentum,wd", [(0.9, 1e-4), (0.0, 0.0), (0.5, 0.01)])
def test_lars_matches_paper_formula(momentum, wd):
    start = _init_params()
    ours = _run_distnn(LARS, dict(lr=2.0, momentum=momentum, weight_decay=wd, trust_coefficient=0.01))
    ref = _lars_reference(start, _grads, STEPS, 2.0, momentum, [wd] * len(start), 0.01, 1e-8, [True] * len(start))
    for a, b, s in zip(ours, ref, start):
        assert not np.allclose(b, s)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10)


def test_lars_excluded_group_is_plain_sgd_momentum():
    """A group with layer_adaptation=False and no weight decay (biases, norms) is SGD with momentum."""
    start = _init_params()
    ours = _run_distnn(LARS, dict(lr=0.5, momentum=0.9, weight_decay=1e-3, trust_coefficient=0.02),
                       groups=lambda ps: _groups_excluding_vectors(ps, {"layer_adaptation": False}))
    adapt = [len(s) >= 2 for s in SHAPES]
    ref = _lars_reference(start, _grads, STEPS, 0.5, 0.9, [1e-3 if a else 0.0 for a in adapt], 0.02, 1e-8, adapt)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10)


def _lars_nesterov_lookahead_reference(params, grads_fn, steps, lr, mu, wd, eta, eps):
    """The lecture notes' Nesterov momentum (001: rho <- mu rho - alpha grad(beta + mu rho); beta <- beta + rho)
    with LARS's layer-wise rate: the scaled gradient trust * (g + wd * w) taken at the look-ahead point
    w = beta + mu rho, its norms too. Returns the look-ahead points, which an optimizer holds as the parameters
    (as PyTorch's SGD does; see test_seeds_examples)."""
    beta = [p.copy() for p in params]
    rho = [np.zeros_like(p) for p in params]
    for t in range(steps):
        ahead = [b + mu * r for b, r in zip(beta, rho)]
        g = grads_fn(ahead, t)
        for i in range(len(beta)):
            wn, gn = np.linalg.norm(ahead[i]), np.linalg.norm(g[i])
            trust = eta * wn / (gn + wd * wn + eps) if (wn > 0 and gn > 0) else 1.0
            rho[i] = mu * rho[i] - lr * trust * (g[i] + wd * ahead[i])
            beta[i] = beta[i] + rho[i]
    return [b + mu * r for b, r in zip(beta, rho)]


@pytest.mark.parametrize("momentum,wd", [(0.9, 1e-4), (0.5, 0.0)])
def test_lars_nesterov_is_the_notes_lookahead_update_with_layer_wise_rates(momentum, wd):
    start = _init_params()
    ours = _run_distnn(LARS, dict(lr=2.0, momentum=momentum, weight_decay=wd, trust_coefficient=0.01,
                                  nesterov=True))
    ref = _lars_nesterov_lookahead_reference(start, _grads, STEPS, 2.0, momentum, wd, 0.01, 1e-8)
    plain = _run_distnn(LARS, dict(lr=2.0, momentum=momentum, weight_decay=wd, trust_coefficient=0.01))
    for a, b, c in zip(ours, ref, plain):
        assert not np.allclose(b, c)  # (Nesterov's path is not plain momentum's)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10)


def test_lars_nesterov_without_adaptation_is_torch_sgd_nesterov(torch):
    """A group with layer_adaptation=False (biases, norms) is SGD with momentum: with nesterov, PyTorch's."""
    def groups(ps):
        return [{"params": ps, "layer_adaptation": False}]

    ours = _run_distnn(LARS, dict(lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True), groups=groups)
    ref = _run_torch(torch, torch.optim.SGD, dict(lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True))
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_lars_takes_the_eps_of_its_trust_ratio():
    w, g = np.array([3.0, 4.0]), np.array([0.0, 1.0])  # ||w|| = 5, ||g|| = 1
    p = Parameter(w.copy())
    opt = LARS([p], lr=1.0, momentum=0.0, trust_coefficient=0.1, eps=1.0)
    p.grad = g.copy()
    opt.step()
    assert opt.state[p]["trust_ratio"] == 0.1 * 5 / (1 + 1.0)
    np.testing.assert_allclose(p.data, w - 0.25 * g, rtol=1e-15)


@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_lamb_matches_paper_formula(wd):
    start = _init_params()
    ours = _run_distnn(LAMB, dict(lr=0.01, weight_decay=wd))
    ref = _lamb_reference(start, _grads, STEPS, 0.01, 0.9, 0.999, 1e-6, wd, [True] * len(start))
    for a, b, s in zip(ours, ref, start):
        assert not np.allclose(b, s)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10)


def test_lars_update_is_invariant_to_gradient_scale():
    """The trust ratio makes the step size depend on ||w||, not on the gradient's magnitude."""
    rng = np.random.default_rng(3)
    w0, g = rng.standard_normal((50, 40)), rng.standard_normal((50, 40))
    steps = []
    for scale in (1e-3, 1.0, 1e3):
        p = Parameter(w0.copy())
        opt = LARS([p], lr=1.0, momentum=0.0, trust_coefficient=0.02, eps=0.0)
        p.grad = g * scale
        opt.step()
        steps.append(p.data - w0)
        np.testing.assert_allclose(np.linalg.norm(p.data - w0), 0.02 * np.linalg.norm(w0), rtol=1e-12)
        np.testing.assert_allclose(opt.state[p]["trust_ratio"],
                                   0.02 * np.linalg.norm(w0) / np.linalg.norm(g * scale), rtol=1e-12)
    np.testing.assert_allclose(steps[0], steps[2], rtol=1e-10)


def test_lamb_update_norm_is_lr_times_weight_norm():
    rng = np.random.default_rng(4)
    w0 = rng.standard_normal((30, 20))
    for scale in (1e-4, 1e4):
        p = Parameter(w0.copy())
        opt = LAMB([p], lr=0.1, weight_decay=0.01)
        p.grad = rng.standard_normal((30, 20)) * scale
        opt.step()
        np.testing.assert_allclose(np.linalg.norm(p.data - w0), 0.1 * np.linalg.norm(w0), rtol=1e-10)


def test_lamb_zero_weights_use_trust_one_and_clamp():
    p = Parameter(np.zeros(4))
    opt = LAMB([p], lr=0.1, eps=0.0)
    p.grad = np.array([1.0, -2.0, 3.0, -4.0])
    opt.step()  # r = sign(g) at t=1; trust 1 because ||w|| = 0
    np.testing.assert_allclose(p.data, -0.1 * np.sign(p.grad), rtol=1e-12)
    assert opt.state[p]["trust_ratio"] == 1.0
    assert LAMB.trust_ratio(50.0, 2.0, max_weight_norm=10.0) == 5.0


# ------------------------------------------------------------------ resume from state_dict
ALL = [(SGD, dict(lr=0.05, momentum=0.9, nesterov=True)), (Adam, dict(lr=0.01, amsgrad=True)),
       (AdamW, dict(lr=0.01)), (Adagrad, dict(lr=0.05, lr_decay=0.01)),
       (RMSprop, dict(lr=0.01, centered=True, momentum=0.5)), (LARS, dict(lr=1.0, weight_decay=1e-4)),
       (LAMB, dict(lr=0.01, weight_decay=0.01))]


def _train(params, opt, t0, t1):
    for t in range(t0, t1):
        for p, g in zip(params, _grads([p.data for p in params], t)):
            p.grad = g
        opt.step()


@pytest.mark.parametrize("via", ["pickle", "npz"])
@pytest.mark.parametrize("cls,kwargs", ALL, ids=[c.__name__ for c, _ in ALL])
def test_resume_is_bitwise_identical(cls, kwargs, via):
    dtype = np.float32
    params = [Parameter(a) for a in _init_params(dtype)]
    opt = cls(params, **kwargs)
    _train(params, opt, 0, 7)
    snapshot = [p.data.copy() for p in params]
    loaded = saved_and_loaded(opt.state_dict(), via)
    _train(params, opt, 7, 15)  # uninterrupted run
    params2 = [Parameter(a.copy()) for a in snapshot]
    opt2 = cls(params2, lr=123.0)  # hyperparameters come from the checkpoint
    opt2.load_state_dict(loaded)
    _train(params2, opt2, 7, 15)
    for a, b in zip(params, params2):
        assert a.data.dtype == b.data.dtype == dtype
        assert np.array_equal(a.data, b.data)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_state_dict_format_and_independence():
    params = [Parameter(a) for a in _init_params()]
    opt = Adam([{"params": params[:1]}, {"params": params[1:], "lr": 0.1}])
    _train(params, opt, 0, 2)
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1, 2, 3]]
    assert sorted(sd["state"]) == [0, 1, 2, 3]
    assert sd["state"][0]["step"] == 2 and isinstance(sd["state"][0]["exp_avg"], np.ndarray)
    before = sd["state"][0]["exp_avg"].copy()
    _train(params, opt, 2, 3)
    assert np.array_equal(sd["state"][0]["exp_avg"], before)  # a snapshot, not a live reference


def test_state_dict_without_copy_gives_the_state_arrays_themselves():
    params = [Parameter(a) for a in _init_params()]
    opt = Adam(params)
    _train(params, opt, 0, 2)
    live, copied = opt.state_dict(copy=False), opt.state_dict()
    assert live["state"][0]["exp_avg"] is opt.state[params[0]]["exp_avg"]
    assert copied["state"][0]["exp_avg"] is not opt.state[params[0]]["exp_avg"]
    assert live["param_groups"] == copied["param_groups"] and live["state"].keys() == copied["state"].keys()


def test_load_state_dict_casts_dtype_and_checks_layout():
    p64 = [Parameter(a) for a in _init_params(np.float64)]
    opt = Adam(p64)
    _train(p64, opt, 0, 2)
    sd = opt.state_dict()
    p32 = [Parameter(a.astype(np.float32)) for a in _init_params(np.float64)]
    opt32 = Adam(p32)
    opt32.load_state_dict(sd)
    assert opt32.state[p32[0]]["exp_avg"].dtype == np.float32
    with pytest.raises(ValueError, match="parameter group 0 has 4 parameters"):
        Adam(p32[:3]).load_state_dict(sd)
    with pytest.raises(ValueError, match="shape"):
        Adam([Parameter(np.zeros((2, 2)))] + p32[1:]).load_state_dict(sd)



def test_loaded_step_is_an_int_even_for_a_0d_parameter(torch):
    """PyTorch saves ``step`` as a 0-d float tensor; for a 0-d float32 parameter its shape matches, but it
    must load as a Python int (a float32 counter stops at 2**24) and save as one."""
    tp = torch.tensor(0.5, requires_grad=True)
    topt = torch.optim.Adam([tp], lr=0.01, foreach=False)
    for t in range(3):
        tp.grad = torch.tensor(np.float32(np.cos(t)))
        topt.step()
    tsd = topt.state_dict()
    sd = {"state": {k: {n: v.numpy().copy() for n, v in s.items()} for k, s in tsd["state"].items()},
          "param_groups": [dict(g) for g in tsd["param_groups"]]}
    assert sd["state"][0]["step"].shape == () and sd["state"][0]["step"].dtype == np.float32
    p = Parameter(np.array(tp.item(), dtype=np.float32))
    opt = Adam([p], lr=1.0)
    opt.load_state_dict(sd)
    assert type(opt.state[p]["step"]) is int and opt.state[p]["step"] == 3
    assert opt.state[p]["exp_avg"].dtype == np.float32 and opt.state[p]["exp_avg"].shape == ()
    for t in range(3, 6):
        tp.grad = torch.tensor(np.float32(np.cos(t)))
        topt.step()
        p.grad = np.array(np.cos(t), dtype=np.float32)
        opt.step()
    np.testing.assert_allclose(p.data, tp.item(), rtol=1e-6)
    assert type(opt.state_dict()["state"][0]["step"]) is int

    sd = opt.state_dict()
    sd["state"][0]["step"] = np.array(2 ** 24, dtype=np.float32)
    sd["state"][0]["count"] = np.array(7)  # any 0-d integer value is a number too
    opt.load_state_dict(sd)
    p.grad = np.array(1.0, dtype=np.float32)
    opt.step()
    assert opt.state[p]["step"] == 2 ** 24 + 1 and type(opt.state[p]["count"]) is int
    sd["state"][0]["step"] = np.array(2.5)
    with pytest.raises(ValueError, match="step"):
        opt.load_state_dict(sd)


def test_adagrad_starts_fresh_for_a_parameter_the_loaded_state_leaves_out(torch):
    """As torch.optim.Adagrad: no state for a parameter means step 0 and sum = initial_accumulator_value."""
    rng = np.random.default_rng(0)
    w0, g = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    p = Parameter(w0.copy())
    opt = Adagrad([p], lr=0.1, lr_decay=0.1, initial_accumulator_value=0.5)
    sd = opt.state_dict()
    sd["state"] = {}
    opt.load_state_dict(sd)
    tp = torch.tensor(w0.copy(), requires_grad=True)
    topt = torch.optim.Adagrad([tp], lr=0.1, lr_decay=0.1, initial_accumulator_value=0.5, foreach=False)
    tsd = topt.state_dict()
    tsd["state"] = {}
    topt.load_state_dict(tsd)
    for _ in range(2):
        p.grad = g.copy()
        tp.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12)
    assert opt.state[p]["step"] == 2


def test_flatten_state_keeps_arrays_whose_paths_collide():
    """``{"a.0": x, "a": [y]}`` joins both paths to ".a.0"; neither array may overwrite the other."""
    state = {"a.0": np.array([1.0]), "a": [np.array([2.0])], "a.0~1": np.array([3.0]),
             "m": {"fc.weight": np.zeros(1)}, "m.fc": {"weight": np.ones(1)}}
    flat = flatten_state(state)
    assert len(flat) == 6  # five arrays and the structure
    buf = io.BytesIO()
    np.savez(buf, **flat)
    buf.seek(0)
    with np.load(buf) as z:
        back = unflatten_state(dict(z))
    assert back.keys() == state.keys()
    np.testing.assert_array_equal(back["a.0"], [1.0])
    np.testing.assert_array_equal(back["a"][0], [2.0])
    np.testing.assert_array_equal(back["a.0~1"], [3.0])
    np.testing.assert_array_equal(back["m"]["fc.weight"], [0.0])
    np.testing.assert_array_equal(back["m.fc"]["weight"], [1.0])


# ------------------------------------------------------------------ argument checks
BAD = [
    (SGD, dict(lr=-0.1), "lr"),
    (SGD, dict(lr=0.1, momentum=-0.5), "momentum"),
    (SGD, dict(lr=0.1, weight_decay=-1.0), "weight_decay"),
    (SGD, dict(lr=0.1, nesterov=True), "Nesterov"),
    (SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening"),
    (Adam, dict(lr=-1e-3), "lr"),
    (Adam, dict(betas=(1.0, 0.999)), "betas\\[0\\]"),
    (Adam, dict(betas=(0.9, -0.1)), "betas\\[1\\]"),
    (Adam, dict(eps=-1e-8), "eps"),
    (AdamW, dict(weight_decay=-0.01), "weight_decay"),
    (Adagrad, dict(lr_decay=-1.0), "lr_decay"),
    (Adagrad, dict(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (RMSprop, dict(alpha=-0.1), "alpha"),
    (RMSprop, dict(momentum=-0.1), "momentum"),
    (LARS, dict(lr=0.1, trust_coefficient=0.0), "trust_coefficient"),
    (LARS, dict(lr=-0.1), "lr"),
    (LAMB, dict(betas=(0.9, 1.5)), "betas\\[1\\]"),
    # the wrong kind of value: named, not a TypeError from deep inside (betas=0.9 was "float is not iterable")
    (Adam, dict(betas=0.9), "betas: 0.9 .must be a pair"),
    (LAMB, dict(betas=0.9), "betas: 0.9 .must be a pair"),
    (Adam, dict(betas=("0.9", 0.999)), "betas\\[0\\].*must be a number"),
    (SGD, dict(lr="0.1"), "learning rate lr: '0.1' .must be a number"),
    (RMSprop, dict(lr=0.1, momentum=None), "momentum: None .must be a number"),
    (Adam, dict(weight_decay=True), "weight_decay: True .must be a number"),
]


@pytest.mark.parametrize("cls,kwargs,name", BAD, ids=[f"{c.__name__}-{n}" for c, _, n in BAD])
def test_invalid_hyperparameters_raise(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls([Parameter(np.zeros(2))], **kwargs)


def test_invalid_group_override_raises():
    opt = SGD([Parameter(np.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match="momentum"):
        opt.add_param_group({"params": [Parameter(np.zeros(2))], "momentum": -1.0})


def test_bad_params_raise():
    p = Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="more than one"):
        SGD([p, p], lr=0.1)
    with pytest.raises(TypeError, match="set"):
        SGD({p}, lr=0.1)
    with pytest.raises(ValueError, match="required"):
        LARS([p])


# ------------------------------------------------------------------ behaviour of the base class
def test_zero_grad_and_params_without_grad():
    a, b = Parameter(np.ones(3)), Parameter(np.ones(3))
    opt = Adam([a, b], lr=0.1)
    a.grad = np.ones(3)
    opt.step()
    assert b not in opt.state and np.array_equal(b.data, np.ones(3))
    opt.zero_grad(set_to_none=False)
    assert np.array_equal(a.grad, np.zeros(3))
    opt.zero_grad()
    assert a.grad is None


def test_closure_and_autograd_training_reduces_loss():
    """End to end with the engine: fit y = 3x - 1 with a closure that recomputes the loss."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1))
    y = 3 * x - 1
    w, b = Parameter(np.zeros((1, 1))), Parameter(np.zeros(1))
    opt = SGD([w, b], lr=0.1, momentum=0.9)

    def closure():
        opt.zero_grad()
        err = distnn.Tensor(x) @ w + b - distnn.Tensor(y)
        loss = (err * err).mean()
        loss.backward()
        return loss

    first = float(closure().data)
    for _ in range(300):
        loss = opt.step(closure)
    assert float(loss.data) < 1e-4 * first
    np.testing.assert_allclose([w.data[0, 0], b.data[0]], [3.0, -1.0], atol=1e-2)


def test_non_contiguous_parameter_is_updated_in_place():
    base = np.arange(12.0).reshape(3, 4)
    view = base.T  # a transposed view: not C-contiguous
    p = Parameter(np.zeros((4, 3)))
    p.data = view
    opt = SGD([p], lr=1.0, momentum=0.9)
    p.grad = np.ones((4, 3))
    opt.step()
    np.testing.assert_array_equal(base, np.arange(12.0).reshape(3, 4) - 1.0)


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, Adagrad, RMSprop, LARS, LAMB])
def test_float32_stays_float32_and_state_is_preallocated(cls):
    p = Parameter(np.ones((64, 64), dtype=np.float32))
    opt = cls([p], lr=0.01) if cls is not SGD else cls([p], lr=0.01, momentum=0.9)
    p.grad = np.full((64, 64), 0.5, dtype=np.float32)
    opt.step()
    assert p.data.dtype == np.float32
    for v in opt.state[p].values():
        if isinstance(v, np.ndarray):
            assert v.dtype == np.float32 and v.flags.c_contiguous


@pytest.mark.parametrize("cls,kwargs", ALL, ids=[c.__name__ for c, _ in ALL])
def test_step_allocates_no_parameter_sized_temporaries(cls, kwargs):
    n = 1 << 20  # 4 MiB of float32
    p = Parameter(np.ones(n, dtype=np.float32))
    p.grad = np.full(n, 0.25, dtype=np.float32)
    opt = cls([p], **kwargs)
    opt.step()  # allocates the state buffers
    peak = peak_bytes(opt.step)
    # Scratch is preallocated and reused: a step allocates nothing array-sized, not even a chunk (256 KiB).
    assert peak < 64 * 1024, f"{cls.__name__}.step() allocated {peak} bytes at peak"


@pytest.mark.parametrize("name", ["Adam", "AdamW", "RMSprop", "Adagrad", "SGD"])
def test_a_pytorch_optimizer_state_dict_loads_as_it_is(torch, name):
    # PyTorch keeps 'step' as a float tensor: "loaded state 'step' ... is tensor(3.), not a whole number of steps"
    import distnn.optim as O
    from distnn.nn import Parameter

    kw = {"lr": 0.05, **({"momentum": 0.9} if name == "SGD" else {})}
    tp = torch.nn.Parameter(torch.linspace(-1, 1, 5))
    theirs = getattr(torch.optim, name)([tp], **kw)
    for t in range(3):
        tp.grad = torch.cos(tp.detach()) + t
        theirs.step()
    p = Parameter(tp.detach().numpy().copy())
    ours = getattr(O, name)([p], **kw)
    ours.load_state_dict(theirs.state_dict())
    for t in range(3, 5):
        tp.grad = torch.cos(tp.detach()) + t
        theirs.step()
        p.grad = np.cos(p.data) + t
        ours.step()
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-6, atol=1e-7)
