"""clamp/clip bounds given by keyword (or by position and keyword) against PyTorch 2.13, in all eight forms
(``torch.clamp``, ``torch.clip``, the methods, the in-place methods and the in-place functions): a Tensor bound
beside a number bound is PyTorch's TypeError with its message (the keyword arguments listed last given first,
the methods' "keywords were incorrect" lines), a bound given twice, too many bounds and an unknown keyword are
refused as PyTorch refuses them, and the calls PyTorch takes give its values, dtypes, nodes and gradients."""
import numpy as np
import pytest
import torch

import distnn

pytestmark = pytest.mark.filterwarnings("error")

FORMS = {  # name -> (lib, x, args, kwargs) -> the call
    "clamp": lambda L, x, a, k: L.clamp(x, *a, **k),
    "clip": lambda L, x, a, k: L.clip(x, *a, **k),
    "x.clamp": lambda L, x, a, k: x.clamp(*a, **k),
    "x.clip": lambda L, x, a, k: x.clip(*a, **k),
    "x.clamp_": lambda L, x, a, k: x.clamp_(*a, **k),
    "x.clip_": lambda L, x, a, k: x.clip_(*a, **k),
    "clamp_": lambda L, x, a, k: L.clamp_(x, *a, **k),
    "clip_": lambda L, x, a, k: L.clip_(x, *a, **k),
}

ROW = lambda L: L.tensor([2.5, 0.5, 2.5, 0.5])  # noqa: E731
ROW_GRAD = lambda L: L.tensor([2.5, 0.5, 2.5, 0.5], requires_grad=True)  # noqa: E731
SCALAR_GRAD = lambda L: L.tensor(2.5, requires_grad=True)  # noqa: E731


def _np(grad):
    return grad.numpy() if hasattr(grad, "numpy") else np.asarray(grad)


def _value(v, L):
    return v(L) if callable(v) else v


# (positional bounds, keyword bounds in call order): each a Tensor beside a number, or a string, or None beside
REFUSED = {
    "min=row, max=number": ((), (("min", ROW), ("max", 2))),
    "max=number, min=row": ((), (("max", 2.0), ("min", ROW))),
    "min=number, max=row": ((), (("min", 1), ("max", ROW))),
    "row, max=number": ((ROW,), (("max", 2),)),
    "number, max=row": ((1.5,), (("max", ROW),)),
    "min=0-d with grad, max=number": ((), (("min", SCALAR_GRAD), ("max", 3.0))),
    "min=row with grad, max=int": ((), (("min", ROW_GRAD), ("max", 3))),
    "min=str": ((), (("min", "a"),)),
    "str, max=None": (("a",), (("max", None),)),
    "min=None, max=str": ((), (("min", None), ("max", "a"))),
    "str, None": (("a", None), ()),
    "bool, max=row": ((True,), (("max", ROW),)),
}
MALFORMED = {
    "three bounds": ((1, 2, 3), ()),
    "min twice": ((1,), (("min", 2),)),
    "max and min twice": ((1, 2), (("max", 3),)),
    "unknown keyword": ((1,), (("foo", 2),)),
}


def _error(L, form, args, keywords):
    x = L.tensor([1.0, 2.0, 3.0, 4.0])
    try:
        FORMS[form](L, x, tuple(_value(a, L) for a in args), {k: _value(v, L) for k, v in keywords})
    except Exception as error:  # noqa: BLE001 - the exception is what is compared
        return type(error).__name__, str(error)
    return None


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", list(REFUSED) + list(MALFORMED))
def test_refused_as_torch(form, case):
    args, keywords = {**REFUSED, **MALFORMED}[case]
    expected = _error(torch, form, args, keywords)
    assert expected is not None and expected[0] == "TypeError", expected
    assert _error(distnn, form, args, keywords) == expected


@pytest.mark.parametrize("form", ["clamp", "clip"])
@pytest.mark.parametrize("out", ["list", "None"])
def test_out_listed_among_the_keywords(form, out):
    """``out=`` (a wrong one, or None given explicitly) is listed where PyTorch lists it: last given first."""
    calls = [((), (("min", ROW), ("max", 2), ("out", out))), ((ROW, 2), (("out", out),)),
             ((), (("out", out), ("min", ROW), ("max", 2)))]
    for args, keywords in calls:
        keywords = tuple((k, ([1] if v == "list" else None) if k == "out" else v) for k, v in keywords)
        expected = _error(torch, form, args, keywords)
        assert expected is not None
        assert _error(distnn, form, args, keywords) == expected


TAKEN = {  # PyTorch takes these: both bounds Tensors, both numbers, a 0-d Tensor with no grad beside a number
    "min=number, max=number": ((), (("min", "lo"), ("max", "hi"))),
    "max=number, min=number": ((), (("max", "hi"), ("min", "lo"))),
    "number, max=number": (("lo",), (("max", "hi"),)),
    "min=number": ((), (("min", "lo"),)),
    "max=row": ((), (("max", "row"),)),
    "min=row, max=col": ((), (("min", "row"), ("max", "col"))),
    "min=0-d, max=number": ((), (("min", "scalar"), ("max", "hi"))),
    "None, max=0-d": ((None,), (("max", "scalar"),)),
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", TAKEN)
def test_taken_as_torch(form, case):
    rng = np.random.default_rng([13, list(FORMS).index(form), list(TAKEN).index(case)])
    x = rng.uniform(-3, 3, (3, 4))
    lo, hi = sorted(rng.uniform(-2, 2, 2))
    pieces = {"lo": lambda L: float(lo), "hi": lambda L: float(hi), "scalar": lambda L: L.tensor(float(hi)),
              "row": lambda L: L.tensor(rng_row), "col": lambda L: L.tensor(rng_col)}
    rng_row, rng_col = rng.uniform(-2, 0, 4), rng.uniform(0, 2, (3, 1))
    args, keywords = TAKEN[case]
    in_place = form.endswith("_")
    seen = []
    for L in (torch, distnn):
        leaf = L.tensor(x, requires_grad=True)
        t = leaf * 1  # (a non-leaf: the in-place forms may write it while recording)
        out = FORMS[form](L, t, tuple(pieces[a](L) if a else a for a in args), {k: pieces[v](L) for k, v in keywords})
        assert (out is t) == in_place
        (out * L.tensor(np.arange(12.0).reshape(3, 4))).sum().backward()
        seen.append((out.detach().numpy(), str(out.dtype).split(".")[-1], out.grad_fn.name(), _np(leaf.grad)))
    np.testing.assert_array_equal(seen[1][0], seen[0][0])
    assert seen[1][1:3] == seen[0][1:3]
    np.testing.assert_array_equal(seen[1][3], seen[0][3])
