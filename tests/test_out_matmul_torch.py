"""``matmul(a, b, out=t)`` against PyTorch 2.13, in each of matmul's shape cases (vector . vector, matrix @ vector,
vector @ matrix, matrix @ matrix, batched, batched with broadcasting, batch @ vector, vector @ batch): the values
written and ``out`` returned, the dtype refusals (no cast: each kernel's wording), the resize (and its warning at
the caller's line, vector @ matrix's included), ``out``'s strides kept, the refusal of ``out=`` while an argument
requires grad, an expanded ``out`` refused and an ``out`` that is an input allowed, ``out`` keyword only, and the
order of the checks. Each case runs the same code in torch and in distnn and compares the outcome."""
import warnings

import numpy as np
import pytest
import torch
from torch_outcome import both

import distnn

CASES = {"dot": ((3,), (3,)), "mv": ((2, 3), (3,)), "vm": ((3,), (3, 2)), "mm": ((2, 3), (3, 4)),
         "batched": ((5, 2, 3), (5, 3, 4)), "broadcast": ((2, 1, 2, 3), (5, 3, 4)),
         "batch mv": ((4, 2, 3), (3,)), "vector batch": ((3,), (4, 3, 2))}
RESULT = {"dot": (), "mv": (2,), "vm": (2,), "mm": (2, 4), "batched": (5, 2, 4), "broadcast": (2, 5, 2, 4),
          "batch mv": (4, 2), "vector batch": (4, 2)}
DTYPES = ["float16", "float32", "float64", "int64", "complex64"]


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _outcome(run):
    """``run(L)`` in torch and in distnn (:func:`torch_outcome.both`): the result's and out's states (strides
    included), out returned and the warnings (category, text and the file they point at), or the error's type
    and message."""
    return both(run, strides=True)


def _operands(case, seed, integral=True):
    """The case's two operands as numpy arrays: small integers (exact sums in any order: comparable with torch
    bitwise) or, without ``integral``, floats."""
    rng = np.random.default_rng(seed)
    a_shape, b_shape = CASES[case]
    if integral:
        return rng.integers(-4, 5, a_shape).astype(np.float64), rng.integers(-4, 5, b_shape).astype(np.float64)
    return rng.standard_normal(a_shape), rng.standard_normal(b_shape)


