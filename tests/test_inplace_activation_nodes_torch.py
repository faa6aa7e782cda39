"""Every activation with ``inplace=True`` against torch 2.13's: the node it records (its name, what it saves, as
saved_tensors_hooks see it: how many packs, of which shapes and dtypes, the tensor itself or another), values,
gradients (float64), version counters, what a later in-place change does, the refusals (a leaf that requires grad;
a negative slope's backward), and double backward.
"""
import numpy as np
import pytest

import distnn
import distnn.functional as DF

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

_rng = np.random.default_rng(40)
X = _rng.standard_normal((3, 5)) * 3
X[0, :4] = [0.0, -3.0, 3.0, 0.5]  # (kinks: relu's 0, hardswish/hardsigmoid's -3 and 3, hardtanh's bound, threshold)
W = _rng.standard_normal((3, 5))

# name -> call(F, y, inplace): the same call in both libraries
ACTS = {
    "relu": lambda F, y, ip: F.relu(y, inplace=ip),
    "leaky_relu": lambda F, y, ip: F.leaky_relu(y, 0.1, inplace=ip),
    "leaky_relu(0)": lambda F, y, ip: F.leaky_relu(y, 0.0, inplace=ip),
    "elu": lambda F, y, ip: F.elu(y, 1.3, inplace=ip),
    "selu": lambda F, y, ip: F.selu(y, inplace=ip),
    "celu": lambda F, y, ip: F.celu(y, 0.7, inplace=ip),
    "silu": lambda F, y, ip: F.silu(y, inplace=ip),
    "mish": lambda F, y, ip: F.mish(y, inplace=ip),
    "hardtanh": lambda F, y, ip: F.hardtanh(y, -0.5, 0.5, inplace=ip),
    "relu6": lambda F, y, ip: F.relu6(y, inplace=ip),
    "hardswish": lambda F, y, ip: F.hardswish(y, inplace=ip),
    "hardsigmoid": lambda F, y, ip: F.hardsigmoid(y, inplace=ip),
    "threshold": lambda F, y, ip: F.threshold(y, 0.5, -2.0, inplace=ip),
    "rrelu(eval)": lambda F, y, ip: F.rrelu(y, 0.1, 0.3, False, inplace=ip),
}
UNDERSCORE = {  # PyTorch's functional in-place forms
    "relu_": lambda F, y: F.relu_(y),
    "leaky_relu_": lambda F, y: F.leaky_relu_(y, 0.2),
    "elu_": lambda F, y: F.elu_(y, 0.9),
    "selu_": lambda F, y: F.selu_(y),
    "celu_": lambda F, y: F.celu_(y, 1.7),
    "hardtanh_": lambda F, y: F.hardtanh_(y, -1.0, 2.0),
    "threshold_": lambda F, y: F.threshold_(y, 0.0, 0.5),
    "rrelu_": lambda F, y: F.rrelu_(y, 0.2, 0.4),
}
CALLS = {**{k: (lambda f: lambda F, y: f(F, y, True))(f) for k, f in ACTS.items()}, **UNDERSCORE}
LIBS = {"distnn": (distnn, DF), "torch": (torch, TF)}


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.data)


def _name(t):
    return type(t.grad_fn).__name__ if isinstance(t, torch.Tensor) else t.grad_fn.name()


def _under_hooks(lib_name, call):
    """The hooks' calls (pack: shape, dtype, whether it got ``y`` itself), the result, x's gradient, y's version."""
    lib, F = LIBS[lib_name]
    log, held = [], {}

    def pack(t):
        log.append(("pack", tuple(t.shape), str(t.dtype).split(".")[-1], t is held["y"]))
        return t.detach().clone()

    def unpack(p):
        log.append(("unpack", tuple(p.shape)))
        return p

    x = lib.tensor(X, requires_grad=True)
    with lib.autograd.graph.saved_tensors_hooks(pack, unpack):
        y = held["y"] = x * 2.0  # (saves nothing: a number)
        log.append("forward")
        out = call(F, y)
        log.append("backward")
    assert out is y
    (out * lib.tensor(W)).sum().backward()
    return log, _np(out), _np(x.grad), _name(out), y._version


