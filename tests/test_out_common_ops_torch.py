"""``out=`` on the common ops (add, sub, mul, div, exp, log, sigmoid, tanh, cat/concat, stack) against PyTorch
2.13: the values written into ``out`` (bitwise) and ``out`` itself returned, the dtype rules (the result cast
into ``out`` where PyTorch's ``canCast`` allows it, else PyTorch's refusal), an empty ``out`` resized silently and
one with elements resized with PyTorch's warning at the caller's line, ``out``'s strides kept when its shape is
right, the refusal of ``out=`` while an argument requires grad in grad mode, the overlap refusals (pointwise ops:
partial overlap and an expanded ``out``, exact aliasing allowed; cat/stack: any overlap), ``out`` keyword only,
and the order of the checks. Each case runs the same code in torch and in distnn and compares the outcome."""
import warnings

import numpy as np
import pytest
import torch

import distnn

DTYPES = ["float16", "float32", "float64", "int32", "int64", "bool", "complex64"]
IN_DTYPES = ["float32", "float64", "int64", "bool"]

POINTWISE = {
    "add": lambda L, a, b, out: L.add(a, b, out=out),
    "add alpha": lambda L, a, b, out: L.add(a, b, alpha=2, out=out),
    "sub": lambda L, a, b, out: L.sub(a, b, out=out),
    "mul": lambda L, a, b, out: L.mul(a, b, out=out),
    "mul number": lambda L, a, b, out: L.mul(a, 3, out=out),
    "div": lambda L, a, b, out: L.div(a, b, out=out),
    "div floor": lambda L, a, b, out: L.div(a, b, rounding_mode="floor", out=out),
    "div trunc": lambda L, a, b, out: L.div(a, b, rounding_mode="trunc", out=out),
    "exp": lambda L, a, b, out: L.exp(a, out=out),
    "log": lambda L, a, b, out: L.log(a, out=out),
    "sigmoid": lambda L, a, b, out: L.sigmoid(a, out=out),
    "tanh": lambda L, a, b, out: L.tanh(a, out=out),
    "multiply": lambda L, a, b, out: L.multiply(a, b, out=out),
    "subtract": lambda L, a, b, out: L.subtract(a, b, alpha=2, out=out),
    "divide": lambda L, a, b, out: L.divide(a, b, out=out),
    "divide floor": lambda L, a, b, out: L.divide(a, b, rounding_mode="floor", out=out),
    "neg": lambda L, a, b, out: L.neg(a, out=out),
    "negative": lambda L, a, b, out: L.negative(a, out=out),
    "pow": lambda L, a, b, out: L.pow(a, b, out=out),
    "pow number": lambda L, a, b, out: L.pow(a, 2, out=out),
    "maximum": lambda L, a, b, out: L.maximum(a, b, out=out),
    "minimum": lambda L, a, b, out: L.minimum(a, b, out=out),
}
JOINS = {
    "cat": lambda L, a, b, out: L.cat([a, b], out=out),
    "cat dim 1": lambda L, a, b, out: L.cat([a, b], 1, out=out),
    "concat": lambda L, a, b, out: L.concat([a, b], dim=0, out=out),
    "stack": lambda L, a, b, out: L.stack([a, b], out=out),
    "stack dim 2": lambda L, a, b, out: L.stack([a, b], dim=2, out=out),
}
OPS = {**POINTWISE, **JOINS}
EXACT_DTYPE = ("neg", "negative")  # (out of the result's dtype only)
UNARY = ("exp", "log", "sigmoid", "tanh", "neg", "negative", "mul number", "pow number")
TRANSCENDENTAL = ("exp", "log", "sigmoid", "tanh", "pow")  # (their values compared within an ulp or two)
NAMES = {"concat": "cat", "multiply": "mul", "subtract": "sub", "divide": "div", "divide floor": "div",
         "negative": "neg", "pow number": "pow", "add alpha": "add", "mul number": "mul", "div floor": "div",
         "div trunc": "div", "cat dim 1": "cat"}  # (the name autograd's refusal gives)


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


