"""``lerp`` of complex tensors with autograd, against PyTorch 2.13: values, node names (LerpBackward0 for a number
weight, LerpBackward1 for a tensor one) and gradients with PyTorch's conjugate convention
(``grad (1 - w)^*``, ``grad w^*``, ``grad (end - start)^*``) for complex start/end with a complex or real number
weight or a complex tensor weight, broadcasting, the method and in-place forms, second order, and PyTorch's
refusals of a complex weight beside real tensors (and the reverse)."""
import numpy as np
import pytest
import torch

import distnn

pytestmark = pytest.mark.filterwarnings("error")

TOL = {"complex64": 2e-6, "complex128": 1e-13}


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _complex(rng, shape, dtype):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


WEIGHTS = {  # name -> (rng, dtype, shape) -> a number or an array weight
    "complex number": lambda rng, dtype, shape: complex(*rng.uniform(-1, 1, 2)),
    "small complex number": lambda rng, dtype, shape: complex(*rng.uniform(-0.3, 0.3, 2)),
    "real number": lambda rng, dtype, shape: float(rng.uniform(-1, 2)),
    "complex tensor": lambda rng, dtype, shape: _complex(rng, shape, dtype) * 0.6,
    "complex row": lambda rng, dtype, shape: _complex(rng, shape[-1:], dtype) * 0.6,
}
FORMS = {
    "lerp": lambda L, s, e, w: L.lerp(s, e, w),
    "method": lambda L, s, e, w: s.lerp(e, w),
    "lerp_ of a copy": lambda L, s, e, w: (s * 1).lerp_(e, w),
}


@pytest.mark.parametrize("dtype", list(TOL))
@pytest.mark.parametrize("weight", WEIGHTS)
@pytest.mark.parametrize("form", FORMS)
def test_value_node_and_gradients(dtype, weight, form):
    rng = np.random.default_rng([21, list(TOL).index(dtype), list(WEIGHTS).index(weight), list(FORMS).index(form)])
    shape = (3, 4)
    start, end = _complex(rng, shape, dtype), _complex(rng, (1, 4) if form == "lerp" else shape, dtype)
    w = WEIGHTS[weight](rng, dtype, shape)
    g = _complex(rng, shape, dtype)
    seen = []
    for L in (torch, distnn):
        s, e = L.tensor(start, requires_grad=True), L.tensor(end, requires_grad=True)
        wt = L.tensor(w, requires_grad=True) if isinstance(w, np.ndarray) else w
        out = FORMS[form](L, s, e, wt)
        inputs = (s, e, wt) if isinstance(w, np.ndarray) else (s, e)
        grads = L.autograd.grad(out, inputs, L.tensor(g))
        seen.append((_np(out), str(out.dtype).split(".")[-1], out.grad_fn.name(), [_np(x) for x in grads]))
    np.testing.assert_allclose(seen[1][0], seen[0][0], rtol=TOL[dtype], atol=TOL[dtype])
    assert seen[1][1:3] == seen[0][1:3]
    for mine, theirs in zip(seen[1][3], seen[0][3]):
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
        np.testing.assert_allclose(mine, theirs, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("weight", ["complex number", "complex tensor"])
def test_second_order(weight):
    """Gradients of a gradient (a real loss |lerp|^2 built from ops with complex double backward)."""
    rng = np.random.default_rng([22, weight == "complex number"])
    start, end = _complex(rng, 5, np.complex128), _complex(rng, 5, np.complex128)
    w = WEIGHTS[weight](rng, np.complex128, (5,))
    seen = []
    for L in (torch, distnn):
        s, e = L.tensor(start, requires_grad=True), L.tensor(end, requires_grad=True)
        wt = L.tensor(w, requires_grad=True) if isinstance(w, np.ndarray) else w
        y = L.lerp(s, e, wt)
        (gs,) = L.autograd.grad((y * y.conj()).real.sum(), s, create_graph=True)
        inputs = (s, e, wt) if isinstance(w, np.ndarray) else (s, e)
        seen.append([_np(x) for x in L.autograd.grad((gs * gs.conj()).real.sum(), inputs)])
    for mine, theirs in zip(*seen[::-1]):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12)


def test_real_tensors_keep_their_gradient():
    """A real lerp beside the complex path: unchanged (gradients and node)."""
    rng = np.random.default_rng(23)
    start, end, w = rng.standard_normal(4), rng.standard_normal(4), rng.uniform(0, 1, 4)
    seen = []
    for L in (torch, distnn):
        s, e, wt = (L.tensor(v, requires_grad=True) for v in (start, end, w))
        out = L.lerp(s, e, wt)
        seen.append([_np(x) for x in L.autograd.grad(out.sum(), (s, e, wt))])
    for mine, theirs in zip(*seen[::-1]):
        np.testing.assert_allclose(mine, theirs, rtol=1e-15)


REFUSED = {
    "complex number weight, real tensors": lambda L: L.lerp(L.tensor([1.0, 2.0]), L.tensor([3.0, 4.0]), 0.5j),
    "real tensor weight, complex tensors": lambda L: L.lerp(L.tensor([1j]), L.tensor([2j]), L.tensor([0.5])),
    "complex tensor weight, real tensors": lambda L: L.lerp(L.tensor([1.0]), L.tensor([2.0]), L.tensor([0.5j])),
    "complex end, real start": lambda L: L.lerp(L.tensor([1.0]), L.tensor([2j]), 0.5),
    "complex128 end, complex64 start": lambda L: L.lerp(L.tensor([1j]), L.tensor([2j], dtype=L.complex128), 0.5),
}


@pytest.mark.parametrize("case", REFUSED)
def test_refusals_as_torch(case):
    errors = []
    for L in (torch, distnn):
        with pytest.raises(RuntimeError) as info:
            REFUSED[case](L)
        errors.append(str(info.value))
    assert errors[1] == errors[0]
