"""distnn.cond and distnn.while_loop against torch.cond and torch.while_loop (PyTorch 2.13, which runs them
through torch.compile even in eager mode): values and gradients through the branch or iterations taken, the
results' structure, and the refusals (PyTorch's argument checks, aliasing outputs, a body whose outputs differ
from what it carries), each error type checked on both sides and distnn's message for its gist.

Run in a pytest of its own (tests/test_control_flow.py starts it): torch.cond/while_loop go through
torch.compile, whose first use patches the process for good (torch.distributions' argument validation turned
off; frames evaluated through dynamo's shim, which keeps an extra reference to call arguments, so a tensor
passed and then deleted stays alive), and later tests in the same process saw that.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402

R = np.random.default_rng(31)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)


def _tensors(*arrays, grad=True):
    return ([distnn.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays],
            [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays])


def _quiet(f, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch.compile's notes)
        return f(*args)


def _close_grads(ds, ts):
    for d, t in zip(ds, ts):
        if t.grad is None:
            assert d.grad is None or not np.asarray(d.grad.data).any()
        else:
            np.testing.assert_allclose(np.asarray(d.grad.data), t.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("pred", [True, False, "tensor_true", "tensor_false", "float_tensor", "int_1d"])
def test_cond_takes_pytorchs_branch_with_its_gradient(pred):
    x, w = R.standard_normal((3, 4)), R.standard_normal(4)
    (dx, dw), (tx, tw) = _tensors(x, w)

    def preds(lib):
        return {"tensor_true": lib.tensor(True), "tensor_false": lib.tensor(False), "float_tensor": lib.tensor(0.0),
                "int_1d": lib.tensor([2])}.get(pred, pred)

    def branches(lib):
        return ((lambda a, b: ((a * b).sin(), {"s": a.sum(1)})),
                (lambda a, b: ((a - b).exp() * 0.5, {"s": (a * a).sum(1)})))
    od = distnn.cond(preds(distnn), *branches(distnn), (dx, dw))
    ot = _quiet(torch.cond, preds(torch), *branches(torch), (tx, tw))
    assert isinstance(od, tuple) and isinstance(od[1], dict) and set(od[1]) == {"s"}
    for d, t in ((od[0], ot[0]), (od[1]["s"], ot[1]["s"])):
        np.testing.assert_allclose(np.asarray(d.data), t.detach().numpy(), rtol=1e-12)
    g = R.standard_normal((3, 4))
    ((od[0] * distnn.tensor(g)).sum() + od[1]["s"].sum()).backward()
    ((ot[0] * torch.from_numpy(g)).sum() + ot[1]["s"].sum()).backward()
    _close_grads((dx, dw), (tx, tw))


def test_cond_operands_may_be_nested_lists_and_empty():
    x = R.standard_normal(3)
    (dx,), (tx,) = _tensors(x)
    od = distnn.cond(distnn.tensor(False), lambda d: d["a"][0] + 1, lambda d: d["a"][0] * 3, [{"a": [dx]}])
    ot = _quiet(torch.cond, torch.tensor(False), lambda d: d["a"][0] + 1, lambda d: d["a"][0] * 3, [{"a": [tx]}])
    np.testing.assert_allclose(np.asarray(od.data), ot.detach().numpy())
    od.sum().backward()
    ot.sum().backward()
    _close_grads((dx,), (tx,))
    assert float(distnn.cond(distnn.tensor(True), lambda: distnn.ones(2), lambda: distnn.zeros(2)).sum()) == 2.0


def _refused_alike(fd, ft, match):
    with pytest.raises(RuntimeError):
        _quiet(ft)
    with pytest.raises(RuntimeError, match=match):
        fd()


def test_cond_refusals_are_pytorchs():
    dx, tx = distnn.ones(3), torch.ones(3)
    cases = [
        (lambda lib, x: lib.cond(lib.tensor([True, False]), lambda a: a * 1, lambda a: a * 2, (x,)),
         "bool or single-element tensor"),
        (lambda lib, x: lib.cond("yes", lambda a: a * 1, lambda a: a * 2, (x,)), "Expected pred to be bool or tensor"),
        (lambda lib, x: lib.cond(lib.tensor(True), 3, lambda a: a, (x,)), "Expect both branches to be callable"),
        (lambda lib, x: lib.cond(lib.tensor(True), lambda a, b: a * b, lambda a, b: a, (x, 2.0)),
         "only consists of tensor leaves"),
        (lambda lib, x: lib.cond(lib.tensor(True), lambda a: a * 1, lambda a: a * 1, x), "only consists of tensor"),
        (lambda lib, x: lib.cond(lib.tensor(True), lambda a: a, lambda a: a * 1, (x,)), "aliases an input"),
        (lambda lib, x: lib.cond(lib.tensor(True), lambda a: a.view(3), lambda a: a * 1, (x,)), "aliases an input"),
        (lambda lib, x: lib.cond(lib.tensor(True), lambda a: "s", lambda a: "s", (x,)), "expected the branch to return"),
        (lambda lib, x: lib.cond(lib.tensor(True), lambda a: None, lambda a: None, (x,)), "expected the branch"),
    ]
    for case, match in cases:
        _refused_alike(lambda: case(distnn, dx), lambda: case(torch, tx), match)
    assert distnn.cond(distnn.tensor(False), lambda a: 3, lambda a: 4, (dx,)) == 4 == _quiet(
        torch.cond, torch.tensor(False), lambda a: 3, lambda a: 4, (tx,))  # (ints are outputs too)
    # a Python bool simply runs the branch, as PyTorch's (no checks: an alias, a non-tensor operand pass)
    assert distnn.cond(True, lambda a: a, lambda a: a, ("s",)) == "s" == torch.cond(True, lambda a: a, lambda a: a,
                                                                                      ("s",))


def _python_while(cond_fn, body_fn, val):
    """torch.while_loop's documented meaning, run as a Python loop (recorded op by op by torch's autograd)."""
    while cond_fn(*val):
        val = body_fn(*val)
    return val


@pytest.mark.parametrize("accumulate", [False, True], ids=["state", "accumulator"])
@pytest.mark.parametrize("start", [0, 3, 7])
def test_while_loop_matches_pytorch_with_gradients(start, accumulate):
    x, w = R.standard_normal(3), R.standard_normal(3)
    (dx, dw), (tx, tw) = _tensors(x, w)

    def fns(w_):
        if accumulate:
            return lambda i, s, acc: i < 5, lambda i, s, acc: (i + 1, (s * w_).tanh(), acc + s.sum())
        return lambda i, s: i < 5, lambda i, s: (i + 1, (s * w_).tanh())

    def init(lib, s):
        return (lib.tensor(start), s) + ((lib.tensor(np.array(0.0)),) if accumulate else ())
    dout = distnn.while_loop(*fns(dw), init(distnn, dx))
    tout = _quiet(torch.while_loop, *fns(tw), init(torch, tx))
    assert type(dout) is type(tout) and len(dout) == len(tout)
    for d, t in zip(dout, tout):
        np.testing.assert_allclose(np.asarray(d.data), t.detach().numpy(), rtol=1e-12)
    if start >= 5:
        return
    # the gradient oracle: torch.while_loop's where it is right, else the Python loop it is documented to be
    # (torch 2.13's while_loop drops the gradient that reaches a carried value through a later iteration's
    # accumulator: ``acc + s.sum()``'s path to s; its own Python loop has it)
    if accumulate:
        tx.grad = tw.grad = None
        tout = _python_while(*fns(tw), init(torch, tx))
    (dout[1].sum() + (dout[2] * 2 if accumulate else 0)).backward()
    (tout[1].sum() + (tout[2] * 2 if accumulate else 0)).backward()
    _close_grads((dx, dw), (tx, tw))


def test_while_loop_carries_ints_nested_values_and_returns_what_the_body_returns():
    for lib in (distnn, torch):
        out = _quiet(lib.while_loop, lambda i, s: s.sum() < 8, lambda i, s: (i + 1, s * 2), (0, lib.ones(2)))
        assert out[0] == 2 and np.asarray(out[1]).tolist() == [4.0, 4.0]
        out = _quiet(lib.while_loop, lambda d: d["i"] < 3, lambda d: ({"i": d["i"] + 1},), ({"i": lib.tensor(0)},))
        assert int(out[0]["i"]) == 3
        out = _quiet(lib.while_loop, lambda i: i < 3, lambda i: [i + 1], (lib.tensor(0),))
        assert isinstance(out, list) and int(out[0]) == 3
        out = _quiet(lib.while_loop, lambda i: i < 3, lambda i: i + 1, (lib.tensor(0),))
        assert int(out) == 3 and tuple(out.shape) == ()
        out = _quiet(lib.while_loop, lambda i: i < 0, lambda i: (i + 1,), [lib.tensor(0)])
        assert isinstance(out, tuple) and int(out[0]) == 0
        out = _quiet(lib.while_loop, lambda i: bool(i < 3), lambda i: (i + 1,), (lib.tensor(0),))
        assert int(out[0]) == 3


def test_while_loop_refusals_are_pytorchs():
    cases = [
        (lambda lib: lib.while_loop(3, lambda i: (i + 1,), (lib.tensor(0),)), "Expect cond_fn and body_fn to be"),
        (lambda lib: lib.while_loop(lambda i: i < lib.tensor([3, 4]), lambda i: (i + 1,), (lib.tensor(0),)),
         "expected cond_fn to return a bool or a boolean scalar tensor"),
        (lambda lib: lib.while_loop(lambda i: (3 - i).float(), lambda i: (i + 1,), (lib.tensor(0),)),
         "expected cond_fn to return"),
        (lambda lib: lib.while_loop(lambda i, s: i < 3, lambda i, s: (i + 1, lib.cat([s, s])),
                                    (lib.tensor(0), lib.ones(2))), "differ in 'shape"),
        (lambda lib: lib.while_loop(lambda i, s: i < 3, lambda i, s: (i + 1, s.double()),
                                    (lib.tensor(0), lib.ones(2))), "differ in 'dtype"),
        (lambda lib: lib.while_loop(lambda i, s: i < 3, lambda i, s: (i + 1,), (lib.tensor(0), lib.ones(2))),
         "same number of outputs"),
        (lambda lib: lib.while_loop(lambda i, s: i < 3, lambda i, s: (i + 1, s), (lib.tensor(0), lib.ones(2))),
         "aliases an input"),
    ]
    for case, match in cases:
        _refused_alike(lambda: case(distnn), lambda: case(torch), match)
    with pytest.raises(AssertionError):  # (PyTorch's check of the leaves is an internal assert)
        torch.while_loop(lambda i: i < 3, lambda i: (i + 1,), ("a",))
    with pytest.raises(RuntimeError, match="tensor or int leaves"):  # (distnn: a RuntimeError, as cond's)
        distnn.while_loop(lambda i: i < 3, lambda i: (i + 1,), ("a",))
    with pytest.raises(RuntimeError, match="tuple or list"):  # (PyTorch: an AssertionError from deep inside)
        distnn.while_loop(lambda i: i < 3, lambda i: i + 1, distnn.tensor(0))


def test_gradients_are_numerically_right():
    from distnn.testing import check_grad

    check_grad(lambda x, w: distnn.cond(x.sum() > 0, lambda a, b: (a * b).sin(), lambda a, b: (a - b).exp(), (x, w)),
               R.standard_normal((2, 3)), R.standard_normal(3))
    check_grad(lambda x, w: distnn.while_loop(lambda i, s: i < 4, lambda i, s: (i + 1, (s * w).tanh() + s),
                                              (0, x))[1], R.standard_normal((2, 3)), R.standard_normal(3))
