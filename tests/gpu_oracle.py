"""What the GPU oracle files (tests/test_gpu_oracle_*.py) share: the GPU (cupy) against the CPU (numpy), same
weights and inputs.

Tolerances are relative to each reference array's largest magnitude (as in test_torch_reference): the GPU sums
in other orders (cuBLAS, tree reductions), so float32 agrees to about 1e-5 relative. The files need cupy and a
CUDA device; each skips as a whole elsewhere (as in CI here).

An op case of those files is ``name: lambda R: (arrays, fn)``: ``R`` is the test's own generator (conftest.py's
``per_test_rng``, seeded from the test's id), so a case draws its inputs (and any host constants its ``fn``
closes over) when its test runs, and its draws do not depend on the cases before it in the table.
"""
import numpy as np

import distnn as dn
from distnn import backend

from test_torch_reference import RTOL, assert_close

DTYPES = [np.float64, np.float32]
NO_GPU = "needs cupy and a CUDA device (none here)"


def on(device, a):
    """``a`` as an array on ``device`` ("cpu" or "cuda")."""
    return backend.to_device(np.asarray(a), device)


def run_fn(fn, arrays, device, dtype, seed):
    """``fn`` on ``arrays`` moved to ``device``: the output and the inputs' gradients, on the host."""
    ins = [dn.Tensor(on(device, a.astype(dtype)), requires_grad=True) for a in arrays]
    out = fn(*ins)
    assert backend.device_of(out.data) == backend.device_of(ins[0].data), "the output left the inputs' device"
    u = np.random.default_rng(seed).standard_normal(out.shape).astype(dtype)
    (out * dn.Tensor(on(device, u))).sum().backward()
    grads = [backend.to_numpy(t.grad) if t.grad is not None else np.zeros(t.shape, dtype) for t in ins]
    for t in ins:
        assert t.grad is None or backend.device_of(t.grad) == backend.device_of(t.data), "gradient on another device"
    return backend.to_numpy(out.data), grads


def assert_op_matches_the_cpu(arrays, fn, dtype, forward_scale=0.0):
    """An op case (``fn`` on ``arrays``) on the GPU: its output and its inputs' gradients are the CPU's.
    ``forward_scale``: the magnitude the output's rounding is relative to where the output cancels to ~0
    (assert_close's ``scale``; a case gives it as a third element after ``arrays`` and ``fn``)."""
    out_c, grads_c = run_fn(fn, arrays, "cpu", dtype, 0)
    out_g, grads_g = run_fn(fn, arrays, "cuda", dtype, 0)
    assert out_g.dtype == out_c.dtype
    assert np.isfinite(out_c).all()  # (the case itself: what it checks is finite on the CPU)
    assert_close(out_g, out_c, RTOL[dtype], "forward", forward_scale)
    for i, (g, c) in enumerate(zip(grads_g, grads_c)):
        assert_close(g, c, RTOL[dtype], f"gradient of input {i}")
