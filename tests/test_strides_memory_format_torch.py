"""``Tensor.stride()`` reports PyTorch's strides where numpy's carry no information (the size-1 dims numpy adds:
``x[None]``, ``x[:, None]``, ``unsqueeze``, a new leading dim of ``expand``, which numpy gives stride 0 or another
value; new empty tensors, all 0 in numpy), and numpy's elsewhere, which are PyTorch's; ``view`` decides on those
tensors exactly as PyTorch does, and its results report PyTorch's strides. ``is_contiguous`` and ``contiguous``
take ``memory_format=`` (``distnn.contiguous_format``, ``channels_last``, ``channels_last_3d``,
``preserve_format``) as PyTorch's: the channels-last test on the strides, the copy into NHWC memory with the shape
kept, the refusals."""
import copy
import pickle

import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")


def _pair(make, shape=(2, 3, 4)):
    a = np.arange(float(np.prod(shape))).reshape(shape)
    return make(distnn, distnn.Tensor(a)), make(torch, torch.tensor(a))


# (name, make(L, x) -> a tensor); x is (2, 3, 4) and row-major
STRIDE_CASES = [
    *[(f"unsqueeze({d})", lambda L, x, d=d: x.unsqueeze(d)) for d in range(-4, 4)],
    *[(f"transpose unsqueeze({d})", lambda L, x, d=d: x.transpose(0, 2).unsqueeze(d)) for d in range(-4, 4)],
    *[(f"stepped unsqueeze({d})", lambda L, x, d=d: x[:, ::2].unsqueeze(d)) for d in range(-4, 4)],
    *[(f"None at {d}", lambda L, x, d=d: x[(slice(None),) * d + (None,)]) for d in range(4)],
    *[(f"transpose None at {d}", lambda L, x, d=d: x.transpose(0, 2)[(slice(None),) * d + (None,)]) for d in range(4)],
    ("None twice", lambda L, x: x[None, :, None]),
    ("None and int", lambda L, x: x[:, 1, None]),
    ("None ellipsis", lambda L, x: x[..., None, :]),
    ("unsqueeze twice", lambda L, x: x.unsqueeze(-1).unsqueeze(0)),
    ("0-d unsqueeze", lambda L, x: x[0, 0, 0].unsqueeze(0)),
    ("0-d None", lambda L, x: x[0, 0, 0][None, None]),
    ("expand size 1", lambda L, x: x[:, :1].expand(2, 5, 4)),
    ("expand new dims", lambda L, x: x.expand(3, 2, 3, 4)),
    ("expand new size-1 dim", lambda L, x: x.expand(1, 2, 3, 4)),
    ("expand new dims of 1", lambda L, x: x[:, :, :1].expand(1, 1, 2, 3, 1)),
    ("expand then unsqueeze", lambda L, x: x[:, :1].expand(2, 5, 4).unsqueeze(2)),
    ("broadcast_to", lambda L, x: L.broadcast_to(x[0, :, :1], (1, 3, 5))),
    ("size-1 slice", lambda L, x: x[:, 1:2]),
    ("size-1 slice last", lambda L, x: x[:, :, 2:3]),
    ("size-1 slice first", lambda L, x: x[1:2]),
    ("size-1 stepped slice", lambda L, x: x[:, ::3]),
    ("permute size-1 dims", lambda L, x: x[:, :1].permute(1, 0, 2)),
    ("permute size-1 last", lambda L, x: x[:, :, :1].permute(2, 1, 0)),
    ("transpose size-1 slice", lambda L, x: x.transpose(1, 2)[:, :1]),
    ("squeeze", lambda L, x: x[:, :1].squeeze(1)),
    ("reshape with 1s", lambda L, x: x.reshape(2, 1, 12, 1)),
    ("view with 1s", lambda L, x: x.view(1, 24, 1)),
    ("transpose view with 1s", lambda L, x: x.transpose(0, 2).view(4, 3, 2, 1)),
    ("empty slice", lambda L, x: x[:, :0]),
    ("empty slice first", lambda L, x: x[:0]),
    ("empty stepped slice", lambda L, x: x[:, ::2][:0]),
    ("zeros(0, 3)", lambda L, x: L.zeros(0, 3)),
    ("zeros(2, 0, 4)", lambda L, x: L.zeros(2, 0, 4)),
    ("ones(3, 0)", lambda L, x: L.ones(3, 0)),
    ("zeros(0)", lambda L, x: L.zeros(0)),
    ("empty None", lambda L, x: L.zeros(0, 3)[:, None]),
    ("empty unsqueeze", lambda L, x: L.zeros(0, 3).unsqueeze(2)),
    ("empty reshape", lambda L, x: L.zeros(0, 3).reshape(3, 0)),
    ("empty view", lambda L, x: L.zeros(0, 3).view(3, 0, 1)),
    ("empty cat", lambda L, x: L.cat([L.zeros(0, 3), L.zeros(0, 3)])),
    ("empty plus 1", lambda L, x: L.zeros(0, 3) + 1),
    ("empty expand", lambda L, x: L.zeros(1, 3).expand(0, 3)),
]


