"""Divergences from torch that tests/test_view_inplace_fuzz_torch.py found, each reduced to its smallest program
(torch as the oracle)."""
import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")


def _leaf(lib, a):
    if lib is torch:
        return torch.tensor(np.array(a), requires_grad=True)
    return distnn.Tensor(np.array(a), requires_grad=True)


def _grad(x):
    return x.grad.numpy() if isinstance(x, torch.Tensor) else np.asarray(x.grad)


@pytest.mark.parametrize("write", ["fill_", "setitem", "mul_"])
def test_zero_dim_view_written_in_place_then_used(write):
    """A 0-d indexing view written in place while recording, then used: its gradient reaches the write's node
    as a numpy scalar (distnn's SetItem backward did ``g.copy(); ga[index] = 0`` on it: a TypeError)."""
    grads = []
    for lib in (torch, distnn):
        x = _leaf(lib, [0.1, 0.9, 0.3])
        h = x.clone()
        s = h[1]
        if write == "fill_":
            s.fill_(2.0)
        elif write == "setitem":
            s[...] = 2.0
        else:
            s.mul_(2.0)
        (s * 3.0 + (h * h).sum()).backward()
        grads.append(_grad(x))
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-13)


@pytest.mark.parametrize("shape,dim,sizes", [((0, 1), 1, [-1]), ((0, 4), 1, [2, -1]), ((3, 0), 0, [-1, 3]),
                                             ((2, 0, 3), 2, [3, -1])])
def test_unflatten_minus_one_of_an_empty_tensor(shape, dim, sizes):
    """unflatten's -1 comes from the dim unflattened (torch's), not from all the elements: an empty tensor's is not
    ambiguous (distnn passed the -1 to reshape, which refused it as ambiguous)."""
    want = torch.zeros(shape).unflatten(dim, sizes)
    got = distnn.zeros(shape).unflatten(dim, sizes)
    assert got.shape == tuple(want.shape)


def test_split_and_chunk_of_an_empty_dim():
    """torch's: split(n) of an empty dim gives one empty piece, chunk(n) n empty pieces (distnn's gave none)."""
    for make in (lambda L: L.zeros(0, 3).split(2), lambda L: L.zeros(0, 3).chunk(3),
                 lambda L: L.zeros(3, 0).chunk(2, 1), lambda L: L.zeros(3, 0).split(1, -1)):
        want, got = make(torch), make(distnn)
        assert [tuple(t.shape) for t in got] == [tuple(t.shape) for t in want]


def test_expand_needs_sizes():
    with pytest.raises(TypeError):
        torch.zeros(()).expand()
    with pytest.raises(TypeError, match="size"):
        distnn.zeros(()).expand()
    assert distnn.zeros(()).expand(()).shape == ()


@pytest.mark.parametrize("make", [lambda t: t[0, :, :1].expand(3, 4), lambda t: t[:, :1].expand(2, 5, 4),
                                  lambda t: t.reshape(-1).unfold(0, 4, 1),
                                  lambda t: t.reshape(-1)[:8].unfold(0, 3, 1).t(),
                                  lambda t: t[:, :, None].expand(2, 3, 2, 4).transpose(1, 2)])
def test_clone_of_a_tensor_with_no_dense_layout(make):
    """An expand's clone is row-major in torch (infer_dense_strides: a stride of 0 orders nothing), so its view(-1)
    is allowed; numpy's copy(order="K") laid it out column-first (is_contiguous False, view refused)."""
    a = np.arange(24.0).reshape(2, 3, 4)
    want, got = make(torch.tensor(a)).clone(), make(distnn.Tensor(a)).clone()
    assert got.stride() == want.stride() and got.is_contiguous() == want.is_contiguous()
    np.testing.assert_array_equal(got.data, want.numpy())


@pytest.mark.parametrize("view", [lambda t: t[1:1], lambda t: t[3:1:2], lambda t: t[2:2][None]])
def test_empty_view_shares_the_version_counter(view):
    """An empty view shares no bytes (numpy's may_share_memory is False) but is a view all the same: torch's shares
    the version counter, so a change of the base after the view's sigmoid_ saved its result is refused at
    backward (distnn's gave the view a counter of its own and computed on)."""
    for lib in (torch, distnn):
        x = _leaf(lib, [0.1, 0.9, 0.3, 0.5])
        h = x.clone()
        e = view(h)
        e.sigmoid_()
        h.mul_(2.0)
        with pytest.raises(RuntimeError, match="inplace|in place"):
            (e.sum() + h.sum()).backward()


