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
import distnn.autograd.tensor_inplace_methods as methods

DTYPES = (np.float16, np.float32, np.float64, np.int64)
OPERANDS = ("int", "float", "zero", "tensor", "tensor64", "broadcast", "bool", "big_int")


def _operand(kind, dtype, n, special):
    rng = np.random.default_rng(1)
    if kind == "int":
        return 3
    if kind == "float":
        return 0.1
    if kind == "zero":
        return 0.0
    if kind == "bool":
        return True
    if kind == "big_int":
        return 2 ** 60
    if kind == "broadcast":
        return distnn.tensor(rng.standard_normal(1).astype(dtype))
    values = rng.standard_normal(n).astype(np.float64 if kind == "tensor64" else dtype)
    if special and values.dtype.kind == "f":
        values[:3] = [np.inf, 0.0, 2.0]
    return distnn.tensor(values)


def _run(direct, dtype, name, kind, alpha, no_grad, parameter, special, monkeypatch):
    with monkeypatch.context() as m:
        if not direct:
            m.setattr(methods, "_direct", lambda *args: None)
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
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_the_direct_path_is_taken_where_nothing_is_recorded(monkeypatch):
    """The cases the direct path exists for do take it (else the test above compares the general path twice)."""
    taken = []
    real = methods._direct
    monkeypatch.setattr(methods, "_direct", lambda *args: taken.append(real(*args) is not None) or real(*args))
    p = distnn.nn.Parameter(np.ones(4, np.float32))
    g = distnn.tensor(np.full(4, 0.5, np.float32))
    with distnn.no_grad():
        p.add_(g, alpha=-0.1)
        p.mul_(0.9)
    distnn.ones(3).div_(2.0)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        p.add_(g)  # recorded (a leaf that requires grad): the general path, which refuses it
    assert taken[:3] == [True, True, True] and taken[3] is False
