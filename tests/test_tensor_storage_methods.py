"""Tensor.resize_, resize_as_ (and distnn.resize_as_), set_, is_set_to, share_memory_ and is_shared against
PyTorch on what is deterministic: shapes, strides, storage offsets, the values kept in the storage (a shrink then
a growth sees the old values again), version bumps, which tensors see each other's writes, and the refusals (type
and gist of PyTorch's messages). share_memory_ is checked for real sharing with a forked child process.
"""
from __future__ import annotations

import multiprocessing
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402


def _pair(values):
    return distnn.tensor(np.array(values, dtype=np.float32)), torch.tensor(np.array(values, dtype=np.float32))


def _same(d, t, kept=None):
    """Shape, strides, storage offset and (of the first ``kept`` flat elements, default all) values alike."""
    assert tuple(d.shape) == tuple(t.shape)
    assert tuple(d.stride()) == tuple(t.stride()) and d.storage_offset() == t.storage_offset()
    dv, tv = np.asarray(d.data).reshape(-1), t.numpy().reshape(-1)
    n = dv.size if kept is None else kept
    np.testing.assert_array_equal(dv[:n], tv[:n])


# each step: (method, args, kwargs, how many flat values are defined after it: None all, else that prefix)
_SEQUENCES = {
    "shrink_then_grow_back": [("resize_", (2, 2), {}, None), ("resize_", (6,), {}, None), ("resize_", (3, 2), {}, None)],
    "grow_keeps_prefix": [("resize_", (2, 5), {}, 6), ("resize_", (4,), {}, None)],
    "tuple_and_empty": [("resize_", ((3,),), {}, None), ("resize_", (0,), {}, None), ("resize_", (6,), {}, None),
                        ("resize_", ((),), {}, None)],
    "channels_last": [("resize_", (1, 2, 1, 3), {"memory_format": "channels_last"}, None)],
}


@pytest.mark.parametrize("start", ["contiguous", "transposed", "offset_view"])
@pytest.mark.parametrize("name", sorted(_SEQUENCES))
def test_resize_keeps_the_storage_as_pytorchs(name, start):
    d, t = _pair(np.arange(12) * 1.5)
    if start == "transposed":
        d, t = d[:6].view(2, 3).t(), t[:6].view(2, 3).t()
    elif start == "offset_view":
        d, t = d[3:9], t[3:9]
    for method, args, kw, kept in _SEQUENCES[name]:
        vd, vt = d._version, t._version
        kw_d = {k: getattr(distnn, v) for k, v in kw.items()}
        kw_t = {k: getattr(torch, v) for k, v in kw.items()}
        assert getattr(d, method)(*args, **kw_d) is d
        getattr(t, method)(*args, **kw_t)
        _same(d, t, kept)
        assert d._version - vd == t._version - vt == 1


def test_resize_views_and_writes_are_pytorchs():
    d, t = _pair(np.arange(6))
    dv, tv = d.view(2, 3), t.view(2, 3)
    d.resize_(2)
    t.resize_(2)
    assert tuple(dv.shape) == (2, 3) and dv._version == tv._version == 1  # (a view keeps its shape, shares the version)
    d[0] = 42.0  # shrinking keeps the memory: the old view sees the write
    t[0] = 42.0
    assert float(dv.data[0, 0]) == float(tv[0, 0]) == 42.0
    a, b = distnn.zeros(5), distnn.zeros(2, 3)
    assert distnn.resize_as_(a, b) is a and tuple(a.shape) == (2, 3)
    assert tuple(distnn.zeros(4).resize_as_(distnn.zeros(4, 1)).shape) == (4, 1)


def test_resize_refusals_are_pytorchs():
    for fd, ft, err, match in [
        (lambda: distnn.zeros(3, requires_grad=True).resize_(4), lambda: torch.zeros(3, requires_grad=True).resize_(4),
         RuntimeError, "cannot resize variables that require grad"),
        (lambda: (distnn.zeros(3, requires_grad=True) * 2).resize_(2),
         lambda: (torch.zeros(3, requires_grad=True) * 2).resize_(2), RuntimeError, "cannot resize variables"),
        (lambda: distnn.zeros(3).resize_(2.0), lambda: torch.zeros(3).resize_(2.0), TypeError, "must be tuple of ints"),
        (lambda: distnn.zeros(3).resize_(-1, 2), lambda: torch.zeros(3).resize_(-1, 2), RuntimeError, "negative"),
        (lambda: distnn.zeros(3).resize_(2, 3, 4, memory_format=distnn.channels_last),
         lambda: torch.zeros(3).resize_(2, 3, 4, memory_format=torch.channels_last), RuntimeError,
         "required rank 4 tensor to use channels_last format"),
        (lambda: distnn.zeros(3).resize_(2, memory_format=distnn.preserve_format),
         lambda: torch.zeros(3).resize_(2, memory_format=torch.preserve_format), RuntimeError, "Unsupported memory"),
        (lambda: distnn.zeros(3).resize_as_(3), lambda: torch.zeros(3).resize_as_(3), TypeError, "must be Tensor"),
        (lambda: distnn.zeros(3).resize_(), lambda: torch.zeros(3).resize_(), TypeError, "missing 1 required"),
    ]:
        with pytest.raises(err):
            ft()
        with pytest.raises(err, match=match):
            fd()
    with distnn.no_grad():  # (PyTorch refuses it under no_grad too)
        with pytest.raises(RuntimeError, match="cannot resize variables that require grad"):
            distnn.zeros(3, requires_grad=True).resize_(4)


