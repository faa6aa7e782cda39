"""The oracle for tests/test_tensor_ops_*.py: one case runs on distnn and on PyTorch with the same inputs.

A case is ``fn(m, *inputs)`` where ``m`` is the module (``distnn`` or ``torch``): ``m.tril(x, 1)``, ``x.t()``,
``m.tensor(array)`` for a constant, so one lambda serves both. Outputs (a tensor, or a tuple/list of them) are
compared in value, shape and dtype; the gradients of a random weighted sum of the float outputs are compared
with the inputs' gradients.
"""
import numpy as np

import distnn
from distnn import Tensor

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=3e-5, atol=3e-6)}


def _outputs(out):
    if isinstance(out, (tuple, list)):
        return [o for item in out for o in _outputs(item)]
    return [out]


def _dtype_name(t):
    return str(t.dtype).replace("torch.", "")


def compare(torch, fn, arrays, dtype=np.float64, grad=True, seed=0):
    """Run ``fn`` on both; values, dtypes and shapes equal (floats within TOL), then the gradients."""
    arrays = [np.asarray(a) for a in arrays]
    floats = [a.dtype.kind == "f" for a in arrays]
    ours = [Tensor(a.astype(dtype), requires_grad=grad) if f else Tensor(a.copy()) for a, f in zip(arrays, floats)]
    theirs = [torch.tensor(a.astype(dtype), requires_grad=grad) if f else torch.tensor(a) for a, f in
              zip(arrays, floats)]
    out_d, out_t = _outputs(fn(distnn, *ours)), _outputs(fn(torch, *theirs))
    assert len(out_d) == len(out_t)
    weighted_d, weighted_t = [], []
    rng = np.random.default_rng(seed + 1)
    for d, t in zip(out_d, out_t):
        if not hasattr(t, "dtype"):  # (a Python int: an entry of torch.broadcast_shapes' Size)
            assert d == t
            continue
        assert d.dtype == np.dtype(_dtype_name(t)), (d.dtype, t.dtype)
        assert tuple(d.shape) == tuple(t.shape), (d.shape, t.shape)
        expected = t.detach().numpy()
        if d.dtype.kind == "f":
            np.testing.assert_allclose(d.numpy(), expected, **TOL[np.float32 if d.dtype == np.float32 else dtype])
            if grad and t.requires_grad:
                w = rng.standard_normal(t.shape).astype(dtype)
                weighted_d.append((d * Tensor(w)).sum())
                weighted_t.append((t * torch.tensor(w)).sum())
        else:
            np.testing.assert_array_equal(d.numpy(), expected)
    if weighted_d:
        sum(weighted_d[1:], weighted_d[0]).backward()
        sum(weighted_t[1:], weighted_t[0]).backward()
        for d, t, f in zip(ours, theirs, floats):
            if f:
                expected = t.grad.numpy() if t.grad is not None else np.zeros(t.shape, dtype)
                got = d.grad if d.grad is not None else np.zeros(d.shape, dtype)
                np.testing.assert_allclose(got, expected, **TOL[dtype])


def assert_refused_as_torch(torch, case):
    """``case`` = (name, fn, arrays, gist): ``fn`` raises on both frameworks, distnn's error is (a subclass
    of) torch's type, and both messages hold ``gist``."""
    import pytest

    _, fn, arrays, gist = case
    with pytest.raises(Exception) as ours:
        fn(distnn, *[Tensor(np.asarray(a)) for a in arrays])
    with pytest.raises(Exception) as theirs:
        fn(torch, *[torch.tensor(np.asarray(a)) for a in arrays])
    ours, theirs = ours.value, theirs.value
    assert type(theirs).__name__ in {c.__name__ for c in type(ours).__mro__}, (ours, theirs)
    assert gist in str(ours) and gist in str(theirs), (str(ours), str(theirs))


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def ints(*shape, low=0, high=5, seed=0):
    return np.random.default_rng(seed).integers(low, high, size=shape)


def ties(*shape, seed=0):
    return np.random.default_rng(seed).integers(-2, 3, size=shape).astype(np.float64)


def layout_signature(t):
    """What a tensor's layout lets a later op do, as PyTorch decides it (``t`` is distnn's or torch's):
    ``is_contiguous()``, whether ``view(-1)`` is allowed, and the strides of its dims of size other than 1
    (a size-1 dim's stride is free in PyTorch, and numpy's can differ)."""
    try:
        t.view(-1)
        viewable = True
    except RuntimeError:
        viewable = False
    return t.is_contiguous(), viewable, [s for s, n in zip(t.stride(), t.shape) if n != 1]
