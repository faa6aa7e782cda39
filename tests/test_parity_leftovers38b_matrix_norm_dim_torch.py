"""``linalg.matrix_norm`` with a ``dim`` that is no tuple of ints (``dim=1``, ``dim=None``, ``(0, 1.5)``), against
PyTorch 2.13: its argument parser refuses the call with a TypeError naming the types given (the positional ones in
order, then the keywords, last given first) and both signatures; a tuple or list of ints of another length is the
op's own RuntimeError, and a right one computes."""
import pytest
import torch

import distnn

CALLS = {
    "dim=1": ((), {"dim": 1}),
    "dim=-1": ((), {"dim": -1}),
    "ord=2, dim=0": ((), {"ord": 2, "dim": 0}),
    "ord='nuc', dim=1, keepdim": ((), {"ord": "nuc", "dim": 1, "keepdim": True}),
    "keepdim, dim=1": ((), {"keepdim": False, "dim": 1}),
    "'fro', 1 positional": (("fro", 1), {}),
    "2, 0 positional": ((2, 0), {}),
    "'fro', 1, True positional": (("fro", 1, True), {}),
    "'fro' positional, dim=1": (("fro",), {"dim": 1}),
    "dim=None": ((), {"dim": None}),
    "dim='a'": ((), {"dim": "a"}),
    "dim=1.0": ((), {"dim": 1.0}),
    "dim=(True, 0)": ((), {"dim": (True, 0)}),
    "dim=(0,)": ((), {"dim": (0,)}),
    "dim=[0, 1, 2]": ((), {"dim": [0, 1, 2]}),
    "dim=(0, 1)": ((), {"dim": (0, 1)}),
    "dim=[1, 0], ord=1": ((), {"dim": [1, 0], "ord": 1}),
    "dim=(0, 1), dtype": ((), {"dim": (0, 1), "dtype": "float64"}),
}


def _outcome(L, name, dtype):
    args, kwargs = CALLS[name]
    kwargs = {k: (getattr(L, v) if k == "dtype" else v) for k, v in kwargs.items()}
    x = L.arange(12.0, dtype=getattr(L, dtype)).reshape(3, 4) - 5
    try:
        return "ok", L.linalg.matrix_norm(x, *args, **kwargs).tolist()
    except Exception as e:  # noqa: BLE001 (the type and text are compared)
        return type(e).__name__, str(e)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("call", list(CALLS))
def test_matrix_norm_dim_arguments_as_torch(call, dtype):
    want, got = _outcome(torch, call, dtype), _outcome(distnn, call, dtype)
    if want[0] == "ok":
        assert got[0] == "ok" and got[1] == pytest.approx(want[1], rel=1e-6)
    else:
        assert got == want


def test_the_typeerror_is_raised_before_the_input_is_read():
    """PyTorch's parser refuses the call before the op sees its input: a 1-d tensor gets the TypeError, not the
    op's "at least 2 dimensions"."""
    with pytest.raises(TypeError) as want:
        torch.linalg.matrix_norm(torch.ones(3), dim=1)
    with pytest.raises(TypeError) as got:
        distnn.linalg.matrix_norm(distnn.ones(3), dim=1)
    assert str(got.value) == str(want.value)
