"""The GPU (cupy) against the CPU (numpy) for autograd beyond first derivatives: double backward
(create_graph=True) for every case of the test_double_backward* tables, save_on_cpu (the saved arrays wait on
the host), and the storage methods (resize_/set_/is_set_to/share_memory_) on device arrays. gpu_oracle.py says
how the devices are compared."""
import numpy as np
import pytest

import distnn as dn
from distnn import backend
from distnn import functional as F

from gpu_oracle import DTYPES, NO_GPU, on
from test_torch_reference import RTOL, assert_close

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip(NO_GPU, allow_module_level=True)


# Double backward (create_graph=True), new since the last GPU run (static review, no GPU here): the graph
# backwards of distnn/autograd/derivatives on cupy arrays, each case of test_double_backward and
# test_double_backward_nn GPU vs CPU.
def _second_derivatives(fn, arrays, device, dtype):
    from test_double_backward import _DistnnX

    ins = [dn.Tensor(on(device, a.astype(dtype)), requires_grad=True) for a in arrays]
    out = fn(F, _DistnnX, dn.linalg, *ins)
    u = np.random.default_rng(3).standard_normal(out.shape).astype(dtype)
    gs = dn.autograd.grad((out * dn.Tensor(on(device, u))).sum(), ins, create_graph=True, allow_unused=True)
    z = sum((g * g).sum() for g in gs if g is not None)
    hs = dn.autograd.grad(z, ins, allow_unused=True)
    return [np.zeros(t.shape, dtype) if g is None else backend.to_numpy(g.data) for g, t in zip(list(gs) + list(hs),
                                                                                               ins + ins)]


def _double_backward_cases():
    from test_double_backward import CASES
    from test_double_backward_more import CASES as MORE_CASES  # (3-D and LP pools, fold, LRN, sinc, logit)
    from test_double_backward_nn import CASES as NN_CASES  # (convolutions, pools, norms and the other nn ops)
    from test_double_backward_grid_sample import CASES as GS_CASES  # (grid_sample's modes, paddings; affine_grid)
    from test_double_backward_selection import CASES as SEL_CASES  # (gather, sort/topk..., scatters, flip, cumsum)
    from test_double_backward_math import CASES as MATH_CASES  # (binary math, gamma functions, var/std, prod...)
    from test_double_backward_linalg import CASES as LINALG_CASES  # (det, inv, solve, cholesky, eigh...)
    from test_double_backward_distances import CASES as DIST_CASES  # (p-norms, cosine_similarity, logcumsumexp)
    from test_double_backward_layers import CASES as LAYER_CASES  # (attention, einsum, glu, prelu, losses...)
    from test_double_backward_linalg_more import CASES as LINALG_MORE  # (svd, pinv, qr, matrix_exp, cross, vander)

    return (CASES + NN_CASES + MORE_CASES + GS_CASES + SEL_CASES + MATH_CASES + LINALG_CASES + DIST_CASES
            + LAYER_CASES + LINALG_MORE)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name,fn,arrays", _double_backward_cases(), ids=[c[0] for c in _double_backward_cases()])
def test_double_backward_on_the_gpu_matches_the_cpu(name, fn, arrays, dtype):
    cpu = _second_derivatives(fn, arrays, "cpu", dtype)
    gpu = _second_derivatives(fn, arrays, "cuda", dtype)
    for i, (g, c) in enumerate(zip(gpu, cpu)):
        assert_close(g, c, RTOL[dtype], f"derivative {1 + i // len(arrays)} of input {i % len(arrays)}")


# distnn.autograd.graph.save_on_cpu: the saved arrays wait on the host, backward gets them back on the GPU
def _saved_on_cpu_grads(device, packed):
    from distnn.autograd import graph

    rng = np.random.default_rng(4)
    x = dn.Tensor(on(device, rng.standard_normal((5, 6))), requires_grad=True)
    w = dn.Tensor(on(device, rng.standard_normal((6, 3))), requires_grad=True)

    class Noting(graph.save_on_cpu):
        def __init__(self):
            super().__init__()
            pack = self.pack_hook
            self.pack_hook = lambda t: packed.append(pack(t)) or packed[-1]

    with Noting():
        y = ((x @ w).tanh() * (x @ w).exp()).sum()
    y.backward()
    return backend.to_numpy(x.grad), backend.to_numpy(w.grad)


def test_save_on_cpu_keeps_saved_arrays_on_the_host_and_the_gpu_grads_equal_the_cpu():
    packed = []
    gpu = _saved_on_cpu_grads("cuda", packed)
    assert packed and all(backend.device_of(t.data) == "cpu" and d.startswith("cuda") for d, t in packed)
    cpu = _saved_on_cpu_grads("cpu", [])
    for g, c in zip(gpu, cpu):
        assert_close(g, c, RTOL[np.float64], "save_on_cpu")


def test_storage_methods_on_the_gpu_match_the_cpu():
    """resize_/set_/is_set_to/share_memory_ on device arrays (a pointer into the same cupy allocation, the
    allocation's size for the storage's): shapes, offsets and kept values as on the CPU, sharing seen both ways."""
    results = {}
    for device in ("cpu", "cuda"):
        t = dn.Tensor(on(device, np.arange(12.0)))[3:9]
        t.resize_(2, 2)
        kept = backend.to_numpy(t.data).copy()
        t.resize_(6)
        back = backend.to_numpy(t.data).copy()  # (the storage kept: the old values again)
        t.resize_(40)  # (past the storage: a grown copy that starts with the old one)
        grown = backend.to_numpy(t.data[:6]).copy()
        src = dn.Tensor(on(device, np.arange(10.0)))
        s = dn.Tensor(on(device, np.zeros(1))).set_(src, 2, (2, 3), (3, 1))
        s[0, 0] = -1.0
        # (device_of names the concrete device, "cuda:0", as torch's storage/tensor .device does, not "cuda")
        assert backend.device_of(s.data) == backend.resolve_device(device)
        assert float(backend.to_numpy(src.data)[2]) == -1.0
        assert s.is_set_to(dn.Tensor(on(device, np.zeros(1))).set_(src, 2, (2, 3), (3, 1)))
        results[device] = (kept, back, grown, t.storage_offset(), backend.to_numpy(s.data),
                           t.share_memory_().is_shared())
    for c, g in zip(results["cpu"], results["cuda"]):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(c))
