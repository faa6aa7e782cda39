"""The pieces of ``unbind``, ``split``, ``chunk`` and ``split_with_sizes`` carry PyTorch's node names
(``UnbindBackward0``, ``SplitBackward0``, ``SplitWithSizesBackward0``) as ``grad_fn`` and in a consumer's
``next_functions``, before and after backward, with PyTorch's gradients (first and second order)."""
from __future__ import annotations

import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

X = np.random.default_rng(7).standard_normal((4, 6))

# name -> the pieces (on distnn or torch) of a non-leaf
PIECES = {
    "unbind": lambda m, x: x.unbind(),
    "unbind_dim1": lambda m, x: x.unbind(1),
    "unbind_negative_dim": lambda m, x: m.unbind(x, -1),
    "split_int": lambda m, x: x.split(3, 1),
    "split_int_ragged": lambda m, x: x.split(3),
    "split_list": lambda m, x: x.split([1, 3]),
    "split_tuple_dim1": lambda m, x: x.split((2, 4), 1),
    "torch_split_int": lambda m, x: m.split(x, 2),
    "torch_split_list": lambda m, x: m.split(x, [1, 5], 1),
    "split_with_sizes": lambda m, x: m.split_with_sizes(x, [2, 2]),
    "chunk": lambda m, x: x.chunk(3, 1),
    "chunk_one": lambda m, x: x.chunk(1),
    "torch_chunk": lambda m, x: m.chunk(x, 2),
    # not a multi-output op in PyTorch: its pieces stay slices
    "tensor_split": lambda m, x: x.tensor_split(2),
}


def _pieces(m, name):
    x = m.tensor(X.copy(), requires_grad=True)
    return x, PIECES[name](m, x * 1)


@pytest.mark.parametrize("name", sorted(PIECES))
def test_piece_names_are_torchs(name):
    (_, dp), (_, tp) = _pieces(distnn, name), _pieces(torch, name)
    assert [p.grad_fn.name() for p in dp] == [p.grad_fn.name() for p in tp]
    assert [p.grad_fn.next_functions[0][0].name() for p in dp] == ["MulBackward0"] * len(dp)
    d_use, t_use = dp[-1].exp(), tp[-1].exp()
    assert d_use.grad_fn.next_functions[0][0].name() == t_use.grad_fn.next_functions[0][0].name()


@pytest.mark.parametrize("name", sorted(PIECES))
def test_piece_gradients_and_names_after_backward(name):
    (dx, dp), (tx, tp) = _pieces(distnn, name), _pieces(torch, name)
    weights = np.arange(1, len(dp) + 1, dtype=np.float64)
    d_root = sum((p.sin() * float(w)).sum() for p, w in zip(dp, weights))
    t_root = sum((p.sin() * float(w)).sum() for p, w in zip(tp, weights))
    d_root.backward()
    t_root.backward()
    np.testing.assert_allclose(np.asarray(dx.grad), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert [p.grad_fn.name() for p in dp] == [p.grad_fn.name() for p in tp]


@pytest.mark.parametrize("name", ["unbind", "split_int", "split_list", "chunk"])
def test_second_order_through_the_pieces(name):
    grads = []
    for m in (distnn, torch):
        x = m.tensor(X.copy(), requires_grad=True)
        loss = sum((p ** 3).sum() for p in PIECES[name](m, x * 1))
        (g,) = m.autograd.grad(loss, x, create_graph=True)
        (gg,) = m.autograd.grad(g.sum(), x)
        grads.append((g.detach().numpy(), gg.numpy()))
    for d, t in zip(*grads):
        np.testing.assert_allclose(d, t, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["unbind", "split_int", "split_list", "chunk"])
def test_a_piece_is_still_refused_in_place_change_while_recording(name):
    (_, dp), (_, tp) = _pieces(distnn, name), _pieces(torch, name)
    with pytest.raises(RuntimeError) as t_err:
        tp[0].mul_(2)
    with pytest.raises(RuntimeError) as d_err:
        dp[0].mul_(2)
    assert "multiple views" in str(t_err.value) and "multiple views" in str(d_err.value)
