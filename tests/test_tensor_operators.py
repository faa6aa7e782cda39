"""Python's operators on a Tensor as on a PyTorch tensor: ``abs(x)``, ``+x``, ``~mask``, ``m1 & m2``,
``m1 | m2``, ``m1 ^ m2``, ``3.0 % x``, ``7 // x``.

They raised TypeError ("bad operand type for abs(): 'Tensor'", "unsupported operand type(s) for &"), so
combining comparison masks, the everyday ``(x > 0) & (x < 1)``, needed ``.data`` and numpy.
"""
import numpy as np
import pytest

import distnn as dn

torch = pytest.importorskip("torch")

A = np.array([[1.5, -2.0, 0.0], [3.0, -0.5, 4.0]])
B = np.array([[2.0, 3.0, -1.0], [-1.0, 4.0, 2.5]])


def _both(fn):
    ours = fn(dn.tensor(A), dn.tensor(B))
    theirs = fn(torch.tensor(A), torch.tensor(B))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert ours.numpy().dtype == theirs.numpy().dtype
    return ours


@pytest.mark.parametrize("fn", [
    lambda a, b: (a > 0) & (b > 0),
    lambda a, b: (a > 0) | (b > 0),
    lambda a, b: (a > 0) ^ (b > 0),
    lambda a, b: ~(a > 0),
    lambda a, b: (a > 0) & True,
    lambda a, b: False | (b > 0),
    lambda a, b: a.long() & 6,
    lambda a, b: ~a.long(),
    lambda a, b: 7.0 // b,
])
def test_mask_and_integer_operators_match_torch(fn):
    assert not _both(fn).requires_grad


def test_bitwise_operators_refuse_floats():
    for fn in (lambda a: a & a, lambda a: ~a, lambda a: (a > 0) | a):
        with pytest.raises(TypeError, match="bool or integer"):
            fn(dn.tensor(A))


def test_abs_pos_and_rmod_keep_the_gradient():
    a, t = dn.tensor(A, requires_grad=True), torch.tensor(A, requires_grad=True)
    ours, theirs = abs(a) * +a, abs(t) * +t
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy())
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(a.grad, t.grad.numpy())
    # 5 % b: PyTorch's remainder.Scalar_Tensor has no derivative: the result requires grad, its backward is refused
    b, tb = dn.tensor(B, requires_grad=True), torch.tensor(B, requires_grad=True)
    r, tr = 5.0 % b, 5.0 % tb
    np.testing.assert_allclose(r.numpy(), tr.detach().numpy())
    assert r.requires_grad and tr.requires_grad
    for loss in (r.sum(), tr.sum()):
        with pytest.raises(RuntimeError, match="derivative for aten::remainder is not implemented"):
            loss.backward()


def test_combined_mask_selects():
    x = dn.tensor(A)
    np.testing.assert_array_equal(x.masked_fill((x > 0) & (x < 2), 9.0).numpy(),
                                  np.where((A > 0) & (A < 2), 9.0, A))
