"""``clamp_min``/``clamp_max`` in all four forms (function, method, in-place function, in-place method) against
PyTorch 2.13: a None bound, by position or by keyword, and calls that fit no signature (no bound, two, an unknown
keyword, ``out`` that is not a Tensor) raise PyTorch's TypeError with its message, which lists each argument as
given (``min=NoneType`` for a keyword); the valid calls give torch's values."""
import numpy as np
import pytest
import torch

import distnn


def _outcome(L, call, dtype):
    x = L.tensor(np.array([-2.0, 0.5, 3.0]), dtype=getattr(L, dtype))
    try:
        result = call(L, x)
    except Exception as error:  # noqa: BLE001 - the exception is what is compared
        return ("error", type(error).__name__, str(error))
    return ("ok", result.detach().numpy().tolist(), str(result.dtype).split(".")[-1])


def _forms(which):
    """name -> call of each form of clamp_{which} (``B``: where the bound goes)."""
    fn, inplace = f"clamp_{which}", f"clamp_{which}_"
    return {
        f"{fn}(x, None)": lambda L, x: getattr(L, fn)(x, None),
        f"{fn}(x, {which}=None)": lambda L, x: getattr(L, fn)(x, **{which: None}),
        f"{fn}(x, {which}=None, out=None)": lambda L, x: getattr(L, fn)(x, **{which: None}, out=None),
        f"{fn}(x, None, out=x)": lambda L, x: getattr(L, fn)(x, None, out=x),
        f"{fn}(x)": lambda L, x: getattr(L, fn)(x),
        f"{fn}(x, 1, 2)": lambda L, x: getattr(L, fn)(x, 1, 2),
        f"{fn}(x, bound=1)": lambda L, x: getattr(L, fn)(x, bound=1),
        f"{fn}(x, 1, out=3)": lambda L, x: getattr(L, fn)(x, 1, out=3),
        f"{fn}(x, 'a')": lambda L, x: getattr(L, fn)(x, "a"),
        f"{fn}(x, 1)": lambda L, x: getattr(L, fn)(x, 1),
        f"{fn}(x, {which}=1)": lambda L, x: getattr(L, fn)(x, **{which: 1}),
        f"{fn}(x, 1, out=None)": lambda L, x: getattr(L, fn)(x, 1, out=None),
        f"x.{fn}(None)": lambda L, x: getattr(x, fn)(None),
        f"x.{fn}({which}=None)": lambda L, x: getattr(x, fn)(**{which: None}),
        f"x.{fn}()": lambda L, x: getattr(x, fn)(),
        f"x.{fn}('a')": lambda L, x: getattr(x, fn)("a"),
        f"x.{fn}({which}='a')": lambda L, x: getattr(x, fn)(**{which: "a"}),
        f"{inplace}(x, {which}='a')": lambda L, x: getattr(L, inplace)(x, **{which: "a"}),
        f"x.{fn}(1, {which}=2)": lambda L, x: getattr(x, fn)(1, **{which: 2}),
        f"x.{fn}({which}=1)": lambda L, x: getattr(x, fn)(**{which: 1}),
        f"x.{inplace}(None)": lambda L, x: getattr(x, inplace)(None),
        f"x.{inplace}({which}=None)": lambda L, x: getattr(x, inplace)(**{which: None}),
        f"x.{inplace}({which}=1)": lambda L, x: getattr(x, inplace)(**{which: 1}),
        f"{inplace}(x, None)": lambda L, x: getattr(L, inplace)(x, None),
        f"{inplace}(x, {which}=None)": lambda L, x: getattr(L, inplace)(x, **{which: None}),
        f"{inplace}(x, {which}=1)": lambda L, x: getattr(L, inplace)(x, **{which: 1}),
    }


CALLS = {**_forms("min"), **_forms("max")}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_clamp_min_max_calls_as_torch(call, dtype):
    want = _outcome(torch, CALLS[call], dtype)
    assert _outcome(distnn, CALLS[call], dtype) == want


def test_a_keyword_none_bound_is_listed_by_its_keyword():
    """The case the brief names: the keyword form's message differs from the positional form's."""
    by_keyword = _outcome(distnn, CALLS["clamp_min(x, min=None)"], "float32")
    by_position = _outcome(distnn, CALLS["clamp_min(x, None)"], "float32")
    assert "got (Tensor, min=NoneType)" in by_keyword[2] and "got (Tensor, NoneType)" in by_position[2]
    method = _outcome(distnn, CALLS["x.clamp_max_(max=None)"], "float64")
    assert "(!max=NoneType!, )" in method[2]
