"""distnn.autograd.graph against torch.autograd.graph (torch 2.13): the Node API on grad_fn (names,
next_functions, metadata, node hooks, AccumulateGrad), saved_tensors_hooks / disable_saved_tensors_hooks /
save_on_cpu / allow_mutation_on_saved_tensors, register_multi_grad_hook, get_gradient_edge, increment_version.
Observable results are compared (grads, the values hooks see, which calls happen), not PyTorch internals."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import Tensor
from distnn.autograd import graph as G
from torch_twins import doubling_functions

RNG = np.random.default_rng(0)
A = RNG.standard_normal((3, 4))
B = RNG.standard_normal((3, 4))


def _pair(torch, a, requires_grad=True):
    return Tensor(a.copy(), requires_grad=requires_grad), torch.tensor(a.copy(), requires_grad=requires_grad)


def _close(d, t, tol=1e-12):
    d = d.numpy() if isinstance(d, Tensor) else d
    np.testing.assert_allclose(d, t.detach().numpy(), rtol=tol, atol=tol)


# ---------------------------------------------------------------- Node API
OPS = {  # the same op in both libraries: (distnn, torch)
    "add": lambda x, y, m: x + y, "mul": lambda x, y, m: x * y, "sub": lambda x, y, m: x - y,
    "div": lambda x, y, m: x / 2, "neg": lambda x, y, m: -x, "sum": lambda x, y, m: x.sum(),
    "mean": lambda x, y, m: x.mean(), "exp": lambda x, y, m: x.exp(), "sin": lambda x, y, m: x.sin(),
    "tanh": lambda x, y, m: x.tanh(), "sigmoid": lambda x, y, m: x.sigmoid(), "pow": lambda x, y, m: x ** 2,
    "clone": lambda x, y, m: x.clone(), "relu": lambda x, y, m: m.relu(x), "cat": lambda x, y, m: m.cat([x, y]),
    "softmax": lambda x, y, m: m.softmax(x, 1), "unsqueeze": lambda x, y, m: x.unsqueeze(0),
    "view": lambda x, y, m: x.view(4, 3), "expand": lambda x, y, m: x[:1].clone().expand(2, 4),
}


@pytest.mark.parametrize("op", sorted(OPS))
def test_node_names_are_torchs_for_common_ops(torch, op):
    (x, tx), (y, ty) = _pair(torch, A), _pair(torch, B)
    assert OPS[op](x, y, distnn).grad_fn.name() == OPS[op](tx, ty, torch).grad_fn.name()


def test_custom_function_node_is_named_after_its_class(torch):
    Twice, TorchTwice = doubling_functions(torch)  # (both classes named Twice)
    (x, tx) = _pair(torch, A)
    assert Twice.apply(x).grad_fn.name() == "TwiceBackward"
    assert TorchTwice.apply(tx).grad_fn.name() == "TwiceBackward"


def _structure(node, seen=None):
    """A node's name and its next_functions, recursively; leaves as ("leaf", index in ``seen``)."""
    if node is None:
        return None
    if hasattr(node, "variable"):
        return ("acc", node.name().rsplit("::", 1)[-1], id(node.variable))
    return (node.name(), tuple((_structure(n), nr) for n, nr in node.next_functions))


def test_next_functions_has_torchs_structure_with_accumulate_grad_nodes(torch):
    (a, ta), (w, tw) = _pair(torch, A), _pair(torch, B)
    c, tc = _pair(torch, B, requires_grad=False)
    got = _structure(((a * c + a) * w).sum().grad_fn)
    want = _structure(((ta * tc + ta) * tw).sum().grad_fn)
    ids = {id(a): "a", id(w): "w", id(ta): "a", id(tw): "w"}

    def rename(s):
        if isinstance(s, tuple) and s and s[0] == "acc":
            return ("acc", s[1], ids[s[2]])
        return tuple(rename(x) for x in s) if isinstance(s, tuple) else s

    assert rename(got) == rename(want)
    y = (a * c + a).sum()
    mul = y.grad_fn.next_functions[0][0].next_functions[0][0]
    assert mul.next_functions[1] == (None, 0)  # c needs no gradient
    acc = mul.next_functions[0][0]
    assert acc.variable is a and acc.next_functions == ()
    assert acc is y.grad_fn.next_functions[0][0].next_functions[1][0]  # one node per leaf, as torch's


