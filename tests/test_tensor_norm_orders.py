"""``Tensor.norm``/``distnn.norm`` take every order PyTorch's ``norm`` takes (any number, 'fro', 'nuc'), values and
gradients as torch's; before, only 2/'fro', 1 and inf were accepted (ValueError for p=3)."""
import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

X = np.random.RandomState(1).randn(3, 4)


@pytest.mark.parametrize("p", [3, 0.5, 0, -1, float("-inf"), 1.5, "nuc", 2, 1, float("inf"), "fro"], ids=str)
@pytest.mark.parametrize("dim", [None, 1, (0, 1)], ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
def test_norm_matches_torch(p, dim, keepdim):
    if p == "nuc" and dim == 1:
        pytest.skip("the nuclear norm needs two dims (torch refuses one as well)")
    ours, theirs = distnn.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
    got, want = ours.norm(p, dim, keepdim), theirs.norm(p, dim, keepdim)
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-12)
    got.sum().backward()
    want.sum().backward()
    if theirs.grad is None:  # (torch's order 0 is a count: no gradient; ours is zero)
        assert ours.grad is None or not np.any(ours.grad)
    else:
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(distnn.norm(distnn.tensor(X), p, dim, keepdim).numpy(), want.detach().numpy(),
                               rtol=1e-12)


def test_an_unknown_string_order_is_refused():
    with pytest.raises(RuntimeError, match="Order bogus not supported"):  # (PyTorch's: linalg.matrix_norm's)
        distnn.tensor(X).norm("bogus")
