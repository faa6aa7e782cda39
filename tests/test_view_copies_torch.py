"""PyTorch's ``*_copy`` functions, ``narrow_copy`` and the ``unsafe_*`` splits against torch: the values, a fresh
row-major result that shares no memory with the input, float64 gradients, ``out=`` (filled, resized with torch's
warning, a wrong dtype refused) and the unsafe splits' untracked views."""
import warnings

import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

A = np.random.default_rng(5).normal(size=(3, 4, 5))
C = np.random.default_rng(6).normal(size=(3, 4, 2))

# name, args after the input, the input's array
ONE = [
    ("alias_copy", (), A), ("diagonal_copy", (1, 0, 2), A), ("diagonal_copy", (), A),
    ("expand_copy", ((2, 3, 4, 5),), A), ("permute_copy", ((2, 0, 1),), A), ("select_copy", (1, -2), A),
    ("slice_copy", (2, 1, 5, 2), A), ("slice_copy", (), A), ("squeeze_copy", (), A[:, :1]),
    ("squeeze_copy", (1,), A[:, :1]), ("unsqueeze_copy", (1,), A), ("t_copy", (), A[0]),
    ("transpose_copy", (0, 2), A), ("unfold_copy", (2, 2, 2), A), ("view_copy", ((4, 15),), A),
    ("narrow_copy", (1, 1, 2), A),
]
MANY = [("split_copy", (2, 1), A), ("split_with_sizes_copy", ((1, 3), 1), A), ("unbind_copy", (2,), A)]


def _pair(array, grad=True):
    return distnn.Tensor(array.copy(), requires_grad=grad), torch.tensor(array, requires_grad=grad)


def _check_fresh(rd, rt, xd):
    assert rd.shape == tuple(rt.shape)
    assert rd.stride() == rt.stride() == tuple(torch.empty(rt.shape).stride())  # row-major, as torch's
    np.testing.assert_array_equal(rd.data, rt.detach().numpy())
    assert not np.shares_memory(rd.data, xd.data)
    before = xd.data.copy()
    rd.data[...] = 0  # (a fresh copy: the input is untouched)
    np.testing.assert_array_equal(xd.data, before)


@pytest.mark.parametrize("name,args,array", ONE, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(ONE)])
def test_copy_values_strides_and_gradient(name, args, array):
    xd, xt = _pair(array)
    rd, rt = getattr(distnn, name)(xd, *args), getattr(torch, name)(xt, *args)
    assert rd.requires_grad == rt.requires_grad
    if rt.requires_grad:
        w = np.random.default_rng(1).normal(size=tuple(rt.shape))
        (rd * distnn.Tensor(w)).sum().backward()
        (rt * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=1e-13)
    _check_fresh(rd, rt, xd)


@pytest.mark.parametrize("name,args,array", MANY)
def test_copies_of_several_pieces(name, args, array):
    xd, xt = _pair(array)
    pd, pt = getattr(distnn, name)(xd, *args), getattr(torch, name)(xt, *args)
    assert len(pd) == len(pt)
    w = np.random.default_rng(2)
    ws = [w.normal(size=tuple(p.shape)) for p in pt]
    sum((p * distnn.Tensor(v)).sum() for p, v in zip(pd, ws)).backward()
    sum((p * torch.tensor(v)).sum() for p, v in zip(pt, ws)).backward()
    np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=1e-13)
    for a, b in zip(pd, pt):
        _check_fresh(a, b, xd)


def test_view_as_real_copy_and_view_copy_of_a_dtype():
    z = C[..., 0] + 1j * C[..., 1]
    rd, rt = distnn.view_as_real_copy(distnn.Tensor(z)), torch.view_as_real_copy(torch.tensor(z))
    np.testing.assert_array_equal(rd.data, rt.numpy())
    assert rd.stride() == rt.stride()
    # (distnn has no complex autograd: the complex result is checked without gradients)
    cd, ct = distnn.view_as_complex_copy(distnn.Tensor(C)), torch.view_as_complex_copy(torch.tensor(C))
    _check_fresh(cd, ct, distnn.Tensor(C))
    vd, vt = distnn.view_copy(distnn.Tensor(A), np.int64), torch.view_copy(torch.tensor(A), torch.int64)
    np.testing.assert_array_equal(vd.data, vt.numpy())


