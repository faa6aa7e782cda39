"""distnn's complex-number functions and window functions against PyTorch (values, dtypes, shared memory,
gradients where distnn has them, refusals)."""
import numpy as np
import pytest
import torch

import distnn

WINDOWS = ["hann_window", "hamming_window", "blackman_window", "bartlett_window", "kaiser_window"]
EXTRA = {"hamming_window": [(), (0.5, 0.5), (0.6, 0.3)], "kaiser_window": [(), (0.0,), (5.0,), (30.0,)]}


@pytest.mark.parametrize("name", WINDOWS)
@pytest.mark.parametrize("length", [0, 1, 2, 3, 8, 31, 64])
@pytest.mark.parametrize("periodic", [True, False])
def test_windows_match_torch(name, length, periodic):
    for extra in EXTRA.get(name, [()]):
        for dtype, tol in (("float64", 1e-12), ("float32", 1e-6)):
            ours = getattr(distnn, name)(length, periodic, *extra, dtype=np.dtype(dtype))
            theirs = getattr(torch, name)(length, periodic, *extra, dtype=getattr(torch, dtype))
            assert ours.dtype == np.dtype(dtype) and ours.shape == tuple(theirs.shape)
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=tol, atol=tol, err_msg=f"{extra}")


@pytest.mark.parametrize("name", WINDOWS)
def test_window_defaults_and_refusals_match_torch(name):
    ours, theirs = getattr(distnn, name)(10), getattr(torch, name)(10)
    assert ours.dtype == np.float32 and str(theirs.dtype) == "torch.float32"
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6)
    assert getattr(distnn, name)(4, requires_grad=True).requires_grad
    for args, kwargs, gist in (((-1,), {}, "requires non-negative window_length, got window_length=-1"),
                               ((3,), {"dtype": "int64"}, "expects floating point dtypes")):
        for module in (torch, distnn):
            dt = {k: (getattr(torch, v) if module is torch else np.dtype(v)) for k, v in kwargs.items()}
            with pytest.raises(RuntimeError, match=f"{name} {gist}"):
                getattr(module, name)(*args, **dt)


def _pair(real, imag, dtype):
    rng = np.random.default_rng(0)
    return rng.standard_normal(real).astype(dtype), rng.standard_normal(imag).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_complex_polar_real_imag_angle_conj_match_torch(dtype):
    a, b = _pair((3, 1), (4,), dtype)
    for fn in ("complex", "polar"):
        ours = getattr(distnn, fn)(distnn.tensor(a), distnn.tensor(b))
        theirs = getattr(torch, fn)(torch.tensor(a), torch.tensor(b))
        assert str(theirs.dtype) == f"torch.{ours.dtype}" and ours.shape == tuple(theirs.shape)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6)
    z = (a + 1j * b).astype("complex64" if dtype == "float32" else "complex128")
    zd, zt = distnn.tensor(z), torch.tensor(z)
    for fn in ("real", "imag", "angle", "conj", "conj_physical", "resolve_conj", "resolve_neg"):
        ours, theirs = getattr(distnn, fn)(zd), getattr(torch, fn)(zt).resolve_conj()
        assert str(theirs.dtype) == f"torch.{ours.dtype}", fn
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6, err_msg=fn)
    assert not distnn.is_conj(distnn.conj(zd)) and not distnn.is_neg(zd)


def test_real_inputs_as_torch():
    x = np.array([-2.0, 0.0, 3.0, np.nan, -np.inf])
    xd, xt = distnn.tensor(x), torch.tensor(x)
    for fn in ("real", "conj", "conj_physical", "resolve_conj", "resolve_neg"):
        assert getattr(distnn, fn)(xd) is xd and getattr(torch, fn)(xt) is xt
    np.testing.assert_array_equal(distnn.angle(xd).numpy(), torch.angle(xt).numpy())
    ints = distnn.angle(distnn.tensor([-1, 0, 2]))
    assert ints.dtype == np.float32 and str(torch.angle(torch.tensor([-1, 0, 2])).dtype) == "torch.float32"
    np.testing.assert_allclose(ints.numpy(), torch.angle(torch.tensor([-1, 0, 2])).numpy())
    # angle of a real tensor is in the graph, with PyTorch's zero gradient
    w = distnn.tensor(np.array([-2.0, 3.0]), requires_grad=True)
    wt = torch.tensor([-2.0, 3.0], dtype=torch.float64, requires_grad=True)
    distnn.angle(w).sum().backward()
    torch.angle(wt).sum().backward()
    np.testing.assert_array_equal(w.grad, wt.grad.numpy())


