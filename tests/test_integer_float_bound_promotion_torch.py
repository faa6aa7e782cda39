"""An integer tensor beside a Python float (clamp's bounds, arithmetic, where, maximum...): PyTorch computes in the
default float dtype (float32), not numpy's float64. distnn's dtype and values against torch 2.13's; the method forms
of clamp/clip were float64 before (the functions were already right and guard that here)."""
import numpy as np
import pytest
import torch

import distnn as dn

CASES = {
    "x.clamp(0.5)": lambda L, x: x.clamp(0.5),
    "x.clamp(max=1.5)": lambda L, x: x.clamp(max=1.5),
    "x.clamp(0.5, 2.5)": lambda L, x: x.clamp(0.5, 2.5),
    "x.clamp(min=-1.5, max=2)": lambda L, x: x.clamp(min=-1.5, max=2),
    "x.clip(0.5)": lambda L, x: x.clip(0.5),
    "x.clip(max=1.5)": lambda L, x: x.clip(max=1.5),
    "clamp(x, 0.5)": lambda L, x: L.clamp(x, 0.5),
    "clip(x, 0.5, 2.5)": lambda L, x: L.clip(x, 0.5, 2.5),
    "clamp_min(x, 0.5)": lambda L, x: L.clamp_min(x, 0.5),
    "x.clamp_max(1.5)": lambda L, x: x.clamp_max(1.5),
    "x.clamp(1, 2)": lambda L, x: x.clamp(1, 2),  # (int bounds: int64 stays)
    "x * 0.5": lambda L, x: x * 0.5,
    "x / 2": lambda L, x: x / 2,
    "where(c, x, 0.5)": lambda L, x: L.where(x > 1, x, 0.5),
    "maximum(x, tensor(0.5))": lambda L, x: L.maximum(x, L.tensor(0.5)),
    "lerp(xf, xf, 0.5)": lambda L, x: L.lerp(x.float(), x.float() * 2, 0.5),
    "addcmul(x, x, x)": lambda L, x: L.addcmul(x, x, x, value=2),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8"])
def test_integer_tensor_with_float_matches_torch_dtype_and_values(name, dtype):
    values = np.array([0, 1, 2, 3, 7], dtype=dtype)
    out_t = CASES[name](torch, torch.tensor(values))
    out_d = CASES[name](dn, dn.tensor(values))
    assert str(out_d.dtype).split(".")[-1] == str(out_t.dtype).split(".")[-1]
    np.testing.assert_array_equal(np.asarray(out_d.data), out_t.numpy())


@pytest.mark.parametrize("default", [torch.float64, torch.float16])
def test_clamp_method_follows_the_default_dtype(default):
    previous_t, previous_d = torch.get_default_dtype(), dn.get_default_dtype()
    try:
        torch.set_default_dtype(default)
        dn.set_default_dtype(getattr(dn, str(default).split(".")[-1]))
        out_t = torch.tensor([1, 2, 3]).clamp(0.5, 2.5)
        out_d = dn.tensor([1, 2, 3]).clamp(0.5, 2.5)
    finally:
        torch.set_default_dtype(previous_t)
        dn.set_default_dtype(previous_d)
    assert str(out_d.dtype).split(".")[-1] == str(out_t.dtype).split(".")[-1]
    np.testing.assert_array_equal(np.asarray(out_d.data), out_t.numpy())
