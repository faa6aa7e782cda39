"""``Tensor.view(*sizes)`` takes the sizes PyTorch 2.13's takes (``-1``, a tuple, a list, a ``torch.Size``-like
tuple, ``()`` of one element, empty tensors, numpy integers, one-element integer tensors, ``size=``), with the same
shapes, values, shared memory and gradients, and refuses what PyTorch refuses with its error type and message
(a second -1, a negative size, an ambiguous -1 of an empty tensor, a wrong product; non-integer sizes, no size)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402

LIBS = {"torch": torch, "distnn": distnn}
SIX = np.arange(6.0).reshape(2, 3)


class _Sizes(tuple):
    """A tuple subclass, as ``torch.Size``."""

# (name, source array, view(lib) -> the call's positional arguments (or a dict of keywords))
ALLOWED = [
    ("-1", SIX, lambda L: (-1,)),
    ("(2, -1)", SIX, lambda L: ((2, -1),)),
    ("[2, 3]", SIX, lambda L: ([2, 3],)),
    ("3, 2", SIX, lambda L: (3, 2)),
    ("-1, 1, 2", SIX, lambda L: (-1, 1, 2)),
    ("another tensor's shape", SIX, lambda L: (L.zeros(3, 2).shape,)),
    ("tuple subclass", SIX, lambda L: (_Sizes((3, 2)),)),
    ("numpy ints", SIX, lambda L: (np.int64(3), np.int32(2))),
    ("numpy ints in a tuple", SIX, lambda L: ((np.int64(3), -1),)),
    ("one-element int tensor", SIX, lambda L: (L.tensor(np.array([6])),)),
    ("0-d int tensor", SIX, lambda L: (L.tensor(np.array(3)), 2)),
    ("size=", SIX, lambda L: {"size": (3, 2)}),
    ("one element ()", np.array([3.0]), lambda L: ((),)),
    ("one element []", np.array([[3.0]]), lambda L: ([],)),
    ("one element 1, 1, 1", np.array(3.0), lambda L: (1, 1, 1)),
    ("0-d -1", np.array(3.0), lambda L: (-1,)),
    ("empty -1", np.zeros((0, 3)), lambda L: (-1,)),
    ("empty 3, 0, 5", np.zeros((0, 3)), lambda L: (3, 0, 5)),
    ("empty (0,)", np.zeros((0, 3)), lambda L: ((0,),)),
    ("empty 0, -1 with sizes", np.zeros((0, 3)), lambda L: (-1, 3)),
]


def _call(x, args):
    return x.view(**args) if isinstance(args, dict) else x.view(*args)


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.data)


@pytest.mark.parametrize("name,source,args", ALLOWED, ids=[c[0] for c in ALLOWED])
def test_view_takes_the_sizes_pytorch_takes(name, source, args):
    rng = np.random.default_rng(len(name))
    found = {}
    for lib_name, lib in LIBS.items():
        x = lib.tensor(source.copy(), requires_grad=True)
        y = x * 1
        v = _call(y, args(lib))
        upstream = lib.tensor(rng.standard_normal(tuple(v.shape)) if lib is torch else found["torch"][2])
        (v * upstream).sum().backward()
        v.detach()[...] = 5.0 if v.numel() else 0.0  # (shared memory: y sees it)
        found[lib_name] = (tuple(v.shape), _np(v).copy(), _np(upstream), _np(x.grad), _np(y))
    ours, theirs = found["distnn"], found["torch"]
    assert ours[0] == theirs[0]
    for a, b in zip(ours[1:], theirs[1:]):
        np.testing.assert_array_equal(a, b)


# (name, source, args, error type, PyTorch's message, or its start for a TypeError)
REFUSED = [
    ("two -1", SIX, (-1, -1), RuntimeError, "only one dimension can be inferred"),
    ("-2, -1, -1", SIX, (-2, -1, -1), RuntimeError, "invalid shape dimension -2 at index 0 of shape [-2, -1, -1]"),
    ("-3, 2", SIX, (-3, 2), RuntimeError, "invalid shape dimension -3 at index 0 of shape [-3, 2]"),
    ("wrong product", SIX, (4, 2), RuntimeError, "shape '[4, 2]' is invalid for input of size 6"),
    ("wrong -1", SIX, (4, -1), RuntimeError, "shape '[4, -1]' is invalid for input of size 6"),
    ("0, -1 of six", SIX, (0, -1), RuntimeError, "shape '[0, -1]' is invalid for input of size 6"),
    ("() of six", SIX, ((),), RuntimeError, "shape '[]' is invalid for input of size 6"),
    ("empty 0, -1", np.zeros((0, 3)), (0, -1), RuntimeError,
     "cannot reshape tensor of 0 elements into shape [0, -1] because the unspecified dimension size -1 can be any "
     "value and is ambiguous"),
    ("empty two -1", np.zeros((0, 3)), (-1, -1), RuntimeError, "only one dimension can be inferred"),
    ("no size", SIX, (), TypeError, "view() received an invalid combination of arguments - got ()"),
    ("no size, one element", np.array([3.0]), (), TypeError, "view() received an invalid combination of arguments"),
    ("float", SIX, (2.0, 3), TypeError, "view() received an invalid combination of arguments - got (float, int)"),
    ("bool", SIX, (True, 6), TypeError, "view() received an invalid combination of arguments - got (bool, int)"),
    ("tuple, int", SIX, ((2, 3), 1), TypeError, "view() received an invalid combination of arguments"),
    ("nested tuple", SIX, (((),),), TypeError, "view() received an invalid combination of arguments"),
    ("None", SIX, (None,), TypeError, "view() received an invalid combination of arguments - got (NoneType)"),
    ("numpy array", SIX, (np.array([3, 2]),), TypeError, "view() received an invalid combination of arguments"),
]


@pytest.mark.parametrize("name,source,args,error,message", REFUSED, ids=[c[0] for c in REFUSED])
def test_view_refuses_what_pytorch_refuses_with_its_error(name, source, args, error, message):
    for lib in LIBS.values():
        x = lib.tensor(source.copy())
        with pytest.raises(error) as e:
            x.view(*args)
        assert str(e.value).startswith(message), (lib.__name__, str(e.value))


@pytest.mark.parametrize("call", [
    lambda L, x: x.view(L.tensor(6.0)),
    lambda L, x: x.view(dtype=L.int32, size=(6,)),
    lambda L, x: x.view((2, 3), dtype=L.int32),
    lambda L, x: x.view(L.int32, 2),
], ids=["float tensor", "dtype= and size=", "sizes and dtype=", "dtype and a size"])
def test_view_with_a_float_size_tensor_or_a_dtype_and_sizes_is_a_type_error(call):
    for lib in LIBS.values():
        with pytest.raises(TypeError, match="invalid combination of arguments"):
            call(lib, lib.tensor(SIX.copy()))
