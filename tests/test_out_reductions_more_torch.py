"""``out=`` on ``nansum``, ``nanmean``, ``std``, ``var``, ``norm``, ``logsumexp``, ``all`` and ``any`` against
PyTorch 2.13: each op's dtype rule over a grid of input and ``out`` dtypes (the error's type and message where
PyTorch refuses), the values written (to a few units in the last place of ``out``'s dtype: these are not single
roundings) and ``out`` itself returned, the resize of an ``out`` of another shape (with PyTorch's warning at the
caller's line when it had elements), a strided ``out`` of the result's shape written in place, the refusal while an
argument requires grad, and an ``out`` that is not a Tensor."""
import warnings

import numpy as np
import pytest

import torch
from torch_outcome import builtin_kind

import distnn

OPS = {
    "nansum": lambda L, x, out: L.nansum(x, 1, out=out),
    "nansum all": lambda L, x, out: L.nansum(x, out=out),
    "nanmean": lambda L, x, out: L.nanmean(x, 1, out=out),
    "nanmean keepdim": lambda L, x, out: L.nanmean(x, 0, keepdim=True, out=out),
    "std": lambda L, x, out: L.std(x, 1, out=out),
    "var all": lambda L, x, out: L.var(x, out=out),
    "var correction keepdim": lambda L, x, out: L.var(x, 1, correction=0, keepdim=True, out=out),
    "norm": lambda L, x, out: L.norm(x, 2, 1, out=out),
    "norm fro": lambda L, x, out: L.norm(x, out=out),
    "norm 3": lambda L, x, out: L.norm(x, 3, (0, 1), keepdim=True, out=out),
    "norm nuc": lambda L, x, out: L.norm(x, "nuc", out=out),
    "logsumexp": lambda L, x, out: L.logsumexp(x, 1, out=out),
    "logsumexp dims keepdim": lambda L, x, out: L.logsumexp(x, (0, 1), keepdim=True, out=out),
    "all": lambda L, x, out: L.all(x, 1, out=out),
    "all all": lambda L, x, out: L.all(x, out=out),
    "any keepdim": lambda L, x, out: L.any(x, 0, keepdim=True, out=out),
}
SHAPES = {"nansum": (2,), "nansum all": (), "nanmean": (2,), "nanmean keepdim": (1, 3), "std": (2,), "var all": (),
          "var correction keepdim": (2, 1), "norm": (2,), "norm fro": (), "norm 3": (1, 1), "norm nuc": (),
          "logsumexp": (2,), "logsumexp dims keepdim": (1, 1), "all": (2,), "all all": (), "any keepdim": (1, 3)}
IN_DTYPES = ["float32", "float64", "float16", "int64", "bool", "complex64"]
OUT_DTYPES = ["float32", "float64", "float16", "int64", "uint8", "bool", "complex64"]
VALUES = np.array([[1.5, 2.5, -3.5], [4.5, 0.0, 6.25]])


def _input(L, dtype):
    if dtype == "complex64":
        return L.tensor(VALUES + 1j * VALUES[::-1], dtype=L.complex64)
    return L.tensor(VALUES.astype(dtype) if dtype != "bool" else VALUES > 2)


def _outcome(run, L):
    """``run(L)`` (returning ``(result, out)``): whether ``out`` was returned, ``out``'s dtype, shape and values (as
    float64, or the raw values of an integer/bool out), the warnings (text, category, file); or the error's builtin
    type and message."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result, out = run(L)
        except Exception as error:  # noqa: BLE001 - the exception is what is compared
            return "error", builtin_kind(error), str(error)
    noted = [(w.category.__name__, str(w.message).split(" (Triggered internally at")[0], w.filename) for w in caught
             if not str(w.message).startswith("Casting complex values")]
    values = np.asarray(out.detach().numpy() if hasattr(out, "detach") else out.numpy())
    return "ok", result is out, str(out.dtype).split(".")[-1], tuple(out.shape), values, noted


def check_against_torch(run, ulps=4, coarsest="float64"):
    """``run`` in torch and in distnn: the same outcome, the values to ``ulps`` units of the coarser of ``out``'s
    dtype and ``coarsest`` (the dtype some step runs in: an ``exp`` in float32 differs by a unit between libraries).
    A warning that PyTorch raises from its own Python code (``torch.norm``) points there; distnn's at the caller's
    line, which is not compared. Returns torch's outcome."""
    expected, got = _outcome(run, torch), _outcome(run, distnn)
    assert got[:2] == expected[:2] if got[0] == "ok" else got == expected
    if expected[0] == "ok":
        torch_dir = torch.__file__.rsplit("/", 1)[0]
        expected_warnings = [w[:2] if w[2].startswith(torch_dir) else w for w in expected[5]]
        got_warnings = [w[:2] if expected_warnings and len(expected_warnings[0]) == 2 else w for w in got[5]]
        assert got[2:4] == expected[2:4] and got_warnings == expected_warnings
        want, have = expected[4], got[4]
        if want.dtype.kind in "fc":
            tolerance = ulps * max(np.finfo(want.dtype).eps, np.finfo(coarsest).eps)
            np.testing.assert_allclose(have, want, rtol=tolerance, atol=tolerance, equal_nan=True)
        else:
            np.testing.assert_array_equal(have, want)
    return expected


