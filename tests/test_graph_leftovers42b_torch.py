"""The autograd graph as a user sees it, against PyTorch 2.13 (the oracle), continued: ``float_power``'s nodes (a
cast to float64 where needed, then ``pow``'s PowBackward0/1/2), a tensor given to ``hsplit``/``vsplit``/``dsplit``
(read or refused as PyTorch's parser reads it, in the method and the function form), and the names of
``tensor_split``'s and ``narrow``'s slices that keep a whole dim (SliceBackward0, not AliasBackward0)."""
import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

LIBS = (distnn, torch)


def structure(node):
    """A node's name and, recursively, its next_functions' (None for an input without an edge)."""
    if node is None:
        return None
    return node.name(), tuple(structure(n) for n, _ in node.next_functions)


def _values(t):
    return np.asarray(t.detach().numpy() if hasattr(t, "detach") else t)


def _dtype(t):
    return str(t.dtype).replace("torch.", "")


def outcome(call):
    """What ``call()`` gives: ("ok", value) or (exception type name, message)."""
    try:
        return "ok", call()
    except Exception as e:  # noqa: BLE001 - the refusal is what is compared
        return type(e).__name__, str(e)


# ---------------------------------------------------------------- float_power
def _float_power_cases(lib, dtype, ra, rb):
    dt = getattr(lib, dtype)
    a = lib.tensor([0.5, 1.5, 2.0], dtype=dt, requires_grad=ra)
    b = lib.tensor([2.0, 0.5, 3.0], dtype=dt, requires_grad=rb)
    b0 = lib.tensor(2.0, requires_grad=rb)  # (float32 whatever ``dtype``: cast where the base is float64)
    return {"tensor": lambda: lib.float_power(a, b), "method": lambda: a.float_power(b),
            "0-d float32 exponent": lambda: lib.float_power(a, b0), "int exponent": lambda: lib.float_power(a, 2),
            "float exponent": lambda: a.float_power(2.5), "number base": lambda: lib.float_power(2.0, b),
            "int base": lambda: lib.float_power(3, b)}, (a, b, b0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("ra,rb", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("case", list(_float_power_cases(distnn, "float32", True, True)[0]))
def test_float_powers_graph_is_torchs_cast_then_pow(case, dtype, ra, rb):
    def run(lib):
        cases, leaves = _float_power_cases(lib, dtype, ra, rb)
        out = cases[case]()
        grads = None
        if out.requires_grad:
            wanted = [t for t in leaves if t.requires_grad]
            got = lib.autograd.grad(out.sum(), wanted, allow_unused=True)
            grads = [None if g is None else (_dtype(g), _values(g).tolist()) for g in got]
        return structure(out.grad_fn), _dtype(out), _values(out).tolist(), grads

    ours, theirs = (run(lib) for lib in LIBS)
    assert ours[:2] == theirs[:2]
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-15)
    assert (ours[3] is None) == (theirs[3] is None)
    for g, h in zip(ours[3] or (), theirs[3] or ()):
        assert (g is None) == (h is None)
        if g is not None:
            assert g[0] == h[0]
            np.testing.assert_allclose(g[1], h[1], rtol=1e-12)


@pytest.mark.parametrize("exponent_dtype", ["float64", "float32"])
@pytest.mark.parametrize("exponent", ["number", "tensor"])
def test_float_power_in_place_records_torchs_pow_node(exponent, exponent_dtype):
    def run(lib):
        x = lib.tensor([0.5, 1.5], dtype=lib.float64, requires_grad=True)
        e = lib.tensor([2.0, 3.0], dtype=getattr(lib, exponent_dtype), requires_grad=True)
        y = x.clone()
        y.float_power_(2 if exponent == "number" else e)
        y.sum().backward()
        return structure(y.grad_fn), _values(x.grad).tolist(), None if e.grad is None else _values(e.grad).tolist()

    ours, theirs = (run(lib) for lib in LIBS)
    assert ours[0] == theirs[0]
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-12)
    assert (ours[2] is None) == (theirs[2] is None)
    if ours[2] is not None:
        np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-6)


@pytest.mark.parametrize("call", [lambda lib: lib.float_power(lib.tensor([1 + 1j, -2.0]), 2),
                                  lambda lib: lib.float_power(lib.tensor([2.0, 0.5]), 1j),
                                  lambda lib: lib.float_power(1j, lib.tensor([2.0, 3.0])),
                                  lambda lib: lib.float_power(lib.tensor([1, 2, 3]), lib.tensor([True, False, True]))])
def test_float_power_computes_in_complex128_where_an_operand_is_complex_else_float64(call):
    (ours, theirs) = (call(lib) for lib in LIBS)
    assert _dtype(ours) == _dtype(theirs)
    np.testing.assert_allclose(_values(ours), _values(theirs), rtol=1e-15)


def test_float_power_of_two_numbers_is_refused_with_a_type_error_as_torchs():
    assert outcome(lambda: distnn.float_power(2, 3))[0] == outcome(lambda: torch.float_power(2, 3))[0] == "TypeError"


