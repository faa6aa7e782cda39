"""``out=`` on ``abs``, ``sqrt``, ``where`` and ``linalg.matmul`` against PyTorch 2.13: the values written into
``out`` (bitwise) and ``out`` returned, each op's dtype rule (``abs``: ``out`` of the input's dtype only, but a
complex input's real result cast where ``canCast`` allows; ``sqrt``: the floating result cast where ``canCast``
allows; ``where``: ``out`` of the operands' promoted dtype only, checked before the condition's dtype;
``linalg.matmul``: ``matmul``'s), the resize (warning at the caller's line), the overlap rules of a pointwise op
(an expanded ``out`` and a partly overlapping one refused, exact aliasing allowed), the refusal of ``out=`` while
an argument requires grad, and operands or ``out`` that are not Tensors. Each case runs the same code in torch and
in distnn and compares the outcome (:mod:`torch_outcome`)."""
import numpy as np
import pytest
from torch_outcome import both

VALUES = np.array([[1.5, 2.5, -3.5], [4.0, 0.25, 6.25]])
DTYPES = ["float32", "float64", "float16", "int64", "int32", "bool", "complex64"]
OPS = {
    "abs": lambda L, x, out: L.abs(x, out=out),
    "sqrt": lambda L, x, out: L.sqrt(x, out=out),
    "where": lambda L, x, out: L.where(x.real > 2 if x.is_complex() else x > 2, x, L.zeros_like(x), out=out),
    "where broadcast": lambda L, x, out: L.where(x.real > 2 if x.is_complex() else x > 2, x, L.ones(3, dtype=x.dtype),
                                                 out=out),
}


def _input(L, dtype, op=""):
    # (sqrt's NaN at a negative number has PyTorch's sign, bit clear: compared bitwise too; but a float16 input's,
    # which PyTorch's loop casting into a float32 out gives as 0x7fffffff, is left out: non-negative values)
    values = np.abs(VALUES) if op == "sqrt" and dtype == "float16" else VALUES
    return L.tensor(values.astype(dtype) if dtype != "bool" else values > 2)


@pytest.mark.parametrize("op,in_dtype", [(op, dtype) for op in OPS for dtype in DTYPES])
@pytest.mark.parametrize("out_dtype", DTYPES)
def test_dtype_rules_and_values(op, in_dtype, out_dtype):
    def run(L):
        out = L.zeros(2, 3, dtype=getattr(L, out_dtype))
        return OPS[op](L, _input(L, in_dtype, op), out), out

    expected, got = both(run)
    assert got == expected


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("out_shape", [(0,), (5,), (3, 2), (2, 3), ()])
def test_resize(op, out_shape):
    def run(L):
        out = L.zeros(out_shape)
        return OPS[op](L, _input(L, "float32", op), out), out

    expected, got = both(run)
    assert got == expected


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("how", ["alias", "partial", "expanded", "strided"])
def test_overlap(op, how):
    def run(L):
        base = L.tensor(np.abs(VALUES).astype("float32").ravel().repeat(2))  # (12,)
        x = base[:6].view(2, 3)
        if how == "alias":
            out = x
        elif how == "partial":  # (both dense: PyTorch decides the overlap, and refuses it)
            out = base[3:9].view(2, 3)
        elif how == "expanded":
            out = L.zeros(3).expand(2, 3)
        else:
            out = L.zeros(2, 6)[:, ::2]
        OPS[op](L, x, out)
        return out, base

    expected, got = both(run)
    assert got == expected


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("who", ["input", "out"])
def test_refused_while_an_argument_requires_grad(op, who):
    def run(L):
        x = _input(L, "float32").requires_grad_(who == "input")
        out = L.zeros(2, 3, requires_grad=who == "out")
        return OPS[op](L, x, out), out

    expected, got = both(run)
    assert expected[0] == "error" and got == expected


@pytest.mark.parametrize("op", OPS)
def test_out_not_a_tensor(op):
    expected, got = both(lambda L: OPS[op](L, _input(L, "float32"), [1.0]))
    assert expected[0] == "error" and got == expected


@pytest.mark.parametrize("case", ["number other", "number input", "int condition", "condition is out"])
def test_where_argument_refusals(case):
    def run(L):
        x = _input(L, "float32")
        out = L.zeros(2, 3)
        if case == "number other":
            return L.where(x > 2, x, 0.0, out=out)
        if case == "number input":
            return L.where(x > 2, 0.0, x, out=out)
        if case == "int condition":
            return L.where((x > 2).long(), x, x, out=out)
        condition = x > 2
        return L.where(condition, x, x, out=condition)

    expected, got = both(run)
    assert expected[0] == "error" and got == expected


LINALG = {"mm": ((2, 3), (3, 2)), "mv": ((2, 3), (3,)), "vm": ((3,), (3, 2)), "dot": ((3,), (3,)),
          "batched": ((2, 2, 3), (2, 3, 2)), "mismatch": ((2, 3), (2, 3))}


@pytest.mark.parametrize("case", LINALG)
@pytest.mark.parametrize("out_dtype", ["float32", "float64"])
@pytest.mark.parametrize("out_shape", [(0,), (2, 2), (4,)])
def test_linalg_matmul(case, out_dtype, out_shape):
    def run(L):
        a_shape, b_shape = LINALG[case]
        a = L.arange(float(np.prod(a_shape))).reshape(a_shape)
        b = L.arange(float(np.prod(b_shape))).reshape(b_shape) - 2
        out = L.zeros(out_shape, dtype=getattr(L, out_dtype))
        return L.linalg.matmul(a, b, out=out), out

    expected, got = both(run)
    assert got == expected


@pytest.mark.parametrize("case", ["out list", "input list", "grad"])
def test_linalg_matmul_refusals(case):
    def run(L):
        a = L.ones(2, 2, requires_grad=case == "grad")
        if case == "out list":
            return L.linalg.matmul(a, a, out=[1])
        if case == "input list":
            return L.linalg.matmul([1.0], a, out=L.zeros(2))
        return L.linalg.matmul(a, a, out=L.zeros(2, 2))

    expected, got = both(run)
    assert expected[0] == "error" and got == expected
