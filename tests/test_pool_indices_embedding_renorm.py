"""max_pool2d's ``return_indices``, ``max_unpool2d`` / ``MaxUnpool2d``, and Embedding's ``max_norm`` /
``scale_grad_by_freq``, against PyTorch with the same inputs and weights.

Inputs hold small integers (many ties, as after ReLU) and upstream gradients are integers too, so every
sum is exact and outputs, indices and gradients are compared bitwise; only a renormalized embedding row
(whose norm PyTorch reduces in another order) is compared to a float32 ulp or two.
"""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn

INF = float("inf")


def ints(rng, shape, lo=-2, hi=3, dtype=np.float32):
    return rng.integers(lo, hi, shape).astype(dtype)


def pool_pair(torch, x, g, kw):
    """distnn's and PyTorch's (output, indices, input gradient) for max_pool2d(x, return_indices=True, **kw)."""
    d = distnn.Tensor(x, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    dout, didx = F.max_pool2d(d, return_indices=True, **kw)
    tout, tidx = torch.nn.functional.max_pool2d(t, return_indices=True, **kw)
    (dout * distnn.Tensor(g)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    return (dout.numpy(), didx.numpy(), d.grad), (tout.detach().numpy(), tidx.numpy(), t.grad.numpy())


# ---------------------------------------------------------------- max_pool2d(return_indices=True)
POOLS = [
    ((2, 3, 8, 8), dict(kernel_size=2)),
    ((2, 2, 9, 7), dict(kernel_size=3, stride=2, padding=1)),
    ((1, 3, 7, 10), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0))),
    ((2, 2, 10, 9), dict(kernel_size=3, stride=2, padding=1, dilation=2)),
    ((1, 2, 9, 8), dict(kernel_size=2, stride=2, ceil_mode=True)),
    ((2, 1, 8, 11), dict(kernel_size=3, stride=2, padding=1, dilation=(1, 2), ceil_mode=True)),
    ((1, 2, 6, 6), dict(kernel_size=3, stride=1)),  # overlapping windows: an input wins several times
]


@pytest.mark.parametrize("shape,kw", POOLS, ids=[str(i) for i in range(len(POOLS))])
def test_max_pool2d_indices_output_and_gradient_match_torch_bitwise(torch, rng, shape, kw):
    x = ints(rng, shape)
    dout, _ = F.max_pool2d(distnn.Tensor(x), return_indices=True, **kw)
    g = ints(rng, dout.shape, -3, 4)
    (do, di, dg), (to, ti, tg) = pool_pair(torch, x, g, kw)
    assert di.dtype == np.int64 and di.shape == ti.shape
    np.testing.assert_array_equal(do, to)
    np.testing.assert_array_equal(di, ti)
    np.testing.assert_array_equal(dg, tg)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_indices_pick_as_torch_in_nan_and_minus_inf_windows(torch, dtype):
    # A NaN window gives its LAST NaN (PyTorch keeps a value when val > max or isnan(val)), even after a
    # larger number; a window of -inf gives its first real cell, never padding.
    x = np.array([[[[1, np.nan, 3, np.nan, 7, 1],
                    [np.nan, 0, 0, 0, np.nan, 9],
                    [-INF, -INF, 2, 2, 5, 5],
                    [-INF, -INF, 2, 5, 5, 1]]]], dtype=dtype)
    g = np.arange(1, 1 + 3 * 4, dtype=dtype).reshape(1, 1, 3, 4)
    for kw in [dict(kernel_size=2), dict(kernel_size=2, stride=2, padding=1)]:
        gg = g[..., :2, :3] if "padding" not in kw else g
        (do, di, dg), (to, ti, tg) = pool_pair(torch, x, gg, kw)
        np.testing.assert_array_equal(do, to)
        np.testing.assert_array_equal(di, ti)
        np.testing.assert_array_equal(dg, tg)  # the gradient goes where the index points


def test_max_pool2d_module_returns_indices_unbatched_and_indices_carry_no_gradient(torch, rng):
    x = ints(rng, (3, 7, 6))  # (C, H, W): a batch of one, as PyTorch
    out, idx = nn.MaxPool2d(3, 2, 1, return_indices=True)(distnn.Tensor(x, requires_grad=True))
    tout, tidx = torch.nn.MaxPool2d(3, 2, 1, return_indices=True)(torch.tensor(x))
    assert out.shape == tuple(tout.shape) and idx.shape == tuple(tidx.shape) == (3, 4, 3)
    np.testing.assert_array_equal(out.numpy(), tout.numpy())
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    assert out.requires_grad and not idx.requires_grad and idx.dtype == np.int64
    # without return_indices: the output alone, as before
    assert isinstance(nn.MaxPool2d(2)(distnn.Tensor(x)), distnn.Tensor)


