"""``as_strided`` and its family against torch: the storage offset counted from the storage's start (a view of a
slice reads before it), strides and values, a real view (writes seen both ways, the version counter shared),
overlapping reads, float64 gradients (scatter-added into the storage, divided where the input overlaps itself),
``as_strided_`` in place, ``as_strided_copy`` fresh, ``as_strided_scatter``'s values, layout and both gradients,
``slice_inverse``, and torch's refusals."""
import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

R = np.random.default_rng(11)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)


def _both(array, grad=False):
    return distnn.Tensor(array.copy(), requires_grad=grad), torch.tensor(array, requires_grad=grad)


def _same(d, t):
    assert d.shape == tuple(t.shape)
    np.testing.assert_array_equal(d.detach().numpy(), t.detach().numpy())


# (how to cut the input from the storage, size, stride, storage_offset)
CASES = [
    (lambda x: x, (3, 2), (2, 1), 1),
    (lambda x: x[2:], (2,), (1,), None),  # (the slice's own offset)
    (lambda x: x[2:], (2, 3), (1, 2), 0),  # (reads before the slice)
    (lambda x: x[1::2], (3, 3), (1, 1), 0),  # (overlapping reads)
    (lambda x: x.view(3, 4).t(), (2, 2), (4, 1), 5),
    (lambda x: x, (2, 0, 3), (1, 1, 1), 4),
    (lambda x: x[3], (), (), 7),
]


@pytest.mark.parametrize("cut,size,stride,offset", CASES)
def test_values_strides_offset_and_view(cut, size, stride, offset):
    bd, bt = _both(np.arange(12.0))
    xd, xt = cut(bd), cut(bt)
    vd, vt = distnn.as_strided(xd, size, stride, offset), torch.as_strided(xt, size, stride, offset)
    _same(vd, vt)
    assert vd.stride() == vt.stride() and vd.storage_offset() == vt.storage_offset()
    md = xd.as_strided(size, stride, offset)  # (the method)
    _same(md, vt)
    bd.mul_(2.0), bt.mul_(2.0)  # the base's write is seen by the view, and bumps the shared version
    _same(vd, vt)
    assert vd._version == bd._version == vt._version
    if vt.numel() and len(set(_locations(size, stride))) == vt.numel():  # (writable where it does not overlap)
        vd.add_(1.0), vt.add_(1.0)
        _same(bd, bt)
        assert vd._version == bd._version == vt._version


def _locations(size, stride):
    return [sum(i * s for i, s in zip(idx, stride)) for idx in np.ndindex(*size)]


GRAD_CASES = [
    (lambda x: x, (2, 2), (3, 1), 1),
    (lambda x: x[1:], (3, 3), (1, 1), 0),  # (overlap; location 0 is outside the input)
    (lambda x: x.view(2, 3).t(), (2, 2), (2, 1), 1),
    (lambda x: x[:3].expand(2, 3), (2,), (1,), 0),  # (the input overlaps itself: divided by how often it sees each)
    (lambda x: x[::2], (2, 2), (3, 2), 0),
]


@pytest.mark.parametrize("cut,size,stride,offset", GRAD_CASES)
def test_gradient_scatters_into_the_storage_as_torch(cut, size, stride, offset):
    a = R.normal(size=6)
    xd, xt = _both(a, grad=True)
    w = R.normal(size=size)
    yd = distnn.as_strided(cut(xd * 1.0), size, stride, offset)
    yt = torch.as_strided(cut(xt * 1.0), size, stride, offset)
    _same(yd, yt)
    (yd * distnn.Tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=1e-13, atol=1e-15)


def test_as_strided_inplace_changes_the_metadata():
    bd, bt = _both(np.arange(6.0))
    vd, vt = bd[1:], bt[1:]
    assert vd.as_strided_((2, 2), (1, 2), 1) is vd and vt.as_strided_((2, 2), (1, 2), 1) is vt
    _same(vd, vt)
    assert vd.stride() == vt.stride() and vd.storage_offset() == vt.storage_offset() == 1
    assert vd._version == vt._version == bd._version == bt._version == 1
    xd, xt = _both(np.arange(6.0), grad=True)
    yd, yt = xd * 1.0, xt * 1.0
    yd.as_strided_((2, 2), (1, 2), 1), yt.as_strided_((2, 2), (1, 2), 1)
    (yd * distnn.Tensor(np.arange(4.0).reshape(2, 2))).sum().backward()
    (yt * torch.arange(4.0, dtype=torch.float64).view(2, 2)).sum().backward()
    np.testing.assert_allclose(xd.grad, xt.grad.numpy())
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        xd.as_strided_((2,), (1,))
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        xt.as_strided_((2,), (1,))


