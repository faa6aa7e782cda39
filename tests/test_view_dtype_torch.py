"""``Tensor.view(dtype)`` against PyTorch 2.13 as the oracle: the same bytes read as another dtype (values, shapes,
strides, storage offsets), sharing memory and the version counter both ways, refused where PyTorch refuses (0-d,
last stride, sizes, offsets and strides not divisible: its RuntimeError and message), never requiring grad (PyTorch's
``view.dtype`` is not differentiable, to its own dtype either); distnn's dtypes, numpy's and their names all work."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
from distnn.functional.view_dtype import storage_offset  # noqa: E402

LIBS = {"torch": torch, "distnn": distnn}
DTYPES = ["float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool", "complex64",
          "complex128"]

# (name, make(t) -> the tensor to view); t is 24 float32 values (bit patterns that are no NaN in any dtype read)
SOURCES = {
    "1d": lambda t: t,
    "2d": lambda t: t.reshape(4, 6),
    "3d": lambda t: t.reshape(2, 3, 4),
    "transpose": lambda t: t.reshape(4, 6).t(),
    "rows sliced": lambda t: t.reshape(4, 6)[1:3],
    "cols from 2": lambda t: t.reshape(4, 6)[:, 2:],
    "cols from 1": lambda t: t.reshape(4, 6)[:, 1:5],
    "cols stepped": lambda t: t.reshape(4, 6)[:, ::2],
    "odd rows": lambda t: t.reshape(8, 3),
    "one col": lambda t: t.reshape(24, 1),
    "0-d": lambda t: t[5],
    "empty 0x4": lambda t: t[:0].reshape(0, 4),
    "empty 2x0": lambda t: t[:0].reshape(2, 0),
}
START = (np.arange(24, dtype=np.float32) + 1) / 7


def _dtype(lib, name):
    return getattr(lib, name)


def _attempt(lib, source, name):
    x = SOURCES[source](lib.tensor(START.copy()))
    try:
        return x, x.view(_dtype(lib, name))
    except RuntimeError as e:
        return x, e


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.data)


@pytest.mark.parametrize("name", DTYPES)
@pytest.mark.parametrize("source", list(SOURCES))
def test_view_dtype_reads_the_same_bytes_or_refuses_as_pytorch(source, name):
    (_, ours), (_, theirs) = _attempt(distnn, source, name), _attempt(torch, source, name)
    if isinstance(theirs, RuntimeError):
        assert isinstance(ours, RuntimeError), f"PyTorch refuses ({theirs}), distnn gave {ours!r}"
        assert str(ours) == str(theirs)
        return
    assert not isinstance(ours, Exception), f"PyTorch allows it, distnn refused: {ours}"
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert np.asarray(ours.data).dtype == _np(theirs).dtype
    assert _np(ours).tobytes() == _np(theirs).tobytes()  # (bit for bit, in row-major order)
    if ours.numel():
        assert ours.stride() == theirs.stride()
    assert storage_offset(ours.data) == theirs.storage_offset()
    assert not ours.requires_grad and ours.grad_fn is None


@pytest.mark.parametrize("form", ["distnn", "numpy type", "numpy dtype", "name", "keyword"])
def test_view_dtype_takes_the_dtypes_distnn_takes_elsewhere(form):
    x = distnn.tensor(START.copy())
    given = {"distnn": distnn.int32, "numpy type": np.int32, "numpy dtype": np.dtype("int32"), "name": "int32",
             "keyword": distnn.int32}[form]
    v = x.view(dtype=given) if form == "keyword" else x.view(given)
    np.testing.assert_array_equal(np.asarray(v.data), torch.tensor(START).view(torch.int32).numpy())


@pytest.mark.parametrize("lib", list(LIBS))
def test_view_dtype_shares_memory_and_the_version_counter_both_ways(lib):
    L = LIBS[lib]
    x = L.tensor(np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32))
    ints = x.view(L.int32)
    wide = x.view(L.float64)
    ints[0] = 0
    assert x._version == ints._version == wide._version == 1
    assert _np(x)[0] == 0.0 and _np(wide)[0] == np.array([0.0, 2.0], dtype=np.float32).view(np.float64)[0]
    x[3] = 0.5
    assert _np(ints)[3] == np.float32(0.5).view(np.int32) and ints._version == 2
    wide.mul_(0)
    assert not _np(x).any() and x._version == 3


@pytest.mark.parametrize("name", ["float32", "int32", "float64", "float16", "complex64"])
@pytest.mark.parametrize("leaf", [True, False])
def test_view_dtype_never_requires_grad_and_writes_through_it_are_allowed_as_pytorch(name, leaf):
    """PyTorch 2.13's ``view(dtype)`` gives no ``grad_fn``, also to the tensor's own dtype; a write through it is
    allowed even on a leaf that requires grad (it bumps the shared version, as a write through ``detach()``)."""
    for lib in LIBS.values():
        a = lib.tensor(START[:8].copy(), requires_grad=True)
        x = a if leaf else a * 1
        v = x.view(_dtype(lib, name))
        assert not v.requires_grad and v.grad_fn is None and v.is_leaf
        v.zero_()
        assert x._version == 1 and not _np(x).any()
        if not leaf:
            assert x.grad_fn is not None  # (the graph of x is as it was)
            x.sum().backward()
            np.testing.assert_array_equal(_np(a.grad), np.ones(8, np.float32))


def test_a_graph_that_saved_the_tensor_refuses_backward_after_a_write_through_view_dtype():
    messages = {"torch": "modified by an inplace operation", "distnn": "changed in place after the forward pass"}
    for name, lib in LIBS.items():
        a = lib.tensor(START[:4].copy(), requires_grad=True)
        y = a * 1
        z = (y * y).sum()  # (saves y)
        y.view(lib.int32)[0] = 7
        with pytest.raises(RuntimeError, match=messages[name]):
            z.backward()


@pytest.mark.parametrize("given", ["abc", "object", "U4", None, 2.5])
def test_what_names_no_dtype_a_tensor_holds_is_a_type_error(given):
    x = distnn.tensor(START.copy())
    with pytest.raises(TypeError, match="view"):
        x.view(given)
    with pytest.raises(TypeError):  # (PyTorch refuses these too, and any second argument after a dtype)
        torch.tensor(START).view(given)
    for lib in LIBS.values():
        with pytest.raises(TypeError, match="invalid combination of arguments"):
            lib.tensor(START.copy()).view(lib.int32, 2)
