"""``expand``'s strides as PyTorch's ``stride()`` reports them: an expanded dim 0, a new leading dim ``size *
stride`` of the dim after it, and a size-1 dim that stays size 1 keeping the input's stride (numpy's broadcast
gives it 0); the values, writability of a view that repeats no element and the gradient are unchanged. Oracle:
torch, same calls (``m`` stands for either library). (A 0-d input's new dims, all stride 0 in PyTorch, cannot be
told from new dims in distnn's reading of numpy's strides: left out.)"""
import numpy as np
import pytest
import torch

import distnn

CASES = [
    "m.ones(3, 1).expand(3, 4)", "m.ones(1, 3).expand(1, 3)", "m.ones(2, 1, 3)[:, :, :1].expand(2, 1, 3)",
    "m.ones(2, 1, 3).expand(2, 1, 3)", "m.ones(2, 1, 3).expand(2, 4, 3)", "m.ones(1).expand(1)",
    "m.ones(1).expand(2, 1)", "m.ones(1, 1).expand(1, 5)", "m.ones(3, 1).expand(-1, 1)",
    "m.ones(3, 1).t().expand(1, 3)", "m.ones(4, 6)[:, ::2][:1].expand(1, 3)", "m.ones(2, 3)[:, :1].expand(2, 1)",
    "m.ones(2, 3)[:, 1:2].expand(2, 5)", "m.ones(1, 3).expand(2, 1, 3)", "m.ones(3, 1).expand(3, 1)",
    "m.ones(2, 3).permute(1, 0)[:1].expand(1, 2)", "m.ones(2, 1, 3)[:, :, :1].expand(2, 4, 1)",
    "m.ones(2, 3)[:, :1].expand_as(m.ones(2, 1))", "m.ones(2, 3)[:, :1].broadcast_to((2, 1))",
    "m.ones(5, 3)[::2][:1].expand(1, 3)", "m.ones(4)[::2][:1].expand(1, 1)", "m.ones(1, 1).expand(1, 1, 1)",
    "m.ones(2, 3, 1)[:1].expand(1, 1, 3, 4)", "m.ones(1, 4)[:, ::2].expand(3, 1, 2)",
    # a 0-d input: every new dim stride 0 (where a later dim is expanded, as distnn reads numpy's strides)
    "m.tensor(1.0).expand(2, 3)", "m.tensor(1.0).expand(3)", "m.tensor(1.0).expand(1, 3)",
    "m.tensor(1.0).expand(4, 1, 2)", "m.tensor(1.0).expand_as(m.ones(2, 3))", "m.tensor(1.0).broadcast_to((2, 3))",
    "m.tensor(1.0).expand(())",
]
# (a 0-d input's new dims of size 1 after the last expanded one: PyTorch's 0, distnn's reading of numpy's stride 0
# on a size-1 dim gives an unsqueezed dim's stride; the array cannot tell the two apart)
LEFT_OUT = ["m.tensor(1.0).expand(2, 1)", "m.tensor(1.0).expand(1, 1)", "m.tensor(1.0).expand(1)"]


def _geometry(m, expression):
    t = eval(expression)  # noqa: S307 - the test's own expressions
    return tuple(t.shape), tuple(t.stride()), t.is_contiguous()


@pytest.mark.parametrize("expression", CASES)
def test_strides_as_torch(expression):
    assert _geometry(distnn, expression) == _geometry(torch, expression)


@pytest.mark.xfail(strict=True, reason="a 0-d input's trailing new size-1 dims: not told from unsqueezed ones")
@pytest.mark.parametrize("expression", LEFT_OUT)
def test_zero_dim_trailing_size1_strides(expression):
    assert _geometry(distnn, expression) == _geometry(torch, expression)


def test_values_writes_and_gradient_unchanged():
    """The restrided view of a size-1 dim reads and writes the same elements; the gradient sums as before."""
    base = distnn.tensor(np.arange(6.0).reshape(2, 1, 3))
    view = base[:, :, :1].expand(2, 1, 3)
    assert view.numpy().tolist() == [[[0.0, 0.0, 0.0]], [[3.0, 3.0, 3.0]]]
    single = base[:1].expand(1, 1, 3)  # (no element repeated: writable, as PyTorch's)
    single[0, 0, 1] = 10.0
    assert base.numpy()[0, 0, 1] == 10.0
    x = distnn.tensor(np.arange(3.0).reshape(1, 3), requires_grad=True)
    (x.expand(1, 3) * distnn.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    assert np.asarray(x.grad).tolist() == [[1.0, 2.0, 3.0]]
