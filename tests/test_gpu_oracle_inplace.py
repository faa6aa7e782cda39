"""The GPU (cupy) against the CPU (numpy) for in-place changes while recording, changed since the last run on a
GPU (commit c209826), written without a GPU (a static review): writes through views and views of views
(CopySlices), saved values copied before a write, host values written into device tensors, a detached alias that
sees the write, the in-place Tensor methods and their top-level forms. gpu_oracle.py says how a case draws its
inputs and how the devices are compared."""
import numpy as np
import pytest

import distnn as dn
from distnn import backend
from distnn import functional as F

from gpu_oracle import DTYPES, NO_GPU, assert_op_matches_the_cpu

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip(NO_GPU, allow_module_level=True)


def _inplace_through_views(a):
    y = a * 1.0  # (a leaf that requires grad may not change in place)
    v = y[1:]
    w = v[:, 1:]  # a view of a view
    w *= 2.0  # reaches v and y (PyTorch's CopySlices)
    v += 1.0  # reaches y, and w again (a live view of the same memory)
    return y * y + w.sum()


def _inplace_mul(a, w):
    y = a * 1.0
    y *= w  # Mul saved y's old memory for w's gradient: copied before the write (inplace.py)
    return y * y


def _inplace_div(a, b):
    y = a * 2.0
    y /= b  # Div reads its inputs (saves_tensors = "inputs"): the old y is copied first
    y += 1.0
    return y * a


def _inplace_relu_of_max_pool(a):
    y = F.max_pool2d(a * 1.0 - 0.2, 2)
    F.relu(y, inplace=True)  # max_pool2d's saved output is internal: it keeps a copy (saved_output_is_internal)
    return y * 3.0


def _setitem_tensor(a, v):
    y = a * 1.0
    y[1] = v * 2.0  # written in place; y takes a CopySlices node
    y[0, 1:3] = v[:2]
    return y * y


def _setitem_host(a):
    y = a * 1.0
    y[:, 0] = np.array([0.5, -1.0, 2.0])  # a numpy value written into a device tensor while recording
    y[2] = 0.25
    return y * a


def _inplace_with_alias(a):
    y = a * 1.0
    d = y.detach()  # an alias cut from the graph: it sees the new values (as in PyTorch)
    y *= 3.0
    y += 1.0
    return y * a + dn.Tensor(d.data * 1.0)


def _inplace_methods_chain(a, z):
    y = a * 2.0
    y.add_(z, alpha=0.5).sin_().clamp_(-0.8, 0.9)
    y[0].mul_(3.0)  # through a view (CopySlices)
    y.addcmul_(z, z, value=0.25).lerp_(z, 0.3)
    return y * a


def _inplace_index_writes(a, v):
    y = a * 1.0
    y.index_put_((np.array([0, 2, 0]),), v, accumulate=True)  # host indices, repeated: added up
    y.fill_diagonal_(0.5)
    y.scatter_add_(0, dn.Tensor(np.array([[2, 1, 0, 2]])), v[:1])
    return y * y


def _inplace_copy_and_fill(a):
    y = a * 1.0
    y[0].copy_(np.array([0.5, -1.0, 2.0, 3.0]))  # a host source into a device tensor
    y[1].uniform_(-1.0, 1.0, generator=np.random.default_rng(0))  # host draws, the same on both devices
    y.t_()
    return y * a.t()


def _inplace_top_level_forms(a):
    y = a * 1.0
    dn.exp_(dn.clamp_(y, -1.0, 1.0))  # (torch.exp_(t): t.exp_(), recorded on the device)
    z = y + 1.0
    dn.sqrt_(z)
    return dn.rsub(y, z, alpha=0.5) + dn.fill(a, a[0, 0])