def test_node_isinstance_and_metadata(torch):
    x, _ = _pair(torch, A)
    y = x * 2
    assert isinstance(y.grad_fn, G.Node) and issubclass(type(y.grad_fn), G.Node)
    assert isinstance(G.get_gradient_edge(x).node, G.Node)
    assert not isinstance(x, G.Node) and not isinstance(1, G.Node)
    y.grad_fn.metadata["k"] = 1
    assert y.grad_fn.metadata == {"k": 1}
    with pytest.raises(TypeError):
        G.Node()


def _hooked_run(lib, x, w, log):
    """loss = sum(tanh(x * w)); hooks on the mul node (pre: grad_outputs * 3; post: grad_inputs[0] + 1) and
    on x's AccumulateGrad (pre: * 0.5), each noting what it sees."""
    m = x * w
    y = m.tanh().sum()
    node = m.grad_fn

    def pre(go):
        log.append(("pre", go[0].detach().numpy().copy()))
        return (go[0] * 3,)

    def post(gi, go):
        log.append(("post", [g.detach().numpy().copy() for g in gi], go[0].detach().numpy().copy()))
        return (gi[0] + 1, gi[1])

    handles = [node.register_prehook(pre), node.register_hook(post)]
    acc = lib.autograd.graph.get_gradient_edge(x).node
    handles.append(acc.register_prehook(lambda go: (go[0] * 0.5,)))
    handles.append(acc.register_hook(lambda gi, go: log.append(("acc", gi, go[0].detach().numpy().copy()))))
    return y, handles


def test_node_hooks_see_and_replace_gradients_as_torchs(torch):
    (x, tx), (w, tw) = _pair(torch, A), _pair(torch, B)
    log, tlog = [], []
    y, hs = _hooked_run(distnn, x, w, log)
    ty, ths = _hooked_run(torch, tx, tw, tlog)
    y.backward()
    ty.backward()
    _close(x.grad, tx.grad)
    _close(w.grad, tw.grad)
    assert [e[0] for e in log] == [e[0] for e in tlog] == ["pre", "post", "acc"]
    for d, t in zip(log, tlog):
        for a, b in zip(d[1:], t[1:]):
            if isinstance(a, list):
                for u, v in zip(a, b):
                    np.testing.assert_allclose(u, v, rtol=1e-12)
            elif isinstance(a, tuple):
                assert a == b == ()
            else:
                np.testing.assert_allclose(a, b, rtol=1e-12)
    x.grad = tx.grad = None
    _close(distnn.autograd.grad(x.sum() * 2, x)[0], torch.autograd.grad(tx.sum() * 2, tx)[0])  # (no AccumulateGrad)
    n = len(log)
    (x * 2).sum().backward()
    (tx * 2).sum().backward()
    _close(x.grad, tx.grad)
    assert [e[0] for e in log[n:]] == [e[0] for e in tlog[n:]] == ["acc"]
    np.testing.assert_allclose(log[-1][2], tlog[-1][2], rtol=1e-12)
    for h in hs:  # removed: plain gradients again
        h.remove()
    x.grad = None
    (x * w).tanh().sum().backward()
    _close(x.grad, torch.autograd.grad((tx * tw).tanh().sum(), tx)[0])


def test_node_hooks_run_in_autograd_grad_and_refuse_a_bad_replacement(torch):
    (x, tx), (w, tw) = _pair(torch, A), _pair(torch, B)
    y, ty = x * w, tx * tw
    y.grad_fn.register_prehook(lambda go: (go[0] * 2,))
    ty.grad_fn.register_prehook(lambda go: (go[0] * 2,))
    _close(distnn.autograd.grad(y.sum(), x, retain_graph=True)[0], torch.autograd.grad(ty.sum(), tx)[0])
    y.grad_fn.register_hook(lambda gi, go: (gi[0][:1], gi[1]))
    with pytest.raises(RuntimeError, match="shape"):
        distnn.autograd.grad(y.sum(), x)


