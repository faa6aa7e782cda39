"""distnn vs PyTorch at the edges of values: batches with every target ignored, the tails of the activations,
degenerate gradients (0**0, var with no degree of freedom left, a hinge of exactly zero), NaN and -inf in pooling
and reductions, unbatched pooling, a query with every key masked."""
import warnings

import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import Tensor, nn

from torch_twins import twin_models
from edge_cases_oracle import pair


def _assert_relative(actual, expected, dtype):
    """Within 4 ulp of each reference value (tails compared to their own size); below the smallest normal
    number (where PyTorch may flush to 0 and distnn keeps the subnormal), within that number."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    tiny = float(np.finfo(dtype).tiny)
    normal = np.abs(e) >= tiny
    assert np.all(np.abs(a - e)[normal] <= 4 * np.finfo(dtype).eps * np.abs(e)[normal]), (a, e)
    assert np.all(np.abs(a - e)[~normal] <= tiny), (a, e)


@pytest.mark.parametrize("kind", ["plain", "label_smoothing", "weight", "nll"])
def test_a_batch_with_every_target_ignored_gives_zero_gradients(torch, kind):
    # The mean over no targets is NaN, as in PyTorch, but its gradient is 0, not NaN: one all-padding batch
    # must not turn the weights into NaN at the next optimizer step.
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    y = np.full(4, -100)
    weight = np.array([1.0, 2.0, 3.0], np.float32)
    d, t = pair(torch, x)
    kw = {"label_smoothing": 0.1} if kind == "label_smoothing" else {}
    dw = {"weight": weight} if kind == "weight" else {}
    tw = {"weight": torch.tensor(weight)} if kind == "weight" else {}
    with np.errstate(invalid="ignore"):  # numpy says so when it divides 0 by 0
        if kind == "nll":
            dl = F.nll_loss(F.log_softmax(d, axis=1), y)
        else:
            dl = F.cross_entropy(d, y, **kw, **dw)
    if kind == "nll":
        tl = torch.nn.functional.nll_loss(torch.log_softmax(t, 1), torch.tensor(y))
    else:
        tl = torch.nn.functional.cross_entropy(t, torch.tensor(y), **kw, **tw)
    dl.backward()
    tl.backward()
    assert np.isnan(dl.item()) and np.isnan(tl.item())
    np.testing.assert_array_equal(d.grad, t.grad.numpy())
    assert not d.grad.any()


def test_one_all_ignored_batch_leaves_the_weights_finite():
    layer = nn.Linear(3, 3)
    opt = distnn.optim.SGD(layer.parameters(), lr=0.1)
    with np.errstate(invalid="ignore"):
        F.cross_entropy(layer(Tensor(np.ones((2, 3), np.float32))), np.full(2, -100)).backward()
    opt.step()
    assert all(np.isfinite(p.data).all() for p in layer.parameters())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fn", ["sigmoid", "softplus", "bce_with_logits"])
def test_sigmoid_family_keeps_relative_precision_in_both_tails(torch, dtype, fn):
    # The tanh form 0.5 (1 + tanh(x / 2)) cancels to 0 below about x = -17 in float32 (-40 in float64),
    # so log(sigmoid(x)) became -inf where PyTorch gives about x.
    x = np.array([-800, -100, -40, -25, -17, -10, -1, 0, 1, 10, 17, 25, 40, 100, 800], dtype)
    d, t = pair(torch, x)
    if fn == "sigmoid":
        dy, ty = F.sigmoid(d), torch.sigmoid(t)
    elif fn == "softplus":
        dy, ty = F.softplus(d), torch.nn.functional.softplus(t)
    else:
        target = np.linspace(0, 1, x.size).astype(dtype)
        dy = F.binary_cross_entropy_with_logits(d, target, reduction="none")
        ty = torch.nn.functional.binary_cross_entropy_with_logits(t, torch.tensor(target), reduction="none")
    dy.sum().backward()
    ty.sum().backward()
    assert dy.dtype == dtype and d.grad.dtype == dtype
    _assert_relative(dy.data, ty.detach().numpy(), dtype)
    _assert_relative(d.grad, t.grad.numpy(), dtype)


def test_pow_gradient_of_zero_to_the_zero_is_zero(torch):
    base = np.array([0.0, 1.0, 2.0])
    for exponent in (0, np.array([0.0, 2.0, 0.0])):
        d, t = pair(torch, base)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no divide-by-zero warning from the masked 0 * inf
            (d ** exponent).sum().backward()
        (t ** (torch.tensor(exponent) if isinstance(exponent, np.ndarray) else exponent)).sum().backward()
        np.testing.assert_array_equal(d.grad, t.grad.numpy())


def test_var_with_no_degrees_of_freedom_left_gives_non_finite_gradients(torch):
    d, t = pair(torch, np.array([1.0, 2.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # (no numpy warning: PyTorch's UserWarning instead)
        with pytest.warns(UserWarning, match=r"var\(\): degrees of freedom is <= 0"):
            v = d.var(ddof=2)
        v.backward()  # raised ZeroDivisionError
    with pytest.warns(UserWarning, match="degrees of freedom"):
        tv = t.var(correction=2)
    tv.backward()
    assert v.item() == tv.item() == np.inf
    assert not np.isfinite(d.grad).any() and not np.isfinite(t.grad.numpy()).any()


def test_multi_margin_loss_at_a_hinge_of_exactly_zero_and_on_one_sample(torch):
    d, t = pair(torch, np.array([[0.0, 1.0, 0.0]]))
    F.multi_margin_loss(d, np.array([1])).backward()
    torch.nn.functional.multi_margin_loss(t, torch.tensor([1])).backward()
    np.testing.assert_array_equal(d.grad, t.grad.numpy())  # PyTorch's z > 0: no gradient at 0
    for reduction in ("mean", "sum", "none"):
        d, t = pair(torch, np.array([0.1, 0.2, 0.4]))
        dl = F.multi_margin_loss(d, np.array(1), reduction=reduction)
        tl = torch.nn.functional.multi_margin_loss(t, torch.tensor(1), reduction=reduction)
        dl.backward()
        tl.backward()
        assert dl.shape == tuple(tl.shape)
        np.testing.assert_allclose(dl.data, tl.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(d.grad, t.grad.numpy(), rtol=1e-12)


def test_max_pool_gives_a_window_holding_nan_gradient_to_the_nan(torch):
    x = np.array([[[[1.0, np.nan, 5.0, 0.0], [0.0, 2.0, 1.0, 3.0]]]])
    d, t = pair(torch, x)
    F.max_pool2d(d, 2).sum().backward()
    torch.nn.functional.max_pool2d(t, 2).sum().backward()
    np.testing.assert_array_equal(d.grad, t.grad.numpy())


@pytest.mark.parametrize("name", ["max", "avg", "adaptive"])
def test_pooling_takes_an_unbatched_input_as_pytorch_does(torch, name):
    x = np.random.default_rng(1).standard_normal((3, 6, 6))
    d, t = pair(torch, x)
    tf = torch.nn.functional
    fns = {"max": (lambda a: F.max_pool2d(a, 2, padding=1), lambda a: tf.max_pool2d(a, 2, padding=1)),
           "avg": (lambda a: F.avg_pool2d(a, 3, stride=2), lambda a: tf.avg_pool2d(a, 3, stride=2)),
           "adaptive": (lambda a: F.adaptive_avg_pool2d(a, 4), lambda a: tf.adaptive_avg_pool2d(a, 4))}
    dy, ty = fns[name][0](d), fns[name][1](t)
    assert dy.shape == tuple(ty.shape)
    (dy * dy).sum().backward()
    (ty * ty).sum().backward()
    np.testing.assert_allclose(dy.data, ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(d.grad, t.grad.numpy(), rtol=1e-12, atol=1e-14)
    module = {"max": nn.MaxPool2d(2), "avg": nn.AvgPool2d(2), "adaptive": nn.AdaptiveAvgPool2d(3)}[name]
    assert module(Tensor(x)).shape[0] == 3


def test_a_query_with_every_key_masked_attends_to_nothing_instead_of_nan(torch):
    # PyTorch's training path with need_weights=False (also TransformerEncoderLayer's) gives 0 there and
    # finite gradients; distnn's fused path now does the same, so one empty sequence in a batch cannot
    # make every weight NaN.
    tm, dm = twin_models(lambda nn: nn.MultiheadAttention(8, 2, batch_first=True), seed=0, dtype=np.float64)
    x = np.random.default_rng(2).standard_normal((2, 4, 8))
    padding = np.array([[True] * 4, [False, False, True, True]])  # sequence 0 is all padding
    d, t = pair(torch, x)
    dout, _ = dm(d, d, d, key_padding_mask=padding, need_weights=False)
    tout, _ = tm(t, t, t, key_padding_mask=torch.tensor(padding), need_weights=False)
    np.testing.assert_allclose(dout.data, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    (dout * dout).sum().backward()
    (tout * tout).sum().backward()
    np.testing.assert_allclose(d.grad, t.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dm.in_proj_weight.grad, tm.in_proj_weight.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("case", [
    dict(shape=(1, 1, 3, 3), k=3, s=1, p=1, fill="all"),
    dict(shape=(2, 3, 5, 6), k=3, s=2, p=1, fill="some"),
    dict(shape=(1, 2, 5, 5), k=2, s=2, p=1, fill="all", ceil_mode=True),
    dict(shape=(1, 2, 6, 7), k=3, s=2, p=1, d=2, fill="some"),
])
def test_max_pool_windows_of_minus_inf_give_their_gradient_to_a_real_input(torch, case):
    # Padding counts as -inf; a window whose maximum is -inf must still send its gradient to an input cell
    # (the first in-bounds one, as PyTorch), not to the padding where it is lost.
    rng = np.random.default_rng(4)
    x = np.full(case["shape"], -np.inf)
    if case["fill"] == "some":
        x = rng.standard_normal(case["shape"])
        x[rng.random(x.shape) < 0.8] = -np.inf
    kw = dict(stride=case["s"], padding=case["p"], dilation=case.get("d", 1), ceil_mode=case.get("ceil_mode", False))
    d, t = pair(torch, x)
    g = rng.standard_normal(torch.nn.functional.max_pool2d(t, case["k"], **kw).shape)
    dy, ty = F.max_pool2d(d, case["k"], **kw), torch.nn.functional.max_pool2d(t, case["k"], **kw)
    np.testing.assert_array_equal(dy.data, ty.detach().numpy())
    dy.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(d.grad, t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_relu_passes_the_gradient_of_a_nan_input_as_pytorch(torch):
    x = np.array([np.nan, -1.0, 0.0, 2.0])
    d, t = pair(torch, x)
    F.relu(d).sum().backward()
    torch.relu(t).sum().backward()
    np.testing.assert_array_equal(d.grad, t.grad.numpy())  # [1, 0, 0, 1]


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("x", [[1.0, np.nan, 2.0, np.nan], [np.nan, 3.0, -1.0]])
def test_a_full_max_or_min_over_nan_gives_the_gradient_to_the_nans(torch, op, x):
    x = np.array(x)
    d, t = pair(torch, x)
    getattr(d, op)().backward()
    getattr(t, op)().backward()
    np.testing.assert_array_equal(d.grad, t.grad.numpy())
