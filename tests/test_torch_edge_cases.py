"""distnn vs PyTorch at the edges: degenerate batches, tails of the activations, masked
rows, unbatched pooling and the dtypes of mixed operands.

Each case is one a user meets in practice (an all-padding chunk, an empty sequence in
a batch, ``x * np.sqrt(d)``) where distnn once gave NaN, lost precision, crashed or
silently computed in float64 while PyTorch did not.
"""
import re
import warnings

import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import Tensor, nn
from torch_twins import twin_models


def _pair(torch, a):
    return Tensor(a.copy(), requires_grad=True), torch.tensor(a, requires_grad=True)


def _assert_relative(actual, expected, dtype):
    """Within 4 ulp of each reference value (tails compared to their own size); below the smallest normal
    number (where PyTorch may flush to 0 and distnn keeps the subnormal), within that number."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    tiny = float(np.finfo(dtype).tiny)
    normal = np.abs(e) >= tiny
    assert np.all(np.abs(a - e)[normal] <= 4 * np.finfo(dtype).eps * np.abs(e)[normal]), (a, e)
    assert np.all(np.abs(a - e)[~normal] <= tiny), (a, e)


# ---------------------------------------------------------------- all targets ignored
@pytest.mark.parametrize("kind", ["plain", "label_smoothing", "weight", "nll"])
def test_a_batch_with_every_target_ignored_gives_zero_gradients(torch, kind):
    # The mean over no targets is NaN, as in PyTorch, but its gradient is 0, not NaN: one all-padding batch
    # must not turn the weights into NaN at the next optimizer step.
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    y = np.full(4, -100)
    weight = np.array([1.0, 2.0, 3.0], np.float32)
    d, t = _pair(torch, x)
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


# ---------------------------------------------------------------- activation tails
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fn", ["sigmoid", "softplus", "bce_with_logits"])
def test_sigmoid_family_keeps_relative_precision_in_both_tails(torch, dtype, fn):
    # The tanh form 0.5 (1 + tanh(x / 2)) cancels to 0 below about x = -17 in float32 (-40 in float64),
    # so log(sigmoid(x)) became -inf where PyTorch gives about x.
    x = np.array([-800, -100, -40, -25, -17, -10, -1, 0, 1, 10, 17, 25, 40, 100, 800], dtype)
    d, t = _pair(torch, x)
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


# ---------------------------------------------------------------- degenerate gradients
def test_pow_gradient_of_zero_to_the_zero_is_zero(torch):
    base = np.array([0.0, 1.0, 2.0])
    for exponent in (0, np.array([0.0, 2.0, 0.0])):
        d, t = _pair(torch, base)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no divide-by-zero warning from the masked 0 * inf
            (d ** exponent).sum().backward()
        (t ** (torch.tensor(exponent) if isinstance(exponent, np.ndarray) else exponent)).sum().backward()
        np.testing.assert_array_equal(d.grad, t.grad.numpy())


def test_var_with_no_degrees_of_freedom_left_gives_non_finite_gradients(torch):
    d, t = _pair(torch, np.array([1.0, 2.0]))
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
    d, t = _pair(torch, np.array([[0.0, 1.0, 0.0]]))
    F.multi_margin_loss(d, np.array([1])).backward()
    torch.nn.functional.multi_margin_loss(t, torch.tensor([1])).backward()
    np.testing.assert_array_equal(d.grad, t.grad.numpy())  # PyTorch's z > 0: no gradient at 0
    for reduction in ("mean", "sum", "none"):
        d, t = _pair(torch, np.array([0.1, 0.2, 0.4]))
        dl = F.multi_margin_loss(d, np.array(1), reduction=reduction)
        tl = torch.nn.functional.multi_margin_loss(t, torch.tensor(1), reduction=reduction)
        dl.backward()
        tl.backward()
        assert dl.shape == tuple(tl.shape)
        np.testing.assert_allclose(dl.data, tl.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(d.grad, t.grad.numpy(), rtol=1e-12)


def test_max_pool_gives_a_window_holding_nan_gradient_to_the_nan(torch):
    x = np.array([[[[1.0, np.nan, 5.0, 0.0], [0.0, 2.0, 1.0, 3.0]]]])
    d, t = _pair(torch, x)
    F.max_pool2d(d, 2).sum().backward()
    torch.nn.functional.max_pool2d(t, 2).sum().backward()
    np.testing.assert_array_equal(d.grad, t.grad.numpy())


# ---------------------------------------------------------------- unbatched pooling
@pytest.mark.parametrize("name", ["max", "avg", "adaptive"])
def test_pooling_takes_an_unbatched_input_as_pytorch_does(torch, name):
    x = np.random.default_rng(1).standard_normal((3, 6, 6))
    d, t = _pair(torch, x)
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


# ---------------------------------------------------------------- fully masked attention
def test_a_query_with_every_key_masked_attends_to_nothing_instead_of_nan(torch):
    # PyTorch's training path with need_weights=False (also TransformerEncoderLayer's) gives 0 there and
    # finite gradients; distnn's fused path now does the same, so one empty sequence in a batch cannot
    # make every weight NaN.
    tm, dm = twin_models(lambda nn: nn.MultiheadAttention(8, 2, batch_first=True), seed=0, dtype=np.float64)
    x = np.random.default_rng(2).standard_normal((2, 4, 8))
    padding = np.array([[True] * 4, [False, False, True, True]])  # sequence 0 is all padding
    d, t = _pair(torch, x)
    dout, _ = dm(d, d, d, key_padding_mask=padding, need_weights=False)
    tout, _ = tm(t, t, t, key_padding_mask=torch.tensor(padding), need_weights=False)
    np.testing.assert_allclose(dout.data, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    (dout * dout).sum().backward()
    (tout * tout).sum().backward()
    np.testing.assert_allclose(d.grad, t.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dm.in_proj_weight.grad, tm.in_proj_weight.grad.numpy(), rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- dtypes of mixed operands
@pytest.mark.parametrize("constant", [np.float64(2.5), np.array(2.5), np.arange(1, 4), np.int64(3),
                                      np.ones(3, dtype=bool)],
                         ids=["np.float64", "0-d float64", "int64 array", "np.int64", "bool array"])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow"])
def test_a_numpy_constant_does_not_promote_a_float32_tensor(torch, constant, op):
    # numpy would compute float32 * np.sqrt(d) in float64 (NEP 50: numpy scalars are strong); PyTorch keeps
    # float32, and so does distnn now. Both operand orders.
    x = np.array([0.5, 1.5, 2.0], np.float32)
    d, t = _pair(torch, x)
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


# ---------------------------------------------------------------- -inf and NaN in gradients
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
    d, t = _pair(torch, x)
    g = rng.standard_normal(torch.nn.functional.max_pool2d(t, case["k"], **kw).shape)
    dy, ty = F.max_pool2d(d, case["k"], **kw), torch.nn.functional.max_pool2d(t, case["k"], **kw)
    np.testing.assert_array_equal(dy.data, ty.detach().numpy())
    dy.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(d.grad, t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_relu_passes_the_gradient_of_a_nan_input_as_pytorch(torch):
    x = np.array([np.nan, -1.0, 0.0, 2.0])
    d, t = _pair(torch, x)
    F.relu(d).sum().backward()
    torch.relu(t).sum().backward()
    np.testing.assert_array_equal(d.grad, t.grad.numpy())  # [1, 0, 0, 1]


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("x", [[1.0, np.nan, 2.0, np.nan], [np.nan, 3.0, -1.0]])
def test_a_full_max_or_min_over_nan_gives_the_gradient_to_the_nans(torch, op, x):
    x = np.array(x)
    d, t = _pair(torch, x)
    getattr(d, op)().backward()
    getattr(t, op)().backward()
    np.testing.assert_array_equal(d.grad, t.grad.numpy())


# ---------------------------------------------------------------- PyTorch's reduction arguments
def test_reductions_take_pytorchs_dim_arguments_with_pytorchs_meaning(torch):
    # x.max(1) returned the values only (pred = out.max(1)[1] gave one number), var was the population
    # variance, and dim=/keepdim= were TypeErrors; numpy's axis=/keepdims=/ddof= keep numpy's meaning
    x = np.random.default_rng(3).standard_normal((4, 6))
    d, t = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    values, indices = d.max(1)
    ref = t.max(1)
    np.testing.assert_array_equal(indices.data, ref.indices.numpy())
    np.testing.assert_allclose(values.data, ref.values.detach().numpy())
    assert d.max(1)[1].data.tolist() == ref[1].tolist() and distnn.min(d, 0).indices.data.tolist() == \
        t.min(0).indices.tolist()
    assert d.max(dim=1, keepdim=True).values.shape == (4, 1) and d.argmax(dim=1, keepdim=True).shape == (4, 1)
    values.sum().backward()
    ref.values.sum().backward()
    np.testing.assert_allclose(d.grad, t.grad.numpy())  # (no ties here)
    pairs = ((d.var(), t.var()), (d.var(1), t.var(1)), (d.std(0, keepdim=True), t.std(0, keepdim=True)),
             (d.var(1, unbiased=False), t.var(1, unbiased=False)), (d.var(correction=0), t.var(correction=0)),
             (d.sum(dim=1, keepdim=True), t.sum(dim=1, keepdim=True)), (d.mean(dim=0), t.mean(dim=0)))
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(d.var(axis=1).data, x.var(axis=1), rtol=1e-12)  # numpy's keywords: numpy's ddof=0
    assert d.max(axis=1).shape == (4,) and d.max().shape == ()
    with pytest.raises(TypeError, match="distnn.functional.maximum"):
        distnn.max(d, d)


def test_split_and_pad_take_pytorchs_arguments_with_pytorchs_meaning(torch):
    # split read an int as a number of sections and a list as split points (numpy), pad's (1, 1) padded
    # every axis: the same calls silently gave other shapes than PyTorch's
    x = np.arange(24.0).reshape(4, 6)
    d, t = Tensor(x), torch.tensor(x)
    for args in ((2, 1), ([2, 4], 1), (4, 1), (3,)):
        ours, theirs = F.split(d, *args), torch.split(t, *args)
        assert [p.shape for p in ours] == [tuple(p.shape) for p in theirs]
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a.data, b.numpy())
    assert [p.shape for p in F.split(d, 3, axis=1)] == [(4, 2)] * 3  # numpy's keyword: 3 sections
    x4 = np.ones((2, 3, 4, 5))
    for pad in ((1, 1), (0, 2, 1, 0), (1, 2, 3, 4, 5, 6)):
        ours = F.pad(Tensor(x4), pad, value=1.5)
        theirs = torch.nn.functional.pad(torch.tensor(x4), pad, value=1.5)
        np.testing.assert_array_equal(ours.data, theirs.numpy())
    assert F.pad(Tensor(x), ((1, 0), (0, 2))).shape == (5, 8)  # numpy's pairs per axis


def test_more_pytorch_calls_mean_the_same(torch):
    # int tensor * 0.5 was float64 (PyTorch: float32); transpose(x, 0, 1) and F.dropout(x, p, training, inplace)
    # and inplace=True on the activations were TypeErrors/AttributeErrors
    i = Tensor(np.arange(4))
    for ours, theirs in ((i * 0.5, torch.arange(4) * 0.5), (0.5 * i, 0.5 * torch.arange(4)),
                         (i + 1.5, torch.arange(4) + 1.5), (2.0 - i, 2.0 - torch.arange(4)), (1.0 / (i + 1), None)):
        assert ours.dtype == np.float32, ours.dtype
        if theirs is not None:
            np.testing.assert_allclose(ours.data, theirs.numpy())
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(F.transpose(Tensor(x), 0, 1).data, torch.transpose(torch.tensor(x), 0, 1).numpy())
    np.testing.assert_array_equal(F.dropout(Tensor(x), 0.5, False, False).data, x)
    np.testing.assert_array_equal(F.relu(Tensor(x - 2), inplace=True).data, np.maximum(x - 2, 0))


def test_pytorch_tensor_methods_and_constructors_match_values_and_gradients(torch):
    # each was an AttributeError; a ported script used them
    x = np.arange(12.0).reshape(3, 4) - 5.5
    index = np.array([[0, 1, 1], [2, 0, 3], [1, 1, 0]])
    mask = x > 0
    cases = {
        "clone": lambda a, lib: a.clone() * 2,
        "norm": lambda a, lib: a.norm() + a.norm(1) + a.norm(dim=1).sum(),
        "norm of zeros": lambda a, lib: (a * 0).norm(),  # a subgradient of 0, not NaN
        "masked_fill": lambda a, lib: a.masked_fill(mask if lib == "dn" else torch.tensor(mask), -1.0) * a,
        "chunk": lambda a, lib: a.chunk(3, 1)[1] * a.chunk(3, 1)[0][:, :1],
        "repeat": lambda a, lib: a.repeat(2, 1, 3) * 1.5,
        "gather": lambda a, lib: a.gather(1, index if lib == "dn" else torch.tensor(index)) ** 2,
        "remainder": lambda a, lib: (a % 3.0) * a,
        "pow/matmul/mul": lambda a, lib: a.pow(2).matmul(a.T).mul(0.5).add(1).sub(a.sum()).div(4),
        "zero_ via clone": lambda a, lib: a.clone().zero_() + a,
    }
    for name, fn in cases.items():
        d, t = Tensor(x.copy(), requires_grad=True), torch.tensor(x.copy(), requires_grad=True)
        ours, theirs = fn(d, "dn"), fn(t, "torch")
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, err_msg=name)
        (ours * ours).sum().backward()
        (theirs * theirs).sum().backward()
        np.testing.assert_allclose(d.grad, t.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
    d = Tensor(x)
    assert d.long().dtype == np.int64 and d.int().dtype == np.int32 and d.bool().dtype == bool
    assert (d // 2).data.tolist() == (torch.tensor(x) // 2).tolist() and d.contiguous() is d and d.cpu() is d
    assert (d > 0).all().item() is False and d.all().item() is True and d.any(1, keepdim=True).shape == (3, 1)
    assert distnn.arange(5).dtype == np.int64 and distnn.arange(0.0, 1.0, 0.25).dtype == np.float32
    np.testing.assert_array_equal(distnn.arange(1, 7, 2).data, torch.arange(1, 7, 2).numpy())
    assert distnn.zeros_like(d).shape == (3, 4) and distnn.full((2, 2), 7.0).data.sum() == 28
    a = np.ones(3)
    shared = distnn.from_numpy(a)
    a[0] = 5
    assert shared.data[0] == 5 and distnn.argmax(d, 1).data.tolist() == [3, 3, 3]


def test_late_review_edge_cases_match_pytorch(torch):
    # found by a review of the added methods: gather broadcast a smaller index and wrapped negative ones,
    # std's gradient was NaN on a constant slice, max(dim) split tied gradients, masked_fill dropped a tensor
    # value's gradient and changed integer dtypes
    x = np.arange(12.0).reshape(3, 4)
    assert Tensor(x).gather(1, np.array([[1, 2]])).data.tolist() == \
        torch.tensor(x).gather(1, torch.tensor([[1, 2]])).tolist()
    for bad in (np.array([[-1]]), np.array([[4]])):
        with pytest.raises(IndexError, match="indices must be in"):
            Tensor(x).gather(1, bad)
    const = Tensor(np.ones((2, 3)), requires_grad=True)
    const.std(1).sum().backward()
    assert const.grad.tolist() == [[0.0] * 3] * 2
    ties = np.array([[1.0, 3, 3], [2, 2, 0]])
    d, t = Tensor(ties, requires_grad=True), torch.tensor(ties, requires_grad=True)
    d.max(1).values.sum().backward()
    t.max(1).values.sum().backward()
    np.testing.assert_array_equal(d.grad, t.grad.numpy())
    mask = np.array([True, False, True, False])
    base, value = Tensor(np.arange(4.0), requires_grad=True), Tensor(np.array(2.0), requires_grad=True)
    (base.masked_fill(mask, value) * 3).sum().backward()
    assert value.grad == 6.0 and base.grad.tolist() == [0, 3, 0, 3]
    assert Tensor(np.arange(4)).masked_fill(mask, 9).dtype == np.int64
    assert (Tensor(np.arange(3)) * np.float64(1.5)).dtype == np.float32
    assert (np.float64(1.5) * Tensor(np.arange(3))).dtype == np.float32  # (the reflected order too)
    with pytest.raises(TypeError, match="4th argument is inplace"):
        F.dropout(Tensor(x), 0.5, True, np.random.default_rng(0))


def test_pad_crops_with_negative_amounts_and_full_follows_its_value(torch):
    x = np.arange(24.0).reshape(2, 3, 4)
    for pad in ((-1, 1), (1, -2, -1, 0), (-1, -1, 0, 2, 1, 0)):
        d, t = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        ours, theirs = F.pad(d, pad, value=0.5), torch.nn.functional.pad(t, pad, value=0.5)
        np.testing.assert_array_equal(ours.data, theirs.detach().numpy())
        (ours * ours).sum().backward()
        (theirs * theirs).sum().backward()
        np.testing.assert_array_equal(d.grad, t.grad.numpy())
    assert distnn.full((2,), 3).dtype == np.int64 and distnn.full((2,), True).dtype == bool
    assert distnn.full((2,), 0.5).dtype == np.float32
    assert F.transpose(Tensor(x), axes=(2, 0, 1)).shape == (4, 2, 3)  # numpy's keyword still works


def test_clamp_with_tensor_bounds_matches_pytorch_values_and_all_three_gradients(torch):
    # Tensor bounds were a TypeError from inside Clip.forward, and array bounds got no gradient
    x = np.array([[-2.0, 0.5, 3.0, 1.0], [0.0, 0.25, -1.0, 5.0]])
    lo = np.array([-1.0, 0.5, 0.0, 2.0])  # ties with x (0.5), and lo > hi in the last column
    hi = np.array([[1.0, 1.0, 2.0, 1.5]])
    u = np.random.default_rng(0).standard_normal(x.shape)
    cases = [lambda m, a, l, h: m.clamp(a, l, h), lambda m, a, l, h: m.clamp(a, min=l),
             lambda m, a, l, h: m.clamp(a, max=h), lambda m, a, l, h: a.clamp(l, h)]
    for case in cases:
        (da, ta), (dl, tl), (dh, th) = _pair(torch, x), _pair(torch, lo), _pair(torch, hi)
        ours, theirs = case(_Clamp, da, dl, dh), case(torch, ta, tl, th)
        np.testing.assert_array_equal(ours.data, theirs.detach().numpy())
        (ours * Tensor(u)).sum().backward()
        (theirs * torch.tensor(u)).sum().backward()
        for d, t in ((da, ta), (dl, tl), (dh, th)):
            expected = t.grad.numpy() if t.grad is not None else np.zeros(t.shape)
            np.testing.assert_allclose(d.grad if d.grad is not None else np.zeros(d.shape), expected, rtol=1e-12)
    assert F.clip(Tensor(x), lo, hi).data.tolist() == np.clip(x, lo, hi).tolist()  # array bounds: numpy's values


class _Clamp:  # distnn's clamp under torch.clamp's name, so one lambda serves both
    clamp = staticmethod(F.clip)


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum_send_the_gradient_to_both_operands_where_one_is_nan(torch, op):
    # PyTorch's rule: each operand gets the gradient except where it lost, half on ties; a NaN loses
    # nowhere. distnn gave the NaN operand nothing and the other one all of it.
    a = np.array([np.nan, 1.0, 2.0, 3.0, np.nan])
    b = np.array([1.0, np.nan, 0.0, 3.0, np.nan])
    (da, ta), (db, tb) = _pair(torch, a), _pair(torch, b)
    ours, theirs = getattr(F, op)(da, db), getattr(torch, op)(ta, tb)
    np.testing.assert_array_equal(ours.data, theirs.detach().numpy())
    u = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    (ours * Tensor(u)).sum().backward()
    (theirs * torch.tensor(u)).sum().backward()
    np.testing.assert_array_equal(da.grad, ta.grad.numpy())
    np.testing.assert_array_equal(db.grad, tb.grad.numpy())


def test_empty_dim_reduces_everything_and_a_0d_tensor_takes_dim_0_or_minus_1(torch):
    # dim=() reduced nothing (var and std gave NaN arrays); sum(0) of a 0-d tensor was an AxisError,
    # max(0) an internal IndexError, mean(-1) refused
    x = np.arange(6.0).reshape(2, 3)
    for name, call in [("sum", lambda t, d: t.sum(d)), ("mean", lambda t, d: t.mean(d)),
                       ("var", lambda t, d: t.var(d)), ("std", lambda t, d: t.std(d)),
                       ("norm", lambda t, d: t.norm(dim=d))]:
        for empty in ((), []):
            d, t = _pair(torch, x)
            ours, theirs = call(d, empty), call(t, empty)
            assert ours.shape == tuple(theirs.shape) == (), name
            np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, err_msg=name)
            # the gradient of the whole reduction (torch's var/std backward with dim=() is inf: it counts 1 element)
            theirs = call(t, None) if name != "norm" else t.norm()
            ours.backward()
            theirs.backward()
            np.testing.assert_allclose(d.grad, t.grad.numpy(), rtol=1e-12, err_msg=name)
    np.testing.assert_array_equal(Tensor(x).sum(axis=()).data, x)  # numpy's keyword keeps numpy's meaning
    for dim in (0, -1):
        for name, call in [("sum", lambda t: t.sum(dim)), ("mean", lambda t: t.mean(dim)),
                           ("std", lambda t: t.std(dim, unbiased=False)), ("max", lambda t: t.max(dim)[0]),
                           ("min", lambda t: t.min(dim).values), ("sum_keep", lambda t: t.sum(dim, keepdim=True))]:
            d, t = _pair(torch, np.array(2.5))
            ours, theirs = call(d), call(t)
            assert ours.shape == tuple(theirs.shape), name
            np.testing.assert_allclose(ours.data, theirs.detach().numpy(), err_msg=name)
            ours.backward()
            theirs.backward()
            np.testing.assert_allclose(d.grad, t.grad.numpy(), err_msg=name)
        assert int(Tensor(np.array(2.5)).max(dim).indices.data) == 0
    with pytest.raises(ValueError, match="out of range"):
        Tensor(np.array(2.5)).sum(1)


def test_remainder_by_a_tensor_gives_the_divisor_its_gradient(torch):
    # y.grad was None: the quotient's product with y was a constant
    x = np.array([[5.0, -3.5, 7.25], [1.0, 2.0, -9.0]])
    y = np.array([2.0, 1.5, -3.0])  # broadcast over rows, a negative divisor too
    (dx, tx), (dy, ty) = _pair(torch, x), _pair(torch, y)
    ours, theirs = dx % dy, tx % ty
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12)
    u = np.arange(6.0).reshape(2, 3) + 1
    (ours * Tensor(u)).sum().backward()
    (theirs * torch.tensor(u)).sum().backward()
    np.testing.assert_allclose(dx.grad, tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(dy.grad, ty.grad.numpy(), rtol=1e-12)


def test_functional_ops_type_their_results_as_pytorch_and_the_operators_do(torch):
    # F.add(x, np.float64(2)), F.where(m, x, np.float64(0)), F.cat([float32, int64]), F.maximum(float32, int64)
    # and F.clamp with numpy float64 bounds computed in float64 (numpy's promotion), unlike PyTorch and x * 2.0
    x = np.array([0.5, -1.5, 2.0], np.float32)
    i = np.array([1, 0, 3], np.int64)
    m = np.array([True, False, True])
    d, t = _pair(torch, x)
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


def test_broadcast_to_and_expand_keep_a_dim_for_minus_1(torch):
    # F.broadcast_to / F.expand / Tensor.broadcast_to refused -1 (Tensor.expand took it)
    x = np.arange(3.0).reshape(3, 1)
    def functional_expand(m, t):
        return t.expand((2, 3, -1)) if m is torch else F.expand(t, (2, 3, -1))

    for call in (lambda m, t: m.broadcast_to(t, (2, -1, 4)), lambda m, t: t.broadcast_to((2, -1, 4)),
                 lambda m, t: t.expand(2, -1, 4), functional_expand):
        d, t = _pair(torch, x)
        ours, theirs = call(F, d), call(torch, t)
        np.testing.assert_array_equal(ours.data, theirs.detach().numpy())
        ours.sum().backward()
        theirs.sum().backward()
        np.testing.assert_array_equal(d.grad, t.grad.numpy())
    with pytest.raises(RuntimeError, match="-1\\) isn't allowed in a leading, non-existing dimension 0"):
        F.broadcast_to(Tensor(x), (-1, 3, 4))  # a new leading dim has no size to keep (PyTorch refuses it too)


def test_casts_to_integers_leave_the_graph_and_same_dtype_casts_return_the_tensor(torch):
    # x.to(int64) stayed in the graph (gradient through floor(x): 2x instead of x), and x.float() on a
    # float32 x was a new non-leaf copy (its .grad stayed None)
    values = np.array([1.5, 2.5], np.float32)
    d, t = _pair(torch, values)
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


def test_max_and_min_of_an_empty_batch_along_a_non_empty_dim_as_torch(torch):
    # found by tests/test_layer_fuzz.py: x.max(1), amax, Maxout and normalize(p=inf) of a (0, 4) batch raised
    # "max of an empty tensor"; PyTorch returns the empty result (it refuses only an empty reduced dim)
    d, t = _pair(torch, np.zeros((0, 4)))
    assert d.max(1)[0].shape == d.max(1)[1].shape == tuple(t.max(1).values.shape) == (0,)
    assert d.amin(1).shape == tuple(t.amin(1).shape) == (0,)
    assert F.normalize(d, p=float("inf"), dim=1).shape == (0, 4)
    assert nn.Maxout(2)(d).shape == (0, 2)
    d.amax(1).sum().backward()
    assert d.grad.shape == (0, 4)
    for call in (lambda x: x.max(0), lambda x: x.amax(0), lambda x: x.max(), lambda x: x.amin((0, 1))):
        with pytest.raises((RuntimeError, IndexError)) as theirs:  # (an empty reduced dim: refused alike)
            call(t)
        with pytest.raises(type(theirs.value), match=re.escape(str(theirs.value))):
            call(d)
