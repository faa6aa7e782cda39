"""``out=`` on ``sum``, ``mean``, ``prod``, ``amax`` and ``amin`` against PyTorch 2.13: the values written into
``out`` (bitwise) and ``out`` returned, each op's dtype rule (``sum``/``prod`` reduce in ``out``'s dtype, the input
cast first; ``mean`` divides the sum in ``out``'s dtype in place, refusing an integer ``out`` after writing the
sum; ``amax``/``amin`` take ``out`` of the input's dtype only), a ``dtype=`` other than ``out``'s refused, the
resize (warning at the caller's line when ``out`` had elements), ``keepdim``, the refusal of ``out=`` while an
argument requires grad, ``out`` that is not a Tensor, and ``mean``'s refusal of an expanded ``out``. Each case runs
the same code in torch and in distnn and compares the outcome (:mod:`torch_outcome`)."""
import numpy as np
import pytest

import torch
from torch_outcome import both

import distnn

REDUCTIONS = {
    "sum": lambda L, x, out, **kw: L.sum(x, 1, out=out, **kw),
    "sum dims": lambda L, x, out, **kw: L.sum(x, (0, 1), out=out, **kw),
    "sum keepdim": lambda L, x, out, **kw: L.sum(x, 1, keepdim=True, out=out, **kw),
    "mean": lambda L, x, out, **kw: L.mean(x, 1, out=out, **kw),
    "mean all": lambda L, x, out, **kw: L.mean(x, out=out, **kw),
    "mean keepdim": lambda L, x, out, **kw: L.mean(x, 0, keepdim=True, out=out, **kw),
    "prod": lambda L, x, out, **kw: L.prod(x, 1, out=out, **kw),
    "prod keepdim": lambda L, x, out, **kw: L.prod(x, 0, keepdim=True, out=out, **kw),
    "amax": lambda L, x, out, **kw: L.amax(x, 1, out=out, **kw),
    "amax all": lambda L, x, out, **kw: L.amax(x, out=out, **kw),
    "amin": lambda L, x, out, **kw: L.amin(x, 1, out=out, **kw),
    "amin dims keepdim": lambda L, x, out, **kw: L.amin(x, (0, 1), keepdim=True, out=out, **kw),
}
SHAPES = {"sum": (2,), "sum dims": (), "sum keepdim": (2, 1), "mean": (2,), "mean all": (), "mean keepdim": (1, 3),
          "prod": (2,), "prod keepdim": (1, 3), "amax": (2,), "amax all": (), "amin": (2,),
          "amin dims keepdim": (1, 1)}
IN_DTYPES = ["float32", "float64", "float16", "int64", "int32", "bool", "complex64"]
OUT_DTYPES = ["float32", "float64", "float16", "int64", "int32", "uint8", "bool", "complex64"]
# (values whose sums, products and means are exact or rounded once: comparable bitwise in any order)
VALUES = np.array([[1.5, 2.5, -3.5], [4.5, 0.5, 6.0]])


def _input(L, dtype):
    return L.tensor(VALUES.astype(dtype) if dtype != "bool" else VALUES > 2)


def _dtype(L, name):
    return getattr(L, name)


# (amax/amin of a complex tensor: refused by both, with or without out=)
@pytest.mark.parametrize("op,in_dtype", [(op, dtype) for op in REDUCTIONS for dtype in IN_DTYPES])
@pytest.mark.parametrize("out_dtype", OUT_DTYPES)
def test_dtype_rules_and_values(op, in_dtype, out_dtype):
    def run(L):
        out = L.zeros(SHAPES[op], dtype=_dtype(L, out_dtype))
        return REDUCTIONS[op](L, _input(L, in_dtype), out), out

    expected, got = both(run)
    assert got == expected


@pytest.mark.parametrize("op", ["sum", "mean", "prod"])
@pytest.mark.parametrize("dtype,out_dtype", [("float64", "float64"), ("float64", "float32"), ("float16", "float64"),
                                             ("int64", "int64"), ("float32", "int64"), ("complex64", "float32")])
def test_dtype_argument_beside_out(op, dtype, out_dtype):
    def run(L):
        out = L.zeros(SHAPES[op], dtype=_dtype(L, out_dtype))
        return REDUCTIONS[op](L, _input(L, "float32"), out, dtype=_dtype(L, dtype)), out

    expected, got = both(run)
    assert got == expected


@pytest.mark.parametrize("op", REDUCTIONS)
@pytest.mark.parametrize("out_shape", [(0,), (5,), (2, 2), (2,), (2, 1), ()])
def test_resize(op, out_shape):
    def run(L):
        out = L.zeros(out_shape)
        return REDUCTIONS[op](L, _input(L, "float32"), out), out

    expected, got = both(run)
    assert got == expected


@pytest.mark.parametrize("op", REDUCTIONS)
def test_strided_out_of_the_right_shape_is_written_in_place(op):
    def run(L):
        base = L.zeros((*SHAPES[op], 2)) if SHAPES[op] else L.zeros(2)
        out = base[..., 0] if SHAPES[op] else base[0]
        result = REDUCTIONS[op](L, _input(L, "float32"), out)
        return result, base

    expected, got = both(run)
    assert got[0] == expected[0]  # (the error, or the result's state; out is base's view, base is compared)
    if expected[0] == "ok":
        assert got[3] == expected[3]


@pytest.mark.parametrize("op", REDUCTIONS)
@pytest.mark.parametrize("who", ["input", "out"])
def test_refused_while_an_argument_requires_grad(op, who):
    def run(L):
        x = _input(L, "float32").requires_grad_(who == "input")
        out = L.zeros(SHAPES[op], requires_grad=who == "out")
        return REDUCTIONS[op](L, x, out), out

    expected, got = both(run)
    assert expected[0] == "error" and got == expected


@pytest.mark.parametrize("op", REDUCTIONS)
def test_allowed_under_no_grad(op):
    def run(L):
        x = _input(L, "float32").requires_grad_(True)
        out = L.zeros(SHAPES[op])
        with L.no_grad():
            return REDUCTIONS[op](L, x, out), out

    expected, got = both(run)
    assert expected[0] == "ok" and got == expected


@pytest.mark.parametrize("op", [op for op in REDUCTIONS if op != "mean all"])
def test_out_not_a_tensor(op):
    expected, got = both(lambda L: REDUCTIONS[op](L, _input(L, "float32"), [1.0]))
    assert expected[0] == "error" and got == expected


@pytest.mark.parametrize("out_dtype", ["float32", "int64"])
@pytest.mark.parametrize("op", ["mean", "mean keepdim"])
def test_mean_refuses_an_expanded_out(op, out_dtype):
    def run(L):
        out = L.zeros(1, dtype=_dtype(L, out_dtype)).expand(SHAPES[op])
        return REDUCTIONS[op](L, _input(L, "float32"), out), out

    expected, got = both(run)
    assert expected[0] == "error" and got == expected


@pytest.mark.parametrize("op", ["mean", "mean keepdim"])
def test_mean_into_an_integer_out_keeps_the_sum(op):
    """PyTorch's mean is ``sum_out`` then ``div_``: the division refuses an integer ``out``, which holds the
    (truncated inputs') sum."""
    def run(L):
        out = L.zeros(SHAPES[op], dtype=L.int64)
        with pytest.raises(RuntimeError) as caught:
            REDUCTIONS[op](L, _input(L, "float32"), out)
        return str(caught.value), out.tolist()

    expected, got = (run(torch), run(distnn))
    assert got == expected and expected[0] == "result type Float can't be cast to the desired output type Long"