class _Values:
    """An array's values, equal to another's bitwise, or within ``ulp`` float32 units in the last place (relative):
    numpy's exp, log and tanh and PyTorch's vectorised ones differ by an ulp or two on some inputs, with or
    without ``out=``."""

    def __init__(self, values, ulp):
        self.values, self.ulp = np.ascontiguousarray(values), ulp

    def __eq__(self, other):
        a, b = self.values, other.values
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.tobytes() == b.tobytes():
            return True
        if not max(self.ulp, other.ulp) or a.dtype.kind not in "fc":
            return False
        # (relative to float32's epsilon: a float32 result cast into a wider out keeps its float32 ulp)
        return bool(np.allclose(a, b, rtol=max(self.ulp, other.ulp) * np.finfo(np.float32).eps, atol=0))

    def __repr__(self):
        return f"_Values({self.values!r})"


def _state(t, ulp=0):
    """A tensor's dtype, shape, strides and values (bitwise, or within ``ulp``)."""
    return str(t.dtype).split(".")[-1], tuple(t.shape), tuple(t.stride()), _Values(_np(t), ulp)


def _outcome(run, ulp=0):
    """``run(L)`` in torch and in distnn: (the result's and out's states, out returned, the warnings with the file
    they point at) or the error's type and message."""
    seen = []
    for L in (torch, distnn):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result, out, *others = run(L)
                seen.append(("ok", _state(result, ulp), result is out, _state(out, ulp),
                             [_state(o, ulp) for o in others],
                             [(w.category.__name__, _text(w), w.filename) for w in caught]))
            except Exception as error:  # noqa: BLE001 - the exception is what is compared
                # (torch names its CPU kernel in a dtype refusal: distnn's op, without out=, words it so)
                seen.append(("error", _builtin_kind(error), str(error).replace('_cpu"', '"')))
    return seen


def _builtin_kind(error) -> str:
    """The built-in exception class an error is (distnn's ShapeError is a RuntimeError, as PyTorch's)."""
    return next(c.__name__ for c in type(error).__mro__ if c.__module__ == "builtins")


def _text(w) -> str:
    """A warning's message without the C++ source line PyTorch appends."""
    return str(w.message).split(" (Triggered internally at")[0]


def _inputs(rng, shape=(3, 4)):
    """Two operands: positive (log's domain without NaN), the second away from zero (division)."""
    return rng.uniform(0.1, 5, shape).round(2), rng.uniform(1, 4, shape).round(2) * rng.choice([-1, 1], shape)


def _ulp(op) -> int:
    return 2 if op in TRANSCENDENTAL else 0


def _make(L, x, dtype):
    return L.tensor(x.astype(dtype) if dtype == "bool" else x, dtype=getattr(L, dtype))


def _result_shape(op):
    return {"cat": (6, 4), "cat dim 1": (3, 8), "concat": (6, 4), "stack": (2, 3, 4), "stack dim 2": (3, 4, 2)
            }.get(op, (3, 4))


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("in_dtype", IN_DTYPES)
@pytest.mark.parametrize("out_dtype", DTYPES)
def test_dtype_rules_and_values(op, in_dtype, out_dtype):
    """Every input dtype into every out dtype: the values cast (bitwise), or PyTorch's refusal of the cast (or of
    the op: a bool subtraction)."""
    if op.startswith("pow") and in_dtype == "bool":  # (found here, left for pow's owner)
        pytest.skip("distnn's pow of a bool tensor gives int8 where PyTorch's refuses it (by a tensor) or gives "
                    "int64 (by a number), with or without out=")
    rng = np.random.default_rng([list(OPS).index(op), IN_DTYPES.index(in_dtype), DTYPES.index(out_dtype)])
    x, y = _inputs(rng)

    def run(L):
        out = L.empty(_result_shape(op), dtype=getattr(L, out_dtype))
        return OPS[op](L, _make(L, x, in_dtype), _make(L, y, in_dtype), out), out

    expected, got = _outcome(run, _ulp(op))
    assert got == expected