def _covered(op, in_dtype, out_dtype):
    """Complex inputs are left out where distnn differs from PyTorch without ``out`` too: std/var (distnn's are
    complex, not the real spread), logsumexp (PyTorch's imaginary part takes another branch, and is NaN in a real
    ``out``), and all/any into uint8 (PyTorch's casts the input to uint8 first, keeping the real part)."""
    if in_dtype != "complex64":
        return True
    if op.startswith(("std", "var", "logsumexp")):
        return False
    return not (op.startswith(("all", "any")) and out_dtype == "uint8")


@pytest.mark.parametrize("op,in_dtype,out_dtype", [(op, dtype, out_dtype) for op in OPS for dtype in IN_DTYPES
                                                   for out_dtype in OUT_DTYPES if _covered(op, dtype, out_dtype)])
def test_dtype_rules_and_values(op, in_dtype, out_dtype):
    def run(L):
        out = L.zeros(SHAPES[op], dtype=getattr(L, out_dtype))
        return OPS[op](L, _input(L, in_dtype), out), out

    # (logsumexp's exp runs in the input's dtype, float32 for an integer one)
    coarsest = {"float64": "float64", "float16": "float16"}.get(in_dtype, "float32")
    check_against_torch(run, coarsest=coarsest)


@pytest.mark.parametrize("op", ["nansum", "nanmean", "nansum all"])
def test_nan_is_skipped_in_out_dtype(op):
    """The NaN-skipping sum runs in ``out``'s dtype: float32 values summed into float64 keep what float32 loses."""
    def run(L):
        x = L.tensor([[1e8, float("nan"), 1.0, -1e8], [float("nan")] * 4], dtype=L.float32)
        out = L.zeros(0, dtype=L.float64)
        return OPS[op](L, x, out), out

    assert check_against_torch(run, ulps=1)[0] == "ok"


@pytest.mark.parametrize("dim", [None, 0, 1, (0, 1)])
@pytest.mark.parametrize("op", ["var", "std"])
def test_spread_precision_follows_the_results_size(op, dim):
    """A one-element result is PyTorch's full reduction, in the input's float32; any other is computed in the
    float64 ``out``'s dtype: the two differ in the sixth digit on these values."""
    def run(L):
        x = L.tensor([[1e4 + 0.1, 1e4 + 0.2, 1e4 + 0.3], [1e4 + 0.7, 1e4 + 1.1, 1e4 + 0.9]], dtype=L.float32)
        if dim == 0:
            x = x.t()[:1].t()  # (a column: dim 0 leaves one element)
        out = L.zeros(0, dtype=L.float64)
        return getattr(L, op)(x, out=out) if dim is None else getattr(L, op)(x, dim, out=out), out

    # (to 2e-11: the float64 algorithms round differently on these cancelling values, float32's differs by 1e-7)
    assert check_against_torch(run, ulps=1e5)[0] == "ok"


@pytest.mark.parametrize("op", ["nansum", "nanmean"])
def test_nan_reductions_refuse_a_dtype_other_than_outs(op):
    def run(L):
        out = L.zeros(2, dtype=L.float64)
        return getattr(L, op)(_input(L, "float32"), 1, dtype=L.float32, out=out), out

    assert check_against_torch(run)[0] == "error"


@pytest.mark.parametrize("in_dtype,out_dtype", [("float32", "float64"), ("int64", "float64"), ("float32", "float16"),
                                                ("float64", "float32")])
