"""Edge cases found in a bug hunt over the tensor API and distnn.linalg, each against torch 2.13 (the oracle):
repeated eigenvalues/singular values, ties, views as inputs."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
from distnn import Tensor  # noqa: E402


def _grads(fn, *arrays):
    """fn on distnn and on torch with the same float64 inputs: (ours, torch's) outputs and input gradients of
    the output's sum."""
    ours = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    yd, yt = fn(distnn, *ours), fn(torch, *theirs)
    yd.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(yd.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    for d, t in zip(ours, theirs):
        np.testing.assert_allclose(d.grad, t.grad.numpy(), rtol=1e-10, atol=1e-12)


REPEATED = np.diag([1.0, 1.0, 2.0])


@pytest.mark.parametrize("uplo", ["L", "U"])
def test_eigh_eigenvalue_gradient_is_finite_with_repeated_eigenvalues(uplo):
    # Only the eigenvalues are used: torch's gradient is V diag(g) V^T, finite however the eigenvalues repeat.
    _grads(lambda m, x: m.linalg.eigh(x, UPLO=uplo)[0] * m.tensor([1.0, 2.0, 3.0], dtype=m.float64), REPEATED)
    _grads(lambda m, x: m.linalg.eigh(x + x.mT)[0], np.zeros((2, 3, 3)))


@pytest.mark.parametrize("ord", [2, -2])
def test_spectral_matrix_norm_splits_the_gradient_between_tied_singular_values(ord):
    # torch's matrix_norm(A, +-2) is amax/amin of the singular values: a tie shares the gradient evenly.
    _grads(lambda m, x: m.linalg.matrix_norm(x, ord), np.diag([2.0, 2.0, 1.0] if ord == 2 else [1.0, 1.0, 3.0]))
    _grads(lambda m, x: m.linalg.norm(x, ord), np.diag([3.0, 3.0]))


def test_logdet_of_a_negative_determinant_passes_no_gradient_as_torch():
    # torch.logdet is NaN where det < 0 and its gradient there is 0; the other batch elements keep A^{-T}.
    a = np.array([[[0.0, 1.0], [1.0, 0.0]], [[2.0, 1.0], [1.0, 3.0]], [[-1.0, 0.0], [0.0, 2.0]]])
    _grads(lambda m, x: m.logdet(x), a)


@pytest.mark.parametrize("op", ["slogdet", "logdet"])
def test_log_determinant_output_changed_in_place_still_backpropagates_as_torch(op):
    # The gradient A^{-T} reads A, not the output: torch lets the output be modified in place afterwards.
    a = np.array([[2.0, 1.0], [1.0, 3.0]])

    def fn(m, x):
        y = m.linalg.slogdet(x)[1] if op == "slogdet" else m.logdet(x)
        y.mul_(2.0)
        return y * y

    _grads(fn, a)


def test_integer_linspace_and_logspace_truncate_their_ends_first_as_torch():
    # torch casts start/end of an integer linspace/logspace to the integer type before spacing the values.
    for start, end, steps in [(-3.3, 7.1, 10), (0.9, -2.6, 5), (-0.5, 3.5, 3), (2.5, 7.99, 17)]:
        for name in ("int64", "int32", "int16"):
            d = distnn.linspace(start, end, steps, dtype=getattr(distnn, name))
            np.testing.assert_array_equal(d.numpy(), torch.linspace(start, end, steps, dtype=getattr(torch, name)))
            d = distnn.logspace(start, end, steps, base=2, dtype=getattr(distnn, name))
            np.testing.assert_array_equal(d.numpy(), torch.logspace(start, end, steps, base=2,
                                                                     dtype=getattr(torch, name)))
    # (one step: base ** start of the start given)
    assert distnn.logspace(0.9, 3.0, 1, dtype=distnn.int64).numpy().tolist() == [7]


def test_cov_and_corrcoef_of_integers_are_float32_and_bool_is_refused_as_torch():
    x = np.array([[1, 2, 4], [0, 1, 1]])
    for op in ("cov", "corrcoef"):
        d, t = getattr(distnn, op)(distnn.tensor(x)), getattr(torch, op)(torch.tensor(x))
        assert d.dtype == np.float32 and t.dtype == torch.float32
        np.testing.assert_allclose(d.numpy(), t.numpy(), rtol=1e-6)
    with pytest.raises(RuntimeError, match="bool dtype is not supported"):
        distnn.cov(distnn.tensor(x > 1))


@pytest.mark.parametrize("name", ["int32", "uint8", "int16"])
def test_a_zero_dim_integer_tensor_does_not_widen_an_integer_tensor_as_torch(name):
    # torch: within one category a 0-d tensor does not decide against a tensor with dimensions (int32 stays int32,
    # uint8 wraps around), as for floats.
    x = np.array([1, 2, 3]).astype(name)
    for fn in (lambda m, a, s: a + s, lambda m, a, s: s + a, lambda m, a, s: a - s, lambda m, a, s: a * s,
               lambda m, a, s: a ** m.tensor(2), lambda m, a, s: m.add(a, s), lambda m, a, s: m.sub(a, s)):
        d = fn(distnn, distnn.tensor(x), distnn.tensor(np.array(-3)))
        t = fn(torch, torch.tensor(x), torch.tensor(-3))
        assert d.dtype == np.dtype(str(t.dtype).replace("torch.", "")), (d.dtype, t.dtype)
        np.testing.assert_array_equal(d.numpy(), t.numpy())