def _copy_from_raw_device_array(a, b):
    """``t.copy_(p.data)``: a raw array of the data's device (np.asarray refused a cupy one), recorded (the old
    value gets no gradient; the raw source none), with a dtype cast, and outside the graph into a fresh tensor."""
    y = a * 1.0
    y.copy_(b.data * 3.0)
    y2 = a * 2.0
    y2.copy_((b.data * 0.5).astype(np.float32))  # (a float32 source cast to y2's dtype)
    with dn.no_grad():
        z = dn.zeros_like(a)
        z.copy_(b.data[0])  # (broadcast over the rows)
    return y * a + y2 + z * b


def _inplace_operators_host_operands(a):
    """``+=``, ``*=`` outside the graph with host operands beside GPU data: a numpy array, a CPU 0-d tensor (an
    integer one into an integer tensor, which keeps it an array) went into cupy's ufunc as they were."""
    y = a * 1.0
    with dn.no_grad():
        z = a.detach().clone()
        z += np.linspace(-1.0, 1.0, 4)  # (a host array, broadcast over the rows)
        z *= dn.tensor(np.array(2.0))
        n = (a.detach() > 0).to(dn.int64)
        n += dn.tensor(np.array(3))
        n *= dn.tensor(np.array([1, 2, 3, 4]))
    return y * z + n


def _comparisons_with_host_operands(a):
    """Comparisons of GPU data with host operands (CPU 0-d tensors, as PyTorch takes; a numpy array) on either
    side: cupy refused them. Thresholds exact in float32 (no tie between the dtypes' roundings)."""
    x = a.detach()
    masks = [x > dn.tensor(np.array(0.125)), x <= np.array([-0.75, -0.25, 0.25, 0.75]),
             dn.tensor(np.array(-0.5)) < x, x.eq(dn.tensor(np.array(0.0))), x != dn.tensor(np.array(0.0))]
    return a * sum(m.to(a.dtype) * 2.0 ** k for k, m in enumerate(masks))


CASES = {
    "inplace_through_views": lambda R: ([R.standard_normal((3, 4))], _inplace_through_views),
    "inplace_mul_saves_old_value": lambda R: ([R.standard_normal((3, 4)), R.standard_normal((3, 4))], _inplace_mul),
    "inplace_div_then_add": lambda R: ([R.standard_normal((3, 4)), R.uniform(0.5, 2.0, (3, 4))], _inplace_div),
    "inplace_relu_of_max_pool": lambda R: ([R.standard_normal((2, 2, 4, 4))], _inplace_relu_of_max_pool),
    "setitem_tensor_value": lambda R: ([R.standard_normal((3, 4)), R.standard_normal((4,))], _setitem_tensor),
    "setitem_host_value": lambda R: ([R.standard_normal((3, 4))], _setitem_host),
    "inplace_seen_by_detached_alias": lambda R: ([R.standard_normal((3, 4))], _inplace_with_alias),
    # the in-place Tensor methods
    "inplace_methods_chain": lambda R: ([R.standard_normal((3, 4)), R.standard_normal((3, 4))],
                                        _inplace_methods_chain),
    "inplace_index_writes": lambda R: ([R.standard_normal((3, 4)), R.standard_normal((3, 4))],
                                       _inplace_index_writes),
    "inplace_copy_and_fill": lambda R: ([R.standard_normal((3, 4))], _inplace_copy_and_fill),
    "inplace_top_level_forms": lambda R: ([R.standard_normal((3, 4))], _inplace_top_level_forms),
    "inplace_operators_host_operands": lambda R: ([R.standard_normal((3, 4))], _inplace_operators_host_operands),
    "comparisons_with_host_operands": lambda R: ([R.standard_normal((3, 4))], _comparisons_with_host_operands),
    "copy_from_raw_device_array": lambda R: ([R.standard_normal((3, 4)), R.standard_normal((3, 4))],
                                             _copy_from_raw_device_array),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("op", list(CASES))
def test_op_changed_since_the_last_gpu_run_matches_the_cpu(op, dtype, per_test_rng):
    assert_op_matches_the_cpu(*CASES[op](per_test_rng), dtype)
