"""``Tensor.unfold`` is a view of its input's memory, as PyTorch's (it was a copy: writes through the windows
did not reach the base, nor the base's the windows): the same strides, writes seen both ways, an in-place
change through the windows while recording with torch's gradient, the version counter shared (also by empty
windows), overlapping windows' gradients summed and their writes refused."""
import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

A = np.random.default_rng(3).normal(size=(3, 7))


def _pair(grad=False):
    d, t = distnn.Tensor(A.copy(), requires_grad=grad), torch.tensor(A, requires_grad=grad)
    return (d.clone(), t.clone()) if grad else (d, t)


@pytest.mark.parametrize("dim,size,step", [(1, 3, 2), (1, 2, 2), (0, 2, 1), (1, 0, 1), (1, 7, 3), (-1, 1, 1)])
def test_windows_are_a_view_both_ways(dim, size, step):
    xd, xt = _pair()
    ud, ut = xd.unfold(dim, size, step), xt.unfold(dim, size, step)
    assert ud.shape == tuple(ut.shape) and ud.stride() == ut.stride()
    assert ud.is_contiguous() == ut.is_contiguous()
    xd.mul_(3.0), xt.mul_(3.0)  # the base's write is seen by the windows
    np.testing.assert_array_equal(ud.data, ut.numpy())
    if step >= size:  # (windows that do not overlap: writable)
        ud.add_(1.0), ut.add_(1.0)  # the windows' write reaches the base
        np.testing.assert_array_equal(xd.data, xt.numpy())


@pytest.mark.parametrize("dim,size,step", [(1, 3, 3), (0, 1, 2), (1, 2, 5)])
def test_inplace_through_windows_while_recording(dim, size, step):
    xd, xt = distnn.Tensor(A.copy(), requires_grad=True), torch.tensor(A, requires_grad=True)
    outs = []
    for x in (xd, xt):
        y = x.clone()
        u = y.unfold(dim, size, step)
        u.mul_(u.detach() + 2.0)
        w = np.linspace(0.5, 1.5, y.numel()).reshape(tuple(y.shape))
        (y * (distnn.Tensor(w) if x is xd else torch.tensor(w))).sum().backward()
        outs.append(y)
    np.testing.assert_allclose(outs[0].data, outs[1].detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=1e-13)


def test_overlapping_windows_gradient_and_refused_write():
    xd, xt = distnn.Tensor(A.copy(), requires_grad=True), torch.tensor(A, requires_grad=True)
    w = np.arange(45.0).reshape(3, 5, 3)
    (xd.unfold(1, 3, 1) * distnn.Tensor(w)).sum().backward()
    (xt.unfold(1, 3, 1) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=1e-13)  # (an element in k windows: k gradients)
    # torch writes overlapping windows with a result that depends on its loop order (here 1 added up to three
    # times); distnn refuses, as numpy refuses a write into an expand
    with pytest.raises(ValueError, match="read-only"):
        distnn.zeros(7).unfold(0, 3, 1).add_(1.0)
    single = distnn.zeros(7).unfold(0, 5, 1)[:1]  # (one window of them: still a view of read-only memory)
    with pytest.raises(ValueError, match="read-only"):
        single.add_(1.0)
    base = distnn.zeros(7)
    base.unfold(0, 5, 4).add_(1.0)  # (a single window: nothing overlaps, writable)
    np.testing.assert_array_equal(base.data, [1, 1, 1, 1, 1, 0, 0])


def test_empty_windows_share_the_version_counter():
    """torch's: a change of the base after the empty windows were changed in place and saved is refused."""
    for lib in (torch, distnn):
        x = (torch.tensor(A, requires_grad=True) if lib is torch else distnn.Tensor(A.copy(), requires_grad=True))
        y = x.clone()
        u = y.unfold(1, 0, 1)
        u.sigmoid_()
        y.mul_(2.0)
        loss = (u.sum() + y.sum())
        with pytest.raises(RuntimeError, match="inplace|in place"):
            loss.backward()