# ---------------------------------------------------------------- max_unpool2d / MaxUnpool2d
UNPOOLS = [
    ((2, 3, 8, 8), dict(kernel_size=2), None),
    ((1, 2, 9, 7), dict(kernel_size=2), (9, 7)),  # odd input: output_size gives back the lost row/column
    ((2, 2, 9, 9), dict(kernel_size=3, stride=2, padding=1), None),
    ((1, 2, 10, 8), dict(kernel_size=3, stride=2, padding=1), (1, 2, 10, 8)),  # (N, C, H, W) form
    ((1, 2, 6, 7), dict(kernel_size=3, stride=1), None),  # overlapping windows: repeated indices
]


@pytest.mark.parametrize("shape,kw,output_size", UNPOOLS, ids=[str(i) for i in range(len(UNPOOLS))])
def test_max_unpool2d_round_trip_and_gradient_match_torch(torch, rng, shape, kw, output_size):
    x = ints(rng, shape)
    tpooled, tidx = torch.nn.functional.max_pool2d(torch.tensor(x), return_indices=True, **kw)
    pooled, idx = F.max_pool2d(distnn.Tensor(x), return_indices=True, **kw)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    unkw = {k: v for k, v in kw.items() if k in ("kernel_size", "stride", "padding")}
    d = distnn.Tensor(pooled.numpy(), requires_grad=True)
    t = tpooled.clone().requires_grad_(True)
    dout = F.max_unpool2d(d, idx, output_size=output_size, **unkw)
    tout = torch.nn.functional.max_unpool2d(t, tidx, output_size=output_size, **unkw)
    assert dout.shape == tuple(tout.shape)
    if output_size is not None:
        assert dout.shape[-2:] == tuple(output_size)[-2:]
    np.testing.assert_array_equal(dout.numpy(), tout.detach().numpy())
    g = ints(rng, dout.shape, -3, 4)
    (dout * distnn.Tensor(g)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(d.grad, t.grad.numpy())  # gathered at the indices


def test_max_unpool2d_module_and_unbatched_input_match_torch(torch, rng):
    x = ints(rng, (3, 9, 8))  # (C, H, W)
    pooled, idx = nn.MaxPool2d(2, return_indices=True)(distnn.Tensor(x))
    tpooled, tidx = torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))
    unpool, tunpool = nn.MaxUnpool2d(2), torch.nn.MaxUnpool2d(2)
    assert repr(unpool) == repr(tunpool)
    for size in [None, (9, 8)]:
        out, tout = unpool(pooled, idx, output_size=size), tunpool(tpooled, tidx, output_size=size)
        assert out.shape == tuple(tout.shape)
        np.testing.assert_array_equal(out.numpy(), tout.numpy())
    # The round trip keeps every window's maximum where it was and zeros the rest.
    back = unpool(pooled, idx, output_size=(9, 8)).numpy()
    kept = back != 0
    np.testing.assert_array_equal(back[kept], x[kept])


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.unpool = nn.MaxUnpool2d(2)
        self.emb = nn.Embedding(4, 2)


def test_max_unpool2d_takes_an_empty_batch_as_torch(torch):
    # found by tests/test_layer_fuzz.py: a batch of 0 raised "cannot reshape array of size 0 into shape (0,newaxis)"
    x = np.zeros((0, 2, 3, 4), np.float32)
    idx = np.zeros((0, 2, 3, 4), np.int64)
    d = distnn.Tensor(x, requires_grad=True)
    out = nn.MaxUnpool2d(2)(d, distnn.Tensor(idx))
    assert out.shape == tuple(torch.nn.MaxUnpool2d(2)(torch.tensor(x), torch.tensor(idx)).shape) == (0, 2, 6, 8)
    out.sum().backward()
    assert d.grad.shape == (0, 2, 3, 4)