# ---------------------------------------------------------------- saved tensors hooks
def _loss(m, x, w):
    return ((x * w).exp() + x.sin() * w.tanh()).sum()


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_pack_unpack_round_trip_gives_the_same_grads(torch, dtype, tol):
    (x, tx), (w, tw) = _pair(torch, A.astype(dtype)), _pair(torch, B.astype(dtype))
    packed = []

    def pack(t):
        assert isinstance(t, Tensor)  # (an input that requires grad comes as itself: test_autograd_graph_parity)
        packed.append(t.shape)
        return t * 4

    with G.saved_tensors_hooks(pack, lambda p: p / 4):
        y = _loss(distnn, x, w)
    assert packed  # every op saved something
    y.backward()
    _loss(torch, tx, tw).backward()
    _close(x.grad, tx.grad, tol)
    _close(w.grad, tw.grad, tol)


def test_a_hook_that_changes_saved_values_changes_grads_as_torchs(torch):
    # mul saves both operands, exp its result, tanh its result: as torch's ops do
    def run(m, x, w):
        with m.autograd.graph.saved_tensors_hooks(lambda t: t + 1, lambda p: p):
            y = ((x * w).exp() + w.tanh()).sum()
        y.backward()

    (x, tx), (w, tw) = _pair(torch, A), _pair(torch, B)
    run(distnn, x, w)
    run(torch, tx, tw)
    _close(x.grad, tx.grad)
    _close(w.grad, tw.grad)
    assert not np.allclose(x.grad, (B * np.exp(A * B)))  # (the hook did change them)


def test_innermost_hooks_win_and_retain_graph_unpacks_again(torch):
    def run(m, x, log):
        outer = m.autograd.graph.saved_tensors_hooks(lambda t: log.append("outer") or t, lambda p: p)
        inner = m.autograd.graph.saved_tensors_hooks(lambda t: log.append("inner") or t,
                                                     lambda p: log.append("unpack") or p)
        with outer:
            with inner:
                y = (x * x).sum()
        y.backward(retain_graph=True)
        n = log.count("unpack")
        y.backward()
        return n, log.count("unpack") - n

    (x, tx) = _pair(torch, A)
    log, tlog = [], []
    assert run(distnn, x, log) == run(torch, tx, tlog) == (2, 2)
    assert "outer" not in log and "outer" not in tlog
    _close(x.grad, tx.grad)


def test_create_graph_through_packed_nodes(torch):
    (x, tx) = _pair(torch, A)
    with G.saved_tensors_hooks(lambda t: t * 2, lambda p: p / 2):
        y = x.sin().sum()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t * 2, lambda p: p / 2):
        ty = tx.sin().sum()
    (g,) = distnn.autograd.grad(y, x, create_graph=True)
    (tg,) = torch.autograd.grad(ty, tx, create_graph=True)
    _close(distnn.autograd.grad(g.sum(), x)[0], torch.autograd.grad(tg.sum(), tx)[0])


def test_unpack_must_return_a_tensor_and_disable_refuses_hooks(torch):
    for m, x in zip((distnn, torch), _pair(torch, A)):
        with m.autograd.graph.saved_tensors_hooks(lambda t: t, lambda p: 3):
            y = (x * x).sum()
        with pytest.raises(TypeError, match="unpack_hook expected to be a Tensor"):
            y.backward()
        with m.autograd.graph.disable_saved_tensors_hooks("no hooks in here"):
            with pytest.raises(RuntimeError, match="no hooks in here"):
                with m.autograd.graph.saved_tensors_hooks(lambda t: t, lambda p: p):
                    pass
        with m.autograd.graph.saved_tensors_hooks(lambda t: t, lambda p: p):
            with pytest.raises(RuntimeError, match="no hooks in here"):
                with m.autograd.graph.disable_saved_tensors_hooks("no hooks in here"):
                    pass
        with m.autograd.graph.saved_tensors_hooks(lambda t: t, lambda p: p):  # usable again after both
            (x * x).sum().backward()


def test_save_on_cpu_on_cpu_tensors_keeps_grads(torch):
    (x, tx), (w, tw) = _pair(torch, A), _pair(torch, B)
    with G.save_on_cpu():
        y = _loss(distnn, x, w)
    with torch.autograd.graph.save_on_cpu():
        ty = _loss(torch, tx, tw)
    y.backward()
    ty.backward()
    _close(x.grad, tx.grad)
    _close(w.grad, tw.grad)