def test_resize_is_seen_by_a_graph_that_saved_the_tensor():
    w = distnn.tensor(np.ones(3), requires_grad=True)
    x = distnn.tensor(np.arange(3.0))
    y = (w * x).sum()
    x.resize_(3)  # same shape, same memory: still a change PyTorch's version check refuses
    with pytest.raises(RuntimeError, match="changed in place after the forward pass"):
        y.backward()


def test_set_shares_memory_with_pytorchs_geometry_and_versions():
    d, t = _pair([0, 0, 0])
    ds, ts = _pair(np.arange(10))
    assert d.set_(ds) is d
    t.set_(ts)
    _same(d, t)
    assert d.is_set_to(ds) and ds.is_set_to(d) and t.is_set_to(ts)
    assert (d._version, ds._version) == (t._version, ts._version) == (1, 0)  # (its own counter, bumped)
    d[0] = 7.0
    t[0] = 7.0
    assert float(ds.data[0]) == float(ts[0]) == 7.0 and ds._version == ts._version == 0
    # a geometry in the source's storage (contiguous strides when none are given)
    for args in ((2, (2, 3), (3, 1)), (1, (2, 4)), (0, (3,), (3,)), (9, (1,))):
        d, t = _pair([0])
        d.set_(ds, *args)
        t.set_(ts, *args)
        _same(d, t)
        assert d.is_set_to(ds) == t.is_set_to(ts)
    d, t = _pair([1, 2])
    d.set_()
    t.set_()
    _same(d, t)
    assert d._version == t._version == 1


def test_is_set_to_is_pytorchs():
    d, t = _pair(np.arange(6))
    d, t = d.view(2, 3), t.view(2, 3)
    for fd, ft in [(lambda a: a, lambda a: a), (lambda a: a[:], lambda a: a[:]), (lambda a: a.view(2, 3),) * 2,
                   (lambda a: a.t(), lambda a: a.t()), (lambda a: a.clone(),) * 2, (lambda a: a.view(6),) * 2,
                   (lambda a: a[1:], lambda a: a[1:]), (lambda a: a.detach(),) * 2]:
        assert d.is_set_to(fd(d)) == t.is_set_to(ft(t))
    with pytest.raises(TypeError, match="must be Tensor"):
        d.is_set_to(3)


def test_set_refusals_are_pytorchs():
    ten = np.arange(10.0, dtype=np.float32)
    for fd, ft, err, match in [
        (lambda: distnn.zeros(3).set_(distnn.zeros(3, dtype=distnn.float64)),
         lambda: torch.zeros(3).set_(torch.zeros(3, dtype=torch.float64)), RuntimeError,
         "Could not set tensor of type double to a tensor of type float"),
        (lambda: distnn.zeros(3, requires_grad=True).set_(distnn.zeros(3)),
         lambda: torch.zeros(3, requires_grad=True).set_(torch.zeros(3)), RuntimeError,
         "a leaf Variable that requires grad is being used in an in-place operation"),
        (lambda: distnn.zeros(1).set_(distnn.tensor(ten), 2), lambda: torch.zeros(1).set_(torch.tensor(ten), 2),
         TypeError, "expected"),
        (lambda: distnn.zeros(1).set_(distnn.tensor(ten), 2, (2, 2), (-1, 1)),
         lambda: torch.zeros(1).set_(torch.tensor(ten), 2, (2, 2), (-1, 1)), RuntimeError, "Negative strides"),
    ]:
        with pytest.raises(err):
            ft()
        with pytest.raises(err, match=match):
            fd()
    # PyTorch grows the source's storage past its end; distnn cannot grow another tensor's memory: refused
    with pytest.raises(RuntimeError, match="out of bounds for storage"):
        distnn.zeros(1).set_(distnn.tensor(ten), 2, (3, 3), (3, 1))
    with distnn.no_grad():  # (allowed there, as PyTorch's)
        p = distnn.zeros(3, requires_grad=True)
        p.set_(distnn.ones(4))
    assert tuple(p.shape) == (4,) and p.requires_grad


def _child_writes(shared, private):
    shared[0] = 123.0
    private[0] = 123.0


@pytest.mark.skipif(sys.platform != "linux", reason="needs the 'fork' start method")
def test_share_memory_is_seen_by_a_forked_child():
    shared, private = distnn.arange(4.0), distnn.arange(4.0)
    assert not shared.is_shared() and not torch.zeros(3).is_shared()
    base_view = shared[1:]
    assert shared.share_memory_() is shared and shared.is_shared() and shared[1:].is_shared()
    assert torch.zeros(3).share_memory_().is_shared()
    assert not base_view.is_shared()  # (made before: it keeps the old memory; PyTorch's moves with the storage)
    np.testing.assert_array_equal(np.asarray(shared.data), np.arange(4.0))
    assert shared.share_memory_() is shared and shared._version == 0  # (no version bump, as PyTorch's)
    proc = multiprocessing.get_context("fork").Process(target=_child_writes, args=(shared, private))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0
    assert float(shared.data[0]) == 123.0 and float(private.data[0]) == 0.0
    with pytest.raises(RuntimeError, match="Trying to resize storage that is not resizable"):
        shared.resize_(10)
    assert shared.resize_(2).is_shared()  # (within its storage it stays shared)
    # a strided tensor keeps its geometry when moved
    d, t = _pair(np.arange(12))
    d, t = d.view(3, 4)[1:, ::2], t.view(3, 4)[1:, ::2]
    d.share_memory_()
    t.share_memory_()
    _same(d, t)
