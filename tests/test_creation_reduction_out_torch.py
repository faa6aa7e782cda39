"""PyTorch-parity leftovers (h42-parity8), each checked against torch run on the same inputs: ``tensor()`` of
Python ints beyond int64, ``normal(..., out=complex)``, ``std``/``var`` into an expanded ``out``,
``norm(x, 'nuc', out=)`` while recording, and the sign of the NaN of ``add``/``sub`` with a NaN ``alpha``."""
import math
import warnings

import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

NAN, NEG_NAN = float("nan"), -float("nan")


def values(t):
    return np.array(t.detach().numpy() if isinstance(t, torch.Tensor) else t.data)


def outcome(program, L):
    """``("ok", result)`` or the refusal's ``(type name, message)``, with the warnings raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = ("ok", program(L))
        except Exception as e:  # noqa: BLE001 (compared with torch's refusal)
            result = (type(e).__name__, str(e))
    return result, [str(w.message) for w in caught]


# ---------------------------------------------------------------- 5. add/sub with a NaN alpha: the NaN's sign
def _nan_alpha_program(op, form, alpha, dtype):
    def program(L):
        x = L.tensor([1.0, -1.0, 0.0, 2.5], dtype=getattr(L, dtype))
        y = L.tensor([1.0, -1.0, 3.0, -0.0], dtype=getattr(L, dtype))
        if form == "function":
            r = getattr(L, op)(x, y, alpha=alpha)
        elif form == "method":
            r = getattr(x, op)(y, alpha=alpha)
        elif form == "inplace":
            r = getattr(x, op + "_")(y, alpha=alpha)
        elif form == "number":
            r = getattr(L, op)(x, 2.0, alpha=alpha)
        else:
            r = getattr(L, op)(x, y, alpha=alpha, out=L.zeros(4, dtype=getattr(L, dtype)))
        return np.signbit(values(r)).tolist(), np.isnan(values(r)).tolist()
    return program


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("alpha", [NAN, NEG_NAN], ids=["nan", "-nan"])
@pytest.mark.parametrize("op, form", [(op, form) for op in ("add", "sub") for form in
                                      ("function", "method", "inplace", "number", "out")]
                         + [("subtract", "function"), ("subtract", "number"), ("subtract", "out")])
def test_nan_alpha_gives_torchs_nan_sign(op, form, alpha, dtype):
    program = _nan_alpha_program(op, form, alpha, dtype)
    assert outcome(program, distnn) == outcome(program, torch)


def test_nan_alpha_sub_gradient_flows():
    """The recorded ``sub`` with a NaN alpha still differentiates as PyTorch's (NaN gradient for ``other``)."""
    def program(L):
        x = L.tensor([1.0, 2.0], dtype=L.float64, requires_grad=True)
        y = L.tensor([3.0, 4.0], dtype=L.float64, requires_grad=True)
        L.sub(x, y, alpha=NAN).sum().backward()
        return values(x.grad).tolist(), np.isnan(values(y.grad)).tolist()
    assert outcome(program, distnn) == outcome(program, torch)