def test_view_as_real_and_complex_share_memory_as_torch():
    z = np.array([[1 + 2j, 3 - 4j], [5j, -1]], dtype=np.complex64)
    zd = distnn.tensor(z)
    r = distnn.view_as_real(zd)
    theirs = torch.view_as_real(torch.tensor(z))
    assert r.dtype == np.float32 and r.shape == tuple(theirs.shape) == (2, 2, 2)
    np.testing.assert_array_equal(r.numpy(), theirs.numpy())
    assert r.stride() == theirs.stride()
    r.data[0, 1, 1] = 7.0  # a view: the complex tensor sees the write
    assert zd.numpy()[0, 1] == 3 + 7j
    c = distnn.view_as_complex(r)
    assert c.dtype == np.complex64 and np.shares_memory(c.data, zd.data)
    np.testing.assert_array_equal(c.numpy(), zd.numpy())
    distnn.real(zd).data[1, 0] = 9.0
    distnn.imag(zd).data[1, 1] = -3.0
    assert zd.numpy()[1, 0] == 9 + 5j and zd.numpy()[1, 1] == -1 - 3j
    # the views share the version counter: an in-place change through one is seen by the other
    v0 = zd._version
    r.add_(1.0)
    assert zd._version > v0 and zd.numpy()[0, 0] == 2 + 3j
    # strided: every other complex in the last dim, and a float tensor with even strides
    wide = distnn.tensor(np.ones((2, 4), np.complex128))[:, ::2]
    wide_t = torch.ones(2, 4, dtype=torch.complex128)[:, ::2]
    assert distnn.view_as_real(wide).shape == tuple(torch.view_as_real(wide_t).shape)
    f = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(distnn.view_as_complex(distnn.tensor(f)[:, :, :2]).numpy(),
                                  torch.view_as_complex(torch.tensor(f)[:, :, :2]).numpy())


@pytest.mark.parametrize("call, gist", [
    (lambda m: m.view_as_real(m.ones(2)), "view_as_real is only supported for complex tensors"),
    (lambda m: m.view_as_complex(m.ones(2, 3)), "Tensor must have a last dimension of size 2"),
    (lambda m: m.view_as_complex(m.zeros(2, 2, dtype=m.int64)), "view_as_complex is only supported for half, float"),
    (lambda m: m.view_as_complex(m.ones(2, 4)[:, ::2]), "Tensor must have a last dimension with stride 1"),
    (lambda m: m.view_as_complex(m.ones(3, 3)[:, :2]), "Tensor must have a stride divisible by 2"),
    (lambda m: m.view_as_complex(m.tensor(1.0)), "Input tensor must have one or more dimensions"),
    (lambda m: m.imag(m.ones(2)), "imag is not implemented for tensors with non-complex dtypes"),
    (lambda m: m.complex(m.ones(2), m.ones(2, dtype=m.float64)), "Expected object of scalar type"),
    (lambda m: m.complex(m.ones(2, dtype=m.int64), m.ones(2, dtype=m.int64)),
     "Expected both inputs to be Half, Float or Double tensors"),
    (lambda m: m.polar(m.ones(2), m.ones(2, dtype=m.float64)), "Expected object of scalar type"),
])
def test_refusals_match_torch(call, gist):
    for module in (torch, distnn):
        with pytest.raises(RuntimeError, match=gist):
            call(module)


def test_complex_results_of_inputs_that_require_grad_are_differentiable_as_torch():
    grads = []
    for m in (torch, distnn):
        a = m.tensor(np.array([1.0, 2.0]), requires_grad=True)
        y = m.complex(a, a * 2) * m.polar(a, a) + m.view_as_complex(m.stack([a, a], 1))
        y.abs().sum().backward()
        grads.append(np.asarray(a.grad))
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12)
