"""``distnn.as_tensor`` and ``distnn.asarray`` against torch 2.13: which results share memory with their input
(a change through one seen by the other), which are the input tensor itself, dtypes, requires_grad, the
gradient through a recorded cast or copy, and the refusals of ``copy=False``."""
import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")


def _pair(fn):
    """``fn(m, array)`` on a fresh float64 array for each framework; then each array's first element set to
    9: whether the result saw it, and the result's dtype name."""
    out = {}
    for m in (distnn, torch):
        a = np.arange(3.0)
        r = fn(m, a)
        a[0] = 9.0
        out[m.__name__] = (float(r.detach().numpy().reshape(-1)[0]) == 9.0, str(r.dtype).replace("torch.", ""))
    return out["distnn"], out["torch"]


@pytest.mark.parametrize("name,fn", [
    ("as_tensor", lambda m, a: m.as_tensor(a)),
    ("as_tensor_same_dtype", lambda m, a: m.as_tensor(a, dtype=m.float64)),
    ("as_tensor_cast", lambda m, a: m.as_tensor(a, dtype=m.float32)),
    ("as_tensor_cpu", lambda m, a: m.as_tensor(a, device="cpu")),
    ("as_tensor_strided", lambda m, a: m.as_tensor(a[::2])),
    ("asarray", lambda m, a: m.asarray(a)),
    ("asarray_same_dtype_no_copy", lambda m, a: m.asarray(a, dtype=m.float64, copy=False)),
    ("asarray_copy", lambda m, a: m.asarray(a, copy=True)),
    ("asarray_cast", lambda m, a: m.asarray(a, dtype=m.float32)),
    ("asarray_requires_grad", lambda m, a: m.asarray(a, requires_grad=True)),
    ("asarray_cpu", lambda m, a: m.asarray(a, device="cpu")),
])
def test_arrays_share_memory_as_in_torch(name, fn):
    ours, theirs = _pair(fn)
    assert ours == theirs


def test_a_tensor_of_the_right_dtype_is_returned_itself():
    for m in (distnn, torch):
        t = m.ones(3, requires_grad=True)
        assert m.as_tensor(t) is t and m.as_tensor(t, dtype=m.float32) is t and m.as_tensor(t, device="cpu") is t
        assert m.asarray(t, requires_grad=None if m is distnn else True) is t
        assert m.asarray(t, dtype=m.float32, copy=False, requires_grad=True) is t
        s = m.ones(2)
        assert m.asarray(s, requires_grad=True) is s and s.requires_grad and s.is_leaf  # (set on s itself)


@pytest.mark.parametrize("name,fn", [
    ("as_tensor_cast", lambda m, t: m.as_tensor(t, dtype=m.float64)),
    ("asarray_cast", lambda m, t: m.asarray(t, dtype=m.float64, requires_grad=True)),
    ("asarray_copy", lambda m, t: m.asarray(t, copy=True, requires_grad=True)),
])
def test_casts_and_copies_of_a_tensor_are_recorded(name, fn):
    grads, shared = [], []
    for m in (distnn, torch):
        t = m.tensor(np.array([1.0, -2.0, 3.0], dtype=np.float32), requires_grad=True)
        r = fn(m, t)
        assert r is not t and r.requires_grad and not r.is_leaf
        (r * r).sum().backward()
        grads.append(np.asarray(t.grad))
        with (distnn.no_grad() if m is distnn else torch.no_grad()):
            r.mul_(0)
        shared.append(float(t.detach().numpy()[0]) == 0.0)
    np.testing.assert_allclose(grads[0], grads[1])
    assert shared == [False, False]


def test_requires_grad_false_detaches_a_copy_or_changes_the_tensor_itself():
    for m in (distnn, torch):
        t = m.ones(3, requires_grad=True)
        c = m.asarray(t, copy=True, requires_grad=False)
        assert not c.requires_grad and c.is_leaf
        d = m.asarray(t, dtype=m.float64, requires_grad=False)
        assert not d.requires_grad and d.is_leaf and str(d.dtype).endswith("float64")
        same = m.asarray(t, requires_grad=False)
        assert same is t and not t.requires_grad  # (PyTorch's: the result is t, so t's flag changes)


@pytest.mark.parametrize("name,fn", [
    ("float_list", lambda m: m.asarray([1, 2.5])),
    ("int_list", lambda m: m.asarray([[1, 2], [3, 4]])),
    ("float", lambda m: m.asarray(3.0)),
    ("int", lambda m: m.asarray(2)),
    ("bool", lambda m: m.asarray(True)),
    ("complex", lambda m: m.asarray(1 + 2j)),
    ("numpy_scalar", lambda m: m.asarray(np.float64(2.5))),
    ("int32_array", lambda m: m.asarray(np.arange(3, dtype=np.int32))),
    ("list_cast", lambda m: m.asarray([[1, 2], [3, 4]], dtype=m.float64)),
    ("list_of_tensors", lambda m: m.asarray([m.tensor(1.0), m.tensor(2.0)])),
    ("as_tensor_list", lambda m: m.as_tensor([1, 2.5])),
    ("as_tensor_int", lambda m: m.as_tensor(3)),
    ("as_tensor_numpy_scalar", lambda m: m.as_tensor(np.float64(3))),
    ("as_tensor_list_cast", lambda m: m.as_tensor([1, 2], dtype=m.float32)),
])
def test_new_tensors_get_torch_dtypes(name, fn):
    ours, theirs = fn(distnn), fn(torch)
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert ours.requires_grad == theirs.requires_grad is False


@pytest.mark.parametrize("name,fn,error,gist", [
    ("cast_without_copy", lambda m: m.asarray(m.ones(2), dtype=m.float64, copy=False), ValueError,
     "can't alias tensor with dtype"),
    ("array_cast_without_copy", lambda m: m.asarray(np.arange(3.0), dtype=m.float32, copy=False), ValueError,
     "can't alias"),
    ("list_without_copy", lambda m: m.asarray([1, 2], copy=False), ValueError,
     "can't alias arbitrary sequence into a tensor."),
    ("int_requires_grad", lambda m: m.asarray([1, 2], requires_grad=True), RuntimeError,
     "Only Tensors of floating point and complex dtype can require gradients"),
    ("int_tensor_requires_grad", lambda m: m.asarray(m.zeros(2, dtype=m.int64), requires_grad=True), RuntimeError,
     "Only Tensors of floating point and complex dtype can require gradients"),
])
def test_refusals_match_torch(name, fn, error, gist):
    for m in (distnn, torch):
        with pytest.raises(error) as info:
            fn(m)
        assert gist in str(info.value), (m.__name__, str(info.value))
