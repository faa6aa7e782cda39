"""``clamp``/``clip`` with ``out=`` against PyTorch 2.13: the values written into ``out`` and ``out`` returned,
an empty ``out`` resized silently and one with elements resized with PyTorch's warning, the dtype rules of the
two overloads (number bounds: ``out``'s dtype must be the result's; Tensor bounds: the result cast where PyTorch
casts), the refusal of ``out=`` while an argument requires grad in grad mode, and the order PyTorch checks in
(parser, autograd, op, kernel), each with PyTorch's exception type and message."""
import numpy as np
import pytest
import torch
from torch_outcome import both

import distnn

pytestmark = pytest.mark.filterwarnings("error")

DTYPES = ["float16", "float32", "float64", "int32", "int64", "complex64", "bool"]
FUNCTIONS = ["clamp", "clip"]


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _dtype(L, name):
    return getattr(L, name)


def _outcome(run):
    """``run(L)`` in torch and in distnn (:func:`torch_outcome.both`): the result's and out's states (dtype, shape,
    values bitwise), out returned and the warnings (category, text, the file they point at), or the error's type
    (its own, not only its builtin kind) and message."""
    return both(run, exact_type=True)


def _bounds(rng, kind):
    """(lo, hi) makers: numbers, Tensor bounds (a row and a column, broadcasting), one of each side alone."""
    lo, hi = sorted(rng.uniform(-2, 2, 2).round(2))
    row = rng.uniform(-2, 0, 4).round(2)
    col = rng.uniform(0, 2, (3, 1)).round(2)
    return {
        "numbers": lambda L: (float(lo), float(hi)),
        "ints": lambda L: (-1, 1),
        "min only": lambda L: (float(lo), None),
        "max only": lambda L: (None, float(hi)),
        "tensors": lambda L: (L.tensor(row), L.tensor(col)),
        "float64 tensor min": lambda L: (L.tensor(row, dtype=L.float64), None),
        "0-d tensor max": lambda L: (None, L.tensor(float(hi))),
    }[kind]


KINDS = ["numbers", "ints", "min only", "max only", "tensors", "float64 tensor min", "0-d tensor max"]


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("x_dtype", ["float32", "int64"])
@pytest.mark.parametrize("out_dtype", DTYPES)
def test_dtype_rules(function, kind, x_dtype, out_dtype):
    rng = np.random.default_rng([5, KINDS.index(kind), DTYPES.index(out_dtype), len(x_dtype)])
    x = rng.uniform(-3, 3, (3, 4)).round(1)
    bounds = _bounds(rng, kind)

    def run(L):
        out = L.empty((3, 4), dtype=_dtype(L, out_dtype))
        return getattr(L, function)(L.tensor(x, dtype=_dtype(L, x_dtype)), *bounds(L), out=out), out

    expected, got = _outcome(run)
    assert got == expected


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("out_shape", [(0,), (3, 4), (5,), (2, 3, 4), ()], ids=str)
def test_resize(function, out_shape):
    rng = np.random.default_rng([9, len(out_shape)])
    x = rng.standard_normal((3, 4))

    def run(L):
        out = L.zeros(out_shape, dtype=L.float64)
        return getattr(L, function)(L.tensor(x), -0.5, 0.5, out=out), out

    expected, got = _outcome(run)
    assert got == expected
    assert got[0] == "ok" and bool(got[-1]) == (out_shape not in ((0,), (3, 4)))


def test_strided_out_written_in_place():
    """An ``out`` of the right shape is written where it is: a transposed view, through to its base."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4))
    bases = []
    for L in (torch, distnn):
        base = L.zeros((4, 3), dtype=L.float64)
        assert L.clamp(L.tensor(x), -0.3, 0.3, out=base.t()) is not None
        bases.append(_np(base))
    np.testing.assert_array_equal(bases[1], bases[0])


def test_out_is_input():
    rng = np.random.default_rng(6)
    x = rng.standard_normal(5)
    values = []
    for L in (torch, distnn):
        t = L.tensor(x)
        assert L.clamp(t, -0.2, 0.4, out=t) is t
        values.append(_np(t))
    np.testing.assert_array_equal(values[1], values[0])


GRAD_CASES = {
    "input": lambda L, x: (x.requires_grad_(), (-1.0, 1.0), L.empty(0)),
    "out": lambda L, x: (x, (-1.0, 1.0), L.empty(0, requires_grad=True)),
    "tensor bound": lambda L, x: (x, (L.tensor([-1.0], requires_grad=True), L.tensor([1.0])), L.empty(0)),
    "input, no bound": lambda L, x: (x.requires_grad_(), (None, None), L.empty(0)),
    "input, wrong dtype": lambda L, x: (x.requires_grad_(), (-1.0, 1.0), L.empty(0, dtype=L.float64)),
}


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("case", GRAD_CASES)
@pytest.mark.parametrize("grad_mode", [True, False])
def test_requires_grad(function, case, grad_mode):
    """Refused in grad mode (before the bound and dtype checks: autograd's wrapper runs first); taken under
    no_grad, with no graph."""
    rng = np.random.default_rng([2, len(case), grad_mode])
    x = rng.standard_normal(4)

    def run(L):
        t, bounds, out = GRAD_CASES[case](L, L.tensor(x))
        with L.set_grad_enabled(grad_mode):
            result = getattr(L, function)(t, *bounds, out=out)
        assert result.grad_fn is None
        return result, out

    expected, got = _outcome(run)
    assert got == expected


ORDER_CASES = {  # PyTorch's parser, then autograd, then the op, then the kernel
    "out a list": lambda L: (L.tensor([1.0]), (-1, 1), [1]),
    "out a list, no bound": lambda L: (L.tensor([1.0]), (None, None), [1]),
    "out a number, tensor beside number": lambda L: (L.tensor([1.0]), (L.tensor([0.0]), 1), 3),
    "tensor beside number": lambda L: (L.tensor([1.0]), (L.tensor([0.0]), 1), L.empty(0)),
    "tensor beside number, out requires grad": lambda L: (L.tensor([1.0]), (L.tensor([0.0]), 1),
                                                          L.empty(0, requires_grad=True)),
    "string bound": lambda L: (L.tensor([1.0]), ("a", None), L.empty(0)),
    "no bound, wrong dtype": lambda L: (L.tensor([1.0]), (None, None), L.empty(0, dtype=L.int64)),
    "bool, float out": lambda L: (L.tensor([True, False]), (True, False), L.empty(0)),
    "bool, bool out": lambda L: (L.tensor([True, False]), (True, False), L.empty(0, dtype=L.bool)),
    "bool tensors, bool out": lambda L: (L.tensor([True]), (L.tensor([False]), L.tensor([True])),
                                         L.empty(0, dtype=L.bool)),
    "int tensors, bool out": lambda L: (L.tensor([3]), (L.tensor([0]), None), L.empty(0, dtype=L.bool)),
}


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("case", ORDER_CASES)
def test_error_order_and_messages(function, case):
    def run(L):
        x, bounds, out = ORDER_CASES[case](L)
        return getattr(L, function)(x, *bounds, out=out), out

    expected, got = _outcome(run)
    assert expected[0] == "error"
    assert got == expected


def test_out_none_is_the_plain_call():
    rng = np.random.default_rng(8)
    x = rng.standard_normal(6)
    grads = []
    for L in (torch, distnn):
        t = L.tensor(x, requires_grad=True)
        y = L.clamp(t, -0.5, 0.5, out=None)
        assert y.grad_fn.name() == "ClampBackward1"
        y.sum().backward()
        grads.append(_np(t.grad))
    np.testing.assert_array_equal(grads[1], grads[0])