def test_allow_mutation_on_saved_tensors_uses_the_values_before_the_change(torch):
    def run(m, x):
        with m.autograd.graph.allow_mutation_on_saved_tensors():
            a = x.clone()
            y = (a.sin() * a).sum()
            with m.no_grad():
                a.mul_(3)
            y.backward()
        return y

    (x, tx) = _pair(torch, A)
    run(distnn, x)
    run(torch, tx)
    _close(x.grad, tx.grad)
    for m, x in zip((distnn, torch), _pair(torch, A)):
        with m.autograd.graph.allow_mutation_on_saved_tensors():
            y = (x * x).sum()
        with pytest.raises(AssertionError, match="outside of the 'allow_mutation_on_saved_tensors' context"):
            y.backward()


# ---------------------------------------------------------------- multi-grad hooks, edges, versions
def _multi(m, mode):
    x = m.tensor(A.copy(), requires_grad=True)
    w = m.tensor(B.copy(), requires_grad=True)
    calls = []

    def note(g):
        if mode == "any":
            calls.append(g.detach().numpy().copy())
        else:
            calls.append([None if v is None else v.detach().numpy().copy() for v in g])

    m.autograd.graph.register_multi_grad_hook((x, w), note, mode=mode)
    (x * 2).sum().backward()  # w not used
    (x * w).sum().backward()
    (w * 5).sum().backward()
    return calls


@pytest.mark.parametrize("mode", ["all", "any"])
def test_multi_grad_hook_semantics_are_torchs(torch, mode):
    got, want = _multi(distnn, mode), _multi(torch, mode)
    assert len(got) == len(want) == 3
    for g, t in zip(got, want):
        if mode == "any":
            np.testing.assert_allclose(g, t, rtol=1e-12)
        else:
            assert [v is None for v in g] == [v is None for v in t]
            for u, v in zip(g, t):
                if u is not None:
                    np.testing.assert_allclose(u, v, rtol=1e-12)


def test_multi_grad_hook_refuses_an_unknown_mode(torch):
    x, tx = _pair(torch, A)
    for m, t in ((distnn, x), (torch, tx)):
        with pytest.raises(ValueError, match="Expects mode to be one of"):
            m.autograd.graph.register_multi_grad_hook((t,), print, mode="some")


def test_gradient_edges_in_autograd_grad(torch):
    (x, tx) = _pair(torch, A)
    for m in (distnn, torch):
        with pytest.raises(RuntimeError, match="not possible to get the gradient edge"):
            m.autograd.graph.get_gradient_edge(m.tensor(A))
    h, th = x * 2, tx * 2
    e, te = G.get_gradient_edge(h), torch.autograd.graph.get_gradient_edge(th)
    assert e.node is h.grad_fn and e.output_nr == te.output_nr == 0
    assert G.get_gradient_edge(x).node.variable is x
    y, ty = (h.sin() * x).sum(), (th.sin() * tx).sum()
    got = distnn.autograd.grad(y, [e, G.get_gradient_edge(x)])
    want = torch.autograd.grad(ty, [te, torch.autograd.graph.get_gradient_edge(tx)])
    for g, t in zip(got, want):
        _close(g, t)


def test_increment_version_as_torchs(torch):
    for m in (distnn, torch):
        x = m.tensor(A.copy(), requires_grad=True)
        v = m.tensor(B.copy())
        y = (x * v).sum()
        m.autograd.graph.increment_version(v)
        assert v._version == 1
        m.autograd.graph.increment_version([v, v])
        assert v._version == 3
        with pytest.raises(RuntimeError):
            y.backward()


def test_in_place_ops_under_hooks_keep_the_values_backward_needs(torch):
    # a.mul_(w) saves a's old value for w's gradient: with hooks on it must not see the new one
    def run(m, x, w):
        with m.autograd.graph.saved_tensors_hooks(lambda t: t, lambda p: p):
            a = x.clone() * 1
            a.mul_(w)
            (a * a).sum().backward()

    (x, tx), (w, tw) = _pair(torch, A), _pair(torch, B)
    run(distnn, x, w)
    run(torch, tx, tw)
    _close(x.grad, tx.grad)
    _close(w.grad, tw.grad)
    # exp's saved result changed in place: with hooks on, torch checks no version (its pack_hook may have kept a
    # copy), and backward reads what unpack_hook returns, here the tensor with its new values; distnn as torch
    for m, leaf in ((distnn, x), (torch, tx)):
        leaf.grad = None
        with m.autograd.graph.saved_tensors_hooks(lambda t: t, lambda p: p):
            y = leaf.exp()
            y.add_(1)
        y.sum().backward()
    _close(x.grad, tx.grad)
