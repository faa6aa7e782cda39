"""The in-place arithmetic methods' direct path (``x.add_(y)``, ``sub_``, ``mul_``, ``div_`` with nothing
recorded: one ufunc into the tensor's memory) against their general path (the out-of-place op, then a copy):
the same bits, the same warnings, the same version bumps and the same refusals, for every dtype and operand
kind the direct path takes or must leave alone."""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import distnn
import distnn.autograd.inplace_direct as direct_path
from tests.test_inplace_direct_methods import bits

DTYPES = (np.float16, np.float32, np.float64, np.longdouble, np.int64)
# (tiny, huge: numbers float16 holds as 0 and inf, so that x / them raises the flags div_ silences; nan, inf, -0.0
# too: div_ skips numpy's error state only for a divisor that cannot raise them)
OPERANDS = ("int", "float", "zero", "tensor", "tensor64", "broadcast", "bool", "big_int", "tiny", "huge", "nan", "inf",
            "neg_zero")
_NUMBERS = {"int": 3, "float": 0.1, "zero": 0.0, "bool": True, "big_int": 2 ** 60, "tiny": 1e-8, "huge": 1e5,
            "nan": float("nan"), "inf": float("inf"), "neg_zero": -0.0}


def _operand(kind, dtype, n, special):
    rng = np.random.default_rng(1)
    if kind in _NUMBERS:
        return _NUMBERS[kind]
    if kind == "broadcast":
        return distnn.tensor(rng.standard_normal(1).astype(dtype))
    values = rng.standard_normal(n).astype(np.float64 if kind == "tensor64" else dtype)
    if special and values.dtype.kind == "f":
        values[:3] = [np.inf, 0.0, 2.0]
    return distnn.tensor(values)


def _run(direct, dtype, name, kind, alpha, no_grad, parameter, special, monkeypatch):
    with monkeypatch.context() as m:
        if not direct:
            m.setattr(direct_path, "direct", lambda *args: None)
        values = np.random.default_rng(0).standard_normal(12).astype(dtype)
        if special and values.dtype.kind == "f":
            values[:3] = [np.inf, 0.0, np.finfo(dtype).max]
        if parameter and values.dtype.kind == "f":
            t = distnn.nn.Parameter(values)
        else:
            t = distnn.tensor(values)
        view = t[2:5]
        other = _operand(kind, dtype, 12, special)
        kwargs = {} if alpha is None else {"alpha": alpha}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                with distnn.no_grad() if no_grad else distnn.enable_grad():
                    out = getattr(t, name)(other, **kwargs)
                assert out is t
                result, error = t.data.copy(), None
            except Exception as e:  # noqa: BLE001 - the two paths must refuse alike
                result, error = None, (type(e).__name__, str(e))
        return (result, error, sorted({str(w.message) for w in caught}), t._version, view._version,
                None if result is None else view.data.copy())


CASES = [c for c in itertools.product(DTYPES, ("add_", "sub_", "mul_", "div_"), OPERANDS, (None, 2, -0.3),
                                      (True, False), (True, False), (False, True))
         if c[3] is None or c[1] in ("add_", "sub_")]


@pytest.mark.parametrize("dtype,name,kind,alpha,no_grad,parameter,special", CASES)
def test_the_direct_path_is_the_general_path(dtype, name, kind, alpha, no_grad, parameter, special, monkeypatch):
    direct = _run(True, dtype, name, kind, alpha, no_grad, parameter, special, monkeypatch)
    general = _run(False, dtype, name, kind, alpha, no_grad, parameter, special, monkeypatch)
    assert direct[1:5] == general[1:5]
    for got, want in ((direct[0], general[0]), (direct[5], general[5])):
        assert (got is None) == (want is None)
        if got is not None:
            assert got.dtype == want.dtype and bits(got) == bits(want)


def test_the_direct_path_is_taken_where_nothing_is_recorded(monkeypatch):
    """The cases the direct path exists for do take it (else the test above compares the general path twice)."""
    taken = []
    real = direct_path.direct
    monkeypatch.setattr(direct_path, "direct", lambda *args: taken.append(real(*args) is not None) or real(*args))
    p = distnn.nn.Parameter(np.ones(4, np.float32))
    g = distnn.tensor(np.full(4, 0.5, np.float32))
    with distnn.no_grad():
        p.add_(g, alpha=-0.1)
        p.mul_(0.9)
    distnn.ones(3).div_(2.0)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        p.add_(g)  # recorded (a leaf that requires grad): the general path, which refuses it
    assert taken[:3] == [True, True, True] and taken[3] is False


@pytest.mark.parametrize("state", ({}, {"all": "raise"}, {"over": "raise"}, {"divide": "raise", "invalid": "raise"},
                                   {"all": "ignore"}))
@pytest.mark.parametrize("divisor", (0.5, 0.0, 1e-8, "tensor", "zeros"))
@pytest.mark.parametrize("dtype", (np.float16, np.float32))
def test_div_keeps_the_callers_numpy_error_state(dtype, divisor, state, monkeypatch):
    """div_ skips setting numpy's error state for a divisor that cannot divide by zero, and otherwise sets a cached
    one made from the caller's: under the caller's np.errstate both paths raise, warn or stay silent alike."""
    def run(direct):
        with monkeypatch.context() as m:
            if not direct:
                m.setattr(direct_path, "direct", lambda *args: None)
            t = distnn.tensor(np.array([np.finfo(dtype).max, 0.0, 1.0, -2.0], dtype))
            other = (distnn.tensor(np.array([0.5, 0.0, 0.25, 0.0], dtype)) if divisor == "tensor" else
                     distnn.tensor(np.zeros(4, dtype)) if divisor == "zeros" else divisor)
            with warnings.catch_warnings(record=True) as caught, np.errstate(**state):
                warnings.simplefilter("always")
                try:
                    with distnn.no_grad():
                        t.div_(other)
                    error = None
                except FloatingPointError as e:
                    error = str(e)
                after = np.geterr()
            return bits(t.data), error, sorted(str(w.message) for w in caught), after, np.geterr()

    assert run(True) == run(False)


@pytest.mark.parametrize("name,args", [("mul_", (2.0,)), ("add_", (3e38,)), ("sub_", (-3e38,)), ("div_", (1e-30,)),
                                       ("add_", ("max",), ), ("exp_", ()), ("addcmul_", ("max", "max")),
                                       ("lerp_", ("-max", 2.0)), ("sigmoid_", ())])
def test_a_raising_error_state_leaves_the_tensor_unchanged(name, args):
    """Under the caller's np.errstate(over="raise") an overflowing in-place call raises nothing and writes the
    general path's result (inf where it overflows), as PyTorch's, which never takes numpy's error state: distnn's
    ops set their own (see distnn.autograd.float_errors)."""
    big = np.finfo(np.float32).max
    values = np.array([big, 1.0, -2.0, 0.5], np.float32)
    operands = {"max": distnn.tensor(np.full(4, big, np.float32)), "-max": distnn.tensor(np.full(4, -big, np.float32))}
    call_args = [operands.get(a, a) if isinstance(a, str) else a for a in args]
    t, general = distnn.tensor(values.copy()), distnn.tensor(values.copy(), requires_grad=True) * 1
    with np.errstate(over="raise"), distnn.no_grad():
        getattr(t, name)(*call_args)
    getattr(general, name)(*call_args)  # (recorded: the general path)
    assert t._version == 1 and t.data.tobytes() == general.data.tobytes()
