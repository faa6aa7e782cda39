"""The autograd graph's introspection after backward, against PyTorch's: a node backward freed keeps its edges
(``next_functions``, with their names) and its output's ``retain_grad`` (``retains_grad`` stays True); only the
saved arrays go. And the pieces of ``unbind``/``split``/``chunk``/``split_with_sizes`` are named after the op, as
PyTorch's (``UnbindBackward0``, ``SplitBackward0``, ``SplitWithSizesBackward0``), with the same gradients."""
from __future__ import annotations

import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(41)
X = RNG.standard_normal((4, 6))
W = RNG.standard_normal((6, 3))


def _leaf(m, a=X):
    return m.tensor(a.copy(), requires_grad=True)


def _tree(node, depth=6):
    """The names of the graph behind ``node``, nested as ``next_functions`` (None for an input without one)."""
    if node is None or depth == 0:
        return None
    return (node.name(), tuple(_tree(n, depth - 1) for n, _ in node.next_functions))


# name -> the computation (on distnn or torch): a graph of several kinds of node, leaves among them
GRAPHS = {
    "chain": lambda m, x: ((x * 2).sin() + 1).sum(),
    "view_permute": lambda m, x: x.view(24).permute(0).exp().sum(),
    "matmul_slice": lambda m, x: (x @ m.tensor(W))[1:].sum(),
    "two_uses": lambda m, x: (x * x.tanh()).mean(),
    "reduction_dim": lambda m, x: x.sum(1).tanh().sum(),
}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_next_functions_survive_backward_as_torchs(name):
    d_root, t_root = GRAPHS[name](distnn, _leaf(distnn)), GRAPHS[name](torch, _leaf(torch))
    before = _tree(d_root.grad_fn)
    assert before == _tree(t_root.grad_fn)
    d_root.backward()
    t_root.backward()
    assert _tree(d_root.grad_fn) == _tree(t_root.grad_fn) == before


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_next_functions_survive_autograd_grad_as_torchs(name):
    dx, tx = _leaf(distnn), _leaf(torch)
    d_root, t_root = GRAPHS[name](distnn, dx), GRAPHS[name](torch, tx)
    (dg,), (tg,) = distnn.autograd.grad(d_root, dx), torch.autograd.grad(t_root, tx)
    np.testing.assert_allclose(dg.numpy(), tg.numpy(), rtol=1e-12, atol=1e-12)
    assert d_root.grad_fn.parents is None  # (freed: no retain_graph)
    assert _tree(d_root.grad_fn) == _tree(t_root.grad_fn)


def test_the_leafs_accumulate_grad_is_still_reached_after_backward():
    dx, tx = _leaf(distnn), _leaf(torch)
    dy, ty = (dx * 3).sum(), (tx * 3).sum()
    dy.backward()
    ty.backward()
    d_acc = dy.grad_fn.next_functions[0][0].next_functions[0][0]
    t_acc = ty.grad_fn.next_functions[0][0].next_functions[0][0]
    assert d_acc.name() == t_acc.name() == "torch::autograd::AccumulateGrad"
    assert d_acc.variable is dx and t_acc.variable is tx


def test_a_second_backward_through_freed_saved_arrays_is_still_refused():
    dx, tx = _leaf(distnn), _leaf(torch)
    dy, ty = (dx * dx).sum(), (tx * tx).sum()  # (MulBackward0 saves both inputs)
    dy.backward()
    ty.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        ty.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        dy.backward()


def _arrays_kept(root) -> list:
    """Every numpy array an attribute of a node behind ``root`` holds (its saved arrays), walked via next_functions."""
    seen, todo, kept = set(), [root.grad_fn], []
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen or not isinstance(node, distnn.autograd.Function):
            continue
        seen.add(id(node))
        kept += [(type(node).__name__, k) for k, v in vars(node).items() if isinstance(v, np.ndarray)]
        todo += [n for n, _ in node.next_functions]
    return kept


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_backward_still_frees_the_saved_arrays(name):
    root = GRAPHS[name](distnn, _leaf(distnn))
    assert _arrays_kept(root)  # (the forward saved some)
    root.backward()
    assert _arrays_kept(root) == []


def test_a_saved_intermediate_dies_with_backward_though_the_edges_stay():
    import weakref

    x = _leaf(distnn)
    root = (x * 2).sin().sum()  # (sin saves its input, x * 2, which nothing else holds)
    sin = root.grad_fn.next_functions[0][0]
    saved = [v for v in vars(sin).values() if isinstance(v, np.ndarray)]
    assert saved
    refs = [weakref.ref(v) for v in saved]
    del saved
    root.backward()
    assert all(r() is None for r in refs)
    assert sin.next_functions[0][0].name() == "MulBackward0"


# ---------------------------------------------------------------- retains_grad after backward

def _retained(m, kind):
    x = _leaf(m)
    y = x.view(24).permute(0) if kind == "view" else x * 2 if kind == "mul" else x.unbind(0)[1]
    y.retain_grad()
    return x, y


@pytest.mark.parametrize("kind", ["view", "mul", "unbind_piece"])
@pytest.mark.parametrize("how", ["backward", "autograd_grad"])
def test_retains_grad_stays_true_after_the_pass(kind, how):
    (dx, dy), (tx, ty) = _retained(distnn, kind), _retained(torch, kind)
    d_root, t_root = (dy.exp() * 2).sum(), (ty.exp() * 2).sum()
    if how == "backward":
        d_root.backward()
        t_root.backward()
        np.testing.assert_allclose(np.asarray(dy.grad), ty.grad.numpy(), rtol=1e-12)
    else:
        distnn.autograd.grad(d_root, dx)
        torch.autograd.grad(t_root, tx)
    assert ty.retains_grad is True
    assert dy.retains_grad is True


def test_retains_grad_of_the_briefs_example():
    dx, tx = distnn.tensor(X[:2, :3].copy(), requires_grad=True), torch.tensor(X[:2, :3].copy(), requires_grad=True)
    dy, ty = dx.view(6).permute(0), tx.view(6).permute(0)
    dy.retain_grad()
    ty.retain_grad()
    dy.sum().backward()
    ty.sum().backward()
    assert dy.retains_grad == ty.retains_grad is True
    np.testing.assert_array_equal(np.asarray(dy.grad), ty.grad.numpy())


def test_a_tensor_that_never_retained_still_does_not_after_backward():
    dx, tx = _leaf(distnn), _leaf(torch)
    dy, ty = dx * 2, tx * 2
    dy.sum().backward()
    ty.sum().backward()
    assert dy.retains_grad is ty.retains_grad is False