WITHOUT_OUT = {
    "add": lambda a, b: distnn.add(a, b), "add alpha": lambda a, b: distnn.add(a, b, alpha=2),
    "sub": lambda a, b: distnn.sub(a, b), "mul": lambda a, b: distnn.mul(a, b),
    "mul number": lambda a, b: distnn.mul(a, 3), "div": lambda a, b: distnn.div(a, b),
    "div floor": lambda a, b: distnn.div(a, b, rounding_mode="floor"),
    "div trunc": lambda a, b: distnn.div(a, b, rounding_mode="trunc"),
    "exp": lambda a, b: distnn.exp(a), "log": lambda a, b: distnn.log(a), "sigmoid": lambda a, b: distnn.sigmoid(a),
    "tanh": lambda a, b: distnn.tanh(a), "multiply": lambda a, b: distnn.multiply(a, b),
    "subtract": lambda a, b: distnn.subtract(a, b, alpha=2), "divide": lambda a, b: distnn.divide(a, b),
    "divide floor": lambda a, b: distnn.divide(a, b, rounding_mode="floor"), "neg": lambda a, b: distnn.neg(a),
    "negative": lambda a, b: distnn.negative(a), "pow": lambda a, b: distnn.pow(a, b),
    "pow number": lambda a, b: distnn.pow(a, 2), "maximum": lambda a, b: distnn.maximum(a, b),
    "minimum": lambda a, b: distnn.minimum(a, b), "cat": lambda a, b: distnn.cat([a, b]),
    "cat dim 1": lambda a, b: distnn.cat([a, b], 1), "concat": lambda a, b: distnn.concat([a, b]),
    "stack": lambda a, b: distnn.stack([a, b]), "stack dim 2": lambda a, b: distnn.stack([a, b], 2),
}


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("in_dtype", ["float16", "float32", "float64", "int64"])
@pytest.mark.parametrize("out_dtype", ["float16", "float32", "float64", "complex64"])
def test_values_bitwise_as_without_out(op, in_dtype, out_dtype):
    """What lands in ``out`` is, bitwise, the op's result without ``out=`` cast to ``out``'s dtype (the
    transcendental ops included, which differ from PyTorch's by an ulp in places)."""
    if op in EXACT_DTYPE and out_dtype != in_dtype:
        pytest.skip("out must have the result's dtype: test_dtype_rules_and_values has the refusal")
    rng = np.random.default_rng([list(OPS).index(op), len(in_dtype), len(out_dtype)])
    x, y = _inputs(rng)
    a, b = distnn.tensor(x, dtype=getattr(distnn, in_dtype)), distnn.tensor(y, dtype=getattr(distnn, in_dtype))
    out = distnn.empty(0, dtype=getattr(distnn, out_dtype))
    expected = _np(WITHOUT_OUT[op](a, b)).astype(out_dtype)
    assert OPS[op](distnn, a, b, out) is out
    assert _np(out).dtype == expected.dtype and _np(out).tobytes() == expected.tobytes()


@pytest.mark.parametrize("op", ["add", "mul", "div", "sub", "cat", "stack"])
@pytest.mark.parametrize("dtypes", [("int64", "float32"), ("float32", "float64"), ("int32", "int64")], ids=str)
@pytest.mark.parametrize("out_dtype", ["float32", "int64", "float16"])
def test_mixed_input_dtypes(op, dtypes, out_dtype):
    """The result's dtype is the inputs' promoted one; it is that dtype that must cast into ``out``."""
    rng = np.random.default_rng([len(op), len(dtypes[0]), len(out_dtype)])
    x, y = _inputs(rng)

    def run(L):
        out = L.empty(0, dtype=getattr(L, out_dtype))
        return OPS[op](L, _make(L, x, dtypes[0]), _make(L, y, dtypes[1]), out), out

    expected, got = _outcome(run, _ulp(op))
    assert got == expected