def test_max_unpool2d_refuses_bad_indices_and_output_size_naming_the_problem():
    x = distnn.Tensor(np.ones((1, 1, 2, 2), np.float32))
    ok = np.zeros((1, 1, 2, 2), np.int64)
    with pytest.raises(ValueError, match=r"indices have shape \(1, 1, 2, 3\) but the input has shape \(1, 1, 2, 2\)"):
        F.max_unpool2d(x, np.zeros((1, 1, 2, 3), np.int64), 2)
    with pytest.raises(ValueError, match=r"indices out of range.*\[0, 16\].*\(4, 4\) has 16 cells"):
        F.max_unpool2d(x, np.array([0, 1, 2, 16]).reshape(1, 1, 2, 2), 2)
    with pytest.raises(ValueError, match=r"indices out of range.*\[-1, 2\]"):
        F.max_unpool2d(x, np.array([0, -1, 2, 1]).reshape(1, 1, 2, 2), 2)
    with pytest.raises(TypeError, match="indices must be integers.*float"):
        F.max_unpool2d(x, ok.astype(np.float32), 2)
    with pytest.raises(ValueError, match=r"invalid output_size \(6, 4\).*dim 0 must be strictly between 2 and 6"):
        F.max_unpool2d(x, ok, 2, output_size=(6, 4))
    with pytest.raises(ValueError, match=r"output_size must be \(H, W\) or \(N, C, H, W\), got \(1, 4, 4\)"):
        F.max_unpool2d(x, ok, 2, output_size=(1, 4, 4))
    with pytest.raises(ValueError, match=r"4-D input.*got shape \(2, 2\)"):
        F.max_unpool2d(distnn.Tensor(np.ones((2, 2), np.float32)), np.zeros((2, 2), np.int64), 2)
    with pytest.raises(ValueError, match=r"MaxUnpool2d 'unpool'.*indices have shape"):
        _Net().unpool(x, np.zeros((1, 1, 1, 2), np.int64))
    np.testing.assert_array_equal(F.max_unpool2d(x, ok, 2, output_size=(5, 3)).shape, (1, 1, 5, 3))  # within range


# ---------------------------------------------------------------- Embedding max_norm
def embedding_pair(torch, rng, num=12, dim=5, scale=2.0, **kw):
    w = (scale * rng.standard_normal((num, dim))).astype(np.float32)
    dm = nn.Embedding(num, dim, _weight=w.copy(), **kw)
    tm = torch.nn.Embedding(num, dim, _weight=torch.tensor(w.copy()), **kw)
    return w, dm, tm


def check_weight_and_grads(torch, rng, w0, dm, tm, idx, calls=1):
    v0 = dm.weight._version
    douts = [dm(idx) for _ in range(calls)]
    touts = [tm(torch.tensor(idx)) for _ in range(calls)]
    dw, tw = dm.weight.data, tm.weight.detach().numpy()
    np.testing.assert_allclose(dw, tw, rtol=3e-7, atol=0)  # renormalized rows: a float32 ulp or so
    looked_up = np.zeros(len(w0), bool)
    looked_up[idx.reshape(-1)] = True
    np.testing.assert_array_equal(dw[~looked_up], w0[~looked_up])  # rows not looked up are untouched
    assert dm.weight._version > v0  # an in-place change, as PyTorch's
    for do, to in zip(douts, touts):
        np.testing.assert_allclose(do.numpy(), to.detach().numpy(), rtol=3e-7, atol=0)
    gs = [ints(rng, do.shape, -3, 4) for do in douts]
    sum((do * distnn.Tensor(g)).sum() for do, g in zip(douts, gs)).backward()
    sum((to * torch.tensor(g)).sum() for to, g in zip(touts, gs)).backward()
    np.testing.assert_array_equal(dm.weight.grad, tm.weight.grad.numpy())  # the plain lookup's gradient
    return dw


@pytest.mark.parametrize("norm_type", [1.0, 2.0, INF])
def test_embedding_max_norm_renormalizes_rows_in_place_as_torch(torch, rng, norm_type):
    w0, dm, tm = embedding_pair(torch, rng, max_norm=1.5, norm_type=norm_type, padding_idx=3)
    idx = np.array([[0, 3, 5, 5, 7], [2, 3, 0, 11, 5]])  # repeated indices; padding row 3 is renormalized too
    w0[0] /= np.linalg.norm(w0[0].astype(np.float64), ord=norm_type)  # a row of norm 1 < max_norm
    dm.weight.data[0] = tm.weight.data[0] = torch.tensor(w0[0])
    norms = np.linalg.norm(w0.astype(np.float64), ord=norm_type, axis=1)
    dw = check_weight_and_grads(torch, rng, w0, dm, tm, idx)
    long_rows = [r for r in (0, 2, 3, 5, 7, 11) if norms[r] > 1.5]
    assert len(long_rows) >= 3 and 0 not in long_rows
    for r in (0, 2, 3, 5, 7, 11):
        if r in long_rows:  # now of norm max_norm (up to the 1e-7 and rounding)
            assert np.linalg.norm(dw[r].astype(np.float64), ord=norm_type) == pytest.approx(1.5, rel=1e-6)
        else:  # short enough already: left bitwise alone
            np.testing.assert_array_equal(dw[r], w0[r])
    assert np.all(dm.weight.grad[3] == 0)  # padding_idx gets no gradient