def test_logsumexp_sums_and_logs_in_outs_dtype(in_dtype, out_dtype):
    """PyTorch's ``logsumexp_out``: ``exp`` in the input's dtype, the sum and ``log`` in ``out``'s."""
    def run(L):
        x = L.tensor([[1.1, 2.2, 3.3], [-1e4, 5.5, float("inf")]]).to(getattr(L, in_dtype))
        out = L.zeros(0, dtype=getattr(L, out_dtype))
        return L.logsumexp(x, 1, out=out), out

    exp_dtype = "float32" if in_dtype == "int64" else in_dtype
    assert check_against_torch(run, ulps=1, coarsest=exp_dtype)[0] == "ok"


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("out_shape", [(0,), (5,), (2, 2), ()])
def test_resize(op, out_shape):
    def run(L):
        dtype = L.bool if op.startswith(("all", "any")) else L.float32
        out = L.zeros(out_shape, dtype=dtype)
        return OPS[op](L, _input(L, "float32"), out), out

    assert check_against_torch(run)[0] == "ok"


@pytest.mark.parametrize("op", OPS)
def test_strided_out_of_the_right_shape_is_written_in_place(op):
    def run(L):
        dtype = L.bool if op.startswith(("all", "any")) else L.float32
        base = L.zeros((*SHAPES[op], 2), dtype=dtype)
        OPS[op](L, _input(L, "float32"), base[..., 1])
        return base, base

    assert check_against_torch(run)[0] == "ok"


@pytest.mark.parametrize("op", [op for op in OPS if op != "norm nuc"])  # (PyTorch's records a copy: see below)
@pytest.mark.parametrize("who", ["input", "out"])
def test_refused_while_an_argument_requires_grad(op, who):
    """Refused under the name PyTorch's autograd gives (nanmean's is nansum's, norm's linalg_vector_norm's); all and
    any record nothing and are not refused."""
    def run(L):
        x = _input(L, "float32").requires_grad_(who == "input")
        dtype = L.bool if op.startswith(("all", "any")) else L.float32
        out = L.zeros(SHAPES[op], dtype=dtype, requires_grad=who == "out" and dtype == L.float32)
        return OPS[op](L, x, out), out

    expected = check_against_torch(run)
    assert expected[0] == ("ok" if op.startswith(("all", "any")) else "error")


def test_matrix_norm_while_recording_records_a_copy():
    """PyTorch's ``matrix_norm`` with ``out`` records a copy into ``out``, as distnn's (against torch:
    tests/test_creation_reduction_out_torch.py)."""
    out = distnn.norm(_input(distnn, "float32").requires_grad_(), "nuc", out=distnn.zeros(()))
    assert out.grad_fn.name() == "torch::autograd::CopyBackwards"


@pytest.mark.parametrize("op", OPS)
def test_allowed_under_no_grad(op):
    def run(L):
        x = _input(L, "float32").requires_grad_(True)
        out = L.zeros(SHAPES[op], dtype=L.bool if op.startswith(("all", "any")) else L.float32)
        with L.no_grad():
            return OPS[op](L, x, out), out

    assert check_against_torch(run)[0] == "ok"


@pytest.mark.parametrize("op", ["nansum", "nanmean", "std", "var all", "norm", "norm fro", "logsumexp", "all",
                                "all all"])
def test_out_not_a_tensor(op):
    def run(L):
        return OPS[op](L, _input(L, "float32"), [1.0]), None

    expected = check_against_torch(run)
    assert expected[:2] == ("error", "TypeError")


@pytest.mark.parametrize("op", ["nansum", "std", "logsumexp", "all", "norm"])
def test_without_out_unchanged(op):
    """``out=None`` is the op without ``out``: a new tensor, recorded for backward where the op is differentiable."""
    x = distnn.tensor(VALUES, dtype=distnn.float32)
    kwargs = {"out": None}
    plain = {"nansum": lambda **kw: distnn.nansum(x, 1, **kw), "std": lambda **kw: distnn.std(x, 1, **kw),
             "logsumexp": lambda **kw: distnn.logsumexp(x, 1, **kw), "all": lambda **kw: distnn.all(x, 1, **kw),
             "norm": lambda **kw: distnn.norm(x, 2, 1, **kw)}[op]
    np.testing.assert_array_equal(plain(**kwargs).numpy(), plain().numpy())
