"""clamp of a bool tensor against PyTorch 2.13: its clamp kernels have no bool loop, so a clamp whose result is bool
(bool bounds) is refused with its message ("clamp_cpu" with two tensor bounds, "clamp_scalar_cpu",
"clamp_min_scalar_cpu", "clamp_max_scalar_cpu" with numbers), in every form: ``distnn.clamp``/``clip``,
``clamp_min``/``clamp_max``, the methods and their in-place forms. A lone tensor bound is taken (PyTorch's
clamp_min/clamp_max of a tensor are maximum/minimum), and bounds of another dtype promote the result (int64,
float32), so those are computed. distnn clamped a bool tensor in each case."""
from __future__ import annotations

import numpy as np
import pytest

import distnn
from tests.conftest import import_torch

torch = import_torch()

MASK = np.array([[True, False, True], [False, False, True]])
LOW, HIGH = np.array([True, True, False]), np.array([[False], [True]])  # (broadcast bounds)
INTS, FLOATS = np.array([0, 1, 2]), np.array([0.5, -1.0, 2.0], dtype=np.float32)

CALLS = {
    "clamp(tensor, tensor)": lambda L, t, T: L.clamp(t, T(LOW), T(HIGH)),
    "clip(tensor, tensor)": lambda L, t, T: L.clip(t, T(LOW), T(HIGH)),
    "Tensor.clamp(tensor, tensor)": lambda L, t, T: t.clamp(T(LOW), T(HIGH)),
    "Tensor.clip(min=, max=)": lambda L, t, T: t.clip(min=T(LOW), max=T(HIGH)),
    "Tensor.clamp_(tensor, tensor)": lambda L, t, T: t.clamp_(T(LOW), T(HIGH)),
    "Tensor.clip_(tensor, tensor)": lambda L, t, T: t.clip_(T(LOW), T(HIGH)),
    "clamp(0-d tensor, 0-d tensor)": lambda L, t, T: L.clamp(t, T(np.array(True)), T(np.array(False))),
    "clamp(True, False)": lambda L, t, T: L.clamp(t, True, False),
    "Tensor.clamp_(True, True)": lambda L, t, T: t.clamp_(True, True),
    "clamp(min=False)": lambda L, t, T: L.clamp(t, min=False),
    "clamp(max=True)": lambda L, t, T: L.clamp(t, max=True),
    "clamp_min(tensor, True)": lambda L, t, T: L.clamp_min(t, True),
    "Tensor.clamp_max_(True)": lambda L, t, T: t.clamp_max_(True),
    "Tensor.clip(True)": lambda L, t, T: t.clip(True),
    # computed: a lone tensor bound, or bounds that promote the result
    "clamp(min=tensor)": lambda L, t, T: L.clamp(t, min=T(LOW)),
    "Tensor.clamp_(max=tensor)": lambda L, t, T: t.clamp_(max=T(LOW)),
    "clamp_min(tensor, tensor)": lambda L, t, T: L.clamp_min(t, T(HIGH)),
    "clamp(int tensor, int tensor)": lambda L, t, T: L.clamp(t, T(INTS), T(INTS + 1)),
    "clamp(float tensor, float tensor)": lambda L, t, T: L.clamp(t, T(FLOATS), T(FLOATS)),
    "clamp(0, 1)": lambda L, t, T: L.clamp(t, 0, 1),
}


def _outcome(lib, call):
    """(dtype name, values) of the call, or (error type, message)."""
    T = (lambda a: torch.from_numpy(np.array(a))) if lib is torch else (lambda a: distnn.Tensor(np.array(a)))
    t = T(MASK)
    try:
        out = CALLS[call](lib, t, T)
    except (NotImplementedError, RuntimeError, TypeError) as e:
        return type(e).__name__, str(e)
    values = out.numpy() if lib is torch else np.asarray(out.data)
    return str(values.dtype), values.tolist()


@pytest.mark.parametrize("call", list(CALLS))
def test_bool_clamp_refuses_or_computes_as_torch(call):
    assert _outcome(distnn, call) == _outcome(torch, call)