@pytest.mark.parametrize("name,make", STRIDE_CASES, ids=[c[0] for c in STRIDE_CASES])
def test_stride_as_torch(name, make):
    ours, theirs = _pair(make)
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert ours.stride() == theirs.stride()
    assert [ours.stride(d) for d in range(-ours.ndim, ours.ndim)] == [
        theirs.stride(d) for d in range(-theirs.ndim, theirs.ndim)]
    assert ours.is_contiguous() == theirs.is_contiguous()
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


# A view of an expanded tensor whose new size-1 dims come after the expanded dim: PyTorch's view gives them stride
# 0 (from the expanded dim's), while stride() reports a size-1 dim with numpy's stride 0 as an unsqueezed one (the
# same array as ``x[..., None]`` of that tensor, stride 1 in PyTorch).
STRIDE_GAPS = {"broadcast_to"}


def _view_shapes(shape):
    """Shapes of the same size to try: flat, each pair of neighbours merged, each dim split off a factor, size-1
    dims dropped, added at each place."""
    shape, n = tuple(shape), int(np.prod(shape))
    out = {(n,), (-1,), (1, n), (n, 1), tuple(s for s in shape if s != 1)}
    for i in range(len(shape) - 1):
        out.add(shape[:i] + (shape[i] * shape[i + 1],) + shape[i + 2:])
    for i, s in enumerate(shape):
        for f in range(2, s):
            if s % f == 0:
                out.add(shape[:i] + (f, s // f) + shape[i + 1:])
    for i in range(len(shape) + 1):
        out.add(shape[:i] + (1,) + shape[i:])
    return sorted(out)


@pytest.mark.parametrize("name,make", STRIDE_CASES, ids=[c[0] for c in STRIDE_CASES])
def test_view_of_these_tensors_as_torch(name, make):
    ours, theirs = _pair(make)
    for shape in _view_shapes(theirs.shape):
        try:
            expected = theirs.view(shape)
        except RuntimeError:
            with pytest.raises(RuntimeError, match="view size is not compatible"):
                ours.view(shape)
            continue
        got = ours.view(shape)
        assert tuple(got.shape) == tuple(expected.shape), shape
        if name in STRIDE_GAPS:  # (PyTorch's 0 for a size-1 dim: numpy's representation cannot tell it)
            assert [s for s, n in zip(got.stride(), shape) if n != 1] == [
                s for s, n in zip(expected.stride(), shape) if n != 1], shape
        else:
            assert got.stride() == expected.stride(), shape
        np.testing.assert_array_equal(got.numpy(), expected.numpy())


# ---------------------------------------------------------------- memory formats
def _nchw(make, shape=(2, 3, 4, 5)):
    return _pair(make, shape)


FORMAT_CASES = [
    ("contiguous", lambda L, x: x),
    ("nhwc", lambda L, x: x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)),
    ("transposed hw", lambda L, x: x.transpose(2, 3)),
    ("one channel", lambda L, x: x[:, :1]),
    ("one pixel", lambda L, x: x[:, :, :1, :1]),
    ("one channel nhwc", lambda L, x: x[:, :1].permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)),
    ("stepped", lambda L, x: x[:, :, ::2]),
    ("empty batch", lambda L, x: x[:0]),
    ("new empty", lambda L, x: L.zeros(0, 3, 4, 5)),
    ("expanded", lambda L, x: x[:, :1].expand(2, 3, 4, 5)),
    ("3-d", lambda L, x: x[0]),
    ("5-d", lambda L, x: x.unsqueeze(2)),
    ("5-d ndhwc", lambda L, x: x.unsqueeze(2).permute(0, 2, 3, 4, 1).contiguous().permute(0, 4, 1, 2, 3)),
]
FORMATS = ["contiguous_format", "channels_last", "channels_last_3d", "preserve_format"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name,make", FORMAT_CASES, ids=[c[0] for c in FORMAT_CASES])
def test_is_contiguous_memory_format_as_torch(name, make, fmt):
    ours, theirs = _nchw(make)
    assert ours.stride() == theirs.stride()
    assert ours.is_contiguous(memory_format=getattr(distnn, fmt)) == theirs.is_contiguous(
        memory_format=getattr(torch, fmt))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name,make", FORMAT_CASES, ids=[c[0] for c in FORMAT_CASES])
def test_contiguous_memory_format_as_torch(name, make, fmt):
    """The same values, shape and strides (or refusal); this tensor itself where it is in the format already;
    the gradient passes unchanged."""
    ours, theirs = _nchw(make)
    x_ours, x_theirs = ours.detach().requires_grad_(), theirs.detach().requires_grad_()
    try:
        expected = x_theirs.contiguous(memory_format=getattr(torch, fmt))
    except RuntimeError as e:
        with pytest.raises(RuntimeError, match=str(e)):
            x_ours.contiguous(memory_format=getattr(distnn, fmt))
        return
    got = x_ours.contiguous(memory_format=getattr(distnn, fmt))
    assert tuple(got.shape) == tuple(expected.shape)
    assert got.stride() == expected.stride()
    assert (got is x_ours) == (expected is x_theirs)
    np.testing.assert_array_equal(got.detach().numpy(), expected.detach().numpy())
    w = np.arange(1.0, 1.0 + expected.numel()).reshape(tuple(expected.shape))
    (expected * torch.tensor(w)).sum().backward()
    (got * distnn.Tensor(w)).sum().backward()
    np.testing.assert_array_equal(distnn.to_numpy(x_ours.grad), x_theirs.grad.numpy())


def test_channels_last_copy_is_nhwc_memory():
    x = distnn.Tensor(np.arange(120.0).reshape(2, 3, 4, 5))
    y = x.contiguous(memory_format=distnn.channels_last)
    assert y.stride() == (60, 1, 15, 3)
    np.testing.assert_array_equal(y.data.transpose(0, 2, 3, 1).ravel(order="K"), x.data.transpose(0, 2, 3, 1).ravel())
    assert y.contiguous(memory_format=distnn.channels_last) is y
    back = y.contiguous()
    assert back.is_contiguous() and back.stride() == (60, 20, 5, 1)
    np.testing.assert_array_equal(back.numpy(), x.numpy())


def test_memory_format_refusals_and_identity():
    x = distnn.Tensor(np.zeros((2, 3, 4)))
    with pytest.raises(TypeError, match="memory_format"):
        x.is_contiguous(memory_format="channels_last")
    with pytest.raises(TypeError, match="memory_format"):
        x.contiguous(memory_format=torch.channels_last)
    with pytest.raises(RuntimeError, match="required rank 4 tensor to use channels_last format"):
        x.contiguous(memory_format=distnn.channels_last)
    with pytest.raises(RuntimeError, match="required rank 5 tensor to use channels_last_3d format"):
        x.contiguous(memory_format=distnn.channels_last_3d)
    for fmt in (distnn.contiguous_format, distnn.channels_last, distnn.channels_last_3d, distnn.preserve_format):
        assert isinstance(fmt, distnn.memory_format)
        assert repr(fmt) == repr(getattr(torch, fmt.name)).replace("torch.", "distnn.")
        assert pickle.loads(pickle.dumps(fmt)) is fmt and copy.deepcopy(fmt) is fmt
    assert distnn.contiguous_format is not distnn.channels_last and distnn.contiguous_format != distnn.channels_last
