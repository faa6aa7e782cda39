"""The layout of advanced indexing of a tensor that is not row-major, against torch (the oracle).

torch's ``index`` kernel lays its result out by the indexed view's strides (``x.transpose(0, 2)[[0, 0]]`` is not
contiguous, ``x.t()[[0, 2]]`` is); distnn's result matches: ``stride()`` (of the dims of size above 1),
``is_contiguous()``, whether ``view(-1)`` is allowed, and the values, over seeded layouts (permuted, stepped,
channels_last) and indexes (one or two integer arrays, adjacent or not, 2-D ones, a boolean mask, with slices
around them). Results with a dim of size 1 are not modelled (distnn's stay row-major, see
distnn/functional/index_layout.py): the cases have none.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
from tensor_ops_oracle import layout_signature  # noqa: E402


def _case(seed):
    rng = np.random.default_rng(seed)
    nd = int(rng.integers(2, 5))
    shape = tuple(int(s) for s in rng.integers(3, 6, nd))  # (no dim of size 1, even stepped)
    perm = [int(p) for p in rng.permutation(nd)]
    step = bool(rng.random() < 0.3)
    a = rng.uniform(-1, 1, shape)
    index, n_adv = [], int(rng.integers(1, 3))
    slots = sorted(int(d) for d in rng.choice(nd, n_adv, replace=False))
    permuted = tuple(torch.empty(shape).permute(*perm)[..., ::2 if step else 1].shape)
    for d in range(nd):
        if d in slots:
            if rng.random() < 0.2 and n_adv == 1:
                mask = rng.random(permuted[d]) < 0.6
                mask[:2] = True  # (two positions at least: no dim of size 1)
                index.append(("mask", mask))
            elif rng.random() < 0.3:
                index.append(("int", rng.integers(0, permuted[d], (2, 3))))
            else:
                index.append(("int", rng.integers(0, permuted[d], 3)))
        else:
            index.append(("slice", slice(None, None, 2) if rng.random() < 0.3 and permuted[d] >= 3 else slice(None)))
    return a, perm, step, index


def _run(L, a, perm, step, index):
    x = torch.tensor(a) if L is torch else distnn.Tensor(a.copy())
    x = x.permute(*perm)
    if step:
        x = x[..., ::2]
    items = []
    for kind, v in index:
        if kind in ("mask", "int"):
            items.append(torch.tensor(v) if L is torch else distnn.Tensor(v))
        else:
            items.append(v)
    return x[tuple(items)]


@pytest.mark.parametrize("seed", range(300))
def test_advanced_index_layout_as_torch(seed):
    a, perm, step, index = _case(seed)
    r_t, r_d = _run(torch, a, perm, step, index), _run(distnn, a, perm, step, index)
    assert tuple(r_d.shape) == tuple(r_t.shape)
    np.testing.assert_array_equal(np.asarray(r_d.data), r_t.numpy())
    if r_t.numel():
        assert layout_signature(r_d) == layout_signature(r_t), f"perm {perm} step {step} index {index}: distnn {r_d.stride()} " \
                                             f"vs torch {r_t.stride()}"


def test_index_of_a_transpose_refuses_view_as_torch():
    a = np.arange(24.0).reshape(2, 3, 4)
    r_t = torch.tensor(a).transpose(0, 2)[torch.tensor([0, 0])]
    r_d = distnn.Tensor(a).transpose(0, 2)[distnn.Tensor(np.array([0, 0]))]
    assert r_d.stride() == r_t.stride() == (6, 1, 3)
    assert not r_d.is_contiguous()
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        r_d.view(-1)
    np.testing.assert_array_equal(np.asarray(r_d.reshape(-1).data), r_t.reshape(-1).numpy())


def test_index_gradient_through_the_relaid_result():
    a = np.random.default_rng(2).uniform(-1, 1, (2, 3, 4))
    x_t, x_d = torch.tensor(a, requires_grad=True), distnn.Tensor(a.copy(), requires_grad=True)
    w = np.linspace(0.5, 1.5, 24).reshape(4, 2, 3)
    for L, x in ((torch, x_t), (distnn, x_d)):
        idx = torch.tensor([2, 0]) if L is torch else distnn.Tensor(np.array([2, 0]))
        r = x.permute(2, 0, 1)[:, :, idx]
        (r * (torch.tensor(w[:, :, :2]) if L is torch else distnn.Tensor(w[:, :, :2]))).sum().backward()
    np.testing.assert_allclose(np.asarray(x_d.grad), x_t.grad.numpy(), rtol=1e-12)
