"""distnn.utils.checkpoint against torch.utils.checkpoint (torch 2.13) with the same weights: outputs and
gradients of checkpointed MLP and conv stacks equal torch's checkpointed ones and distnn's own without
checkpointing (bitwise, float64), for both variants and every split of checkpoint_sequential; the warnings
and refusals are torch's."""
import re
import warnings

import numpy as np
import pytest

import distnn
import distnn.nn as nn
from distnn.utils.checkpoint import CheckpointError, checkpoint, checkpoint_sequential

torch = pytest.importorskip("torch")
from torch.utils import checkpoint as tcp  # noqa: E402


def _mlp(seed):
    distnn.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16, dtype=np.float64), nn.Tanh(), nn.Linear(16, 16, dtype=np.float64),
                         nn.ReLU(), nn.Linear(16, 8, dtype=np.float64), nn.Sigmoid(), nn.Linear(8, 3, dtype=np.float64))


def _convnet(seed):
    distnn.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, dtype=np.float64), nn.ReLU(),
                         nn.Conv2d(4, 4, 3, stride=2, dtype=np.float64), nn.Tanh(), nn.Flatten(),
                         nn.Linear(4 * 3 * 3, 5, dtype=np.float64))


def _torch_copy(model):
    """The torch model of the same layers and weights."""
    layers = []
    for m in model:
        name = type(m).__name__
        if name == "Linear":
            t = torch.nn.Linear(m.weight.shape[1], m.weight.shape[0], dtype=torch.float64)
        elif name == "Conv2d":
            t = torch.nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
                                dtype=torch.float64)
        else:
            t = getattr(torch.nn, name)()
        with torch.no_grad():
            for k, p in t.named_parameters():
                p.copy_(torch.from_numpy(getattr(m, k).data.copy()))
        layers.append(t)
    return torch.nn.Sequential(*layers)


def _grads(model, x):
    return [p.grad.copy() for p in model.parameters()] + [x.grad.copy()]


def _distnn_run(model, xs, run):
    x = distnn.tensor(xs, requires_grad=True)
    for p in model.parameters():
        p.grad = None
    y = run(model, x)
    (y * y).sum().backward()
    return y.numpy(), _grads(model, x)


def _torch_run(model, xs, run):
    x = torch.tensor(xs, requires_grad=True)
    y = run(model, x)
    (y * y).sum().backward()
    return y.detach().numpy(), [p.grad.numpy() for p in model.parameters()] + [x.grad.numpy()]


