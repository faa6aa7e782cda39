"""The GPU (cupy) against the CPU (numpy) for every op of the PyTorch-oracle table (test_torch_reference.OPS):
outputs and inputs' gradients, float64 and float32 (gpu_oracle.py says how they are compared)."""
import numpy as np
import pytest

from distnn import backend

from gpu_oracle import DTYPES, NO_GPU, run_fn
from test_torch_reference import OPS, RTOL, assert_close

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip(NO_GPU, allow_module_level=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("op", list(OPS))
def test_functional_op_on_the_gpu_matches_the_cpu(op, dtype):
    arrays, fn, _ = OPS[op]
    arrays = [np.asarray(a) for a in arrays]
    out_c, grads_c = run_fn(fn, arrays, "cpu", dtype, 0)
    out_g, grads_g = run_fn(fn, arrays, "cuda", dtype, 0)
    assert out_g.dtype == out_c.dtype
    assert_close(out_g, out_c, RTOL[dtype], "forward")
    for i, (g, c) in enumerate(zip(grads_g, grads_c)):
        assert_close(g, c, RTOL[dtype], f"gradient of input {i}")
