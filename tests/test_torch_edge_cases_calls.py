"""distnn vs PyTorch on PyTorch's own calls: reductions, split and pad with PyTorch's arguments and meaning,
tensor methods and constructors, clamp with tensor bounds, maximum/minimum ties, empty dims, remainder's
divisor gradient, broadcast_to/expand with -1, max/min of an empty batch."""
import re

import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import Tensor, nn

from edge_cases_oracle import pair


def test_reductions_take_pytorchs_dim_arguments_with_pytorchs_meaning(torch):
    # x.max(1) returned the values only (pred = out.max(1)[1] gave one number), var was the population
    # variance, and dim=/keepdim= were TypeErrors; numpy's axis=/keepdims=/ddof= keep numpy's meaning
    x = np.random.default_rng(3).standard_normal((4, 6))
    d, t = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    values, indices = d.max(1)
    ref = t.max(1)
    np.testing.assert_array_equal(indices.data, ref.indices.numpy())
    np.testing.assert_allclose(values.data, ref.values.detach().numpy())
    assert d.max(1)[1].data.tolist() == ref[1].tolist() and distnn.min(d, 0).indices.data.tolist() == \
        t.min(0).indices.tolist()
    assert d.max(dim=1, keepdim=True).values.shape == (4, 1) and d.argmax(dim=1, keepdim=True).shape == (4, 1)
    values.sum().backward()
    ref.values.sum().backward()
    np.testing.assert_allclose(d.grad, t.grad.numpy())  # (no ties here)
    pairs = ((d.var(), t.var()), (d.var(1), t.var(1)), (d.std(0, keepdim=True), t.std(0, keepdim=True)),
             (d.var(1, unbiased=False), t.var(1, unbiased=False)), (d.var(correction=0), t.var(correction=0)),
             (d.sum(dim=1, keepdim=True), t.sum(dim=1, keepdim=True)), (d.mean(dim=0), t.mean(dim=0)))
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(d.var(axis=1).data, x.var(axis=1), rtol=1e-12)  # numpy's keywords: numpy's ddof=0
    assert d.max(axis=1).shape == (4,) and d.max().shape == ()
    with pytest.raises(TypeError, match="distnn.functional.maximum"):
        distnn.max(d, d)


def test_split_and_pad_take_pytorchs_arguments_with_pytorchs_meaning(torch):
    # split read an int as a number of sections and a list as split points (numpy), pad's (1, 1) padded
    # every axis: the same calls silently gave other shapes than PyTorch's
    x = np.arange(24.0).reshape(4, 6)
    d, t = Tensor(x), torch.tensor(x)
    for args in ((2, 1), ([2, 4], 1), (4, 1), (3,)):
        ours, theirs = F.split(d, *args), torch.split(t, *args)
        assert [p.shape for p in ours] == [tuple(p.shape) for p in theirs]
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a.data, b.numpy())
    assert [p.shape for p in F.split(d, 3, axis=1)] == [(4, 2)] * 3  # numpy's keyword: 3 sections
    x4 = np.ones((2, 3, 4, 5))
    for pad in ((1, 1), (0, 2, 1, 0), (1, 2, 3, 4, 5, 6)):
        ours = F.pad(Tensor(x4), pad, value=1.5)
        theirs = torch.nn.functional.pad(torch.tensor(x4), pad, value=1.5)
        np.testing.assert_array_equal(ours.data, theirs.numpy())
    assert F.pad(Tensor(x), ((1, 0), (0, 2))).shape == (5, 8)  # numpy's pairs per axis


def test_more_pytorch_calls_mean_the_same(torch):
    # int tensor * 0.5 was float64 (PyTorch: float32); transpose(x, 0, 1) and F.dropout(x, p, training, inplace)
    # and inplace=True on the activations were TypeErrors/AttributeErrors
    i = Tensor(np.arange(4))
    for ours, theirs in ((i * 0.5, torch.arange(4) * 0.5), (0.5 * i, 0.5 * torch.arange(4)),
                         (i + 1.5, torch.arange(4) + 1.5), (2.0 - i, 2.0 - torch.arange(4)), (1.0 / (i + 1), None)):
        assert ours.dtype == np.float32, ours.dtype
        if theirs is not None:
            np.testing.assert_allclose(ours.data, theirs.numpy())
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(F.transpose(Tensor(x), 0, 1).data, torch.transpose(torch.tensor(x), 0, 1).numpy())
    np.testing.assert_array_equal(F.dropout(Tensor(x), 0.5, False, False).data, x)
    np.testing.assert_array_equal(F.relu(Tensor(x - 2), inplace=True).data, np.maximum(x - 2, 0))


