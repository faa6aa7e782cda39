"""Activations against torch 2.13: celu's backward (torch's 1 / float32(alpha)), the elu family's double backward at
x = 0 (torch's is 0 there), double backward through the out-of-place nodes that now keep the input alone, the nodes
dropout and rrelu record (names and next functions, train and eval, functional and module), and what an integer or
bool input gets (torch's exception, type and words, or its values and dtype).
"""
import numpy as np
import pytest

import distnn
import distnn.functional as DF

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

LIBS = {"distnn": (distnn, DF), "torch": (torch, TF)}
X = np.array([-3.0, -1.0, -0.25, -1e-3, 0.0, 1e-3, 0.5, 2.0, 3.0])
W = np.linspace(-1.0, 1.5, X.size)


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.data)


def _grads(lib_name, call, x=X):
    """x's gradient of sum(call(x) * W), and of sum(that gradient * W) (double backward)."""
    lib, F = LIBS[lib_name]
    t = lib.tensor(x, requires_grad=True)
    (g,) = lib.autograd.grad((call(F, t) * lib.tensor(W)).sum(), t, create_graph=True)
    (gg,) = lib.autograd.grad((g * lib.tensor(W[::-1].copy())).sum(), t)
    return _np(g), _np(gg)


@pytest.mark.parametrize("alpha", [0.1, 0.3, 1.7, 3.3])
def test_celu_backward_takes_one_over_alpha_rounded_to_float32_as_torchs(alpha):
    """torch's celu backward is elu_backward with input_scale 1.0 / alpha.toFloat(): in float64 it differs from the
    exact 1 / alpha in the 8th digit (alpha = 0.1: 9.99999985 against 10)."""
    mine, theirs = _grads("distnn", lambda F, t: F.celu(t, alpha)), _grads("torch", lambda F, t: F.celu(t, alpha))
    np.testing.assert_allclose(mine[0], theirs[0], rtol=1e-14, atol=0)
    np.testing.assert_allclose(mine[1], theirs[1], rtol=1e-14, atol=0)


ELUS = {
    "elu": lambda F, t: F.elu(t),
    "elu(2.5)": lambda F, t: F.elu(t, 2.5),
    "selu": lambda F, t: F.selu(t),
    "celu(0.4)": lambda F, t: F.celu(t, 0.4),
}


@pytest.mark.parametrize("op", sorted(ELUS))
def test_the_elu_familys_double_backward_is_zero_at_zero_as_torchs(op):
    """torch's elu_double_backward multiplies by (x < 0): 0 at x = 0, where the first derivative takes the negative
    side's slope (alpha scale input_scale)."""
    mine, theirs = _grads("distnn", ELUS[op]), _grads("torch", ELUS[op])
    zero = X == 0
    assert theirs[1][zero] == 0 and mine[1][zero] == 0
    np.testing.assert_allclose(mine[0], theirs[0], rtol=1e-14, atol=0)
    np.testing.assert_allclose(mine[1], theirs[1], rtol=1e-14, atol=0)


SECOND = {
    "leaky_relu": lambda F, t: F.leaky_relu(t, 0.1),
    "hardtanh": lambda F, t: F.hardtanh(t, -1.0, 2.0),
    "threshold": lambda F, t: F.threshold(t, 0.5, -1.0),
    "silu": lambda F, t: F.silu(t),
    "mish": lambda F, t: F.mish(t),
    "rrelu(eval)": lambda F, t: F.rrelu(t, 0.1, 0.3, False),
}


