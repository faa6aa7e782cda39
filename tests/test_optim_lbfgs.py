"""distnn.optim.LBFGS against torch.optim.LBFGS in float64: the same weights and the same closure give the
same parameters, returned loss and evaluation counts after every step, with and without the strong-Wolfe
line search; state_dict round trips (to a fresh optimizer, through .npz, from PyTorch's); argument checks."""
import numpy as np
import pytest

import distnn
import distnn.optim as O
from distnn.nn import Parameter
from distnn.optim import flatten_state, unflatten_state

RTOL, ATOL = 1e-9, 1e-12
STEPS = 6


def _data():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 5))
    y = np.sin(x @ rng.standard_normal((5, 1)))
    return x, y


def _init(problem):
    rng = np.random.default_rng(0)
    if problem == "rosenbrock":  # the classic curved valley, from a point far from its minimum (1, 1)
        return [np.array([-1.5, 2.0]), np.array(0.5)]
    return [rng.standard_normal((5, 7)) * 0.5, np.zeros(7), rng.standard_normal((7, 1)) * 0.5, np.zeros(1)]


def _loss(problem, params, lib):
    """The same formula on distnn Tensors and on torch tensors (``lib``: the module with ``tanh``)."""
    if problem == "rosenbrock":
        v, c = params
        return (1 - v[0]) ** 2 + 100 * (v[1] - v[0] ** 2) ** 2 + (c - 0.3) ** 2 * (1 + v[0] ** 2)
    x, y = _data()
    w1, b1, w2, b2 = params
    x, y = (distnn.tensor(x), distnn.tensor(y)) if lib is None else (lib.tensor(x), lib.tensor(y))
    h = (x @ w1 + b1).tanh()
    return (((h @ w2 + b2) - y) ** 2).mean()


def _run_distnn(problem, kwargs, steps=STEPS, params=None, opt=None):
    params = params or [Parameter(a.copy()) for a in _init(problem)]
    opt = opt or O.LBFGS(params, **kwargs)

    def closure():
        opt.zero_grad()
        loss = _loss(problem, params, None)
        loss.backward()
        return loss

    out = []
    for _ in range(steps):
        loss = opt.step(closure)
        out.append((float(loss), [p.data.copy() for p in params], dict(_counts(opt.state[params[0]]))))
    return out, params, opt


def _run_torch(torch, problem, kwargs, steps=STEPS):
    params = [torch.tensor(a.copy(), requires_grad=True) for a in _init(problem)]
    opt = torch.optim.LBFGS(params, **kwargs)

    def closure():
        opt.zero_grad()
        loss = _loss(problem, params, torch)
        loss.backward()
        return loss

    out = []
    for _ in range(steps):
        loss = opt.step(closure)
        out.append((loss.item(), [p.detach().numpy().copy() for p in params], dict(_counts(opt.state[params[0]]))))
    return out, opt


def _counts(state):
    return {k: state[k] for k in ("n_iter", "func_evals")}


CASES = [
    dict(),  # every default: 20 iterations of fixed steps lr=1
    dict(line_search_fn="strong_wolfe"),
    dict(lr=0.5, max_iter=7, history_size=3),  # the history fills and drops its oldest pairs
    dict(lr=0.8, max_iter=9, max_eval=11, history_size=4, line_search_fn="strong_wolfe"),
    dict(max_iter=4, tolerance_change=1e-3, line_search_fn="strong_wolfe"),
]


@pytest.mark.parametrize("problem", ["mlp", "rosenbrock"])
@pytest.mark.parametrize("kwargs", CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "defaults")
def test_steps_match_torch(torch, problem, kwargs):
    # Two steps (40 iterations) of Rosenbrock's: with fixed steps it is chaotic after, PyTorch itself moves
    # by 3e-6 at the third step when the start moves by 1e-15.
    steps = 2 if problem == "rosenbrock" else STEPS
    ours, _, _ = _run_distnn(problem, kwargs, steps)
    theirs, _ = _run_torch(torch, problem, kwargs, steps)
    for t, ((la, pa, ca), (lb, pb, cb)) in enumerate(zip(ours, theirs)):
        assert la == pytest.approx(lb, rel=RTOL, abs=ATOL), (t, la, lb)
        assert ca == cb, (t, ca, cb)
        for a, b in zip(pa, pb):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=f"step {t}")
    assert theirs[-1][0] < theirs[0][0]  # (it optimizes: the oracle is not a run that stands still)


