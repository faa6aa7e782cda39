"""Container and submodule methods against PyTorch's (torch 2.13): the same script on both, the same layout.

Each layer is a Linear(i, 1) with its own i, so a layout is the list of (name, i) of ``named_modules``.
"""
import numpy as np
import pytest

import distnn
from distnn import nn


def _layout(m):
    return [(name, getattr(sub, "in_features", type(sub).__name__)) for name, sub in m.named_modules()]


def _run(lib, script):
    """``script(lib, L)`` with ``L(i)`` a Linear(i, 1); its result's layout (or the error it raised)."""
    try:
        out = script(lib, lambda i: lib.nn.Linear(i, 1))
    except Exception as e:  # noqa: BLE001 - compared with torch's
        return type(e)
    if isinstance(out, tuple):
        return tuple(_layout(o) if hasattr(o, "named_modules") else o for o in out)
    return _layout(out)


def _m(lib, *mods):
    return lib.nn.ModuleList(mods)


SCRIPTS = {
    "seq setitem": lambda lib, L: _set(lib.nn.Sequential(L(1), L(2), L(3)), -1, L(9)),
    "seq setitem out of range": lambda lib, L: _set(lib.nn.Sequential(L(1)), 1, L(9)),
    "seq delitem": lambda lib, L: _del(lib.nn.Sequential(L(1), L(2), L(3)), 0),
    "seq delitem slice": lambda lib, L: _del(lib.nn.Sequential(L(1), L(2), L(3), L(4)), slice(1, 3)),
    "seq insert": lambda lib, L: lib.nn.Sequential(L(1), L(2)).insert(1, L(9)),
    "seq insert negative": lambda lib, L: lib.nn.Sequential(L(1), L(2)).insert(-2, L(9)),
    "seq insert at end": lambda lib, L: lib.nn.Sequential(L(1), L(2)).insert(2, L(9)),
    "seq insert out of range": lambda lib, L: lib.nn.Sequential(L(1)).insert(3, L(9)),
    "seq insert not a module": lambda lib, L: lib.nn.Sequential(L(1)).insert(0, 5),
    "seq extend": lambda lib, L: lib.nn.Sequential(L(1)).extend([L(2), L(3)]),
    "seq pop": lambda lib, L: _pop(lib.nn.Sequential(L(1), L(2), L(3)), 1),
    "seq add": lambda lib, L: lib.nn.Sequential(L(1)) + lib.nn.Sequential(L(2), L(3)),
    "seq add a list": lambda lib, L: lib.nn.Sequential(L(1)) + [L(2)],
    "seq iadd": lambda lib, L: _iadd(lib.nn.Sequential(L(1)), lib.nn.Sequential(L(2))),
    "seq mul": lambda lib, L: lib.nn.Sequential(L(1), L(2)) * 3,
    "seq rmul": lambda lib, L: 2 * lib.nn.Sequential(L(1), L(2)),
    "seq imul": lambda lib, L: _imul(lib.nn.Sequential(L(1), L(2)), 2),
    "seq mul zero": lambda lib, L: lib.nn.Sequential(L(1)) * 0,
    "seq mul float": lambda lib, L: lib.nn.Sequential(L(1)) * 1.5,
    "list setitem": lambda lib, L: _set(_m(lib, L(1), L(2)), -2, L(9)),
    "list setitem out of range": lambda lib, L: _set(_m(lib, L(1)), -2, L(9)),
    "list delitem": lambda lib, L: _del(_m(lib, L(1), L(2), L(3)), -1),
    "list delitem slice": lambda lib, L: _del(_m(lib, L(1), L(2), L(3)), slice(None, None, 2)),
    "list insert": lambda lib, L: _ins(_m(lib, L(1), L(2)), 0, L(9)),
    "list pop": lambda lib, L: _pop(_m(lib, L(1), L(2), L(3)), 0),
    "list iadd": lambda lib, L: _iadd(_m(lib, L(1)), [L(2), L(3)]),
    "list add": lambda lib, L: _m(lib, L(1)) + [L(2)],
    "dict delitem pop clear": lambda lib, L: _dict_ops(lib, L),
    "dict update pairs": lambda lib, L: _upd(lib.nn.ModuleDict({"a": L(1)}), [("b", L(2)), ["a", L(3)]]),
    "dict update mapping": lambda lib, L: _upd(lib.nn.ModuleDict({"a": L(1)}), {"c": L(2)}),
    "dict update bad element": lambda lib, L: _upd(lib.nn.ModuleDict(), [("a", L(1), 3)]),
    "dict update not iterable element": lambda lib, L: _upd(lib.nn.ModuleDict(), [5]),
    "dict update not iterable": lambda lib, L: _upd(lib.nn.ModuleDict(), 5),
}


def _set(c, i, m):
    c[i] = m
    return c


def _del(c, i):
    del c[i]
    return c


def _ins(c, i, m):
    c.insert(i, m)
    return c


def _pop(c, i):
    return c.pop(i), c


def _iadd(c, other):
    c += other
    return c


def _imul(c, k):
    c *= k
    return c


def _upd(d, other):
    d.update(other)
    return d


def _dict_ops(lib, L):
    d = lib.nn.ModuleDict({"a": L(1), "b": L(2), "c": L(3)})
    del d["a"]
    popped = d.pop("b")
    kept = _layout(d)
    d.clear()
    return popped, kept, d


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_container_methods_match_torch(torch, name):
    expected = _run(torch, SCRIPTS[name])
    assert _run(distnn, SCRIPTS[name]) == expected


def _model(lib):
    inner = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.BatchNorm1d(3))
    return lib.nn.Sequential(inner, lib.nn.ReLU())


@pytest.mark.parametrize("target", ["0.0.weight", "0.1.bias", "0.1.running_mean", "0.1.nope", "0.7.weight",
                                    "1", "0.0"])
def test_get_parameter_and_get_buffer_match_torch(torch, target):
    for method in ("get_parameter", "get_buffer"):
        try:
            want = getattr(_model(torch), method)(target).detach().numpy().shape
        except Exception as e:  # noqa: BLE001 - compared with torch's
            want = (type(e), str(e))
        try:
            got = tuple(getattr(_model(distnn), method)(target).shape)
        except Exception as e:  # noqa: BLE001
            got = (type(e), str(e).replace("'", ""))
            want = (want[0], want[1].replace("'", "")) if isinstance(want[1], str) else want
        if isinstance(want[0], type):  # (the messages name the same things; the wording of a missing path differs)
            assert got[0] is want[0], (method, target, got, want)
        else:
            assert got == tuple(want), (method, target)


@pytest.mark.parametrize("target,strict", [("0.1", False), ("0.5", False), ("0.5", True), ("1", True), ("", False),
                                           ("0.0.weight", False), ("9.0", False)])
def test_set_submodule_matches_torch(torch, target, strict):
    def script(lib, L):
        m = _model(lib)
        m.set_submodule(target, L(7), strict=strict)
        return m
    assert _run(distnn, script) == _run(torch, script)
    with pytest.raises(ValueError, match="is not an nn.Module"):
        _model(distnn).set_submodule("0.1", 5)


def test_register_module_is_add_module(torch):
    m = nn.Module()
    m.register_module("fc", nn.Linear(2, 3))
    assert [n for n, _ in m.named_parameters()] == ["fc.weight", "fc.bias"]
    assert m.fc.where() == "Linear 'fc'"
    np.testing.assert_array_equal(m.get_parameter("fc.bias").numpy(), m.fc.bias.numpy())