def test_detach_copy_is_cut_from_the_graph():
    # (torch's result requires grad with a node whose backward raises "derivative for aten::detach_copy is not
    # implemented": distnn's is cut from the graph, as detach()'s, so no backward reaches the input)
    xd, xt = _pair(A)
    rd, rt = distnn.detach_copy(xd), torch.detach_copy(xt)
    assert not rd.requires_grad and rd.grad_fn is None
    _check_fresh(rd, rt, xd)


def test_out_is_filled_resized_with_torchs_warning_and_refuses_another_dtype():
    xd, xt = _pair(A[0], grad=False)
    od, ot = distnn.Tensor(np.zeros((0,))), torch.empty(0, dtype=torch.float64)
    assert distnn.t_copy(xd, out=od) is od and torch.t_copy(xt, out=ot) is ot
    np.testing.assert_array_equal(od.data, ot.numpy())
    od, ot = distnn.Tensor(np.zeros(2)), torch.zeros(2, dtype=torch.float64)
    with pytest.warns(UserWarning, match="was resized since it had shape") as rec:
        distnn.transpose_copy(xd, 0, 1, out=od)
    with warnings.catch_warnings(record=True) as rec_t:
        warnings.simplefilter("always")
        torch.transpose_copy(xt, 0, 1, out=ot)
    assert str(rec_t[0].message).startswith(str(rec[0].message))  # (torch adds where it was triggered)
    np.testing.assert_array_equal(od.data, ot.numpy())
    with pytest.raises(RuntimeError) as et:
        torch.t_copy(xt, out=torch.empty(5, 4, dtype=torch.float32))
    with pytest.raises(RuntimeError) as ed:
        distnn.t_copy(xd, out=distnn.Tensor(np.zeros((5, 4), np.float32)))
    assert str(ed.value) == str(et.value)


def test_out_list_of_the_split_copies():
    xd, xt = _pair(A, grad=False)
    od = [distnn.Tensor(np.zeros((4, 5))) for _ in range(3)]
    ot = [torch.zeros(4, 5, dtype=torch.float64) for _ in range(3)]
    assert distnn.unbind_copy(xd, 0, out=od) is None and torch.unbind_copy(xt, 0, out=ot) is None
    for a, b in zip(od, ot):
        np.testing.assert_array_equal(a.data, b.numpy())


def test_narrow_copy_method():
    xd, xt = _pair(A, grad=False)
    np.testing.assert_array_equal(xd.narrow_copy(2, 1, 3).data, xt.narrow_copy(2, 1, 3).numpy())


@pytest.mark.parametrize("name,args", [("unsafe_split", (2, 1)), ("unsafe_split_with_sizes", ((3, 1), 1)),
                                       ("unsafe_chunk", (3, 2))])
def test_unsafe_splits_share_memory_untracked(name, args):
    xd, xt = _pair(A, grad=False)
    pd, pt = getattr(distnn, name)(xd, *args), getattr(torch, name)(xt, *args)
    assert [tuple(p.shape) for p in pd] == [tuple(p.shape) for p in pt]
    for a, b in zip(pd, pt):
        np.testing.assert_array_equal(a.data, b.numpy())
        assert a.stride() == b.stride()
    pd[0].fill_(7.0), pt[0].fill_(7.0)  # the same memory: the write reaches the input
    np.testing.assert_array_equal(xd.data, xt.numpy())
    assert xd._version == 0 and xt._version == 0  # (untracked: the input's counter is not bumped)
    md = getattr(xd, name)(*args)
    assert len(md) == len(pd)


def test_unsafe_split_inplace_while_recording_has_torchs_gradient():
    xd, xt = _pair(A)
    grads = []
    for x, lib in ((xd, distnn), (xt, torch)):
        y = x * 2.0
        a, b = lib.unsafe_split(y, 2, 1)[:2]
        a.mul_(3.0)  # (allowed: the pieces are not tracked views)
        (a.sum() + (b * b).sum()).backward()
        grads.append(x.grad)
    np.testing.assert_allclose(grads[0], grads[1].numpy(), rtol=1e-13)