def test_as_strided_copy_is_fresh():
    bd, bt = _both(np.arange(8.0), grad=True)
    cd, ct = distnn.as_strided_copy(bd, (3, 2), (1, 3), 1), torch.as_strided_copy(bt, (3, 2), (1, 3), 1)
    _same(cd, ct)
    assert cd.stride() == ct.stride() == (2, 1) and not np.shares_memory(cd.data, bd.data)
    w = R.normal(size=(3, 2))
    (cd * distnn.Tensor(w)).sum().backward(), (ct * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(bd.grad, bt.grad.numpy(), rtol=1e-13)


SCATTER_CASES = [
    (lambda x: x.view(3, 4), (2, 2), (4, 1), 1),
    (lambda x: x[2:], (2,), (1,), None),
    (lambda x: x[::2], (2,), (1,), 1),  # (writes a location the input does not see)
    (lambda x: x.view(3, 4).t(), (2,), (2,), 1),
]


@pytest.mark.parametrize("cut,size,stride,offset", SCATTER_CASES)
def test_as_strided_scatter_values_layout_and_gradients(cut, size, stride, offset):
    a, s = R.normal(size=12), R.normal(size=size)
    xd, sd = distnn.Tensor(a, requires_grad=True), distnn.Tensor(s, requires_grad=True)
    rd = distnn.as_strided_scatter(cut(xd * 1.0), sd * 1.0, size, stride, offset)

    def scatter(x, src):
        return torch.as_strided_scatter(cut(x), src, size, stride, offset)

    rt = scatter(torch.tensor(a), torch.tensor(s))
    _same(rd, rt)
    assert rd.stride() == rt.stride() and rd.storage_offset() == rt.storage_offset()
    w = R.normal(size=tuple(rt.shape))
    (rd * distnn.Tensor(w)).sum().backward()
    # The oracle is torch's forward (the op is linear in each input), not its backward: torch 2.13's fails its own
    # gradcheck (the input keeps the gradient at the written locations and loses the others; src reads the
    # gradient as if the input were contiguous), and it refuses a non-contiguous input that requires grad.
    zeros_src, zeros_x = torch.zeros(size, dtype=torch.float64), torch.zeros(12, dtype=torch.float64)
    grad_src = [float((torch.tensor(w) * (scatter(zeros_x, basis.reshape(size)))).sum())
                for basis in torch.eye(max(int(np.prod(size)), 1), dtype=torch.float64)[:int(np.prod(size))]]
    np.testing.assert_allclose(sd.grad.reshape(-1), grad_src, rtol=1e-13)
    xt = torch.tensor(a, requires_grad=True)
    keep = scatter(torch.ones(12, dtype=torch.float64), zeros_src)  # (1 where the input's value stays)
    (cut(xt * 1.0) * keep * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=1e-13)
    md = cut(distnn.Tensor(a)).as_strided_scatter(distnn.Tensor(s), size, stride, offset)  # (the method)
    _same(md, rt)


def test_slice_inverse_reads_the_storage_with_srcs_geometry():
    bd, bt = _both(np.arange(24.0))
    xd, xt = bd.view(4, 6), bt.view(4, 6)
    rd = distnn.slice_inverse(xd[1:3], xd.clone(), 0, 1, 3)
    rt = torch.slice_inverse(xt[1:3], xt.clone(), 0, 1, 3)
    _same(rd, rt)
    assert rd.stride() == rt.stride() and rd.storage_offset() == rt.storage_offset()
    rd = distnn.slice_inverse(bd[2:8:2], distnn.Tensor(np.zeros(3)), 0, 2, 8, 2)
    rt = torch.slice_inverse(bt[2:8:2], torch.zeros(3, dtype=torch.float64), 0, 2, 8, 2)
    _same(rd, rt)


@pytest.mark.parametrize("args", [((3,), (1,), 8), ((2,), (-1,), 0), ((2, 2), (1,), 0), ((2,), (1,), -1)])
def test_refusals_as_torch(args):
    xd, xt = _both(np.arange(10.0, dtype=np.float32))
    with pytest.raises(RuntimeError) as et:
        xt[2:].as_strided(*args)
    with pytest.raises(RuntimeError) as ed:
        xd[2:].as_strided(*args)
    assert str(ed.value) == str(et.value)


def test_scatter_refuses_a_src_of_another_size():
    xd, xt = _both(np.arange(10.0))
    with pytest.raises(RuntimeError) as et:
        torch.as_strided_scatter(xt, torch.ones(3, dtype=torch.float64), (2,), (1,))
    with pytest.raises(RuntimeError) as ed:
        distnn.as_strided_scatter(xd, distnn.Tensor(np.ones(3)), (2,), (1,))
    assert str(ed.value) == str(et.value)