def test_pytorch_tensor_methods_and_constructors_match_values_and_gradients(torch):
    # each was an AttributeError; a ported script used them
    x = np.arange(12.0).reshape(3, 4) - 5.5
    index = np.array([[0, 1, 1], [2, 0, 3], [1, 1, 0]])
    mask = x > 0
    cases = {
        "clone": lambda a, lib: a.clone() * 2,
        "norm": lambda a, lib: a.norm() + a.norm(1) + a.norm(dim=1).sum(),
        "norm of zeros": lambda a, lib: (a * 0).norm(),  # a subgradient of 0, not NaN
        "masked_fill": lambda a, lib: a.masked_fill(mask if lib == "dn" else torch.tensor(mask), -1.0) * a,
        "chunk": lambda a, lib: a.chunk(3, 1)[1] * a.chunk(3, 1)[0][:, :1],
        "repeat": lambda a, lib: a.repeat(2, 1, 3) * 1.5,
        "gather": lambda a, lib: a.gather(1, index if lib == "dn" else torch.tensor(index)) ** 2,
        "remainder": lambda a, lib: (a % 3.0) * a,
        "pow/matmul/mul": lambda a, lib: a.pow(2).matmul(a.T).mul(0.5).add(1).sub(a.sum()).div(4),
        "zero_ via clone": lambda a, lib: a.clone().zero_() + a,
    }
    for name, fn in cases.items():
        d, t = Tensor(x.copy(), requires_grad=True), torch.tensor(x.copy(), requires_grad=True)
        ours, theirs = fn(d, "dn"), fn(t, "torch")
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, err_msg=name)
        (ours * ours).sum().backward()
        (theirs * theirs).sum().backward()
        np.testing.assert_allclose(d.grad, t.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
    d = Tensor(x)
    assert d.long().dtype == np.int64 and d.int().dtype == np.int32 and d.bool().dtype == bool
    assert (d // 2).data.tolist() == (torch.tensor(x) // 2).tolist() and d.contiguous() is d and d.cpu() is d
    assert (d > 0).all().item() is False and d.all().item() is True and d.any(1, keepdim=True).shape == (3, 1)
    assert distnn.arange(5).dtype == np.int64 and distnn.arange(0.0, 1.0, 0.25).dtype == np.float32
    np.testing.assert_array_equal(distnn.arange(1, 7, 2).data, torch.arange(1, 7, 2).numpy())
    assert distnn.zeros_like(d).shape == (3, 4) and distnn.full((2, 2), 7.0).data.sum() == 28
    a = np.ones(3)
    shared = distnn.from_numpy(a)
    a[0] = 5
    assert shared.data[0] == 5 and distnn.argmax(d, 1).data.tolist() == [3, 3, 3]


def test_late_review_edge_cases_match_pytorch(torch):
    # found by a review of the added methods: gather broadcast a smaller index and wrapped negative ones,
    # std's gradient was NaN on a constant slice, max(dim) split tied gradients, masked_fill dropped a tensor
    # value's gradient and changed integer dtypes
    x = np.arange(12.0).reshape(3, 4)
    assert Tensor(x).gather(1, np.array([[1, 2]])).data.tolist() == \
        torch.tensor(x).gather(1, torch.tensor([[1, 2]])).tolist()
    for bad in (np.array([[-1]]), np.array([[4]])):
        with pytest.raises(IndexError, match="indices must be in"):
            Tensor(x).gather(1, bad)
    const = Tensor(np.ones((2, 3)), requires_grad=True)
    const.std(1).sum().backward()
    assert const.grad.tolist() == [[0.0] * 3] * 2
    ties = np.array([[1.0, 3, 3], [2, 2, 0]])
    d, t = Tensor(ties, requires_grad=True), torch.tensor(ties, requires_grad=True)
    d.max(1).values.sum().backward()
    t.max(1).values.sum().backward()
    np.testing.assert_array_equal(d.grad, t.grad.numpy())
    mask = np.array([True, False, True, False])
    base, value = Tensor(np.arange(4.0), requires_grad=True), Tensor(np.array(2.0), requires_grad=True)
    (base.masked_fill(mask, value) * 3).sum().backward()
    assert value.grad == 6.0 and base.grad.tolist() == [0, 3, 0, 3]
    assert Tensor(np.arange(4)).masked_fill(mask, 9).dtype == np.int64
    assert (Tensor(np.arange(3)) * np.float64(1.5)).dtype == np.float32
    assert (np.float64(1.5) * Tensor(np.arange(3))).dtype == np.float32  # (the reflected order too)
    with pytest.raises(TypeError, match="4th argument is inplace"):
        F.dropout(Tensor(x), 0.5, True, np.random.default_rng(0))


def test_pad_crops_with_negative_amounts_and_full_follows_its_value(torch):
    x = np.arange(24.0).reshape(2, 3, 4)
    for pad in ((-1, 1), (1, -2, -1, 0), (-1, -1, 0, 2, 1, 0)):
        d, t = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        ours, theirs = F.pad(d, pad, value=0.5), torch.nn.functional.pad(t, pad, value=0.5)
        np.testing.assert_array_equal(ours.data, theirs.detach().numpy())
        (ours * ours).sum().backward()
        (theirs * theirs).sum().backward()
        np.testing.assert_array_equal(d.grad, t.grad.numpy())
    assert distnn.full((2,), 3).dtype == np.int64 and distnn.full((2,), True).dtype == bool
    assert distnn.full((2,), 0.5).dtype == np.float32
    assert F.transpose(Tensor(x), axes=(2, 0, 1)).shape == (4, 2, 3)  # numpy's keyword still works


def test_clamp_with_tensor_bounds_matches_pytorch_values_and_all_three_gradients(torch):
    # Tensor bounds were a TypeError from inside Clip.forward, and array bounds got no gradient
    x = np.array([[-2.0, 0.5, 3.0, 1.0], [0.0, 0.25, -1.0, 5.0]])
    lo = np.array([-1.0, 0.5, 0.0, 2.0])  # ties with x (0.5), and lo > hi in the last column
    hi = np.array([[1.0, 1.0, 2.0, 1.5]])
    u = np.random.default_rng(0).standard_normal(x.shape)
    cases = [lambda m, a, l, h: m.clamp(a, l, h), lambda m, a, l, h: m.clamp(a, min=l),
             lambda m, a, l, h: m.clamp(a, max=h), lambda m, a, l, h: a.clamp(l, h)]
    for case in cases:
        (da, ta), (dl, tl), (dh, th) = pair(torch, x), pair(torch, lo), pair(torch, hi)
        ours, theirs = case(_Clamp, da, dl, dh), case(torch, ta, tl, th)
        np.testing.assert_array_equal(ours.data, theirs.detach().numpy())
        (ours * Tensor(u)).sum().backward()
        (theirs * torch.tensor(u)).sum().backward()
        for d, t in ((da, ta), (dl, tl), (dh, th)):
            expected = t.grad.numpy() if t.grad is not None else np.zeros(t.shape)
            np.testing.assert_allclose(d.grad if d.grad is not None else np.zeros(d.shape), expected, rtol=1e-12)
    assert F.clip(Tensor(x), lo, hi).data.tolist() == np.clip(x, lo, hi).tolist()  # array bounds: numpy's values


class _Clamp:  # distnn's clamp under torch.clamp's name, so one lambda serves both
    clamp = staticmethod(F.clip)


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum_send_the_gradient_to_both_operands_where_one_is_nan(torch, op):
    # PyTorch's rule: each operand gets the gradient except where it lost, half on ties; a NaN loses
    # nowhere. distnn gave the NaN operand nothing and the other one all of it.
    a = np.array([np.nan, 1.0, 2.0, 3.0, np.nan])
    b = np.array([1.0, np.nan, 0.0, 3.0, np.nan])
    (da, ta), (db, tb) = pair(torch, a), pair(torch, b)
    ours, theirs = getattr(F, op)(da, db), getattr(torch, op)(ta, tb)
    np.testing.assert_array_equal(ours.data, theirs.detach().numpy())
    u = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    (ours * Tensor(u)).sum().backward()
    (theirs * torch.tensor(u)).sum().backward()
    np.testing.assert_array_equal(da.grad, ta.grad.numpy())
    np.testing.assert_array_equal(db.grad, tb.grad.numpy())


def test_empty_dim_reduces_everything_and_a_0d_tensor_takes_dim_0_or_minus_1(torch):
    # dim=() reduced nothing (var and std gave NaN arrays); sum(0) of a 0-d tensor was an AxisError,
    # max(0) an internal IndexError, mean(-1) refused
    x = np.arange(6.0).reshape(2, 3)
    for name, call in [("sum", lambda t, d: t.sum(d)), ("mean", lambda t, d: t.mean(d)),
                       ("var", lambda t, d: t.var(d)), ("std", lambda t, d: t.std(d)),
                       ("norm", lambda t, d: t.norm(dim=d))]:
        for empty in ((), []):
            d, t = pair(torch, x)
            ours, theirs = call(d, empty), call(t, empty)
            assert ours.shape == tuple(theirs.shape) == (), name
            np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, err_msg=name)
            # the gradient of the whole reduction (torch's var/std backward with dim=() is inf: it counts 1 element)
            theirs = call(t, None) if name != "norm" else t.norm()
            ours.backward()
            theirs.backward()
            np.testing.assert_allclose(d.grad, t.grad.numpy(), rtol=1e-12, err_msg=name)
    np.testing.assert_array_equal(Tensor(x).sum(axis=()).data, x)  # numpy's keyword keeps numpy's meaning
    for dim in (0, -1):
        for name, call in [("sum", lambda t: t.sum(dim)), ("mean", lambda t: t.mean(dim)),
                           ("std", lambda t: t.std(dim, unbiased=False)), ("max", lambda t: t.max(dim)[0]),
                           ("min", lambda t: t.min(dim).values), ("sum_keep", lambda t: t.sum(dim, keepdim=True))]:
            d, t = pair(torch, np.array(2.5))
            ours, theirs = call(d), call(t)
            assert ours.shape == tuple(theirs.shape), name
            np.testing.assert_allclose(ours.data, theirs.detach().numpy(), err_msg=name)
            ours.backward()
            theirs.backward()
            np.testing.assert_allclose(d.grad, t.grad.numpy(), err_msg=name)
        assert int(Tensor(np.array(2.5)).max(dim).indices.data) == 0
    with pytest.raises(ValueError, match="out of range"):
        Tensor(np.array(2.5)).sum(1)


def test_remainder_by_a_tensor_gives_the_divisor_its_gradient(torch):
    # y.grad was None: the quotient's product with y was a constant
    x = np.array([[5.0, -3.5, 7.25], [1.0, 2.0, -9.0]])
    y = np.array([2.0, 1.5, -3.0])  # broadcast over rows, a negative divisor too
    (dx, tx), (dy, ty) = pair(torch, x), pair(torch, y)
    ours, theirs = dx % dy, tx % ty
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12)
    u = np.arange(6.0).reshape(2, 3) + 1
    (ours * Tensor(u)).sum().backward()
    (theirs * torch.tensor(u)).sum().backward()
    np.testing.assert_allclose(dx.grad, tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(dy.grad, ty.grad.numpy(), rtol=1e-12)


def test_broadcast_to_and_expand_keep_a_dim_for_minus_1(torch):
    # F.broadcast_to / F.expand / Tensor.broadcast_to refused -1 (Tensor.expand took it)
    x = np.arange(3.0).reshape(3, 1)
    def functional_expand(m, t):
        return t.expand((2, 3, -1)) if m is torch else F.expand(t, (2, 3, -1))

    for call in (lambda m, t: m.broadcast_to(t, (2, -1, 4)), lambda m, t: t.broadcast_to((2, -1, 4)),
                 lambda m, t: t.expand(2, -1, 4), functional_expand):
        d, t = pair(torch, x)
        ours, theirs = call(F, d), call(torch, t)
        np.testing.assert_array_equal(ours.data, theirs.detach().numpy())
        ours.sum().backward()
        theirs.sum().backward()
        np.testing.assert_array_equal(d.grad, t.grad.numpy())
    with pytest.raises(RuntimeError, match="-1\\) isn't allowed in a leading, non-existing dimension 0"):
        F.broadcast_to(Tensor(x), (-1, 3, 4))  # a new leading dim has no size to keep (PyTorch refuses it too)


def test_max_and_min_of_an_empty_batch_along_a_non_empty_dim_as_torch(torch):
    # found by tests/test_layer_fuzz.py: x.max(1), amax, Maxout and normalize(p=inf) of a (0, 4) batch raised
    # "max of an empty tensor"; PyTorch returns the empty result (it refuses only an empty reduced dim)
    d, t = pair(torch, np.zeros((0, 4)))
    assert d.max(1)[0].shape == d.max(1)[1].shape == tuple(t.max(1).values.shape) == (0,)
    assert d.amin(1).shape == tuple(t.amin(1).shape) == (0,)
    assert F.normalize(d, p=float("inf"), dim=1).shape == (0, 4)
    assert nn.Maxout(2)(d).shape == (0, 2)
    d.amax(1).sum().backward()
    assert d.grad.shape == (0, 4)
    for call in (lambda x: x.max(0), lambda x: x.amax(0), lambda x: x.max(), lambda x: x.amin((0, 1))):
        with pytest.raises((RuntimeError, IndexError)) as theirs:  # (an empty reduced dim: refused alike)
            call(t)
        with pytest.raises(type(theirs.value), match=re.escape(str(theirs.value))):
            call(d)