def test_broadcast_into_out():
    rng = np.random.default_rng(3)
    row, col = rng.uniform(-2, 2, 4), rng.uniform(-2, 2, (3, 1))

    def run(L):
        out = L.empty(0, dtype=L.float64)
        # (alpha=2: an exact product, so PyTorch's fma and the scalar loop it runs a short broadcast row in, which
        # rounds some elements twice, agree: see distnn.functional.scaled_sum)
        return L.add(L.tensor(row), L.tensor(col), alpha=2, out=out), out

    expected, got = _outcome(run)
    assert got == expected


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("out_shape", [(0,), "right", (5,), (2, 3, 4, 1), ()], ids=str)
@pytest.mark.parametrize("out_dtype", ["float32", "float64"])
def test_resize(op, out_shape, out_dtype):
    """An ``out`` of the result's shape is written in place; an empty one resized silently; one with elements
    resized with PyTorch's warning, which points at this file (the user's line)."""
    rng = np.random.default_rng([list(OPS).index(op), len(str(out_shape))])
    x, y = _inputs(rng)
    shape = _result_shape(op) if out_shape == "right" else out_shape

    def run(L):
        out = L.full(shape, 7.0, dtype=getattr(L, out_dtype))
        return OPS[op](L, L.tensor(x), L.tensor(y), out), out

    expected, got = _outcome(run, _ulp(op))
    assert got == expected
    if out_shape not in ((0,), "right") and got[0] == "ok":
        assert got[-1] and got[-1][0][2] == __file__


@pytest.mark.parametrize("op", list(OPS))
def test_strided_out_keeps_its_strides(op):
    """An ``out`` of the right shape that is not contiguous (a transpose) keeps its strides; its base sees the
    values."""
    rng = np.random.default_rng([list(OPS).index(op), 11])
    x, y = _inputs(rng)
    shape = _result_shape(op)

    def run(L):
        base = L.zeros(tuple(reversed(shape)), dtype=L.float64)
        out = base.permute(*reversed(range(len(shape))))
        return OPS[op](L, L.tensor(x), L.tensor(y), out), out, base

    expected, got = _outcome(run, _ulp(op))
    assert got == expected


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("who", ["input", "other", "out"])
@pytest.mark.parametrize("grad_mode", [True, False])
def test_autograd_refusal(op, who, grad_mode):
    """``out=`` with an argument (``out`` included) that requires grad is refused in grad mode, under each op's
    name; under no_grad it writes, and ``out`` does not require grad."""
    rng = np.random.default_rng([list(OPS).index(op), len(who)])
    x, y = _inputs(rng)

    def run(L):
        a, b = L.tensor(x, requires_grad=who == "input"), L.tensor(y, requires_grad=who == "other")
        out = L.empty(0, requires_grad=who == "out")
        with L.set_grad_enabled(grad_mode):
            result = OPS[op](L, a, b, out)
        return result, out, L.tensor(float(result.requires_grad))

    expected, got = _outcome(run, _ulp(op))
    assert got == expected
    if grad_mode and not (who == "other" and op in UNARY):
        assert got[2] == f"{NAMES.get(op, op).split()[0]}(): functions with out=... arguments don't support " \
                         "automatic differentiation, but one of the arguments requires grad."


@pytest.mark.parametrize("op", list(OPS))
def test_out_not_a_tensor(op):
    """The parser's TypeError, before autograd's refusal."""
    rng = np.random.default_rng(5)
    x, y = _inputs(rng)
    outcomes = []
    for L in (torch, distnn):
        try:
            OPS[op](L, L.tensor(x, requires_grad=True), L.tensor(y), [1.0])
        except TypeError as error:
            outcomes.append(str(error))
    assert len(outcomes) == 2
    if not op.startswith(("div", "subtract", "pow")):  # (torch's list their overloads: distnn names the argument)
        assert outcomes[0] == outcomes[1]
    assert "out" in outcomes[1] and "list" in outcomes[1]


