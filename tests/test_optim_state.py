"""distnn.optim's state: bitwise resume (pickle, npz), state_dict format, copies and layout checks, loaded steps,
fresh state for parameters the loaded state leaves out, flattened paths that collide."""
import io

import numpy as np
import pytest

from distnn.nn import Parameter
from distnn.optim import Adagrad, Adam, flatten_state, unflatten_state

from state_io import saved_and_loaded
from optim_cases import ALL, grads, init_params


def _train(params, opt, t0, t1):
    for t in range(t0, t1):
        for p, g in zip(params, grads([p.data for p in params], t)):
            p.grad = g
        opt.step()


@pytest.mark.parametrize("via", ["pickle", "npz"])
@pytest.mark.parametrize("cls,kwargs", ALL, ids=[c.__name__ for c, _ in ALL])
def test_resume_is_bitwise_identical(cls, kwargs, via):
    dtype = np.float32
    params = [Parameter(a) for a in init_params(dtype)]
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
    params = [Parameter(a) for a in init_params()]
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
    params = [Parameter(a) for a in init_params()]
    opt = Adam(params)
    _train(params, opt, 0, 2)
    live, copied = opt.state_dict(copy=False), opt.state_dict()
    assert live["state"][0]["exp_avg"] is opt.state[params[0]]["exp_avg"]
    assert copied["state"][0]["exp_avg"] is not opt.state[params[0]]["exp_avg"]
    assert live["param_groups"] == copied["param_groups"] and live["state"].keys() == copied["state"].keys()


def test_load_state_dict_casts_dtype_and_checks_layout():
    p64 = [Parameter(a) for a in init_params(np.float64)]
    opt = Adam(p64)
    _train(p64, opt, 0, 2)
    sd = opt.state_dict()
    p32 = [Parameter(a.astype(np.float32)) for a in init_params(np.float64)]
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
