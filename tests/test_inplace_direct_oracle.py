"""The in-place methods the direct path serves, against PyTorch: the same inputs and call give the same values (bit
for bit where the op is exact: neg_, abs_, relu_, clamp_, copy_, pow_(2); to the dtype's rounding otherwise), the
same dtype, a version bump, and the same refusals (an integer tensor taking a float result, a bool negated...), over
float16/32/64, int32/int64 and bool tensors, contiguous, transposed and 0-d, with infinities, NaN and signed zeros."""
from __future__ import annotations

import numpy as np
import pytest

import distnn
from tests.conftest import import_torch

torch = import_torch()

NAN, INF = float("nan"), float("inf")
DTYPES = {np.float16: torch.float16, np.float32: torch.float32, np.float64: torch.float64, np.int32: torch.int32,
          np.int64: torch.int64, np.bool_: torch.bool}
EXACT = ("neg_", "abs_", "relu_", "clamp_", "clip_", "clamp_min_", "clamp_max_", "copy_")
CALLS = [
    ("neg_", ()), ("abs_", ()), ("sqrt_", ()), ("exp_", ()), ("log_", ()), ("tanh_", ()), ("relu_", ()),
    ("sigmoid_", ()), ("pow_", (2,)), ("pow_", (0.5,)), ("pow_", (-0.5,)), ("pow_", (3,)), ("pow_", (-1,)),
    ("pow_", (1.5,)), ("clamp_", (0, 1)), ("clamp_", (-0.5, 0.5)), ("clamp_", (2, 1)), ("clamp_", (0.5, None)),
    ("clamp_", (None, 3)), ("clamp_", ("same", "same2")), ("clip_", (-1, 1)), ("clamp_min_", (0,)),
    ("clamp_max_", (0,)), ("copy_", ("same",)), ("copy_", ("f64",)), ("addcmul_", ("same", "same2")),
    ("addcmul_", ("same", "same2", 0.5)), ("addcdiv_", ("same", "same2", 2)), ("lerp_", ("same", 0.3)),
    ("lerp_", ("same", 0.8)), ("lerp_", ("same", 2)), ("mul_", (2,)), ("add_", ("same", -0.5)), ("div_", (0.0,)),
    ("div_", ("same",)),
]


def _values(dtype, seed, special):
    rng = np.random.default_rng(seed)
    kind = np.dtype(dtype).kind
    if kind == "b":
        return rng.random(12) < 0.5
    if kind in "iu":
        return rng.integers(-5, 6, 12).astype(dtype)
    values = (rng.standard_normal(12) * 2).astype(dtype)
    if special:
        values[:6] = [INF, -INF, NAN, -0.0, 0.0, 1.0]
    return values


def _make(lib, array, layout):
    if layout == "0-d":
        array = array[:1].reshape(())
    elif layout == "transposed":
        array = array.reshape(4, 3).T
    else:
        array = array.reshape(3, 4)
    if lib is torch:
        return torch.from_numpy(np.ascontiguousarray(array).copy()).clone() if layout != "transposed" else \
            torch.from_numpy(array.T.copy()).t()
    return distnn.Tensor(np.ascontiguousarray(array).copy()) if layout != "transposed" else \
        distnn.Tensor(array.T.copy()).t()


def _call(lib, name, args, dtype, layout, special):
    """``t.name(*args)`` in ``lib``: the tensor after it (or the error) and its version."""
    t = _make(lib, _values(dtype, 0, special), layout)
    operands = {"same": _make(lib, _values(dtype, 1, special), layout),
                "same2": _make(lib, _values(dtype, 2, special), layout),
                "f64": _make(lib, _values(np.float64, 3, special), layout)}
    positional = [operands.get(a, a) if isinstance(a, str) else a for a in args]
    kwargs = {}
    if name in ("addcmul_", "addcdiv_") and len(positional) == 3:
        kwargs["value"] = positional.pop()
    if name == "add_" and len(positional) == 2:
        kwargs["alpha"] = positional.pop()
    try:
        with (torch.no_grad() if lib is torch else distnn.no_grad()):
            out = getattr(t, name)(*positional, **kwargs)
        assert out is t
    except Exception as e:  # noqa: BLE001 - the refusals are compared
        return None, type(e).__name__, str(e)
    array = t.numpy() if lib is torch else t.data
    return (np.array(array), t._version), None, None


CASES = [(name, args, dtype, layout, special) for name, args in CALLS for dtype in DTYPES
         for layout in ("contiguous", "transposed", "0-d") for special in (False, True)
         if not special or np.dtype(dtype).kind == "f"]
# Where distnn's general path (the out-of-place op; the direct path gives its bits) differs from PyTorch 2.13, found
# by this test and left for their own change (each fails below, strictly: a fix shows up as an XPASS):
KNOWN: dict = {}  # (none left: the seven found have been fixed)


def _mismatches(cases):
    found = []
    for name, args, dtype, layout, special in cases:
        got, error, message = _call(distnn, name, args, dtype, layout, special)
        want, t_error, t_message = _call(torch, name, args, dtype, layout, special)
        case = (np.dtype(dtype).name, layout, special)
        if (error is None) != (t_error is None):
            found.append((case, "refusal", message, t_message))
            continue
        if error is not None:
            if "can't be cast to the desired output type" in t_message:
                assert "can't be cast to the desired output type" in message, (case, message, t_message)
            continue
        (values, version), (t_values, t_version) = got, want
        assert values.dtype == t_values.dtype and values.shape == t_values.shape, case
        assert version == t_version == 1, (case, version, t_version)
        if name in EXACT or np.dtype(dtype).kind != "f":
            ok = np.array_equal(values, t_values, equal_nan=values.dtype.kind == "f")
        else:
            rtol = {np.float16: 2e-3, np.float32: 2e-6, np.float64: 1e-13}[dtype]
            ok = np.allclose(values, t_values, rtol=rtol, atol=0, equal_nan=True)
        if not ok:
            found.append((case, "values", values.ravel().tolist(), t_values.ravel().tolist()))
    return found


def _known(case) -> bool:
    name, args, dtype, _, special = case
    return (name, args, np.dtype(dtype).name, special) in KNOWN


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # (numpy's inf - inf... : distnn warns where torch is silent)
@pytest.mark.parametrize("name,args", CALLS, ids=[f"{n}{a}" for n, a in CALLS])
def test_inplace_methods_match_torch(name, args):
    cases = [c for c in CASES if c[0] == name and c[1] == args and not _known(c)]
    assert cases
    assert not _mismatches(cases)


@pytest.mark.xfail(strict=True, reason="distnn's general path differs from PyTorch here (KNOWN says how)")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("key", sorted(KNOWN, key=str), ids=str)
def test_known_differences_from_torch(key):
    cases = [c for c in CASES if _known(c) and (c[0], c[1], np.dtype(c[2]).name, c[4]) == key]
    assert cases
    assert not _mismatches(cases)