@pytest.mark.parametrize("op", sorted(SECOND))
def test_double_backward_through_the_out_of_place_nodes_is_torchs(op):
    """(hardsigmoid is left out: torch 2.13 has no derivative for hardsigmoid_backward, distnn's is zero.)"""
    mine, theirs = _grads("distnn", SECOND[op]), _grads("torch", SECOND[op])
    np.testing.assert_allclose(mine[0], theirs[0], rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(mine[1], theirs[1], rtol=1e-13, atol=1e-16)


def _node(lib_name, call):
    """The name of the result's node and of its next functions, and whether the result is the input itself."""
    lib, F = LIBS[lib_name]
    x = lib.tensor(X, requires_grad=True)
    y = x.clone()
    out = call(lib, F, y)
    node = out.grad_fn
    return node.name(), [None if f is None else f.name() for f, _ in node.next_functions], out is y


NODES = {
    "dropout": lambda lib, F, y: F.dropout(y, 0.5, True),
    "dropout(inplace)": lambda lib, F, y: F.dropout(y, 0.5, True, True),
    "dropout(eval, inplace)": lambda lib, F, y: F.dropout(y, 0.5, False, True),
    "dropout(p=1, inplace)": lambda lib, F, y: F.dropout(y, 1.0, True, True),
    "dropout(p=0, inplace)": lambda lib, F, y: F.dropout(y, 0.0, True, True),
    "Dropout(inplace)": lambda lib, F, y: lib.nn.Dropout(0.3, inplace=True)(y),
    "Dropout(inplace).eval()": lambda lib, F, y: lib.nn.Dropout(0.3, inplace=True).eval()(y),
    "rrelu(train)": lambda lib, F, y: F.rrelu(y, 0.1, 0.3, True),
    "rrelu(eval)": lambda lib, F, y: F.rrelu(y, 0.1, 0.3, False),
    "RReLU()": lambda lib, F, y: lib.nn.RReLU(0.1, 0.3)(y),
    "RReLU().eval()": lambda lib, F, y: lib.nn.RReLU(0.1, 0.3).eval()(y),
    "rrelu_(train)": lambda lib, F, y: F.rrelu_(y, 0.1, 0.3, True),
    "rrelu_(eval)": lambda lib, F, y: F.rrelu_(y, 0.1, 0.3, False),
    "threshold(inplace)": lambda lib, F, y: F.threshold(y, 0.1, 2.0, True),
}


@pytest.mark.parametrize("op", sorted(NODES))
def test_dropout_and_rrelu_record_torchs_nodes(op):
    """In-place dropout was DropoutBackward where torch's is mul_'s MulBackward0; rrelu out of place was
    RReLUBackward (training, with a None next function for its noise) or LeakyReluBackward0 (evaluation)."""
    assert _node("distnn", NODES[op]) == _node("torch", NODES[op])


def _outcome(lib_name, call, values, dtype_name, inplace):
    lib, F = LIBS[lib_name]
    x = lib.tensor(np.array(values).astype(dtype_name))
    try:
        out = call(F, x, inplace)
    except Exception as e:  # noqa: BLE001 - the exception is what is compared
        return type(e).__name__, str(e)
    return str(out.dtype).split(".")[-1], _np(out).tolist(), out is x


INTS = {
    "relu": lambda F, x, ip: F.relu(x, inplace=ip),
    "leaky_relu": lambda F, x, ip: F.leaky_relu(x, 0.1, inplace=ip),
    "elu": lambda F, x, ip: F.elu(x, inplace=ip),
    "selu": lambda F, x, ip: F.selu(x, inplace=ip),
    "celu": lambda F, x, ip: F.celu(x, inplace=ip),
    "silu": lambda F, x, ip: F.silu(x, inplace=ip),
    "mish": lambda F, x, ip: F.mish(x, inplace=ip),
    "hardtanh": lambda F, x, ip: F.hardtanh(x, inplace=ip),
    "hardtanh(-1.5, 2.5)": lambda F, x, ip: F.hardtanh(x, -1.5, 2.5, inplace=ip),
    "hardtanh(-0.5, 1)": lambda F, x, ip: F.hardtanh(x, -0.5, 1.0, inplace=ip),
    "relu6": lambda F, x, ip: F.relu6(x, inplace=ip),
    "hardswish": lambda F, x, ip: F.hardswish(x, inplace=ip),
    "hardsigmoid": lambda F, x, ip: F.hardsigmoid(x, inplace=ip),
    "threshold": lambda F, x, ip: F.threshold(x, 1.5, 2.7, inplace=ip),
    "rrelu": lambda F, x, ip: F.rrelu(x, inplace=ip),
    "rrelu(train)": lambda F, x, ip: F.rrelu(x, training=True, inplace=ip),
    "dropout": lambda F, x, ip: F.dropout(x, 0.5, inplace=ip),
    "dropout(p=1)": lambda F, x, ip: F.dropout(x, 1.0, inplace=ip),
    "dropout(eval)": lambda F, x, ip: F.dropout(x, 0.5, False, inplace=ip),
}


@pytest.mark.parametrize("dtype", ["int64", "int32", "int8", "uint8", "bool"])
@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("op", sorted(INTS))
def test_an_integer_or_bool_input_gets_what_torchs_gets(op, inplace, dtype):
    """silu(inplace=True) of an int64 tensor raised TypeError (a float result refused by the tensor), out of place it
    answered in float32; torch refuses both, NotImplementedError: "silu_cpu" not implemented for 'Long'."""
    values = [-2, 0, 1, 3] if dtype != "uint8" else [254, 0, 1, 3]
    assert _outcome("distnn", INTS[op], values, dtype, inplace) == _outcome("torch", INTS[op], values, dtype, inplace)