@pytest.mark.parametrize("op", sorted(CALLS))
def test_pack_hook_sees_what_torchs_sees_once_a_node(op):
    """elu/selu/celu/silu/mish(inplace=True) packed two arrays a node, leaky_relu/hardtanh/threshold... a mask of
    their own, where torch packs the result (the tensor itself) or a copy of the input, once."""
    mine, theirs = _under_hooks("distnn", CALLS[op]), _under_hooks("torch", CALLS[op])
    assert mine[0] == theirs[0]
    np.testing.assert_allclose(mine[1], theirs[1], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(mine[2], theirs[2], rtol=1e-12, atol=1e-14)
    assert mine[3:] == theirs[3:]  # (the node's name; y's version)


def _plain(lib_name, call, dtype):
    lib, F = LIBS[lib_name]
    x = lib.tensor(X.astype(dtype), requires_grad=True)
    y = x * 2.0
    out = call(F, y)
    assert out is y
    (out * lib.tensor(W.astype(dtype))).sum().backward()
    return _np(out), _np(x.grad), _name(out), y._version


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("op", sorted(CALLS))
def test_values_gradients_names_and_versions_are_torchs(op, dtype):
    mine, theirs = _plain("distnn", CALLS[op], dtype), _plain("torch", CALLS[op], dtype)
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    for a, b in zip(mine[:2], theirs[:2]):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, **tol)
    assert mine[2:] == theirs[2:]


@pytest.mark.parametrize("op", sorted(set(ACTS) - {"celu"}))  # (celu_'s backward: 1 / float32(alpha), as torch's)
def test_in_place_gives_the_out_of_place_values_and_gradients(op):
    """distnn against itself: the in-place node computes what the out-of-place one does (float64, to the last bits
    but for the backward's order of operations)."""
    got = []
    for inplace in (False, True):
        x = distnn.tensor(X, requires_grad=True)
        out = ACTS[op](DF, x * 2.0, inplace)
        (out * distnn.tensor(W)).sum().backward()
        got.append((_np(out), _np(x.grad)))
    np.testing.assert_array_equal(got[0][0], got[1][0])
    np.testing.assert_allclose(got[0][1], got[1][1], rtol=1e-12, atol=1e-14)


def _changed_later(lib_name, call):
    """y changed in place after the activation: the gradient, or "refused"."""
    lib, F = LIBS[lib_name]
    x = lib.tensor(X, requires_grad=True)
    y = x * 2.0
    call(F, y)
    y.mul_(3.0)
    try:
        (y * lib.tensor(W)).sum().backward()
    except RuntimeError as e:
        assert ("modified by an inplace" if lib is torch else "changed in place") in str(e)
        return "refused"
    return _np(x.grad)


@pytest.mark.parametrize("op", sorted(CALLS))
def test_a_later_in_place_change_is_refused_exactly_where_torchs_is(op):
    """Those whose node keeps the result refuse (leaky_relu/elu(inplace=True) backpropagated it before); those that
    keep a copy of the input give its gradient."""
    mine, theirs = _changed_later("distnn", CALLS[op]), _changed_later("torch", CALLS[op])
    if isinstance(theirs, str):
        assert mine == theirs
    else:
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("op", sorted(CALLS))
def test_a_leaf_that_requires_grad_is_refused_before_anything_is_written(op):
    for lib, F in LIBS.values():
        x = lib.tensor(X, requires_grad=True)
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
            CALLS[op](F, x)
        np.testing.assert_array_equal(_np(x), X)
        assert x._version == 0


