"""``norm(x, p=1)`` and ``p=inf`` (top level and ``Tensor.norm``) against PyTorch 2.13: one
LinalgVectorNormBackward0 node as PyTorch's (not a sum or a max of an abs), the same values and gradients, at
zeros (sign 0), at ties of the largest magnitude (the inf-norm's gradient shared evenly among them) and at NaN;
integer and bool inputs refused as PyTorch refuses them, dims out of range or repeated refused with its errors,
and a complex input's 2-norm real, as PyTorch's."""
import math

import numpy as np
import pytest
import torch

import distnn

pytestmark = pytest.mark.filterwarnings("error")

INF = float("inf")
ORDERS = [1, 1.0, INF, -INF]
CALLS = {
    "norm": lambda L, t, p: L.norm(t, p=p),
    "norm positional": lambda L, t, p: L.norm(t, p),
    "Tensor.norm": lambda L, t, p: t.norm(p),
    "dim": lambda L, t, p: L.norm(t, p, dim=1),
    "negative dim keepdim": lambda L, t, p: t.norm(p, dim=-1, keepdim=True),
    "two dims": lambda L, t, p: L.norm(t, p=p, dim=(0, 2)),
    "empty dim list": lambda L, t, p: L.norm(t, p, dim=[]),
}
TOL = {"float16": 1e-3, "float32": 1e-6, "float64": 1e-12, "complex64": 1e-6, "complex128": 1e-12}


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _draw(rng, dtype):
    """Entries from a small grid, so zeros and ties of the largest magnitude (with either sign) are common."""
    x = rng.integers(-3, 4, size=(3, 4, 2)).astype(np.float64) * rng.choice([1.0, 0.5])
    if dtype.startswith("complex"):
        x = x + 1j * rng.integers(-3, 4, size=x.shape)
    return x.astype(dtype)


def _run(L, x, call, p, g):
    t = L.tensor(x, requires_grad=True)
    out = CALLS[call](L, t, p)
    (grad,) = L.autograd.grad(out, t, L.tensor(g.astype(_np(out).dtype)))
    return out, _np(grad)


@pytest.mark.parametrize("dtype", list(TOL))
@pytest.mark.parametrize("p", ORDERS, ids=str)
@pytest.mark.parametrize("call", CALLS)
def test_node_value_and_gradient(call, p, dtype):
    rng = np.random.default_rng([7, ORDERS.index(p), list(CALLS).index(call), list(TOL).index(dtype)])
    x = _draw(rng, dtype)
    shape = CALLS[call](torch, torch.tensor(x), p).shape
    g = rng.standard_normal(tuple(shape))
    (want, want_grad), (got, got_grad) = (_run(L, x, call, p, g) for L in (torch, distnn))
    assert got.grad_fn.name() == want.grad_fn.name() == "LinalgVectorNormBackward0"
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(_np(got), _np(want), rtol=TOL[dtype], atol=0)
    np.testing.assert_allclose(got_grad, want_grad, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("p", [1, INF], ids=str)
def test_ties_share_and_zeros_and_nan(p):
    """Hand-made rows: a tie of +-max, all zeros (no NaN from 0/0), a NaN (its row's gradient 0 for inf, as
    PyTorch's; sign 0 at NaN for 1), and one entry."""
    rows = np.array([[2.0, -2.0, 1.0, 2.0], [0.0, 0.0, -0.0, 0.0], [1.0, np.nan, -3.0, 0.0], [0.0, 0.0, 0.0, -5.0]])
    grads = []
    for L in (torch, distnn):
        t = L.tensor(rows, requires_grad=True)
        out = L.norm(t, p, dim=1)
        out.backward(L.tensor([1.0, 2.0, 3.0, 4.0], dtype=L.float64))
        grads.append((_np(out), _np(t.grad)))
    np.testing.assert_array_equal(grads[1][0], grads[0][0])
    np.testing.assert_array_equal(grads[1][1], grads[0][1])
    if p == INF:  # (the three tied entries of row 0 share its gradient 1 evenly, as PyTorch's)
        np.testing.assert_array_equal(grads[1][1][0], [1 / 3, -1 / 3, 0, 1 / 3])


def test_double_backward():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 4))
    seen = []
    for L in (torch, distnn):
        t = L.tensor(x, requires_grad=True)
        for p in (1, INF):
            (g,) = L.autograd.grad(L.norm(t, p, dim=0).pow(2).sum(), t, create_graph=True)
            (gg,) = L.autograd.grad((g * g).sum(), t)
            seen.append(_np(gg))
    np.testing.assert_allclose(seen[2], seen[0], rtol=1e-12)
    np.testing.assert_allclose(seen[3], seen[1], rtol=1e-12)


@pytest.mark.parametrize("p", [2, "fro", 1, INF], ids=str)
def test_complex_norm_is_real(p):
    rng = np.random.default_rng(3)
    z = (rng.standard_normal((2, 5)) + 1j * rng.standard_normal((2, 5))).astype(np.complex64)
    out = [L.norm(L.tensor(z), p) for L in (torch, distnn)]
    assert str(out[1].dtype).split(".")[-1] == str(out[0].dtype).split(".")[-1] == "float32"
    np.testing.assert_allclose(_np(out[1]), _np(out[0]), rtol=1e-6)


@pytest.mark.parametrize("p", [1, 2, "fro", INF], ids=str)
@pytest.mark.parametrize("values", [[1, -2], [True, False]], ids=["int64", "bool"])
def test_integer_and_bool_refused(p, values):
    messages = []
    for L in (torch, distnn):
        with pytest.raises(RuntimeError) as info:
            L.norm(L.tensor(values), p)
        messages.append(str(info.value))
    assert messages[1] == messages[0]


@pytest.mark.parametrize("p", [1, INF], ids=str)
@pytest.mark.parametrize("shape, dim, error", [
    ((2, 3), 2, IndexError), ((2, 3), -3, IndexError), ((2, 3), (0, -2), RuntimeError), ((2, 3), (1, 1), RuntimeError),
    ((), 1, IndexError), ((), (0, -1), RuntimeError)])
def test_bad_dims_refused(p, shape, dim, error):
    messages = []
    for L in (torch, distnn):
        with pytest.raises(error) as info:
            L.norm(L.zeros(shape), p, dim=dim)
        messages.append(str(info.value))
    assert messages[1].endswith(messages[0])  # (distnn's IndexError names the op first)


@pytest.mark.parametrize("p", ORDERS, ids=str)
@pytest.mark.parametrize("dim", [None, 0, -1, (0,)], ids=str)
def test_zero_dim_tensor(p, dim):
    """A 0-d tensor's dim 0 (or -1) reduces nothing: |x|, gradient sign(x), as PyTorch."""
    seen = []
    for L in (torch, distnn):
        t = L.tensor(-2.5, requires_grad=True)
        out = L.norm(t, p, dim=dim, keepdim=True)
        out.backward()
        seen.append((tuple(out.shape), out.item(), t.grad.item()))
    assert seen[1] == seen[0] == ((), 2.5, -1.0)


@pytest.mark.parametrize("p", [1, INF], ids=str)
def test_empty(p):
    """Over no elements: 0 for the 1-norm; the inf-norm refused with PyTorch's message."""
    for dim in (None, 0, 1):
        seen = []
        for L in (torch, distnn):
            try:
                seen.append(("value", _np(L.norm(L.zeros((0, 3)), p, dim=dim)).tolist()))
            except RuntimeError as e:
                seen.append(("error", str(e)))
        assert seen[1] == seen[0]
    assert math.isinf(p) or seen[0][0] == "value"
