"""distnn.optim.Adafactor against torch.optim.Adafactor: parameters and state (factored row/column averages of
>= 2-D parameters, a full variance of 1-D and 0-d ones) after every step in float64, and in float32 with
eps1 from the dtype; state_dict layout, exact resume, a PyTorch state dict loaded; argument checks; a step
that allocates nothing parameter-sized.

``DISTNN_OPTIM_ORACLE_STEPS`` sets the number of steps of the trajectory oracle (default 25).
"""
import os

import numpy as np
import pytest

import distnn.optim as O
from distnn.nn import Parameter
from memory_peak import peak_bytes
from optim_oracle import (compare_state, load_torchs_state_and_continue, paired_steps, torch_state, train_steps,
                          two_groups)
from state_io import saved_and_loaded

STEPS = int(os.environ.get("DISTNN_OPTIM_ORACLE_STEPS", "25"))
# a matrix larger than a float64 chunk (32768 elements: chunk boundaries within it), 3-D and 4-D ones
# (factored over their last two dimensions), a column and a row, a vector, a 0-d parameter, and a matrix with
# rows longer than a chunk
SHAPES = [(200, 170), (3, 4, 5), (2, 3, 4, 6), (5, 1), (1, 7), (6,), (), (2, 40000)]
RTOL, ATOL = 1e-12, 1e-13  # (parameters of order 1, moved by steps up to lr = 1)
SPLIT = 4  # (parameters [:4] in the default group, the rest in one with the case's overrides)


@pytest.fixture
def torch64(torch):
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(old)


def _init(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [np.asarray(rng.standard_normal(s), dtype=dtype) for s in SHAPES]


def _grads(t, seed=7, dtype=np.float64):
    """Step t's gradients: exact zeros, whole zero gradients, large and tiny steps (the RMS clipping and the
    eps floors both act), a missing one."""
    rng = np.random.default_rng((seed, t))
    out = []
    for i, s in enumerate(SHAPES):
        g = np.asarray(rng.standard_normal(s)) * (rng.random(s) > 0.1)
        if t % 5 == 2:
            g = g * 30.0
        if t % 6 == 4:
            g = g * 1e-4
        if i == 1 and t % 7 == 3:
            g = np.zeros(s)
        if i == 5 and t % 4 == 1:
            g = None  # no gradient: the parameter is skipped (its step count falls behind)
        out.append(None if g is None else np.asarray(g, dtype=dtype))
    return out


# (defaults, overrides of the second group [params 4 onward])
CASES = [
    (dict(), dict(lr=0.05)),
    (dict(weight_decay=0.1), dict(maximize=True, weight_decay=0.0)),
    (dict(lr=0.5, beta2_decay=-0.5, eps=(1e-4, 1e-2), d=1.5, maximize=True), dict(eps=(None, 0.0), d=1.0)),
    (dict(beta2_decay=0.0, weight_decay=0.05), dict(lr=1.0, eps=(1e-30, 1e-3))),
]


def _run_pair(torch, kw, over, dtype, steps):
    params = [Parameter(a) for a in _init(dtype=dtype)]
    tparams = [torch.tensor(a, requires_grad=True) for a in _init(dtype=dtype)]
    opt = O.Adafactor(two_groups(params, SPLIT, over), **kw)
    topt = torch.optim.Adafactor(two_groups(tparams, SPLIT, over), foreach=False, **kw)
    for t in paired_steps(torch, opt, topt, params, tparams, lambda t: _grads(t, dtype=dtype), steps):
        yield t, opt, topt, params, tparams


@pytest.mark.parametrize("kw,over", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_trajectory_and_state_match_torch(torch64, kw, over):
    for t, opt, topt, params, tparams in _run_pair(torch64, kw, over, np.float64, STEPS):
        for i, (p, tp) in enumerate(zip(params, tparams)):
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=RTOL, atol=ATOL,
                                       err_msg=f"step {t}: parameter {i} {SHAPES[i]}")
        compare_state(opt.state_dict()["state"], torch_state(topt, tparams), f"step {t}", RTOL, ATOL)
    for p, a in zip(params, _init()):
        assert not np.array_equal(p.data, a) and np.isfinite(p.data).all()  # every parameter moved
    state = opt.state_dict()["state"]
    assert state[0]["row_var"].shape == (200, 1) and state[0]["col_var"].shape == (1, 170)
    assert state[2]["row_var"].shape == (2, 3, 4, 1) and state[2]["col_var"].shape == (2, 3, 1, 6)
    assert "variance" in state[5] and "variance" in state[6] and "row_var" not in state[5]
    for g, tg in zip(opt.state_dict()["param_groups"], topt.state_dict()["param_groups"]):
        assert {k: v for k, v in tg.items() if k not in ("foreach", "differentiable", "capturable")} == g


@pytest.mark.parametrize("kw,over", CASES[:3], ids=[f"case{i}" for i in range(3)])
def test_float32_matches_torch_with_eps1_from_the_dtype(torch, kw, over):
    """In float32 eps1 (None) is float32's machine epsilon, 1.19e-7, as PyTorch takes it: its square floors
    the variance of the tiny-gradient steps."""
    for t, opt, topt, params, tparams in _run_pair(torch, kw, over, np.float32, 12):
        for i, (p, tp) in enumerate(zip(params, tparams)):
            assert p.data.dtype == np.float32
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=2e-5, atol=2e-6,
                                       err_msg=f"step {t}: parameter {i}")
        compare_state(opt.state_dict()["state"], torch_state(topt, tparams), f"step {t}", 2e-4, 1e-9)


