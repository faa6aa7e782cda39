"""distnn vs PyTorch on result dtypes: numpy constants and tensors of different dtypes promote as PyTorch's,
0-d float64 tensors, functional ops typed as PyTorch's, casts leaving the graph, copies of data."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import Tensor

from edge_cases_oracle import pair


@pytest.mark.parametrize("constant", [np.float64(2.5), np.array(2.5), np.arange(1, 4), np.int64(3),
                                      np.ones(3, dtype=bool)],
                         ids=["np.float64", "0-d float64", "int64 array", "np.int64", "bool array"])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow"])
def test_a_numpy_constant_does_not_promote_a_float32_tensor(torch, constant, op):
    # numpy would compute float32 * np.sqrt(d) in float64 (NEP 50: numpy scalars are strong); PyTorch keeps
    # float32, and so does distnn now. Both operand orders.
    x = np.array([0.5, 1.5, 2.0], np.float32)
    d, t = pair(torch, x)
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / b, "pow": lambda a, b: a ** b}[op]
    for flip in (False, True):
        if flip and op == "pow" and not np.ndim(constant):
            continue  # (a numpy scalar ** Tensor: numpy's own power runs first in both libraries)
        dy = fn(constant, d) if flip else fn(d, constant)
        if op == "sub" and constant.dtype == bool:
            assert dy.dtype == np.float32
            continue  # (PyTorch refuses to subtract a bool tensor)
        ty = fn(torch.as_tensor(constant), t) if flip else fn(t, torch.as_tensor(constant))
        assert dy.dtype == np.float32 and ty.dtype == torch.float32
        np.testing.assert_allclose(dy.data, ty.detach().numpy(), rtol=1e-6)


_TENSOR_OPERANDS = {
    "int64[3]": lambda: np.arange(1, 4), "bool[3]": lambda: np.array([True, False, True]),
    "float32[3]": lambda: np.array([0.5, 1.5, 2.0], np.float32), "float64[3]": lambda: np.array([0.5, 1.5, 2.0]),
    "float64 0-d": lambda: np.array(2.5), "float32 0-d": lambda: np.array(2.5, np.float32),
    "int64 0-d": lambda: np.array(3),
}


@pytest.mark.parametrize("left", list(_TENSOR_OPERANDS))
@pytest.mark.parametrize("right", list(_TENSOR_OPERANDS))
@pytest.mark.parametrize("op", ["add", "mul", "div"])
def test_two_tensors_of_different_dtypes_give_pytorchs_result_dtype(torch, left, right, op):
    # numpy promoted int64 tensor * float32 tensor (and float32 * a 0-d float64 tensor) to float64, and
    # int / int to float64; PyTorch lets the float operand, and a tensor with dimensions, decide
    a, b = _TENSOR_OPERANDS[left](), _TENSOR_OPERANDS[right]()
    fn = {"add": lambda x, y: x + y, "mul": lambda x, y: x * y, "div": lambda x, y: x / y}[op]
    if op == "add" and a.dtype == bool and b.dtype == bool:
        pytest.skip("bool + bool: numpy's or vs PyTorch's add, not a promotion question")
    with np.errstate(divide="ignore", invalid="ignore"):  # (x / False)
        dy = fn(Tensor(a), Tensor(b))
    ty = fn(torch.from_numpy(a), torch.from_numpy(b))
    assert str(dy.dtype) == str(ty.dtype).replace("torch.", "")
    np.testing.assert_allclose(dy.data, ty.numpy(), rtol=1e-6)


def test_a_0d_float64_tensor_that_requires_grad_still_gets_its_gradient_in_float64():
    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    s = Tensor(np.array(2.0), requires_grad=True)
    y = x * s
    assert y.dtype == np.float32
    y.sum().backward()
    assert s.grad.dtype == np.float64 and s.grad == 3.0 and x.grad.dtype == np.float32


def test_functional_ops_type_their_results_as_pytorch_and_the_operators_do(torch):
    # F.add(x, np.float64(2)), F.where(m, x, np.float64(0)), F.cat([float32, int64]), F.maximum(float32, int64)
    # and F.clamp with numpy float64 bounds computed in float64 (numpy's promotion), unlike PyTorch and x * 2.0
    x = np.array([0.5, -1.5, 2.0], np.float32)
    i = np.array([1, 0, 3], np.int64)
    m = np.array([True, False, True])
    d, t = pair(torch, x)
    di, ti = Tensor(i), torch.tensor(i)
    two = np.float64(2)
    cases = [
        (F.add(d, two), torch.add(t, two)), (F.sub(two, d), torch.sub(torch.tensor(two), t)),
        (F.mul(d, two), torch.mul(t, two)), (F.div(d, two), torch.div(t, two)), (F.pow(d, two), torch.pow(t, two)),
        (F.clip(d, np.float64(-1), np.float64(1)), torch.clamp(t, -1.0, 1.0)),
        (F.where(m, d, np.float64(0)), torch.where(torch.tensor(m), t, 0.0)),
        (F.cat([d, di]), torch.cat([t, ti])), (F.stack([d, di]), torch.stack([t, ti])),
        (F.maximum(d, di), torch.maximum(t, ti)), (F.minimum(di, d), torch.minimum(ti, t)),
        (F.clip(di, 0.5), torch.clamp(ti, 0.5)), (F.cat([d, Tensor(x.astype(np.float64))]),
                                                   torch.cat([t, torch.tensor(x.astype(np.float64))])),
    ]
    for k, (ours, theirs) in enumerate(cases):
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", ""), (k, ours.dtype, theirs.dtype)
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-6, err_msg=str(k))
    total = sum(ours.sum() for ours, _ in cases[:-3])
    total.backward()
    assert d.grad.dtype == np.float32
    sum(theirs.sum() for _, theirs in cases[:-3]).backward()
    np.testing.assert_allclose(d.grad, t.grad.numpy(), rtol=1e-5)


def test_casts_to_integers_leave_the_graph_and_same_dtype_casts_return_the_tensor(torch):
    # x.to(int64) stayed in the graph (gradient through floor(x): 2x instead of x), and x.float() on a
    # float32 x was a new non-leaf copy (its .grad stayed None)
    values = np.array([1.5, 2.5], np.float32)
    d, t = pair(torch, values)
    for ours in (d.to(np.int64), d.astype(np.int32), d.astype(bool)):
        assert not ours.requires_grad
    ours, theirs = d.to(np.int64).to(np.float32) * d, t.to(torch.int64).to(torch.float32) * t
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_array_equal(d.grad, t.grad.numpy())
    for name in ("float", "double", "half"):
        dtype = {"float": np.float32, "double": np.float64, "half": np.float16}[name]
        x = Tensor(values.astype(dtype), requires_grad=True)
        assert getattr(x, name)() is x
    w = Tensor(values.copy(), requires_grad=True).float()
    (w * 2).sum().backward()
    np.testing.assert_array_equal(w.grad, [2.0, 2.0])


def test_distnn_tensor_copies_its_data_as_torch_tensor_and_from_numpy_shares_it():
    # distnn.tensor(w0) for two tensors made them one array: optimizing one moved the other
    w0 = np.zeros(3, np.float32)
    a, b = distnn.tensor(w0, requires_grad=True), distnn.tensor(w0)
    with distnn.no_grad():
        a -= 1.0
    assert w0.tolist() == [0, 0, 0] and b.data.tolist() == [0, 0, 0] and a.data.tolist() == [-1, -1, -1]
    assert not np.shares_memory(distnn.tensor(b).data, b.data)
    shared = distnn.from_numpy(w0)
    with distnn.no_grad():
        shared += 2.0
    assert w0.tolist() == [2, 2, 2]
