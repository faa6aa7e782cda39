"""torch.autograd's user API on distnn's engine: ``grad``, ``backward(inputs=)``, hooks in both, and the
refusal of double backward through an op without a graph backward. Each script runs on distnn and on
PyTorch (the oracle) with the same values. (functional.jacobian/vjp, gradcheck, anomaly mode, inference_mode: test_autograd_api_more.py)"""
import numpy as np
import pytest

import distnn
from distnn import Tensor, autograd

X = np.random.default_rng(0).standard_normal((3, 4))
W = np.random.default_rng(1).standard_normal((4, 2))
V = np.random.default_rng(2).standard_normal((3, 2))


def _leaves(lib, torch):
    if lib is torch:
        return torch.tensor(X.copy(), requires_grad=True), torch.tensor(W.copy(), requires_grad=True)
    return Tensor(X.copy(), requires_grad=True), Tensor(W.copy(), requires_grad=True)


def _graph(x, w):
    """y = x @ w (a non-leaf), loss = sum(tanh(y) * x[:, :2]) + sum(x * x): x used three times."""
    y = x @ w
    return y, (y.tanh() * x[:, :2]).sum() + (x * x).sum()


def _np(t):
    return None if t is None else (t.detach().numpy() if hasattr(t, "detach") else np.asarray(t))


