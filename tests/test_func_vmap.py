"""distnn.func.vmap (and distnn.vmap) against torch.func.vmap: in_dims/out_dims forms, torch's refusals, the
randomness modes, composition with the gradient transforms (torch's per-sample-gradients tutorial, jacrev in
vmap), and stack_module_state ensembles (torch's docs example) against looping over the models; functionalize."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
import distnn.nn as nn
from distnn import Tensor
from distnn import func as dfunc
from test_func_transforms import _close  # noqa: E402  (pytrees compared as in the transforms' tests)
from torch_twins import twin_models

TIGHT = dict(rtol=1e-11, atol=1e-12)
R = np.random.default_rng(11)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)
A = R.standard_normal((4, 3))
B = R.standard_normal((3, 4))
C = R.standard_normal((3,))



def _both(torch, *arrays):
    return [Tensor(a.copy()) for a in arrays], [torch.tensor(a.copy()) for a in arrays]


# ------------------------------------------------------------------------------------- in_dims / out_dims
def test_vmap_in_dims_and_out_dims_as_torch(torch):
    (a, b, c), (ta, tb, tc) = _both(torch, A, B, C)

    def f(lib):
        return lambda x, y: (lib.sin(x) * y, (x * y).sum())

    for in_dims, out_dims, pick in [
        (0, 0, lambda a, b, c: (a, b.T)),
        ((0, 1), 0, lambda a, b, c: (a, b)),
        ((0, None), (1, 0), lambda a, b, c: (a, c)),
        ((-2, -1), (-1, 0), lambda a, b, c: (a, b)),
        ((None, 1), 0, lambda a, b, c: (c, b)),
    ]:
        d = dfunc.vmap(f(distnn), in_dims, out_dims)(*pick(a, b, c))
        t = torch.func.vmap(f(torch), in_dims, out_dims)(*pick(ta, tb, tc))
        _close(d, t)
    # nested pytree in_dims, kwargs not mapped, an out_dims=None output
    g = lambda lib: lambda p, scale=1.0: ({"y": lib.exp(p["x"]) * p["w"][0] * scale}, p["w"][0] * 2)  # noqa: E731
    p, tp = {"x": a, "w": [c]}, {"x": ta, "w": [tc]}
    d = dfunc.vmap(g(distnn), in_dims=({"x": 0, "w": [None]},), out_dims=({"y": 1}, None))(p, scale=3.0)
    t = torch.func.vmap(g(torch), in_dims=({"x": 0, "w": [None]},), out_dims=({"y": 1}, None))(tp, scale=3.0)
    _close(d, t)
    # nested vmap: an outer product
    _close(dfunc.vmap(dfunc.vmap(lambda u, v: u * v, (None, 0)), (0, None))(c, a[:, 0]),
           torch.func.vmap(torch.func.vmap(lambda u, v: u * v, (None, 0)), (0, None))(tc, ta[:, 0]))
    assert distnn.vmap is not None and distnn.vmap(lambda x: x * 2)(a).shape == (4, 3)


def test_vmap_refusals_as_torch():
    a, c = Tensor(A.copy()), Tensor(C.copy())
    ident = lambda x: x  # noqa: E731
    with pytest.raises(ValueError, match="vmap: Expected all tensors to have the same size in the mapped dimension, "
                                         "got sizes \\[4, 3\\] for the mapped dimension"):
        dfunc.vmap(lambda x, y: x)(a, c)
    with pytest.raises(ValueError, match="Got in_dim=2 for some input, but that input is a Tensor of dimensionality "
                                         "2 so expected in_dim to satisfy -2 <= in_dim < 2."):
        dfunc.vmap(ident, in_dims=2)(a)
    with pytest.raises(ValueError, match="expected `in_dims` to be int or a \\(potentially nested\\) tuple matching "
                                         "the structure of inputs, got: <class 'NoneType'>"):
        dfunc.vmap(ident, in_dims=None)(a)
    with pytest.raises(ValueError, match="in_dims is not compatible with the structure of `inputs`"):
        dfunc.vmap(lambda x, y: x, in_dims=(0,))(a, a)
    with pytest.raises(ValueError, match="got no inputs"):
        dfunc.vmap(ident)()
    with pytest.raises(ValueError, match="Got in_dim=0 for an input but the input is of type <class 'float'>. We "
                                         "cannot vmap over non-Tensor arguments"):
        dfunc.vmap(ident)(1.0)
    with pytest.raises(ValueError, match="vmap: Expected at least one Tensor to vmap over"):
        dfunc.vmap(ident, in_dims=(None,))(a)
    with pytest.raises(IndexError, match="Dimension out of range \\(expected to be in range of \\[-2, 1\\], but got "
                                         "3\\)"):
        dfunc.vmap(ident, out_dims=3)(a)
    with pytest.raises(ValueError, match="`out_dims` must be an int, None or a python collection of ints"):
        dfunc.vmap(ident, out_dims="a")(a)
    with pytest.raises(ValueError, match="out_dims is not compatible with the structure of `outputs`"):
        dfunc.vmap(ident, out_dims=(0, 0))(a)
    with pytest.raises(ValueError, match="must only return Tensors, got type <class 'int'>. Did you mean to set "
                                         "out_dims= to None for output"):
        dfunc.vmap(lambda x: 3)(a)
    with pytest.raises(ValueError, match="can not return a BatchedTensor when out_dim is None"):
        dfunc.vmap(ident, out_dims=None)(a)
    with pytest.raises(ValueError, match="vmap: chunk_size should be None or greater than 0. \\(got 0\\)"):
        dfunc.vmap(ident, chunk_size=0)
    with pytest.raises(RuntimeError, match="Only allowed values for randomness are 'error', 'different', or 'same'. "
                                           "Got foo"):
        dfunc.vmap(ident, randomness="foo")


# ------------------------------------------------------------------------------------------- randomness
def test_vmap_randomness_modes():
    x = Tensor(np.zeros((5, 4)))
    noisy = lambda v: v + distnn.rand(4)  # noqa: E731
    with pytest.raises(RuntimeError, match="vmap: called random operation while in randomness error mode. Please "
                                           "either use the 'same' or 'different' randomness flags"):
        dfunc.vmap(noisy)(x)
    drop = nn.Dropout(0.5)
    with pytest.raises(RuntimeError, match="randomness error mode"):
        dfunc.vmap(drop)(x + 1)
    np.testing.assert_array_equal(dfunc.vmap(drop.eval())(x + 1).numpy(), np.ones((5, 4)))  # no draw in eval
    assert distnn.rand(2).shape == (2,)  # the refusal ends with the call

    distnn.manual_seed(3)
    same = dfunc.vmap(noisy, randomness="same")(x).numpy()
    after_same = distnn.rand(4).numpy()
    distnn.manual_seed(3)
    once = distnn.rand(4).numpy()
    np.testing.assert_array_equal(same, np.broadcast_to(once, (5, 4)))  # every sample: the same draws
    np.testing.assert_array_equal(after_same, distnn.rand(4).numpy())  # and the generator advanced by one sample's

    distnn.manual_seed(3)
    different = dfunc.vmap(noisy, randomness="different")(x).numpy()
    distnn.manual_seed(3)
    np.testing.assert_array_equal(different, np.stack([distnn.rand(4).numpy() for _ in range(5)]))
    assert len({tuple(row) for row in different}) == 5


# ------------------------------------------------------------------------------------------ composition
def _mlp_pair(torch):
    return twin_models(lambda nn: nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)), seed=None,
                       dtype=np.float64)


def test_per_sample_gradients_tutorial_as_torch(torch):
    t, d = _mlp_pair(torch)
    x, y = R.standard_normal((6, 3)), np.array([0, 1, 1, 0, 1, 0])

    def loss(model, lib, functional_call, cross_entropy):
        def compute_loss(params, buffers, sample, target):
            prediction = functional_call(model, (params, buffers), (sample.unsqueeze(0),))
            return cross_entropy(prediction, target.unsqueeze(0))
        return compute_loss

    dparams = {k: v.detach() for k, v in d.named_parameters()}
    tparams = {k: v.detach() for k, v in t.named_parameters()}
    dl = loss(d, distnn, dfunc.functional_call, F.cross_entropy)
    tl = loss(t, torch, torch.func.functional_call, torch.nn.functional.cross_entropy)
    dg = dfunc.vmap(dfunc.grad(dl), in_dims=(None, None, 0, 0))(dparams, {}, Tensor(x), Tensor(y))
    tg = torch.func.vmap(torch.func.grad(tl), in_dims=(None, None, 0, 0))(tparams, {}, torch.tensor(x),
                                                                          torch.tensor(y))
    _close(dg, tg)
    # the oracle without vmap: one backward per sample
    for i in range(len(x)):
        d.zero_grad()
        F.cross_entropy(d(Tensor(x[i:i + 1])), Tensor(y[i:i + 1])).backward()
        for k, p in d.named_parameters():
            np.testing.assert_allclose(dg[k].numpy()[i], p.grad, **TIGHT, err_msg=k)


def test_jacrev_and_hessian_inside_vmap_as_torch(torch):
    (a,), (ta,) = _both(torch, A)
    f = lambda lib: lambda v: lib.sin(v) * (v ** 2).sum()  # noqa: E731
    _close(dfunc.vmap(dfunc.jacrev(f(distnn)))(a), torch.func.vmap(torch.func.jacrev(f(torch)))(ta))
    _close(dfunc.vmap(dfunc.hessian(lambda v: f(distnn)(v).sum()))(a),
           torch.func.vmap(torch.func.hessian(lambda v: f(torch)(v).sum()))(ta))
    # differentiating through vmap (select and stack are recorded)
    _close(dfunc.grad(lambda m: dfunc.vmap(lambda r: (distnn.exp(r) * r).sum())(m).sum())(a),
           torch.func.grad(lambda m: torch.func.vmap(lambda r: (torch.exp(r) * r).sum())(m).sum())(ta))


# ------------------------------------------------------------------------------------ ensembles
def test_stack_module_state_ensemble_as_looping_models_and_torch(torch):
    pairs = [_mlp_pair(torch) for _ in range(4)]
    tmodels, dmodels = [p[0] for p in pairs], [p[1] for p in pairs]
    data = R.standard_normal((7, 3))
    params, buffers = dfunc.stack_module_state(dmodels)
    tparams, tbuffers = torch.func.stack_module_state(tmodels)
    assert list(params) == list(tparams) and params["0.weight"].shape == (4, 5, 3)
    assert all(p.requires_grad and p.is_leaf for p in params.values())

    def wrapper(functional_call, model):
        return lambda p, b, x: functional_call(model, (p, b), (x,))

    out = dfunc.vmap(wrapper(dfunc.functional_call, dmodels[0]), (0, 0, None))(params, buffers, Tensor(data))
    tout = torch.func.vmap(wrapper(torch.func.functional_call, tmodels[0]), (0, 0, None))(
        tparams, tbuffers, torch.tensor(data))
    _close(out, tout)
    looped = np.stack([m(Tensor(data)).detach().numpy() for m in dmodels])
    np.testing.assert_allclose(out.detach().numpy(), looped, **TIGHT)
    # gradients reach the stacked leaves as they reach each model's parameters
    (out ** 2).sum().backward()
    for i, m in enumerate(dmodels):
        (m(Tensor(data)) ** 2).sum().backward()
        for k, p in m.named_parameters():
            np.testing.assert_allclose(params[k].grad[i], p.grad, **TIGHT, err_msg=k)


def test_stack_module_state_refusals_and_buffers():
    with pytest.raises(RuntimeError, match="stack_module_state: Expected at least one model, got 0."):
        dfunc.stack_module_state([])
    with pytest.raises(RuntimeError, match="Expected all models to have the same training/eval mode."):
        dfunc.stack_module_state([nn.Linear(2, 2), nn.Linear(2, 2).eval()])
    with pytest.raises(RuntimeError, match="Expected all models to be of the same class."):
        dfunc.stack_module_state([nn.Linear(2, 2), nn.Tanh()])
    params, buffers = dfunc.stack_module_state([nn.BatchNorm1d(3), nn.BatchNorm1d(3)])
    assert buffers["running_mean"].shape == (2, 3) and not buffers["running_mean"].requires_grad
    assert params["weight"].shape == (2, 3) and params["weight"].requires_grad


# ----------------------------------------------------------------------------------------- functionalize
def test_functionalize_keeps_results_and_input_mutation_as_torch(torch):
    def f(lib):
        def g(x):
            y = x * 2
            y.add_(1)
            x.mul_(3)
            return lib.sin(y)
        return g

    (a,), (ta,) = _both(torch, A)
    _close(dfunc.functionalize(f(distnn))(a), torch.func.functionalize(f(torch))(ta))
    _close(a, ta)  # the input's mutation is seen by the caller, as torch's
    with pytest.raises(RuntimeError, match="received invalid argument for remove=x"):
        dfunc.functionalize(f(distnn), remove="x")