# ---------------------------------------------------------------- a tensor given to hsplit / vsplit / dsplit
ARGS = {"0-d long": lambda lib: lib.tensor(2), "0-d int32": lambda lib: lib.tensor(2, dtype=lib.int32),
        "0-d uint8": lambda lib: lib.tensor(2, dtype=lib.uint8), "0-d 3": lambda lib: lib.tensor(3),
        "0-d 0": lambda lib: lib.tensor(0), "0-d negative": lambda lib: lib.tensor(-2),
        "0-d float": lambda lib: lib.tensor(2.0), "0-d bool": lambda lib: lib.tensor(True),
        "1-element": lambda lib: lib.tensor([3]),
        "1-element int8 negative": lambda lib: lib.tensor([-1], dtype=lib.int8),
        "1x1": lambda lib: lib.tensor([[1]]), "1-element bool": lambda lib: lib.tensor([False]),
        "1-element float": lambda lib: lib.tensor([2.0]), "2 elements": lambda lib: lib.tensor([1, 3]),
        "empty": lambda lib: lib.tensor([], dtype=lib.int64), "list of tensors": lambda lib: [lib.tensor([[1]]), 3],
        "list with a bool tensor": lambda lib: [lib.tensor(True), 2],
        "list with a float tensor": lambda lib: [lib.tensor(1.0), 2],
        "list with a 2-element tensor": lambda lib: [lib.tensor([1, 2])], "float": lambda lib: 2.0,
        "bool": lambda lib: True, "int": lambda lib: 2, "tuple": lambda lib: (1,), "empty list": lambda lib: [],
        # (PyTorch's parser picks the overload by a list's first element, then unpacks the rest, refusing there)
        "a float after an int": lambda lib: [2, 1.0], "a bool after an int": lambda lib: [2, True],
        "a float tensor after an int tensor": lambda lib: [lib.tensor(1), lib.tensor(2.0)],
        "a bool first": lambda lib: [True], "tuple of a float and an int": lambda lib: (1.0, 2),
        "tuple of a float": lambda lib: (1.0,), "None": lambda lib: None}
SHAPES = {"1-d": (4,), "2-d": (4, 4), "3-d": (4, 4, 4)}


@pytest.mark.parametrize("form", ["method", "function"])
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("arg", list(ARGS))
@pytest.mark.parametrize("op", ["hsplit", "vsplit", "dsplit"])
def test_a_tensor_given_to_a_directional_split_is_read_or_refused_as_torchs(op, arg, shape, form):
    def run(lib):
        x = lib.arange(float(np.prod(SHAPES[shape])), requires_grad=True)
        y = x.reshape(SHAPES[shape])
        given = ARGS[arg](lib)
        call = (lambda: getattr(y, op)(given)) if form == "method" else (lambda: getattr(lib, op)(y, given))

        def pieces():
            got = call()
            sum(p.sum() * (i + 1) for i, p in enumerate(got)).backward()
            return [tuple(p.shape) for p in got], [p.grad_fn.name() for p in got], _values(x.grad).tolist()

        return outcome(pieces)

    ours, theirs = (run(lib) for lib in LIBS)
    assert ours == theirs


# ---------------------------------------------------------------- slices over a whole dim
@pytest.mark.parametrize("call", [
    lambda lib, x: lib.tensor_split(x, 1), lambda lib, x: x.tensor_split(1, 1), lambda lib, x: lib.tensor_split(x, []),
    lambda lib, x: lib.tensor_split(x, [0]), lambda lib, x: x.tensor_split([3]), lambda lib, x: x.tensor_split([5]),
    lambda lib, x: lib.tensor_split(x, [0, 4], 1), lambda lib, x: lib.tensor_split(x, [-5]),
    lambda lib, x: lib.tensor_split(x, lib.tensor(1)), lambda lib, x: lib.hsplit(x, 1), lambda lib, x: x.vsplit(1),
    lambda lib, x: (x.narrow(1, 0, 4),), lambda lib, x: (lib.narrow(x, 0, 0, 3),), lambda lib, x: (x.narrow(0, 1, 2),),
    lambda lib, x: (x[:, 0:4],), lambda lib, x: x.split(3)])
def test_a_slice_over_a_whole_dim_is_named_as_torchs(call):
    def run(lib):
        x = lib.arange(12.0, requires_grad=True)
        got = call(lib, x.reshape(3, 4))
        sum((p * p).sum() * (i + 1) for i, p in enumerate(got)).backward()
        return [structure(p.grad_fn) for p in got], _values(x.grad).tolist()

    ours, theirs = (run(lib) for lib in LIBS)
    assert ours == theirs


def test_a_whole_tensor_split_piece_of_a_leaf_is_a_slice_of_it_as_torchs():
    def run(lib):
        x = lib.ones(3, requires_grad=True)
        (piece,) = lib.tensor_split(x, 1)
        return structure(piece.grad_fn)

    assert run(distnn) == run(torch) == ("SliceBackward0", (("torch::autograd::AccumulateGrad", ()),))


@pytest.mark.parametrize("take", [lambda lib, y: lib.tensor_split(y, 1)[0], lambda lib, y: y.narrow(1, 0, 4)])
def test_an_in_place_change_of_a_whole_dim_slice_reaches_its_base_as_torchs(take):
    def run(lib):
        x = lib.arange(12.0, requires_grad=True)
        y = x.reshape(3, 4) * 1
        take(lib, y).mul_(2)
        (y * y).sum().backward()
        return _values(y).tolist(), _values(x.grad).tolist()

    ours, theirs = (run(lib) for lib in LIBS)
    assert ours == theirs