def test_defaults_match_torch(torch):
    ours = O.Adafactor([Parameter(np.zeros(3))]).param_groups[0]
    theirs = torch.optim.Adafactor([torch.zeros(3, requires_grad=True)]).param_groups[0]
    assert set(ours) == set(theirs) - {"foreach"}
    for key, value in ours.items():
        if key != "params":
            assert theirs[key] == value, key
    assert ours["eps"] == (None, 1e-3) and ours["lr"] == 1e-2 and ours["beta2_decay"] == -0.8


def _train(opt, params, t0, t1):
    train_steps(opt, params, _grads, t0, t1)


@pytest.mark.parametrize("via", ["pickle", "npz"])
def test_resume_from_state_dict_is_bitwise_identical(via):
    params = [Parameter(a.astype(np.float32)) for a in _init()]
    opt = O.Adafactor(two_groups(params, SPLIT, {"lr": 0.02, "eps": (1e-5, 1e-3)}), weight_decay=0.01)
    _train(opt, params, 0, 6)
    snapshot = [p.data.copy() for p in params]
    loaded = saved_and_loaded(opt.state_dict(), via)
    _train(opt, params, 6, 14)  # uninterrupted
    params2 = [Parameter(a.copy()) for a in snapshot]
    opt2 = O.Adafactor(two_groups(params2, SPLIT, {}), lr=123.0)  # hyperparameters come from the state
    opt2.load_state_dict(loaded)
    assert opt2.param_groups[1]["eps"] == (1e-5, 1e-3) and opt2.param_groups[0]["eps"] == (None, 1e-3)
    _train(opt2, params2, 6, 14)
    for a, b in zip(params, params2):
        np.testing.assert_array_equal(a.data, b.data)
    sa, sb = opt.state_dict(), opt2.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for i in sa["state"]:
        for k, v in sa["state"][i].items():
            assert type(v) is type(sb["state"][i][k]), (i, k)
            np.testing.assert_array_equal(v, sb["state"][i][k])


def test_a_pytorch_state_dict_loads_and_continues_as_pytorch(torch64):
    torch = torch64
    tparams = [torch.tensor(a, requires_grad=True) for a in _init()]
    topt = torch.optim.Adafactor(tparams, foreach=False, weight_decay=0.01)

    def check_loaded(opt):  # (reduced row_var/col_var shapes load)
        assert all(type(s["step"]) is int for s in opt.state.values())

    params = load_torchs_state_and_continue(torch, topt, tparams, lambda ps: O.Adafactor(ps, weight_decay=0.01),
                                            _grads, check_loaded)
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=RTOL, atol=ATOL)