def test_defaults_are_torchs(torch):
    p = [Parameter(np.zeros(3))]
    ours = O.LBFGS(p).defaults
    theirs = torch.optim.LBFGS([torch.zeros(3, requires_grad=True)]).defaults
    assert ours == theirs
    assert O.LBFGS(p, max_iter=8).defaults["max_eval"] == 10


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_state_dict_round_trip_resumes_exactly(line_search_fn):
    kwargs = dict(max_iter=5, history_size=3, line_search_fn=line_search_fn)
    whole, _, _ = _run_distnn("mlp", kwargs, steps=6)
    first, params, opt = _run_distnn("mlp", kwargs, steps=3)
    saved = unflatten_state(dict(flatten_state(opt.state_dict())))  # (as a checkpoint's .npz holds it)
    assert isinstance(saved["state"][0]["old_dirs"][0], np.ndarray)
    fresh = [Parameter(p.data.copy()) for p in params]
    opt2 = O.LBFGS(fresh, **kwargs)
    opt2.load_state_dict(saved)
    rest, _, _ = _run_distnn("mlp", kwargs, steps=3, params=fresh, opt=opt2)
    for (la, pa, _), (lb, pb, _) in zip(whole[3:], rest):
        assert la == lb
        for a, b in zip(pa, pb):
            np.testing.assert_array_equal(a, b)


def test_loads_torchs_state_dict(torch):
    kwargs = dict(max_iter=5, history_size=3, line_search_fn="strong_wolfe")
    _, topt = _run_torch(torch, "mlp", kwargs, steps=2)
    theirs, _ = _run_torch(torch, "mlp", kwargs, steps=4)
    mid, params, opt = _run_distnn("mlp", kwargs, steps=2)
    opt.load_state_dict(topt.state_dict())
    assert all(isinstance(opt.state[params[0]][k], (int, float)) for k in ("t", "H_diag", "prev_loss"))
    assert all(isinstance(v, float) for v in opt.state[params[0]]["ro"])  # (0-d tensors in PyTorch's)
    rest, _, _ = _run_distnn("mlp", kwargs, steps=2, params=params, opt=opt)
    for (la, pa, _), (lb, pb, _) in zip(rest, theirs[2:]):
        assert la == pytest.approx(lb, rel=RTOL, abs=ATOL)
        for a, b in zip(pa, pb):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def test_bad_arguments_name_the_problem():
    p = [Parameter(np.zeros(3))]
    with pytest.raises(TypeError, match="needs a closure"):
        O.LBFGS(p).step()
    with pytest.raises(ValueError, match="line_search_fn"):
        O.LBFGS(p, line_search_fn="armijo")
    with pytest.raises(ValueError, match="learning rate"):
        O.LBFGS(p, lr=-1.0)
    with pytest.raises(ValueError, match="history_size"):
        O.LBFGS(p, history_size=0)
    with pytest.raises(ValueError, match="parameter groups"):
        O.LBFGS([{"params": p}, {"params": [Parameter(np.zeros(2))]}])
    with pytest.raises(ValueError, match="parameter groups"):
        O.LBFGS(p).add_param_group({"params": [Parameter(np.zeros(2))]})


def test_a_graph_built_before_a_step_refuses_backward():
    p = Parameter(np.array([1.0, 2.0]))
    opt = O.LBFGS([p], max_iter=2)
    stale = (p * p).sum()

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with pytest.raises(RuntimeError):
        stale.backward()


def test_the_config_refuses_lbfgs_saying_it_is_library_api_only():
    from distnn.train.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"got 'lbfgs' \(distnn.optim.LBFGS is library API only: its "
                                          r"step\(closure\)"):
        load_config("xor", ["optimizer.name=lbfgs"])
    with pytest.raises(ConfigError, match=r"ChainedScheduler is library API only"):
        load_config("xor", ["schedule.name=chained"])
