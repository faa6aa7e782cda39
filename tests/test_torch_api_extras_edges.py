"""The ops of test_torch_api_extras.py at their edges: a bad dim is an IndexError naming the range, the other
error cases, 0-d tensors, which results are copies and which views, finite-difference checks
(``distnn.testing.check_grad``) with a wrong backward shown to fail them, softmax of an empty tensor."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import Tensor
from distnn.testing import check_grad
from test_torch_api_extras import rand


# ---------------------------------------------------------------- errors, named as the user meets them
@pytest.mark.parametrize("call", [
    lambda x: x.cumsum(2),
    lambda x: distnn.cumsum(x, -3),
    lambda x: x.prod(5),
    lambda x: x.sort(2),
    lambda x: x.topk(1, dim=-3),
    lambda x: x.index_select(2, distnn.tensor([0])),
    lambda x: x.narrow(3, 0, 1),
    lambda x: x.flip(2),
    lambda x: x.roll(1, 4),
    lambda x: x.logsumexp(2),
    lambda x: x.amax(2),
    lambda x: F.normalize(x, dim=2),
], ids=["cumsum", "cumsum_neg", "prod", "sort", "topk", "index_select", "narrow", "flip", "roll", "logsumexp",
        "amax", "normalize"])
def test_bad_dim_is_an_index_error(call):
    with pytest.raises(IndexError, match="out of range"):
        call(Tensor(rand(3, 4)))


def test_error_cases():
    x = Tensor(rand(3, 4))
    with pytest.raises(TypeError, match="integers"):
        x.index_select(0, distnn.tensor([0.0]))
    with pytest.raises(IndexError, match="must be in"):
        x.index_select(0, distnn.tensor([3]))
    with pytest.raises(ValueError, match="vector"):
        x.index_select(0, distnn.tensor([[0]]))
    with pytest.raises(TypeError, match="integer class indices"):
        F.one_hot(distnn.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="smaller than num_classes"):
        F.one_hot(distnn.tensor([0, 3]), num_classes=3)
    with pytest.raises(ValueError, match="non-negative"):
        F.one_hot(distnn.tensor([-1, 0]))
    with pytest.raises(ValueError, match="empty"):
        F.one_hot(distnn.tensor(np.zeros(0, np.int64)))
    with pytest.raises(ValueError, match="k = 5 is out of range"):
        x.topk(5)
    with pytest.raises(RuntimeError, match=r"start \(2\) \+ length \(3\) exceeds dimension size \(4\)"):
        x.narrow(1, 2, 3)
    with pytest.raises(RuntimeError, match="batch1 must be a 3D tensor"):  # (PyTorch's words; still a ValueError)
        distnn.bmm(x, x)
    with pytest.raises(ValueError, match="Expected size for first two dimensions of batch2 tensor"):
        distnn.bmm(Tensor(rand(2, 3, 4)), Tensor(rand(3, 4, 5)))
    with pytest.raises(ValueError, match="sizes"):
        distnn.einsum("ij,jk->ik", x, Tensor(rand(3, 2)))
    with pytest.raises(ValueError, match="do not match operand"):
        distnn.einsum("ijk->i", x)
    with pytest.raises(ValueError, match="operand"):
        distnn.einsum("ij,jk->ik", x)
    with pytest.raises(ValueError, match="distinct letters"):
        distnn.einsum("ij->iz", x)
    with pytest.raises(ValueError, match="align"):
        x.roll((1, 2), 0)
    with pytest.raises(ValueError, match="more than once"):
        x.flip((0, 0))
    with pytest.raises(ValueError, match="matri"):
        Tensor(rand(3)).mT
    with pytest.raises(TypeError, match="complex"):
        Tensor(np.ones(3, np.complex64)).sort()


def test_zero_d_tensors(torch):
    x = Tensor(np.array(2.5), requires_grad=True)
    v, i = x.sort()
    assert v.shape == () and i.shape == () and i.item() == 0
    v.backward()
    assert x.grad == 1.0
    assert x.cumsum(0).item() == 2.5 and x.flip(0).item() == 2.5 and x.roll(1).item() == 2.5
    assert x.topk(1).values.item() == 2.5


def test_sort_indices_are_the_callers_to_change(torch):
    # the graph keeps its own copy of the indices: changing the returned ones in place does not change the gradient
    x = Tensor(rand(5), requires_grad=True)
    values, indices = x.sort()
    indices.data[...] = 0
    values.sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones(5))


def test_flip_is_a_copy_narrow_a_view():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    f = x.flip(1)
    f.data[0, 0] = 100.0
    assert x.data[0, 2] == 2.0
    n = x.narrow(1, 0, 2)
    with distnn.no_grad():
        n[0, 0] = 50.0
    assert x.data[0, 0] == 50.0


# ---------------------------------------------------------------- finite differences
@pytest.mark.parametrize("fn,shapes", [
    (lambda x: x.cumsum(-1), [(3, 4)]),
    (lambda x: x.prod(1), [(3, 4)]),
    (lambda x: x.logsumexp((0, 1)), [(3, 4)]),
    (lambda x: x.sort(0, descending=True).values, [(5, 3)]),
    (lambda x: x.topk(2, 1).values, [(3, 5)]),
    (lambda a, b: distnn.einsum("bij,bjk->bik", a, b), [(2, 3, 4), (2, 4, 2)]),
    (lambda a, b, c: distnn.einsum("ij,jk,ki->", a, b, c), [(2, 3), (3, 4), (4, 2)]),
    (lambda x: distnn.einsum("iij->ij", x), [(3, 3, 2)]),
    (lambda x: F.normalize(x, p=3.0, dim=-1), [(3, 4)]),
    (lambda x: x.index_select(1, distnn.tensor([0, 2, 2])).roll(1, 0).flip(1), [(3, 4)]),
], ids=["cumsum", "prod", "logsumexp", "sort", "topk", "einsum_bmm", "einsum_trace3", "einsum_diag",
        "normalize_p3", "select_roll_flip"])
def test_check_grad(fn, shapes):
    arrays = [rand(*s, seed=i) for i, s in enumerate(shapes)]
    assert check_grad(fn, *arrays)


def test_check_grad_would_catch_a_wrong_backward():
    # (the checks above have teeth: a cumsum whose gradient forgets the reversal fails)
    from distnn.functional.reduce_more import CumSum

    class Wrong(CumSum):
        def backward(self, g):
            return (np.cumsum(g, axis=self.dim),)

    with pytest.raises(AssertionError, match="gradient check failed"):
        check_grad(lambda x: Wrong.apply(x, dim=1), rand(3, 4))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_of_an_empty_tensor_is_empty_as_in_pytorch(name):
    # the max taken for stability had no identity: ValueError (found by tests/test_autograd_fuzz.py)
    import distnn.functional as DF

    x = distnn.tensor(np.zeros((0, 3)), requires_grad=True)
    out = getattr(DF, name)(x, dim=0)
    assert out.shape == (0, 3)
    out.sum().backward()
    assert x.grad.shape == (0, 3)