def _assert_same(a, b, exact):
    for u, v in zip(a, b):
        if exact:
            assert np.array_equal(u, v)
        else:
            np.testing.assert_allclose(u, v, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("use_reentrant", [False, True])
@pytest.mark.parametrize("make,shape", [(_mlp, (6, 5)), (_convnet, (3, 2, 7, 7))], ids=["mlp", "conv"])
def test_checkpointed_model_matches_torch_and_the_plain_run(make, shape, use_reentrant):
    model = make(0)
    tmodel = _torch_copy(model)
    xs = np.random.default_rng(1).standard_normal(shape)
    plain_y, plain_g = _distnn_run(model, xs, lambda m, x: m(x))
    y, g = _distnn_run(model, xs, lambda m, x: checkpoint(m, x, use_reentrant=use_reentrant))
    ty, tg = _torch_run(tmodel, xs, lambda m, x: tcp.checkpoint(m, x, use_reentrant=use_reentrant))
    _assert_same([y] + g, [plain_y] + plain_g, exact=True)
    _assert_same([y] + g, [ty] + tg, exact=False)


@pytest.mark.parametrize("segments", [1, 2, 3, 7])
@pytest.mark.parametrize("use_reentrant", [False, True])
def test_checkpoint_sequential_every_split_matches_torch(segments, use_reentrant):
    model = _mlp(2)
    tmodel = _torch_copy(model)
    xs = np.random.default_rng(3).standard_normal((4, 5))
    plain_y, plain_g = _distnn_run(model, xs, lambda m, x: m(x))
    y, g = _distnn_run(model, xs, lambda m, x: checkpoint_sequential(m, segments, x, use_reentrant=use_reentrant))
    ty, tg = _torch_run(tmodel, xs, lambda m, x: tcp.checkpoint_sequential(m, segments, x,
                                                                           use_reentrant=use_reentrant))
    _assert_same([y] + g, [plain_y] + plain_g, exact=True)
    _assert_same([y] + g, [ty] + tg, exact=False)


def test_kwargs_nested_outputs_and_autograd_grad_match_torch():
    """Non-reentrant: keyword arguments, a dict of outputs, tensors in a list argument, autograd.grad."""
    rng = np.random.default_rng(4)
    a, b, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.standard_normal((4, 4))

    def f(lib, pair, scale=None):
        h = lib.tanh(pair[0] @ scale)
        return {"h": h, "both": [h * pair[1], pair[1].sin()]}

    def run(lib, tensor, grad, cp):
        ta, tb, tw = (tensor(v, requires_grad=True) for v in (a, b, w))
        out = cp(lambda pair, scale: f(lib, pair, scale), [ta, tb], scale=tw, use_reentrant=False)
        loss = (out["h"] ** 2).sum() + out["both"][0].sum() + (out["both"][1] * 3.0).sum()
        return [g.detach().numpy() for g in grad(loss, [ta, tb, tw])]

    mine = run(distnn, distnn.tensor, distnn.autograd.grad, checkpoint)
    theirs = run(torch, torch.tensor, torch.autograd.grad, tcp.checkpoint)
    _assert_same(mine, theirs, exact=False)


def _outcome(fn):
    """(the warnings' messages, the exception's type name and message) of ``fn()``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fn()
            error = None
        except Exception as e:  # noqa: BLE001 - the test compares them
            error = (type(e).__name__, str(e))
    return [str(w.message) for w in caught], error


def _both(make_call):
    """make_call(lib, tensor, checkpoint) run with distnn and with torch."""
    return (_outcome(lambda: make_call(distnn, distnn.tensor, checkpoint)),
            _outcome(lambda: make_call(torch, torch.tensor, tcp.checkpoint)))


@pytest.mark.parametrize("case", [
    "reentrant-kwargs", "reentrant-debug", "reentrant-context-fn", "bad-determinism-check",
    "reentrant-grad", "reentrant-backward-inputs", "reentrant-no-input-requires-grad",
    "reentrant-detached-output", "sequential-kwargs", "debug-with-context-fn",
])
def test_refusals_and_warnings_are_torchs(case):
    def call(lib, tensor, cp):
        x = tensor(np.ones((2, 3)), requires_grad=True)
        w = tensor(np.full((3, 3), 0.5), requires_grad=True)
        ctx = (lambda: (warnings.catch_warnings(), warnings.catch_warnings()))
        if case == "reentrant-kwargs":
            cp(lambda a, b=1: a * b, x, b=2, use_reentrant=True)
        elif case == "reentrant-debug":
            cp(lambda a: a @ w, x, use_reentrant=True, debug=True)
        elif case == "reentrant-context-fn":
            cp(lambda a: a @ w, x, use_reentrant=True, context_fn=ctx)
        elif case == "debug-with-context-fn":
            cp(lambda a: a @ w, x, use_reentrant=False, debug=True, context_fn=ctx)
        elif case == "bad-determinism-check":
            cp(lambda a: a @ w, x, use_reentrant=False, determinism_check="shapes")
        elif case == "reentrant-grad":
            lib.autograd.grad(cp(lambda a: a @ w, x, use_reentrant=True).sum(), [x])
        elif case == "reentrant-backward-inputs":
            cp(lambda a: a @ w, x, use_reentrant=True).sum().backward(inputs=[x])
        elif case == "reentrant-no-input-requires-grad":
            y = cp(lambda a: a @ w, x.detach(), use_reentrant=True)
            assert not y.requires_grad  # (so nothing reaches w: PyTorch's documented limit)
        elif case == "reentrant-detached-output":
            cp(lambda a: a.detach() * 2, x, use_reentrant=True).sum().backward()
        elif case == "sequential-kwargs":
            seq = lib.nn.Sequential(lib.nn.Tanh(), lib.nn.Tanh())
            (tcp if lib is torch else distnn.utils.checkpoint).checkpoint_sequential(seq, 2, x, use_reentrant=False,
                                                                                      foo=1)

    mine, theirs = _both(call)
    assert mine == theirs


def test_omitted_use_reentrant_warns_and_means_reentrant():
    def call(lib, tensor, cp):
        x = tensor(np.ones((2, 3)), requires_grad=True)
        y = cp(lambda a: a * 2, x)
        lib.autograd.grad(y.sum(), [x])  # refused: the reentrant variant was chosen

    (mine_warnings, mine_error), (theirs_warnings, theirs_error) = _both(call)
    assert mine_error == theirs_error and "use_reentrant=True" in mine_error[1]
    assert len(mine_warnings) == len(theirs_warnings) == 1
    assert "use_reentrant parameter should be passed explicitly" in mine_warnings[0]
    for sequential in (checkpoint_sequential, tcp.checkpoint_sequential):
        lib = torch if sequential is tcp.checkpoint_sequential else distnn
        x = (torch.ones if lib is torch else distnn.ones)(2, 3, requires_grad=True)
        with pytest.warns(UserWarning, match="checkpoint_sequential: the use_reentrant parameter should be passed"):
            sequential([lib.tanh, lib.sin], 2, x)


def test_recomputation_with_other_shapes_raises_checkpoint_error():
    """determinism_check="default": the first recorded tensor of another shape is named, as torch names it."""
    def run(lib, tensor, cp):
        state = {"n": 3}

        def f(a):
            state["n"] += 1
            return a[:, :state["n"] - 1].sin().sum()

        cp(f, tensor(np.ones((2, 5)), requires_grad=True), use_reentrant=False).backward()

    (_, mine), (_, theirs) = _both(run)
    assert mine[0] == theirs[0] == "CheckpointError"
    for text in (mine[1], theirs[1]):
        assert "Recomputed values for the following tensors have different metadata" in text
        assert "tensor at position 0:" in text
    assert "'shape': (2, 3)" in mine[1] and "'shape': (2, 4)" in mine[1]


@pytest.mark.parametrize("kwargs", [{}, {"early_stop": False}, {"early_stop": False, "debug": True},
                                    {"early_stop": False, "determinism_check": "none"}])
def test_a_recomputation_running_more_ops_after_the_forwards_last_is_torchs(kwargs):
    """sin, recomputed as sin then cos: with early stop (the default) the recomputation stops after sin, as
    torch's, and the gradients are sin's; without it, both refuse, whatever determinism_check (torch's cannot
    place the extra saved tensor either)."""
    results = {}
    for name, lib, cp in (("distnn", distnn, checkpoint), ("torch", torch, tcp.checkpoint)):
        calls = {"n": 0}

        def f(a):
            calls["n"] += 1
            out = a.sin()
            return out.cos() if calls["n"] > 1 else out

        x = lib.tensor(np.ones((2, 3)), requires_grad=True)
        try:
            cp(f, x, use_reentrant=False, **kwargs).sum().backward()
            results[name] = x.grad.detach().numpy() if name == "torch" else np.asarray(x.grad)
        except CheckpointError if name == "distnn" else tcp.CheckpointError as e:
            results[name] = str(e)
    mine, theirs = results["distnn"], results["torch"]
    if not kwargs:
        np.testing.assert_allclose(mine, theirs, rtol=1e-12)
        return
    assert isinstance(mine, str) and isinstance(theirs, str)
    if kwargs.get("debug"):  # (distnn's debug message lists both runs' ops; torch's dumps its stack logs)
        assert re.search("(?s)Operations executed during the original forward:.*Sin.*"
                         "Operations executed during recomputation:.*Sin.*Cos", mine)
    else:
        first = "trying to save more tensors during recomputation than during the original forward pass."
        assert mine.startswith("distnn.utils.checkpoint: " + first)
        assert theirs.startswith("torch.utils.checkpoint: " + first)
