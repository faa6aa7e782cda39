"""repr(tensor) string-for-string against PyTorch's (``torch.`` spelled ``distnn.``)."""
import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

NAN, INF = float("nan"), float("inf")

# (name, build(m)): m is distnn or torch; the same calls give the same tensor in both
CASES = [
    ("float", lambda m: m.tensor([1.0, 2.0])),
    ("float_fraction", lambda m: m.tensor([1.5, -2.25, 3.0])),
    ("float64", lambda m: m.tensor(np.array([1.123456789, 2.0]))),
    ("float16", lambda m: m.tensor(np.array([1.5], dtype=np.float16))),
    ("int64", lambda m: m.tensor([1, -10, 100])),
    ("int32", lambda m: m.tensor(np.array([1, 2], dtype=np.int32))),
    ("uint8", lambda m: m.tensor(np.array([[1, 200]], dtype=np.uint8))),
    ("bool", lambda m: m.tensor([True, False])),
    ("bool_all_true", lambda m: m.tensor([True])),
    ("bool_0d", lambda m: m.tensor(True)),
    ("empty", lambda m: m.tensor([])),
    ("empty_2d", lambda m: m.zeros(0, 3)),
    ("empty_int", lambda m: m.tensor(np.zeros((0, 3), dtype=np.int64))),
    ("empty_float64", lambda m: m.tensor(np.zeros(0))),
    ("0d_float", lambda m: m.tensor(3.0)),
    ("0d_int", lambda m: m.tensor(5)),
    ("negative_zero", lambda m: m.tensor([-0.0, 1.0])),
    ("0d_negative_zero", lambda m: m.tensor(-0.0)),
    ("nan_inf", lambda m: m.tensor([NAN, INF, 1.5])),
    ("nan_inf_int_mode", lambda m: m.tensor([NAN, -INF, 2.0])),
    ("small_sci", lambda m: m.tensor([1e-5, 1.0])),
    ("large_sci", lambda m: m.tensor([1e9, 1.0])),
    ("matrix", lambda m: m.tensor([[1.0, 2.5], [-3.0, 4.0]])),
    ("summarized", lambda m: m.tensor(np.arange(2000.0, dtype=np.float32))),
    ("summarized_int", lambda m: m.tensor(np.arange(3000).reshape(30, 100))),
    ("summarized_3d", lambda m: m.tensor(np.arange(3000.0).reshape(3, 10, 100))),
    ("wrapped_rows", lambda m: m.tensor(np.linspace(-3.0, 3.0, 40, dtype=np.float32).reshape(2, 20))),
    ("bool_matrix", lambda m: m.tensor([[True, False, True], [False, False, True]])),
    ("complex64", lambda m: m.tensor(np.array([1 + 2j], dtype=np.complex64))),
    ("complex128", lambda m: m.tensor(np.array([1 + 2j]))),
    ("complex_mixed", lambda m: m.tensor(np.array([1.5 + 2j, -1j, 3 - 0.25j], dtype=np.complex64))),
    ("complex_sci", lambda m: m.tensor(np.array([1e-6 + 1j, 2.0]))),
    ("complex_matrix", lambda m: m.tensor(np.arange(6).reshape(2, 3) * (1 + 1j))),
    ("complex_0d", lambda m: m.tensor(np.complex64(-2.5 + 0.5j))),
    ("requires_grad", lambda m: m.tensor([1.0], requires_grad=True)),
    ("grad_fn_add", lambda m: m.tensor([1.0], requires_grad=True) + 2.0),
    ("grad_fn_mul_float64", lambda m: m.tensor(np.array([1.0, 2.0]), requires_grad=True) * 2.0),
    ("grad_fn_sum", lambda m: m.tensor([1.0, 2.0], requires_grad=True).sum()),
    ("grad_fn_view_wrapped", lambda m: m.ones(2, requires_grad=True).view(2, 1)),
    ("grad_fn_long_line_wraps", lambda m: m.tensor(np.arange(12.0), requires_grad=True) / 3.0),
]


def _theirs(t):
    return repr(t).replace("torch.", "distnn.")


@pytest.mark.parametrize("build", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_repr_matches_torch(build):
    ours, theirs = build(distnn), build(torch)
    assert repr(ours) == _theirs(theirs)
    assert str(ours) == _theirs(theirs)


def test_parameter_repr_matches_torch():
    ours = distnn.nn.Parameter(distnn.ones(2))
    theirs = torch.nn.Parameter(torch.ones(2))
    assert repr(ours) == _theirs(theirs)


@pytest.mark.parametrize("build", [c[1] for c in CASES[:16]], ids=[c[0] for c in CASES[:16]])
def test_repr_under_default_float64_matches_torch(build):
    try:
        distnn.set_default_dtype(distnn.float64)
        torch.set_default_dtype(torch.float64)
        ours, theirs = build(distnn), build(torch)
        assert repr(ours) == _theirs(theirs)
        assert repr(distnn.tensor([1.0], dtype=distnn.float32)) == _theirs(torch.tensor([1.0], dtype=torch.float32))
    finally:
        distnn.set_default_dtype(distnn.float32)
        torch.set_default_dtype(torch.float32)
    assert repr(distnn.tensor([1.0])) == "tensor([1.])"


def test_dtype_spelling_pastes_back():
    t = distnn.tensor(np.array([1, 2], dtype=np.int32))
    assert "dtype=distnn.int32" in repr(t)
    assert eval(repr(t), {"tensor": lambda *a, **k: distnn.tensor(*a, **k), "distnn": distnn}).dtype == t.dtype


def test_set_printoptions_matches_torch():
    x = np.linspace(-1.0, 1.0, 7, dtype=np.float32).reshape(1, 7)
    try:
        for kwargs in (dict(precision=2), dict(sci_mode=True), dict(linewidth=30), dict(threshold=5, edgeitems=1),
                       dict(edgeitems=0)):
            distnn.set_printoptions(**kwargs)
            torch.set_printoptions(**kwargs)
            assert repr(distnn.tensor(x)) == _theirs(torch.tensor(x)), kwargs
    finally:
        distnn.set_printoptions(profile="default", sci_mode=None)
        torch.set_printoptions(profile="default", sci_mode=None)