VIEW_IDENTITY = [  # (make(t), is it t itself in torch): what an in-place change of the shape (squeeze_...) reaches
    (lambda t: t.t(), False), (lambda t: t.flatten(0, 0), True), (lambda t: t.flatten(), True),
    (lambda t: t[None].flatten(1, 1), False), (lambda t: t.swapaxes(0, 0), False), (lambda t: t.movedim(0, 0), False),
    (lambda t: t.contiguous(), True),
]


@pytest.mark.parametrize("make,same", VIEW_IDENTITY)
def test_which_views_are_the_tensor_itself(make, same):
    """torch's t()/T of a vector and transpose/swapaxes/movedim of a 0-d tensor are views of their own (distnn's were
    the tensor itself: ``x.t().squeeze_(0)`` changed ``x``'s shape); flatten with nothing to merge is the tensor
    itself (distnn's was a view: ``x.flatten(0, 0).unsqueeze_(0)`` left ``x`` alone)."""
    for lib in (torch, distnn):
        t = lib.zeros(1) if lib is torch else distnn.zeros(1)
        assert (make(t) is t) == same, lib.__name__
        u = make(t)
        u.unsqueeze_(0)
        assert tuple(t.shape) == ((1, 1) if same else (1,))


@pytest.mark.parametrize("make", [lambda z: z.transpose(0, -1), lambda z: z.swapaxes(0, 0), lambda z: z.movedim(0, 0),
                                  lambda z: z.t()])
def test_zero_dim_transposes_are_views_of_their_own(make):
    for lib in (torch, distnn):
        z = lib.zeros(())
        v = make(z)
        assert v is not z
        v.unsqueeze_(0)
        assert tuple(z.shape) == () and tuple(v.shape) == (1,)


def test_transpose_dims_out_of_range():
    """Refused as torch refuses (IndexError); distnn wrapped them around (``transpose(0, 5)`` of a matrix swapped
    dims 0 and 1), and a 0-d tensor's ``transpose(0, 0)`` divided by zero."""
    for lib in (torch, distnn):
        for shape, dims in (((2, 3), (0, 5)), ((2, 3), (-3, 0)), ((), (1, 0))):
            with pytest.raises(IndexError):
                lib.zeros(shape).transpose(*dims)
        assert tuple(lib.zeros(()).transpose(0, -1).shape) == ()


@pytest.mark.parametrize("shape", [(3, 0), (3, 4, 0), (2, 0, 3)])
def test_index_put_accumulate_into_an_empty_tensor(shape):
    """Rows of no elements: nothing to add (distnn reshaped the values to (-1, 0...), ambiguous, and refused)."""
    value = distnn.Tensor(np.array(-1.5, dtype=np.float32))  # (float32 as torch's: a float64 one is refused)
    got = distnn.zeros(shape).index_put_((distnn.Tensor(np.array([1, 0, 0])),), value, accumulate=True)
    want = torch.zeros(shape).index_put_((torch.tensor([1, 0, 0]),), torch.tensor(-1.5), accumulate=True)
    assert got.shape == tuple(want.shape)


@pytest.mark.parametrize("make", [lambda L: L.zeros(3)[1:], lambda L: L.zeros(3).detach()[1:],
                                  lambda L: L.zeros(3, requires_grad=True).clone().reshape(3, 1),
                                  lambda L: L.zeros(2, 3).t(), lambda L: L.zeros(3).view(3),
                                  lambda L: L.zeros(3, 1).squeeze(1)])
def test_detach_in_place_refused_on_any_view(make):
    """torch refuses detach_() on a view whatever made it and whether or not it records (distnn refused it only on an
    indexing view that requires grad while recording)."""
    for lib in (torch, distnn):
        with pytest.raises(RuntimeError, match="Can't detach views in-place"):
            make(lib).detach_()
        # (view(dtype) shares the memory but is no view in torch's sense: detach_() allowed)
        for fresh in (lib.zeros(3), lib.zeros(3).exp(), lib.zeros(3, requires_grad=True).detach(),
                      lib.zeros(4).view(lib.int32)):
            assert fresh.detach_() is fresh


@pytest.mark.parametrize("shape,dim", [((0,), None), ((3, 0), 1), ((3, 0), None), ((0, 2), 0)])
def test_mean_of_no_elements_is_a_quiet_nan(shape, dim):
    """torch: NaN, with its gradient, silently; distnn's numpy mean warned ("Mean of empty slice", "invalid value")."""
    import warnings

    t = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    want = t.mean() if dim is None else t.mean(dim)
    want.sum().backward()
    x = distnn.Tensor(np.zeros(shape), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = x.mean() if dim is None else x.mean(dim)
        got.sum().backward()
    assert got.shape == tuple(want.shape)
    np.testing.assert_array_equal(got.data, want.detach().numpy())
    assert np.asarray(x.grad).shape == tuple(t.grad.shape)
