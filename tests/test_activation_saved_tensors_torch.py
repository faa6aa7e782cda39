"""The out-of-place activations' nodes against torch 2.13's, as ``saved_tensors_hooks`` see them: how many tensors
pack_hook gets, in which order, of which shape and dtype, whether each is the input itself, and their values; and
that backward reads what unpack_hook returns, as torch's does (an unpack hook that shifts what it gives back changes
both libraries' gradients alike). Before, leaky_relu, hardtanh, hardsigmoid and threshold packed a bool mask of their
own, elu, selu, celu, silu and mish two arrays, rrelu's nodes had other names.
"""
import numpy as np
import pytest

import distnn
import distnn.functional as DF
import distnn.nn as dnn

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

_rng = np.random.default_rng(41)
X = _rng.standard_normal((3, 5)) * 3
X[0, :5] = [0.0, -3.0, 3.0, 1.0, -1.0]  # (the kinks: 0, hardsigmoid's -+3, hardtanh's bounds)
W = _rng.standard_normal((3, 5))
LIBS = {"distnn": (distnn, DF), "torch": (torch, TF)}

# name -> call(F, x): the same call in both libraries, deterministic
ACTS = {
    "leaky_relu": lambda F, x: F.leaky_relu(x, 0.1),
    "leaky_relu(-0.2)": lambda F, x: F.leaky_relu(x, -0.2),
    "hardtanh": lambda F, x: F.hardtanh(x, -0.5, 1.0),
    "relu6": lambda F, x: F.relu6(x),
    "hardsigmoid": lambda F, x: F.hardsigmoid(x),
    "hardswish": lambda F, x: F.hardswish(x),
    "threshold": lambda F, x: F.threshold(x, 0.5, -2.0),
    "elu": lambda F, x: F.elu(x, 1.3),
    "selu": lambda F, x: F.selu(x),
    "celu": lambda F, x: F.celu(x, 0.7),
    "silu": lambda F, x: F.silu(x),
    "mish": lambda F, x: F.mish(x),
    "rrelu(eval)": lambda F, x: F.rrelu(x, 0.1, 0.3, False),
}


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.data)


def _packs(lib_name, call, dtype=np.float64):
    """What pack_hook got: per tensor, whether it is the input itself, its shape, dtype and values; and the name of
    the result's node and of its next functions."""
    lib, F = LIBS[lib_name]
    x = lib.tensor(X.astype(dtype), requires_grad=True)
    got = []

    def pack(t):
        got.append(t)
        return t

    with lib.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = call(F, x)
    node = out.grad_fn
    names = (node.name(), [None if f is None else f.name() for f, _ in node.next_functions])
    return [(t is x, tuple(t.shape), str(t.dtype).split(".")[-1], _np(t)) for t in got], names


@pytest.mark.parametrize("op", sorted(set(ACTS) - {"rrelu(eval)"}))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pack_hook_gets_what_torchs_gets(op, dtype):
    (mine, my_names), (theirs, their_names) = _packs("distnn", ACTS[op], dtype), _packs("torch", ACTS[op], dtype)
    assert [m[:3] for m in mine] == [t[:3] for t in theirs]
    for m, t in zip(mine, theirs):
        np.testing.assert_array_equal(m[3], t[3])
    assert my_names == their_names


def test_rrelu_in_evaluation_packs_torchs_noise_and_input_under_torchs_name():
    """torch's RreluWithNoiseBackward0 keeps its noise (left unwritten in evaluation) and the input, in that order;
    distnn's noise there is the fixed slope."""
    call = ACTS["rrelu(eval)"]
    (mine, my_names), (theirs, their_names) = _packs("distnn", call), _packs("torch", call)
    assert [m[:3] for m in mine] == [t[:3] for t in theirs] == [(False, X.shape, "float64"), (True, X.shape, "float64")]
    np.testing.assert_array_equal(mine[1][3], X)
    np.testing.assert_array_equal(mine[0][3], np.full(X.shape, 0.2))
    assert my_names == their_names == ("RreluWithNoiseBackward0", ["torch::autograd::AccumulateGrad"])