@pytest.mark.parametrize("op", sorted(CALLS))
def test_without_grad_the_memory_is_written_and_its_version_bumped_as_torchs(op):
    got = []
    for lib, F in LIBS.values():
        x = lib.tensor(X)
        view = x[1:]
        with lib.no_grad():
            out = CALLS[op](F, x)
        assert out is x and out.grad_fn is None
        got.append((_np(x), _np(view), x._version, view._version))
    np.testing.assert_allclose(got[0][0], got[1][0], rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(got[0][1], got[0][0][1:])
    assert got[0][2:] == got[1][2:]


NEGATIVE = {
    "leaky_relu": lambda F, y: F.leaky_relu(y, -0.1, inplace=True),
    "elu": lambda F, y: F.elu(y, -0.5, inplace=True),
    "celu": lambda F, y: F.celu(y, -0.5, inplace=True),
    "rrelu(eval)": lambda F, y: F.rrelu(y, -0.3, -0.1, False, inplace=True),
}


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("op", sorted(NEGATIVE))
def test_a_negative_slopes_in_place_backward_is_refused_in_torchs_words(op, create_graph):
    messages = []
    for lib, F in LIBS.values():
        x = lib.tensor(X, requires_grad=True)
        out = NEGATIVE[op](F, x * 2.0)
        with pytest.raises(RuntimeError, match="In-place .* backward calculation is triggered with a negative slope"
                           ) as e:
            lib.autograd.grad(out.sum(), x, create_graph=create_graph)
        messages.append(str(e.value))
    assert messages[0] == messages[1]


def _rrelu_training(inplace, hooks):
    log = []
    x = distnn.tensor(X, requires_grad=True)
    with distnn.autograd.graph.saved_tensors_hooks(lambda t: (log.append((tuple(t.shape), str(t.dtype))), t)[1],
                                                   lambda p: p) if hooks else _nothing():
        out = DF.rrelu(x * 2.0, 0.1, 0.3, True, inplace, generator=np.random.default_rng(7))
    (out * distnn.tensor(W)).sum().backward()
    return _np(out), _np(x.grad), out.grad_fn.name(), log


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


def test_rrelu_training_in_place_is_torchs_node_with_the_out_of_place_values():
    """Its draws are distnn's own (not comparable with torch's): in place against out of place with the same
    generator; the pack hooks and the name against torch's."""
    oop, ip = _rrelu_training(False, False), _rrelu_training(True, True)
    np.testing.assert_array_equal(oop[0], ip[0])
    np.testing.assert_array_equal(oop[1], ip[1])
    theirs = []
    x = torch.tensor(X, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: (theirs.append((tuple(t.shape), str(t.dtype))), t)[1],
                                                  lambda p: p):
        out = TF.rrelu(x * 2.0, 0.1, 0.3, True, inplace=True)
    assert ip[2] == type(out.grad_fn).__name__ == "RreluWithNoiseBackward1"
    assert [(s, d.split(".")[-1]) for s, d in ip[3]] == [(s, d.split(".")[-1]) for s, d in theirs]


DOUBLE = sorted(set(ACTS) - {"rrelu(eval)", "hardsigmoid"})  # (torch has no double backward of these two)


@pytest.mark.parametrize("op", DOUBLE)
def test_double_backward_through_the_in_place_node_is_torchs(op):
    got = []
    for lib, F in LIBS.values():
        x = lib.tensor(X, requires_grad=True)
        out = ACTS[op](F, x * 2.0, True)
        (g,) = lib.autograd.grad((out * lib.tensor(W)).sum(), x, create_graph=True)
        (gg,) = lib.autograd.grad((g * g).sum(), x, allow_unused=True)
        got.append((_np(g), None if gg is None else _np(gg)))
    np.testing.assert_allclose(got[0][0], got[1][0], rtol=1e-12, atol=1e-14)
    if got[1][1] is None:
        assert got[0][1] is None or not np.any(got[0][1])
    else:
        np.testing.assert_allclose(got[0][1], got[1][1], rtol=1e-10, atol=1e-12)


KEEPS_RESULT = ("relu", "leaky_relu", "elu", "selu", "celu")  # (torch's node saves the result: nothing more)
KEEPS_INPUT_COPY = ("silu", "mish", "hardtanh", "hardsigmoid", "threshold")  # (a copy of the input, made first)


@pytest.mark.parametrize("op", KEEPS_RESULT + KEEPS_INPUT_COPY)
def test_the_in_place_node_holds_only_what_torchs_saves(op):
    """Bytes the in-place op leaves held (its node's arrays) with the tensor alive: none for those whose torch node
    saves the result (elu's kept a mask and e^x - 1, leaky_relu's a mask), one copy of the input for those that
    save the input (silu's kept a sigmoid too)."""
    import gc
    import tracemalloc

    h = distnn.tensor(_rng.standard_normal((256, 256)), requires_grad=True) * 2.0
    activation = 256 * 256 * 8
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        out = ACTS[op](DF, h, True)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert out is h
    expected = 0 if op in KEEPS_RESULT else activation
    assert expected - activation / 4 < held < expected + activation / 4, (held, activation)
