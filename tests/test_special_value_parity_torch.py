"""Ops at special float32 values (0, -0, +-inf, NaN, values near the float32 limit) against PyTorch: forward and
backward values, NaN positions and the signs of zeros where PyTorch's formula defines them, with numpy's
floating-point warnings as errors (PyTorch prints none for these)."""
import math
import warnings

import numpy as np
import pytest
import torch

import distnn
import distnn.functional as F

torch_F = torch.nn.functional
INF, NAN = math.inf, math.nan
SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, 0.5, 1e-45, 3e38, -3e38, INF, -INF, NAN], np.float32)


def assert_same(got, want, *, exact=True, zero_signs=True):
    got = np.asarray(got.numpy() if hasattr(got, "numpy") else got, np.float64)
    want = np.asarray(want.detach().numpy(), np.float64)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg="NaN positions")
    if exact:
        np.testing.assert_array_equal(got, want)
        zeros = (want == 0) & zero_signs
        np.testing.assert_array_equal(np.signbit(got[zeros]), np.signbit(want[zeros]), err_msg="signs of zeros")
    else:
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)


def both(fn_distnn, fn_torch, *arrays, exact=True, grad=None):
    """Forward and backward (a gradient of ones, or ``grad``) of both libraries on the same float32 arrays."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = [distnn.tensor(a, requires_grad=True) for a in arrays]
        out = fn_distnn(*ours)
        g = np.ones(out.shape, np.float32) if grad is None else grad
        out.backward(distnn.tensor(g))
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    want = fn_torch(*theirs)
    want.backward(torch.tensor(g))
    assert_same(out.detach(), want, exact=exact)
    for o, t in zip(ours, theirs):
        if t.grad is None:  # (an operand PyTorch gives no gradient: a target used only in comparisons)
            assert o.grad is None
        else:
            assert_same(o.grad, t.grad, exact=exact)


def test_sign_is_zero_at_nan_and_positive_zero_at_negative_zero():
    both(distnn.sign, torch.sign, SPECIAL)


def test_abs_gradient_is_zero_at_nan():
    both(distnn.abs, torch.abs, SPECIAL)


def test_abs_double_backward_at_nan():
    x = distnn.tensor(SPECIAL, requires_grad=True)
    (g,) = distnn.autograd.grad(distnn.abs(x).sum(), x, create_graph=True)
    tx = torch.tensor(SPECIAL, requires_grad=True)
    (tg,) = torch.autograd.grad(torch.abs(tx).sum(), tx, create_graph=True)
    assert_same(g.detach(), tg)


def test_l1_loss_gradient_at_nan():
    y = np.zeros_like(SPECIAL)
    both(lambda a, b: F.l1_loss(a, b), lambda a, b: torch_F.l1_loss(a, b), SPECIAL, y)


def test_softsign_gradient_is_nan_at_infinity_and_matches_bit_for_bit():
    finite = np.random.default_rng(0).standard_normal(64).astype(np.float32) * 10
    both(F.softsign, torch_F.softsign, np.concatenate([SPECIAL, finite]),
         grad=np.random.default_rng(1).standard_normal(SPECIAL.size + 64).astype(np.float32))


def test_softsign_double_backward_at_special_values():
    x = distnn.tensor(SPECIAL, requires_grad=True)
    (g,) = distnn.autograd.grad(F.softsign(x).sum(), x, create_graph=True)
    (gg,) = distnn.autograd.grad(g.sum(), x)
    tx = torch.tensor(SPECIAL, requires_grad=True)
    (tg,) = torch.autograd.grad(torch_F.softsign(tx).sum(), tx, create_graph=True)
    (tgg,) = torch.autograd.grad(tg.sum(), tx)
    assert_same(g.detach(), tg)
    assert_same(gg, tgg, zero_signs=False)  # (at 0 PyTorch's second derivative is -0, a path detail)


WITH_NAN = np.array([[1.0, NAN, 3.0, NAN], [2.0, 2.0, 1.0, 0.0], [INF, 1.0, INF, NAN], [-INF, -INF, 0.0, 0.5]],
                    np.float32)


@pytest.mark.parametrize("name", ["amax", "amin"])
@pytest.mark.parametrize("dims", [{}, {"dim": 0}, {"dim": 1}, {"dim": (0, 1)}, {"dim": 1, "keepdim": True}])
def test_amax_amin_gradient_is_nan_over_a_slice_whose_result_is_nan(name, dims):
    g = np.random.default_rng(2).standard_normal(np.shape(getattr(torch, name)(torch.tensor(WITH_NAN), **dims)))
    both(lambda x: getattr(distnn, name)(x, **dims), lambda x: getattr(torch, name)(x, **dims), WITH_NAN,
         grad=g.astype(np.float32))


@pytest.mark.parametrize("name", ["amax", "amin"])
def test_amax_amin_double_backward_with_nan(name):
    x = distnn.tensor(WITH_NAN, requires_grad=True)
    (g,) = distnn.autograd.grad(getattr(distnn, name)(x, dim=1).sum(), x, create_graph=True)
    tx = torch.tensor(WITH_NAN, requires_grad=True)
    (tg,) = torch.autograd.grad(getattr(torch, name)(tx, dim=1).sum(), tx, create_graph=True)
    assert_same(g.detach(), tg)


def test_max_without_dim_still_shares_the_gradient_among_nans():
    both(distnn.max, torch.max, WITH_NAN)


P01 = np.array([0.0, 1.0, 0.5, 1.0, 0.0, 1e-45, 1 - 6e-8, 0.3, 0.999], np.float32)
T01 = np.array([1.0, 0.0, 0.5, 1.0, 0.0, 0.3, 0.2, 0.7, 0.1], np.float32)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy_target_gradient_is_unclamped_minus_logit(reduction, weighted):
    # PyTorch's target gradient is -logit(p) * grad: +-inf at p = 0 or 1 (the loss's logs are clamped, it is not)
    w = np.linspace(0.5, 2.0, P01.size).astype(np.float32)

    def call(lib_f, wrap):
        return lambda p, t: lib_f(p, t, weight=wrap(w) if weighted else None, reduction=reduction)

    both(call(F.binary_cross_entropy, distnn.tensor), call(torch_F.binary_cross_entropy, torch.tensor),
         P01, T01, exact=False)


def test_binary_cross_entropy_target_gradient_in_a_graph():
    p, t = distnn.tensor(P01, requires_grad=True), distnn.tensor(T01, requires_grad=True)
    (gt,) = distnn.autograd.grad(F.binary_cross_entropy(p, t, reduction="sum"), t, create_graph=True)
    tp, tt = torch.tensor(P01, requires_grad=True), torch.tensor(T01, requires_grad=True)
    (tgt,) = torch.autograd.grad(torch_F.binary_cross_entropy(tp, tt, reduction="sum"), tt, create_graph=True)
    assert_same(gt.detach(), tgt, exact=False)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumsum_carries_a_float32_running_sum_in_float64_as_pytorch_on_cpu(dim):
    # +-3e38 pass through a finite running sum, and a long sum is PyTorch's bit for bit
    a = np.random.default_rng(3).standard_normal((40, 300)).astype(np.float32)
    a[0, :4] = a[1, :4] = [3e38, 3e38, -3e38, INF]
    a[2, :4] = [-3e38, -3e38, 3e38, 3e38]
    a[:4, 0] = [3e38, 3e38, -3e38, NAN]
    g = np.random.default_rng(4).standard_normal(a.shape).astype(np.float32)
    g[-1, -3:] = g[-3:, -1] = [3e38, 3e38, -3e38]
    both(lambda x: distnn.cumsum(x, dim), lambda x: torch.cumsum(x, dim), a, grad=g)


@pytest.mark.parametrize("dtype", [np.float16, np.complex64, np.float64])
def test_cumsum_accumulators_of_other_dtypes(dtype):
    a = (np.random.default_rng(5).standard_normal(3000) * 30).astype(dtype)
    got = distnn.cumsum(distnn.tensor(a), 0).numpy()
    want = torch.cumsum(torch.tensor(a), 0).numpy()
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_cumsum_in_a_graph_and_with_dtype():
    a = np.array([[3e38, 3e38, -3e38, 1.0]], np.float32)
    x = distnn.tensor(a, requires_grad=True)
    (g,) = distnn.autograd.grad((distnn.cumsum(x, 1) * distnn.tensor(a)).sum(), x, create_graph=True)
    tx = torch.tensor(a, requires_grad=True)
    (tg,) = torch.autograd.grad((torch.cumsum(tx, 1) * torch.tensor(a)).sum(), tx, create_graph=True)
    assert_same(g.detach(), tg)
    ints = np.array([1, 2, 3, 2 ** 24, 1, -2 ** 24], np.int64)
    assert_same(distnn.cumsum(distnn.tensor(ints), 0, dtype=distnn.float32), torch.cumsum(torch.tensor(ints), 0,
                                                                                          dtype=torch.float32))


def _grid():
    x, y = np.meshgrid(SPECIAL, SPECIAL, indexing="ij")
    return x.ravel().copy(), y.ravel().copy()


@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "batchmean"])
def test_kl_div_target_gradient_at_special_values(log_target, reduction):
    # PyTorch's kl_div is composed: xlogy(y, y) - y x (its xlogy's y / y: NaN at y = 0 and +-inf), or
    # e^y (y - x) (inf * 0 = NaN where e^y overflows and y = x)
    x, y = _grid()

    def ours(a, b):
        with warnings.catch_warnings():  # (only 'mean''s UserWarning, PyTorch's too: float warnings stay errors)
            warnings.simplefilter("ignore", UserWarning)
            return F.kl_div(a, b, reduction=reduction, log_target=log_target)

    both(ours,
         lambda a, b: torch_F.kl_div(a, b, reduction=reduction, log_target=log_target), x, y, exact=False)


@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_target_gradient_in_a_graph(log_target):
    x, y = _grid()
    dx, dy = distnn.tensor(x, requires_grad=True), distnn.tensor(y, requires_grad=True)
    (g,) = distnn.autograd.grad(F.kl_div(dx, dy, reduction="sum", log_target=log_target), dy, create_graph=True)
    tx, ty = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    (tg,) = torch.autograd.grad(torch_F.kl_div(tx, ty, reduction="sum", log_target=log_target), ty,
                                create_graph=True)
    assert_same(g.detach(), tg, exact=False)


@pytest.mark.parametrize("margin", [1.0, 0.0])
def test_hinge_embedding_loss_at_special_values(margin):
    # PyTorch's composed clamp_min(margin - x, 0): its gradient mask is false at NaN
    x, _ = _grid()
    y = np.resize(np.array([1.0, -1.0, 0.0, 2.0], np.float32), x.size)
    for make in (lambda a: a, lambda a: a[:, None] * np.ones(3, np.float32)):
        both(lambda a, b: F.hinge_embedding_loss(a, b, margin=margin, reduction="none"),
             lambda a, b: torch_F.hinge_embedding_loss(a, b, margin=margin, reduction="none"), make(x), make(y))
        both(lambda a, b: F.hinge_embedding_loss(a, b, margin=margin),
             lambda a, b: torch_F.hinge_embedding_loss(a, b, margin=margin), make(x), make(y), exact=False)


@pytest.mark.parametrize("log_input", [True, False])
def test_poisson_nll_loss_full_target_gradient_at_special_values(log_input):
    # PyTorch's Stirling term is masked_fill(y <= 1, 0) of y log y - y + 0.5 log(2 pi y): its gradient is
    # 0 * log y where masked (NaN at y <= 0), and NaN at y = inf (y / y)
    x, y = _grid()
    for reduction in ("none", "sum"):
        both(lambda a, b: F.poisson_nll_loss(a, b, log_input=log_input, full=True, reduction=reduction),
             lambda a, b: torch_F.poisson_nll_loss(a, b, log_input=log_input, full=True, reduction=reduction),
             x, np.abs(y), exact=False)
    dx, dy = distnn.tensor(x, requires_grad=True), distnn.tensor(np.abs(y), requires_grad=True)
    (g,) = distnn.autograd.grad(F.poisson_nll_loss(dx, dy, log_input=log_input, full=True, reduction="sum"), dy,
                                create_graph=True)
    tx, ty = torch.tensor(x, requires_grad=True), torch.tensor(np.abs(y), requires_grad=True)
    (tg,) = torch.autograd.grad(torch_F.poisson_nll_loss(tx, ty, log_input=log_input, full=True, reduction="sum"),
                                ty, create_graph=True)
    assert_same(g.detach(), tg, exact=False)


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_gaussian_nll_loss_gradients_at_special_values(reduction):
    # PyTorch's is composed, 0.5 (log v + (x - y) ** 2 / v): (x - y) ** 2 overflows to inf past ~1.8e19
    x, y = _grid()
    var = np.abs(y[::-1]) + 1
    both(lambda a, b, c: F.gaussian_nll_loss(a, b, c, reduction=reduction),
         lambda a, b, c: torch_F.gaussian_nll_loss(a, b, c, reduction=reduction), x, y, var, exact=False)
    tensors = [distnn.tensor(a, requires_grad=True) for a in (x, y, var)]
    grads = distnn.autograd.grad(F.gaussian_nll_loss(*tensors, reduction="sum"), tensors, create_graph=True)
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, y, var)]
    want = torch.autograd.grad(torch_F.gaussian_nll_loss(*theirs, reduction="sum"), theirs, create_graph=True)
    for got, w in zip(grads, want):
        assert_same(got.detach(), w, exact=False)


@pytest.mark.parametrize("dims", [{}, {"dim": 0}, {"dim": 1, "keepdim": True}])
def test_aminmax_gradient_is_nan_over_a_slice_whose_result_is_nan(dims):
    both(lambda x: sum(distnn.aminmax(x, **dims)), lambda x: sum(torch.aminmax(x, **dims)), WITH_NAN)


CUMPROD_CASES = [
    SPECIAL,  # (zeros first, then inf and NaN: past the second zero every product is 0 to PyTorch)
    np.array([2.0, 0.0, 3.0, INF, 0.0, INF, 5.0], np.float32),
    np.array([2.0, INF, 0.5, 0.0, 4.0, 0.0, NAN], np.float32),
    np.array([3e38, 3e38, 0.0, 1e-45, -1.0], np.float32),
    np.array([1.0, 2.0, NAN, 0.0, 3.0], np.float32),
]


@pytest.mark.parametrize("case", range(len(CUMPROD_CASES)))
def test_cumprod_gradient_with_zeros_and_special_values(case):
    a = CUMPROD_CASES[case]
    g = np.linspace(-1.0, 2.0, a.size).astype(np.float32)
    both(lambda x: distnn.cumprod(x, 0), lambda x: torch.cumprod(x, 0), a, grad=g, exact=False)
    both(lambda x: distnn.cumprod(x, 1), lambda x: torch.cumprod(x, 1), np.stack([a, a[::-1]]),
         grad=np.stack([g, g]), exact=False)


@pytest.mark.parametrize("p", [2, 1, 3])  # (PyTorch's norm_except_dim takes an integer pow)
@pytest.mark.parametrize("dim", [0, -1])
def test_norm_except_dim_of_a_vector_at_special_values(p, dim):
    # dim=0 of a 1-D tensor: one norm per element (PyTorch's view(size(0), -1).norm(pow, 1)), |x| even where
    # squaring leaves the range (1e-45, 3e38); the p-norm's gradient has sgn(x), 0 at NaN
    for a in (SPECIAL, SPECIAL[:6], np.array([3e38, 1.0], np.float32)):
        both(lambda x: distnn.norm_except_dim(x, p, dim), lambda x: torch.norm_except_dim(x, p, dim), a,
             exact=False)


@pytest.mark.parametrize("ord", [2, 3, 1, -1, INF, -INF, 0.5])
def test_vector_norm_of_one_element_per_norm_is_its_absolute_value(ord):
    both(lambda x: distnn.linalg.vector_norm(x, ord, dim=1), lambda x: torch.linalg.vector_norm(x, ord, dim=1),
         SPECIAL[:, None], exact=False)
    both(lambda x: distnn.linalg.vector_norm(x, ord), lambda x: torch.linalg.vector_norm(x, ord),
         np.array([3e38], np.float32), exact=False)