def _rrelu_training(lib_name, module):
    lib, F = LIBS[lib_name]
    x = lib.tensor(X, requires_grad=True)
    got = []

    def pack(t):
        got.append(t)
        return t

    with lib.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = (lib.nn.RReLU(0.1, 0.3) if module else (lambda v: F.rrelu(v, 0.1, 0.3, True)))(x)
    node = out.grad_fn  # (before backward: distnn's frees the graph's links)
    names = (node.name(), [None if f is None else f.name() for f, _ in node.next_functions])
    (out * lib.tensor(W)).sum().backward()
    return [(t is x, tuple(t.shape)) for t in got], _np(got[0]), _np(out), _np(x.grad), names


@pytest.mark.parametrize("module", [False, True])
def test_rrelu_in_training_packs_its_noise_then_the_input_and_backward_reads_the_noise(module):
    mine, theirs = _rrelu_training("distnn", module), _rrelu_training("torch", module)
    assert mine[0] == theirs[0] == [(False, X.shape), (True, X.shape)]
    assert mine[4] == theirs[4] == ("RreluWithNoiseBackward0", ["torch::autograd::AccumulateGrad"])
    for noise, out, grad, _ in (mine[1:], theirs[1:]):  # (each library's draws: the same relations)
        neg = X <= 0
        assert np.all(noise[~neg] == 1) and np.all((noise[neg] >= 0.1) & (noise[neg] <= 0.3))
        np.testing.assert_allclose(out, X * noise, rtol=1e-15)
        np.testing.assert_allclose(grad, W * noise, rtol=1e-15)


def _shifted(lib_name, call, shift):
    """x's gradient when unpack_hook hands back what was packed plus ``shift``: backward computes from it."""
    lib, F = LIBS[lib_name]
    x = lib.tensor(X, requires_grad=True)
    with lib.autograd.graph.saved_tensors_hooks(lambda t: t.detach().clone(), lambda t: t + shift):
        out = call(F, x)
    (out * lib.tensor(W)).sum().backward()
    return _np(x.grad)


@pytest.mark.parametrize("op", sorted(ACTS))
def test_backward_reads_what_unpack_hook_returns_as_torchs(op):
    for shift in (0.0, 0.75, -2.5):
        np.testing.assert_allclose(_shifted("distnn", ACTS[op], shift), _shifted("torch", ACTS[op], shift),
                                   rtol=1e-12, atol=1e-14)


def _dropout_packs(lib_name, p, inplace, module):
    lib, F = LIBS[lib_name]
    x = lib.tensor(np.abs(X) + 1.0, requires_grad=True)
    y = x.clone()
    got = []

    def pack(t):
        got.append(t)
        return t

    with lib.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = lib.nn.Dropout(p, inplace=inplace)(y) if module else F.dropout(y, p, True, inplace)
    node = out.grad_fn
    names = (node.name(), [None if f is None else f.name() for f, _ in node.next_functions])
    (out * lib.tensor(W)).sum().backward()
    return [(tuple(t.shape), t is y) for t in got], [_np(t) for t in got], _np(out), _np(x.grad), names, out is y


@pytest.mark.parametrize("module", [False, True])
@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("p", [0.4, 1.0])
def test_dropout_keeps_its_noise_alone_as_torchs_mul(p, inplace, module):
    mine, theirs = _dropout_packs("distnn", p, inplace, module), _dropout_packs("torch", p, inplace, module)
    assert mine[0] == theirs[0]  # (one pack, the noise: of x's shape, or 0-d for p = 1)
    assert mine[4] == theirs[4] and mine[5] == theirs[5]
    x = np.abs(X) + 1.0
    for (noise,), out, grad in ((mine[1], mine[2], mine[3]), (theirs[1], theirs[2], theirs[3])):
        assert set(np.unique(noise)) <= {0.0, 1 / (1 - p) if p < 1 else 0.0}
        np.testing.assert_allclose(out, x * noise, rtol=1e-15)
        np.testing.assert_allclose(grad, W * noise, rtol=1e-15)