def _same(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        if u is None or v is None:
            assert u is None and v is None
        else:
            np.testing.assert_allclose(_np(u), _np(v), rtol=1e-12, atol=1e-12)


def _run(lib, torch, fn):
    """``fn(x, w, grad_fn, backward_fn, tensor)`` on distnn and on torch; both results."""
    out = []
    for m in (distnn, torch):
        x, w = _leaves(m, torch)
        api = autograd if m is distnn else torch.autograd
        out.append(fn(m, api, x, w))
    return out


# ---------------------------------------------------------------- grad
def test_grad_of_several_outputs_and_inputs_with_non_leaf_matches_torch(torch):
    def script(m, api, x, w):
        y, loss = _graph(x, w)
        v = (Tensor if m is distnn else torch.tensor)(V.copy())
        gs = api.grad([loss, y], [x, w, y], grad_outputs=[None, v])
        return gs, x.grad, w.grad

    (d, dxg, dwg), (t, _, _) = _run(distnn, torch, script)
    _same(d, t)
    assert dxg is None and dwg is None  # returned, never accumulated
    assert all(not g.requires_grad for g in d)


def test_grad_leaves_existing_grads_and_destinations_alone(torch):
    from distnn.autograd.engine import set_grad_destination

    x, w = _leaves(distnn, torch)
    x.grad = np.full(X.shape, 7.0)
    dest = np.full(W.shape, -1.0)
    set_grad_destination(w, dest)
    _, loss = _graph(x, w)
    gx, gw = autograd.grad(loss, [x, w], retain_graph=True)
    np.testing.assert_array_equal(x.grad, np.full(X.shape, 7.0))
    assert w.grad is None and np.all(dest == -1.0)
    # the same graph's ordinary backward still works (and adds into x.grad)
    loss.backward()
    np.testing.assert_allclose(w.grad, gw.numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad, 7.0 + gx.numpy(), rtol=1e-12)


def test_grad_hooks_and_retain_grad_as_torch(torch):
    """Non-leaf hooks run when the pass reaches the node; a non-leaf asked for gets its gradient before its
    hooks when the pass goes on through it, after them otherwise (PyTorch's engine); leaf hooks apply to the
    returned gradient; post-accumulate hooks do not fire (nothing is accumulated)."""
    def script(m, api, x, w):
        log = []
        x.register_hook(lambda g: log.append("x") or g * 2)
        x.register_post_accumulate_grad_hook(lambda t: log.append("post"))
        y, loss = _graph(x, w)
        y.register_hook(lambda g: log.append("y") or g * 10)
        y.retain_grad()
        both = api.grad(loss, [x, y], retain_graph=True)
        y_after_both = _np(y.grad).copy()
        only_y = api.grad(loss, [y], retain_graph=True)
        return both, only_y, y_after_both, _np(y.grad), log, x.grad

    (db, dy, dya, dyg, dlog, dxg), (tb, ty, tya, tyg, tlog, _) = _run(distnn, torch, script)
    _same(db, tb)
    _same(dy, ty)
    _same([dya, dyg], [tya, tyg])
    assert dlog == tlog == ["y", "x", "y"] and dxg is None


def test_allow_unused_and_materialize_grads(torch):
    for m in (distnn, torch):
        api = autograd if m is distnn else torch.autograd
        x, w = _leaves(m, torch)
        loss = (x * x).sum()
        with pytest.raises(RuntimeError, match="index 1 appears to not have been used in the graph.*allow_unused=True"):
            api.grad(loss, [x, w], retain_graph=True)
        gx, gw = api.grad(loss, [x, w], allow_unused=True, retain_graph=True)
        assert gw is None
        np.testing.assert_allclose(_np(gx), 2 * X)
        gx, gw = api.grad(loss, [x, w], materialize_grads=True, retain_graph=True)
        np.testing.assert_array_equal(_np(gw), np.zeros_like(W))
        with pytest.raises(ValueError, match="allow_unused to be True or not passed when materialize_grads=True"):
            api.grad(loss, [x, w], materialize_grads=True, allow_unused=False)


@pytest.mark.parametrize("case", ["non_scalar", "shape", "count", "output_no_grad", "input_no_grad", "empty"])
def test_grad_errors_as_torch(torch, case):
    msgs = {"non_scalar": "grad can be implicitly created only for scalar outputs",
            "shape": r"Mismatch in shape: grad_output\[0\] has a shape of .*5.* and output\[0\] has a shape of .*3, 2",
            "count": "got 2 tensors and 1 gradients",
            "output_no_grad": "element 0 of tensors does not require grad and does not have a grad_fn",
            "input_no_grad": "One of the differentiated Tensors does not require grad",
            "empty": "`inputs` argument to `grad\\(\\)` cannot be empty"}
    for m in (distnn, torch):
        api = autograd if m is distnn else torch.autograd
        make = Tensor if m is distnn else torch.tensor
        x, w = _leaves(m, torch)
        y, loss = _graph(x, w)
        call = {"non_scalar": lambda: api.grad(y, x),
                "shape": lambda: api.grad(y, x, grad_outputs=make(np.ones(5))),
                "count": lambda: api.grad([loss, y], x, grad_outputs=[None]),
                "output_no_grad": lambda: api.grad(make(np.ones(3)), x, grad_outputs=make(np.ones(3))),
                "input_no_grad": lambda: api.grad(loss, [x, make(np.ones(3))]),
                "empty": lambda: api.grad(loss, [])}[case]
        with pytest.raises(RuntimeError, match=msgs[case]):
            call()


def test_retain_graph_as_torch(torch):
    for m in (distnn, torch):
        api = autograd if m is distnn else torch.autograd
        x, w = _leaves(m, torch)
        _, loss = _graph(x, w)
        first = api.grad(loss, [x, w], retain_graph=True)
        second = api.grad(loss, [x, w])  # retained: the same values; this one frees the graph
        _same(first, second)
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            api.grad(loss, [x, w])
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            loss.backward()


def test_grad_of_a_leaf_itself_and_through_several_roots(torch):
    def script(m, api, x, w):
        make = Tensor if m is distnn else torch.tensor
        y, loss = _graph(x, w)
        a = api.grad(x, x, grad_outputs=make(X * 3))
        b = api.grad([y, loss, x], [y, x], grad_outputs=[make(V), None, make(X)], retain_graph=True)
        return a + b

    d, t = _run(distnn, torch, script)
    _same(d, t)


def test_is_grads_batched_matches_torch(torch):
    batch = np.random.default_rng(3).standard_normal((4, 3, 2))

    def script(m, api, x, w):
        make = Tensor if m is distnn else torch.tensor
        y, _ = _graph(x, w)
        return api.grad(y, [x, w], grad_outputs=make(batch), is_grads_batched=True)

    d, t = _run(distnn, torch, script)
    assert d[0].shape == (4, 3, 4) and d[1].shape == (4, 4, 2)
    _same(d, t)


# ---------------------------------------------------------------- backward(inputs=)
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")  # (torch's, on purpose)
def test_backward_inputs_accumulates_only_into_those(torch):
    def script(m, api, x, w):
        log = []
        x.register_hook(lambda g: log.append("x hook") or g)
        x.register_post_accumulate_grad_hook(lambda t: log.append("x post"))
        w.register_post_accumulate_grad_hook(lambda t: log.append("w post"))
        y, loss = _graph(x, w)
        loss.backward(inputs=[w], retain_graph=True)
        after_w = (_np(x.grad), _np(w.grad).copy(), _np(y.grad))
        loss.backward(inputs=[y], retain_graph=True)
        after_y = (_np(x.grad), _np(w.grad).copy(), _np(y.grad).copy())
        api.backward(loss, inputs=x, retain_graph=True)
        api.backward(loss, inputs=[x, w])  # accumulated: twice the gradient in x, three times in w
        return after_w, after_y, (_np(x.grad), _np(w.grad), _np(y.grad)), log

    (dw, dy, dall, dlog), (tw, ty, tall, tlog) = _run(distnn, torch, script)
    for d, t in zip((dw, dy, dall), (tw, ty, tall)):
        _same(d, t)
    assert dw[0] is None and dw[2] is None and dall[2] is not None
    assert dlog == tlog


def test_backward_of_several_tensors_matches_torch(torch):
    def script(m, api, x, w):
        make = Tensor if m is distnn else torch.tensor
        y, loss = _graph(x, w)
        api.backward([loss, y], [None, make(V)], retain_graph=True)
        first = (_np(x.grad).copy(), _np(w.grad).copy())
        api.backward((y, loss), grad_tensors=(make(V), make(np.array(2.0))), inputs=[x])
        return first, (_np(x.grad), _np(w.grad))

    (d1, d2), (t1, t2) = _run(distnn, torch, script)
    _same(d1, t1)
    _same(d2, t2)


def test_backward_inputs_errors(torch):
    for m in (distnn, torch):
        api = autograd if m is distnn else torch.autograd
        x, w = _leaves(m, torch)
        _, loss = _graph(x, w)
        with pytest.raises(RuntimeError, match="`inputs` argument to `backward\\(\\)` cannot be empty"):
            api.backward(loss, inputs=[], retain_graph=True)
        with pytest.raises(RuntimeError):
            loss.backward(inputs=[(Tensor if m is distnn else torch.tensor)(np.ones(2))], retain_graph=True)
        unused = (Tensor if m is distnn else torch.tensor)(np.ones(2), requires_grad=True)
        loss.backward(inputs=[unused])  # not in the graph: nothing happens, as torch
        assert unused.grad is None and x.grad is None


# ---------------------------------------------------------------- create_graph: an op without a graph backward
def test_create_graph_refuses_an_op_without_a_graph_backward():
    """Double backward covers a core set of ops (tests/test_double_backward*.py); an op outside it is refused
    before anything runs, naming it, and the graph is left intact."""
    from distnn.autograd.function import Function

    class Cube(Function):  # (a user's op with a first-order backward only; distnn's own ops grow graph backwards)
        reads = ((0,),)

        def forward(self, a):
            self.a = a
            return a * a * a

        def backward(self, g):
            return (3 * g * self.a * self.a,)

    x, w = _leaves(distnn, None)
    y, _ = _graph(x, w)
    loss = (Cube.apply(y) * x[:, :2]).sum()
    for call in (lambda: autograd.grad(loss, x, create_graph=True),
                 lambda: autograd.backward(loss, create_graph=True),
                 lambda: loss.backward(create_graph=True)):
        with pytest.raises(NotImplementedError, match=r"the op Cube \("):
            call()
    assert x.grad is None
    loss.backward()  # the graph is intact
    assert x.grad is not None
