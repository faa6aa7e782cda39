"""``x %= y`` and ``x **= y`` against PyTorch 2.13 as the oracle: they are ``remainder_`` and ``pow_``, in place
(written through views, the version bumped, the tensor the same object), refused on a leaf that requires grad and
where the result's dtype cannot be cast into the tensor's, and differentiable in place on a non-leaf tensor."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402


def _imod(x, y):
    x %= y
    return x


def _ipow(x, y):
    x **= y
    return x


OPS = {"%=": _imod, "**=": _ipow}
LIBS = {"torch": torch, "distnn": distnn}


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.data)


def _other(lib, value):
    return lib.tensor(value) if isinstance(value, np.ndarray) else value


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64], ids=["f64", "f32", "i64"])
@pytest.mark.parametrize("other", ["number", "tensor"])
def test_assignment_writes_through_a_view_and_bumps_the_version_as_pytorch(op, dtype, other):
    rng = np.random.default_rng(3)
    start = rng.integers(1, 9, (3, 4)).astype(dtype)
    value = 3 if other == "number" else rng.integers(1, 4, (4,)).astype(dtype)
    seen = {}
    for name, lib in LIBS.items():
        base = lib.tensor(start.copy())
        view = base[1:]
        alias = view
        before = base._version
        OPS[op](view, _other(lib, value))
        assert view is alias and view.dtype == base.dtype
        assert base._version == view._version == before + 1
        seen[name] = _np(base)
    assert seen["distnn"].dtype == seen["torch"].dtype
    np.testing.assert_array_equal(seen["distnn"], seen["torch"])
    assert not np.array_equal(seen["distnn"][1:], start[1:])  # (the view's rows changed: the base saw it)


@pytest.mark.parametrize("op", list(OPS))
def test_a_graph_that_saved_the_tensor_refuses_backward_after_the_assignment(op):
    messages = {"torch": "modified by an inplace operation", "distnn": "changed in place after the forward pass"}
    for name, lib in LIBS.items():
        a = lib.tensor(np.array([0.5, 1.5, 2.5]), requires_grad=True)
        y = a * 1
        z = y * y  # (saves y)
        OPS[op](y, 2.0)
        with pytest.raises(RuntimeError, match=messages[name]):
            z.sum().backward()


@pytest.mark.parametrize("op", list(OPS))
def test_a_leaf_that_requires_grad_is_refused_and_allowed_under_no_grad(op):
    for lib in LIBS.values():
        leaf = lib.tensor(np.array([2.0, 3.0]), requires_grad=True)
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
            OPS[op](leaf, 2.0)
        with lib.no_grad():
            same = OPS[op](leaf, 2.0)
        assert same is leaf and leaf._version == 1
        np.testing.assert_array_equal(_np(leaf), [0.0, 1.0] if op == "%=" else [4.0, 9.0])


REFUSED_CASTS = [
    ("**=", np.array([1, 2, 3]), 0.5), ("**=", np.array([1, 2, 3]), np.array([2.0])),
    ("%=", np.array([1, 2, 3]), 1.5), ("%=", np.array([1, 2, 3]), np.array([1.5])),
    ("%=", np.array([True, False]), 2),
]


@pytest.mark.parametrize("op,start,value", REFUSED_CASTS, ids=[f"{o}{s.dtype}-{v!r}" for o, s, v in REFUSED_CASTS])
def test_a_result_that_cannot_be_cast_into_the_tensor_is_refused_as_pytorch(op, start, value):
    errors = {}
    for name, lib in LIBS.items():
        x = lib.tensor(start.copy())
        with pytest.raises(RuntimeError, match="can't be cast to the desired output type") as e:
            OPS[op](x, _other(lib, value))
        errors[name] = str(e.value).split(": ")[-1]  # (distnn's names the op first)
        np.testing.assert_array_equal(_np(x), start)  # (nothing written)
    assert errors["distnn"] == errors["torch"]


@pytest.mark.parametrize("op", list(OPS))
def test_narrower_results_are_cast_into_the_tensor_and_broadcasting_the_tensor_is_refused(op):
    for lib in LIBS.values():
        x = lib.tensor(np.array([1.5, 2.5, 3.5], dtype=np.float32))
        OPS[op](x, lib.tensor(np.array([2.0], dtype=np.float64)))
        assert x.dtype == (torch.float32 if lib is torch else np.float32)
        with pytest.raises(RuntimeError, match=r"output with shape \[3\] doesn't match the broadcast shape \[2, 3\]"):
            OPS[op](x, lib.tensor(np.ones((2, 3), dtype=np.float32)))
    ints = {name: _np(OPS[op](lib.tensor(np.array([5, -7, 4])), 3)) for name, lib in LIBS.items()}
    np.testing.assert_array_equal(ints["distnn"], ints["torch"])


CHAINS = {  # y = a * 1, then in place; the number or tensor operands b (positive) and c
    "y %= b": lambda y, b, c: _imod(y, b),
    "y %= 0.7": lambda y, b, c: _imod(y, 0.7),
    "y **= b": lambda y, b, c: _ipow(y, b),
    "y **= 3": lambda y, b, c: _ipow(y, 3),
    "y **= -1.5": lambda y, b, c: _ipow(y, -1.5),
    "(y %= c) **= b": lambda y, b, c: _ipow(_imod(y, c), b),
    "y[1:] **= b[1:] on a view": lambda y, b, c: (_ipow(y[1:], b[1:]), y)[1],
    "y %= c, then * b": lambda y, b, c: _imod(y, c) * b,
}


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 2e-5)], ids=["f64", "f32"])
@pytest.mark.parametrize("chain", list(CHAINS))
def test_in_place_assignment_on_a_non_leaf_differentiates_as_pytorch(chain, dtype, rtol):
    rng = np.random.default_rng(len(chain))
    arrays = (rng.uniform(0.2, 3, (3, 4)), rng.uniform(0.5, 2, (3, 4)), rng.uniform(0.4, 2, (4,)) * [1, -1, 1, -1])
    upstream = rng.standard_normal((3, 4)).astype(dtype)
    results = {}
    for name, lib in LIBS.items():
        a, b, c = (lib.tensor(x.astype(dtype), requires_grad=True) for x in arrays)
        y = CHAINS[chain](a * 1, b, c)
        assert y.grad_fn is not None
        (y * lib.tensor(upstream)).sum().backward()
        results[name] = [_np(y)] + [np.zeros(x.shape, dtype) if x.grad is None else _np(x.grad) for x in (a, b, c)]
    for ours, theirs in zip(results["distnn"], results["torch"]):
        assert ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol)