@pytest.mark.parametrize("rounding_mode", [None, "floor", "trunc"])
@pytest.mark.parametrize("out_dtype", ["int64", "bool", "float32"])
def test_integer_division_by_zero_after_the_dtype_check(rounding_mode, out_dtype):
    """PyTorch refuses ``out``'s dtype before its kernel meets the zero divisor (then its ZeroDivisionError)."""
    def run(L):
        out = L.empty(0, dtype=getattr(L, out_dtype))
        return L.div(L.tensor([3, -4, 5]), L.tensor([1, 0, 2]), rounding_mode=rounding_mode, out=out), out

    expected, got = _outcome(run)
    assert got == expected


@pytest.mark.parametrize("call", [
    lambda L, x, out: L.add(x, x, 1, out),
    lambda L, x, out: L.mul(x, x, out),
    lambda L, x, out: L.exp(x, out),
    lambda L, x, out: L.tanh(x, out),
    lambda L, x, out: L.cat([x, x], 0, out),
    lambda L, x, out: L.stack([x, x], 0, out),
])
def test_out_is_keyword_only(call):
    for L in (torch, distnn):
        with pytest.raises(TypeError):
            call(L, L.ones(3), L.empty(0))


def _overlapping(L, op, case):
    """(result, out, base) of ``op`` with an ``out`` that overlaps an input as ``case`` says."""
    base = L.arange(40, dtype=L.float32) / 8 + 0.5
    a, b = base[:12].view(3, 4), (base[20:32] - 1).view(3, 4)
    if case == "partial":  # (out starts inside a)
        out = base[2:2 + 12 * (2 if op.startswith(("cat", "concat", "stack")) else 1)]
    elif case == "alias":
        out = a
    elif case == "alias, wrong shape":  # (a base of an input: its start, a longer range)
        out = base[:24]
    elif case == "expanded":
        out = L.zeros(1).expand(*_result_shape(op))
    elif case == "strided input":  # (an input not dense: too hard to decide, passes)
        a = base[:24].view(3, 8)[:, ::2]
        out = base[:24]
    else:  # "disjoint"
        out = base[32:40]
    result = OPS[op](L, a, b, out)
    return result, out, base


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("case", ["partial", "alias", "alias, wrong shape", "expanded", "strided input",
                                  "disjoint"])
def test_overlap(op, case):
    """PyTorch's overlap refusals (before the resize), and what lands in memory where there is none."""
    expected, got = _outcome(lambda L: _overlapping(L, op, case), _ulp(op))
    assert got == expected


@pytest.mark.parametrize("op", ["add", "exp", "cat", "stack"])
def test_check_order(op):
    """Autograd before the overlap check before the dtype check, as PyTorch's."""
    def grad_and_dtype(L):
        out = L.empty(0, dtype=L.bool)
        return OPS[op](L, L.ones(3, 4, requires_grad=True), L.ones(3, 4), out), out

    def overlap_and_dtype(L):
        base = L.zeros(40)
        a = base[:12].view(3, 4)
        out = base[1:25].view(L.int32)  # (partly over a, and of a dtype no float result casts into)
        return OPS[op](L, a, L.ones(3, 4), out), out

    for run in (grad_and_dtype, overlap_and_dtype):
        expected, got = _outcome(run)
        assert got == expected
        assert got[0] == "error"


def test_in_place_through_out_is_seen_by_autograd_version():
    """Writing into ``out`` bumps its version: a graph that saved ``out`` refuses its backward, as PyTorch's."""
    seen = []
    for L in (torch, distnn):
        w = L.ones(3, requires_grad=True)
        saved = L.ones(3)
        loss = (w * saved).sum()
        with L.no_grad():
            L.add(L.ones(3), 1, out=saved)
        try:
            loss.backward()
            seen.append("ok")
        except RuntimeError as error:
            seen.append("version" in str(error))
    assert seen[0] == seen[1]