def test_embedding_looked_up_twice_with_max_norm_still_backwards_as_torch(torch, rng):
    # The second lookup renormalizes in place after the first was recorded: the lookup's backward reads only
    # the indices, so (as in PyTorch) both gradients flow.
    w0, dm, tm = embedding_pair(torch, rng, max_norm=1.0, norm_type=2.0)
    check_weight_and_grads(torch, rng, w0, dm, tm, np.array([1, 4, 4, 9]), calls=2)


def test_functional_embedding_max_norm_and_scale_grad_by_freq_match_torch(torch, rng):
    w = (2 * rng.standard_normal((8, 3))).astype(np.float32)
    idx = np.array([[1, 2, 2, 6], [6, 6, 0, 2]])
    for kw in [dict(max_norm=2.0, norm_type=3.0), dict(scale_grad_by_freq=True, padding_idx=-2),
               dict(scale_grad_by_freq=True, max_norm=1.0)]:
        dw, tw = distnn.Tensor(w.copy(), requires_grad=True), torch.tensor(w.copy(), requires_grad=True)
        dout = F.embedding(idx, dw, **kw)
        tout = torch.nn.functional.embedding(torch.tensor(idx), tw, **kw)
        np.testing.assert_allclose(dw.data, tw.detach().numpy(), rtol=3e-7, atol=0)
        np.testing.assert_allclose(dout.numpy(), tout.detach().numpy(), rtol=3e-7, atol=0)
        assert ("max_norm" in kw) == (not np.array_equal(dw.data, w))  # renormalized only when asked
        g = ints(rng, dout.shape, -3, 4)
        (dout * distnn.Tensor(g)).sum().backward()
        (tout * torch.tensor(g)).sum().backward()
        # Each row's gradient divided by its count (1/3 is not exact in float32: to rounding).
        np.testing.assert_allclose(dw.grad, tw.grad.numpy(), rtol=1e-6, atol=1e-7)
        if kw.get("scale_grad_by_freq"):
            assert dw.grad[2] == pytest.approx(g[idx == 2].sum(0) / 3, rel=1e-6)


def test_embedding_arguments_follow_torch_order(torch):
    m = nn.Embedding(10, 3, None, 1.0, 1.0, True)  # torch's positional order
    t = torch.nn.Embedding(10, 3, None, 1.0, 1.0, True)
    assert (m.padding_idx, m.max_norm, m.norm_type, m.scale_grad_by_freq) == (None, 1.0, 1.0, True)
    assert repr(m) == repr(t)
    w = np.arange(12, dtype=np.float32).reshape(4, 3)
    p = nn.Embedding.from_pretrained(w, padding_idx=0, max_norm=2.0)
    assert not p.weight.requires_grad and p.max_norm == 2.0 and p.padding_idx == 0
    assert nn.Embedding(4, 3, _weight=w, _freeze=True).weight.requires_grad is False
    p(np.array([1]))
    np.testing.assert_allclose(np.linalg.norm(p.weight.data[1]), 2.0, rtol=1e-6)
    np.testing.assert_array_equal(p.weight.data[2:], w[2:])
    assert repr(nn.Embedding(4, 3, sparse=True)) == repr(torch.nn.Embedding(4, 3, sparse=True))  # (tests/test_sparse_*)


def test_embedding_errors_name_the_layer_or_function():
    net = _Net()
    with pytest.raises(IndexError, match=r"Embedding 'emb': index out of range.*\[0, 4\].*num_embeddings is 4"):
        net.emb(np.array([0, 4]))
    with pytest.raises(TypeError, match=r"Embedding 'emb': indices must be integers"):
        net.emb(np.array([0.5]))
    w = distnn.Tensor(np.zeros((4, 2), np.float32))
    with pytest.raises(IndexError, match=r"^embedding: index out of range.*\[-1, 0\]"):
        F.embedding(np.array([-1, 0]), w, max_norm=1.0)
    with pytest.raises(ValueError, match=r"embedding: padding_idx 4 must be within num_embeddings \(4\)"):
        F.embedding(np.array([0]), w, padding_idx=4)
    with pytest.raises(ValueError, match=r"embedding: weight must be 2-D.*\(8,\)"):
        F.embedding(np.array([0]), distnn.Tensor(np.zeros(8, np.float32)))
