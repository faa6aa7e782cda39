"""Bad input gets a clear error that names the shapes or values involved."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import Tensor


def _t(*shape, grad=True):
    return Tensor(np.ones(shape, dtype=np.float32), requires_grad=grad)


@pytest.mark.parametrize("sa,sb,pattern", [  # (PyTorch's words; still ValueErrors, as they always were)
    ((3, 4), (5, 6), r"mat1 and mat2 shapes cannot be multiplied \(3x4 and 5x6\)"),
    ((4,), (3,), r"expected tensor \[4\] and src \[3\]"),
    ((2, 3, 4), (3, 4, 5), r"The size of tensor a \(2\) must match the size of tensor b \(3\)"),
])
def test_matmul_shape_mismatch(sa, sb, pattern):
    with pytest.raises(ValueError, match=pattern):
        _t(*sa) @ _t(*sb)


def test_matmul_scalar_operand():
    with pytest.raises(ValueError, match="need to be at least 1D"):
        F.matmul(_t(), _t(3))


def test_linear_shape_mismatch():
    with pytest.raises(ValueError, match=r"input shape \(2, 5\) does not match weight shape \(4, 3\)"):
        F.linear(_t(2, 5), _t(4, 3))
    with pytest.raises(ValueError, match=r"bias shape \(3,\) does not match weight shape \(4, 3\)"):
        F.linear(_t(2, 3), _t(4, 3), _t(3))


@pytest.mark.parametrize("op,sym", [
    (lambda a, b: a + b, r"\+"), (lambda a, b: a - b, "-"), (lambda a, b: a * b, r"\*"),
    (lambda a, b: a / b, "/"), (lambda a, b: a ** b, r"\*\*"), (F.maximum, "maximum"), (F.minimum, "minimum"),
])
def test_non_broadcastable_operands(op, sym):
    # (PyTorch's RuntimeError, as tests/test_broadcast_errors_torch.py checks against torch)
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(3\) must match the size of tensor b \(2\) at "
                                           r"non-singleton dimension 0"):
        op(_t(3, 4), _t(2, 4))


def test_non_broadcastable_where_and_expand():
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(3\) must match the size of tensor b \(2\)"):
        F.where(np.ones(3, bool), _t(3), _t(2))
    with pytest.raises(RuntimeError, match=r"The expanded size of the tensor \(4\) must match the existing size \(2\) at "
                                           r"non-singleton dimension 1"):
        _t(3, 2).expand(3, 4)


def test_backward_on_non_scalar_needs_a_gradient():
    y = _t(2, 3) * 2.0
    with pytest.raises(RuntimeError, match=r"non-scalar tensor of shape \(2, 3\) needs a gradient argument"):
        y.backward()
    with pytest.raises(RuntimeError, match=r"gradient shape \(3,\) does not match the shape \(2, 3\)"):
        y.backward(np.ones(3))


def test_backward_without_graph():
    with pytest.raises(RuntimeError, match=r"shape \(\) that does not require grad"):
        _t(3, grad=False).sum().backward()


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_integer_tensors_cannot_require_grad(dtype):
    name = np.dtype(dtype).name
    with pytest.raises(TypeError, match=rf"only floating-point and complex tensors can require gradients.*dtype {name}"):
        Tensor(np.arange(3).astype(dtype), requires_grad=True)
    with pytest.raises(TypeError, match=name):
        Tensor(np.arange(3).astype(dtype)).requires_grad_()
    with pytest.raises(TypeError, match="int64"):
        distnn.tensor([1, 2, 3], requires_grad=True)


@pytest.mark.parametrize("labels,found", [([0, 4, 1], r"\[4\]"), ([0, -1, 7], r"\[-1, 7\]")])
def test_cross_entropy_labels_out_of_range(labels, found):
    with pytest.raises(ValueError, match=rf"cross_entropy: labels must be in \[0, 3\] for 4 classes; found {found}"):
        F.cross_entropy(_t(3, 4), np.array(labels))


def test_nll_and_margin_labels_out_of_range():
    with pytest.raises(ValueError, match=r"nll_loss: labels must be in \[0, 1\] for 2 classes; found \[2\]"):
        F.nll_loss(_t(2, 2), np.array([2, 0]))
    with pytest.raises(ValueError, match=r"multi_margin_loss: labels must be in \[0, 2\].*found \[3\]"):
        F.multi_margin_loss(_t(2, 3), np.array([3, 0]))


def test_cross_entropy_bad_targets():
    with pytest.raises(TypeError, match="integer class labels, got dtype float"):
        F.cross_entropy(_t(3, 4), np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"target shape \(2,\) does not match input batch shape \(3,\)"):
        F.cross_entropy(_t(3, 4), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\).*got \(3,\)"):
        F.cross_entropy(_t(3, 4), np.array([0, 1, 2]), weight=np.ones(3))
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        F.cross_entropy(_t(3, 4), np.array([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="reduction must be"):
        F.cross_entropy(_t(3, 4), np.array([0, 1, 2]), reduction="avg")


def test_other_loss_shape_errors():
    with pytest.raises(ValueError, match=r"target shape \(3,\) != input shape \(3, 1\)"):
        F.binary_cross_entropy_with_logits(_t(3, 1), np.ones(3))
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(2\) must match the size of tensor b \(3\) at "
                                           r"non-singleton dimension 1"), pytest.warns(UserWarning, match="differs"):
        F.mse_loss(_t(3, 2), _t(2, 3))


def test_shape_op_errors():
    with pytest.raises(RuntimeError, match=r"shape '\[4, 2\]' is invalid for input of size 6"):
        _t(2, 3).reshape(4, 2)
    # (PyTorch's RuntimeErrors, which are still the ValueErrors distnn's joins raised: test_join_errors_torch)
    with pytest.raises(ValueError, match=r"Expected size 3 but got size 4 for tensor number 1"):
        F.concat([_t(2, 3), _t(2, 4)])
    with pytest.raises(ValueError, match=r"but got \[2, 3\] at entry 0 and \[3, 2\] at entry 1"):
        F.stack([_t(2, 3), _t(3, 2)])
    with pytest.raises(IndexError, match=r"invalid for tensor of shape \(2, 3\)"):
        _t(2, 3)[5]
    with pytest.raises(ValueError, match=r"split: axis 0 of size 5 does not divide into 2"):
        F.split(_t(5, 2), 2, axis=0)  # numpy's meaning with numpy's keyword
    with pytest.raises(RuntimeError, match=r"split_sizes to sum exactly to 5 .*split_sizes=\[2, 2\]"):
        F.split(_t(5, 2), [2, 2])
    with pytest.raises(RuntimeError, match=r"permute\(\): duplicate dims are not allowed"):
        _t(2, 3, 4).permute(0, 1, 1)
    with pytest.raises(ValueError, match=r"axis 3 is out of range for a tensor with 2 dimensions"):
        _t(2, 3).sum(axis=3)


def test_dropout_probability_out_of_range():
    with pytest.raises(ValueError, match="dropout probability must be in \\[0, 1\\], got 1.5"):
        F.dropout(_t(3), 1.5)


def test_backward_returning_a_wrong_shape_is_reported():
    class WrongShape(distnn.Function):
        def forward(self, a):
            return a * 2

        def backward(self, g):
            return (g[:, :2],)

    with pytest.raises(RuntimeError, match=r"WrongShape.backward: gradient of shape \(3, 2\) cannot be reduced to "
                                           r"input shape \(3, 4\)"):
        WrongShape.apply(_t(3, 4)).sum().backward()