def _t(L, x, dtype):
    return L.tensor(x, dtype=getattr(L, dtype))


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("in_dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("out_dtype", DTYPES)
@pytest.mark.parametrize("out_shape", ["right", "empty"])
def test_dtype_rules_and_values(case, in_dtype, out_dtype, out_shape):
    """``out`` of the inputs' dtype takes the product (bitwise as torch's); any other dtype is refused in the
    wording of the case's kernel (which, for a 2-D mv, depends on whether ``out`` has the result's shape)."""
    x, y = _operands(case, [list(CASES).index(case), len(in_dtype), DTYPES.index(out_dtype)])

    def run(L):
        out = L.empty(RESULT[case] if out_shape == "right" else (0,), dtype=getattr(L, out_dtype))
        return L.matmul(_t(L, x, in_dtype), _t(L, y, in_dtype), out=out), out

    expected, got = _outcome(run)
    assert got == expected


def _out_shapes(case):
    shapes = {"right": RESULT[case], "empty": (0,), "seven": (7,), "bigger": (3, 5, 2, 5)}
    if case == "vm":
        shapes["row"] = (1, 2)
    return shapes


@pytest.mark.parametrize("case,shape", [(case, shape) for case in CASES for shape in _out_shapes(case)])
def test_resize_and_warning(case, shape):
    """An ``out`` of another shape is resized (warning at the caller's line when it had elements); vector @ matrix
    warns even for an ``out`` of the result's shape and not for a (1, n) one, as PyTorch's."""
    x, y = _operands(case, [len(case), len(shape)])

    def run(L):
        out = L.zeros(_out_shapes(case)[shape])
        return L.matmul(_t(L, x, "float32"), _t(L, y, "float32"), out=out), out

    expected, got = _outcome(run)
    assert got == expected
    assert got[0] == "ok" and all(filename == __file__ for *_, filename in got[-1])


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_values_bitwise_as_without_out(case, dtype):
    """Float operands: ``out`` holds distnn's product without ``out=`` bitwise, and torch's within rounding (the
    summation order differs in the last bit)."""
    x, y = _operands(case, [len(case), len(dtype)], integral=False)
    a, b = _t(distnn, x, dtype), _t(distnn, y, dtype)
    out = distnn.empty(0, dtype=getattr(distnn, dtype))
    assert distnn.matmul(a, b, out=out) is out
    assert _np(out).tobytes() == np.ascontiguousarray(_np(distnn.matmul(a, b))).tobytes()
    expected = _np(torch.matmul(_t(torch, x, dtype), _t(torch, y, dtype)))
    np.testing.assert_allclose(_np(out), expected, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-6)


@pytest.mark.parametrize("case", ["dot", "mv", "vm", "mm", "broadcast"])
@pytest.mark.parametrize("which", ["input", "out"])
def test_refused_while_an_argument_requires_grad(case, which):
    """No ``out=`` in grad mode while ``a`` or ``out`` requires grad; under ``no_grad`` it is fine."""
    x, y = _operands(case, 1)

    def run(L, grad=True):
        a, b = _t(L, x, "float32"), _t(L, y, "float32")
        out = L.empty(RESULT[case])
        (a if which == "input" else out).requires_grad_()
        if grad:
            return L.matmul(a, b, out=out), out
        with L.no_grad():
            return L.matmul(a, b, out=out), out

    expected, got = _outcome(run)
    assert got == expected and got[0] == "error"
    expected, got = _outcome(lambda L: run(L, grad=False))
    assert got == expected and got[0] == "ok"


def test_out_must_be_a_tensor_and_a_keyword():
    x, y = _operands("mm", 2)
    expected, got = _outcome(lambda L: (L.matmul(_t(L, x, "float32"), _t(L, y, "float32"), out=[1]), None))
    assert got == expected
    for L in (torch, distnn):
        with pytest.raises(TypeError):
            L.matmul(_t(L, x, "float32"), _t(L, y, "float32"), L.empty(2, 4))


@pytest.mark.parametrize("shapes", [((2, 3), (4, 5)), ((2, 3), (4,)), ((5, 2, 3), (5, 4, 5)), ((3,), (4,)),
                                    ((3,), (4, 2))], ids=str)
@pytest.mark.parametrize("out_dtype", ["float32", "float64"])
def test_shape_check_before_or_after_dtype(shapes, out_dtype):
    """Mismatched shapes and a wrong ``out`` dtype together: the matrix kernels refuse the shapes first, ``dot``
    the dtype first. Which check wins is compared; distnn's shape refusal is its own matmul's (a ValueError, in
    its words), which ``out=`` does not change."""
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    expected, got = _outcome(lambda L: (L.matmul(_t(L, x, "float32"), _t(L, y, "float32"),
                                                 out=L.empty(0, dtype=getattr(L, out_dtype))), None))
    assert got[0] == expected[0] == "error"
    assert got[1] == expected[1] or (got[1], expected[1]) == ("ValueError", "RuntimeError")
    dtype_refusal = ("dtype" in expected[2], "dtype" in got[2])
    assert dtype_refusal[0] == dtype_refusal[1]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("out_dtype", ["float64", "float32", "float16"])
def test_mixed_input_dtypes(case, out_dtype):
    """float64 @ float32: refused, in the words and order of the case's kernel (``out`` against one input's dtype,
    the inputs against each other)."""
    x, y = _operands(case, 4)
    expected, got = _outcome(lambda L: (L.matmul(_t(L, x, "float64"), _t(L, y, "float32"),
                                                 out=L.empty(0, dtype=getattr(L, out_dtype))), None))
    assert got == expected and got[0] == "error"


def test_expanded_out_refused_and_input_as_out_allowed():
    x, y = _operands("mm", 5)
    expected, got = _outcome(lambda L: (L.matmul(_t(L, x, "float32"), _t(L, y, "float32"),
                                                 out=L.empty(4).expand(2, 4)), None))
    assert got == expected and got[0] == "error"
    # (out as an input: distnn writes the product computed before; PyTorch 2.13's CPU mm zeroes out first and
    # returns zeros for A @ A into A, so distnn is compared with its own product without out=)
    a = distnn.tensor(np.arange(9.0).reshape(3, 3), dtype=distnn.float32)
    product = _np(distnn.matmul(a, a)).copy()
    assert distnn.matmul(a, a, out=a) is a
    assert _np(a).tobytes() == product.tobytes()


def test_out_of_the_right_shape_keeps_its_strides():
    x, y = _operands("mm", 6)

    def run(L):
        out = L.zeros(4, 2).t()
        return L.matmul(_t(L, x, "float32"), _t(L, y, "float32"), out=out), out

    expected, got = _outcome(run)
    assert got == expected and got[3][2] == (1, 2)


def test_view_out_writes_its_base():
    """An empty view of a larger tensor is resized on its base's storage: the product lands there."""
    x, y = _operands("mm", 7)

    def run(L):
        base = L.zeros(12)
        L.matmul(_t(L, x, "float32"), _t(L, y, "float32"), out=base[2:2])
        return base, None

    expected, got = _outcome(run)
    assert got == expected


@pytest.mark.parametrize("in_dtypes", [("float32", "float32"), ("float64", "float32")], ids=str)
@pytest.mark.parametrize("out_dtype", ["float64", "float16"])
def test_batch_times_vector_resizes_out_before_refusing(in_dtypes, out_dtype):
    """A batch @ vector refused for its dtypes has resized ``out`` (with the warning) first, as PyTorch's."""
    x, y = _operands("batch mv", 9)
    seen = []
    for L in (torch, distnn):
        out = L.zeros(7, dtype=getattr(L, out_dtype))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(RuntimeError) as error:
                L.matmul(_t(L, x, in_dtypes[0]), _t(L, y, in_dtypes[1]), out=out)
        seen.append((str(error.value), tuple(out.shape), [str(w.message).split(" (Triggered")[0] for w in caught]))
    assert seen[1] == seen[0] and seen[0][1] == (4, 2) and len(seen[0][2]) == 1


NAMED = {"dot": ((3,), (3,), ()), "mv": ((2, 3), (3,), (2,)), "mm": ((2, 3), (3, 4), (2, 4)),
         "bmm": ((5, 2, 3), (5, 3, 4), (5, 2, 4))}


def _named_operands(op, seed, a_dtype="float32", b_dtype="float32"):
    rng = np.random.default_rng(seed)
    a_shape, b_shape, _ = NAMED[op]
    x, y = rng.integers(-4, 5, a_shape).astype(np.float64), rng.integers(-4, 5, b_shape).astype(np.float64)
    return lambda L: (_t(L, x, a_dtype), _t(L, y, b_dtype))


@pytest.mark.parametrize("op", list(NAMED))
@pytest.mark.parametrize("a_dtype,b_dtype", [("float32", "float32"), ("float64", "float64"), ("int64", "int64"),
                                             ("float64", "float32")], ids=str)
@pytest.mark.parametrize("out_dtype", ["float16", "float32", "float64", "int64"])
@pytest.mark.parametrize("out_shape", ["right", "empty", "seven"])
def test_named_products(op, a_dtype, b_dtype, out_dtype, out_shape):
    """``dot``, ``mv``, ``mm``, ``bmm`` with ``out=``: values, ``out`` returned, the resize and its warning, and
    each one's dtype refusals (mixed inputs included), as PyTorch's."""
    operands = _named_operands(op, [len(op), len(a_dtype), len(out_dtype), len(out_shape)], a_dtype, b_dtype)
    shape = {"right": NAMED[op][2], "empty": (0,), "seven": (7,)}[out_shape]

    def run(L):
        out = L.zeros(shape, dtype=getattr(L, out_dtype))
        return getattr(L, op)(*operands(L), out=out), out

    expected, got = _outcome(run)
    assert got == expected


@pytest.mark.parametrize("op", list(NAMED))
def test_named_refusals_of_grad_and_of_a_non_tensor_out(op):
    operands = _named_operands(op, 8)

    def with_grad(L):
        a, b = operands(L)
        return getattr(L, op)(a.requires_grad_(), b, out=L.empty(NAMED[op][2])), None

    expected, got = _outcome(with_grad)
    assert got == expected and got[0] == "error"
    expected, got = _outcome(lambda L: (getattr(L, op)(*operands(L), out=[1]), None))
    assert got == expected and got[1] == "TypeError"


@pytest.mark.parametrize("op", ["matmul", "mm"])
def test_out_is_not_autocast(op):
    """Under autocast the ``out=`` forms are not in the float16 list: the product stays in the inputs' dtype."""
    x, y = _operands("mm", 10)

    def run(L):
        out = L.empty(0)
        with L.autocast("cpu", dtype=L.float16):
            return getattr(L, op)(_t(L, x, "float32"), _t(L, y, "float32"), out=out), out

    expected, got = _outcome(run)
    assert got == expected and got[1][0] == "float32"


@pytest.mark.parametrize("op", ["matmul", *NAMED])
def test_operands_must_be_tensors(op):
    shapes = NAMED.get(op, NAMED["mm"])

    def run(L, first):
        a, b = np.ones(shapes[0]), L.ones(shapes[1])
        a, b = (a, b) if first else (L.tensor(a), b.numpy())
        return getattr(L, op)(a, b, out=L.empty(0)), None

    for first in (True, False):
        expected, got = _outcome(lambda L: run(L, first))
        assert got == expected and got[1] == "TypeError"