def test_state_of_the_wrong_shape_is_refused():
    p = Parameter(np.zeros((4, 3)))
    p.grad = np.ones((4, 3))
    opt = O.Adafactor([p])
    opt.step()
    state = opt.state_dict()
    state["state"][0]["row_var"] = np.zeros((4, 3))  # (a full-size variance is not this parameter's row average)
    with pytest.raises(ValueError, match=r"'row_var' of parameter 0 has shape \(4, 3\), expected \(4, 1\)"):
        O.Adafactor([Parameter(np.zeros((4, 3)))]).load_state_dict(state)


BAD = [
    (dict(lr=-1.0), "learning rate lr"),
    (dict(beta2_decay=0.5), "beta2_decay: 0.5 .must be <= 0"),
    (dict(eps=(-1.0, 1e-3)), "epsilon1"),
    (dict(eps=(None, -1e-3)), "epsilon2"),
    (dict(d=0.5), "clipping threshold d: 0.5 .must be >= 1"),
    (dict(weight_decay=-0.1), "weight_decay"),
    (dict(eps=1e-3), "eps: 0.001 .must be a pair"),
    (dict(lr="0.1"), "learning rate lr: '0.1' .must be a number"),
]


@pytest.mark.parametrize("kw,match", BAD, ids=[f"{'-'.join(k)}-{i}" for i, (k, _) in enumerate(BAD)])
def test_bad_hyperparameters_are_refused(torch, kw, match):
    with pytest.raises(ValueError, match=match):
        O.Adafactor([Parameter(np.zeros(2))], **kw)
    with pytest.raises(ValueError, match=match):  # in a group added later too
        O.Adafactor([Parameter(np.zeros(2))]).add_param_group({"params": [Parameter(np.zeros(2))], **kw})
    if not any(isinstance(v, str) for v in kw.values()):
        with pytest.raises((ValueError, TypeError)):  # PyTorch refuses these too
            torch.optim.Adafactor([torch.zeros(2, requires_grad=True)], **kw)


def test_foreach_is_accepted_and_changes_nothing():
    ps = [[Parameter(a) for a in _init()] for _ in range(2)]
    opts = [O.Adafactor(ps[0], foreach=True), O.Adafactor(ps[1])]
    for p0, p1, g in zip(ps[0], ps[1], _grads(0)):
        p0.grad = p1.grad = g
    for o in opts:
        o.step()
    for a, b in zip(*ps):
        np.testing.assert_array_equal(a.data, b.data)
    with pytest.raises(TypeError, match="foreach"):
        O.Adafactor(ps[0], foreach="yes")


def test_an_empty_parameter_is_skipped():
    # (PyTorch's step divides by the parameter's size: ZeroDivisionError)
    p, q = Parameter(np.zeros((0, 3))), Parameter(np.ones(2))
    p.grad, q.grad = np.zeros((0, 3)), np.ones(2)
    opt = O.Adafactor([p, q])
    opt.step()
    assert p not in opt.state and opt.state[q]["step"] == 1


@pytest.mark.parametrize("shape", [(1 << 20,), (1024, 1024), (4, 256, 1024)])
def test_float32_state_and_no_parameter_sized_temporaries(shape):
    p = Parameter(np.ones(shape, dtype=np.float32))
    p.grad = np.linspace(-1, 1, p.data.size, dtype=np.float32).reshape(shape)
    opt = O.Adafactor([p], weight_decay=0.1)
    opt.step()  # allocates the state
    for v in opt.state[p].values():
        if isinstance(v, np.ndarray):
            assert v.dtype == np.float32 and v.size <= max(shape) * 4
    peak = peak_bytes(opt.step)
    assert p.data.dtype == np.float32
    assert peak < 64 * 1024, f"Adafactor.step() allocated {peak} bytes at peak"
