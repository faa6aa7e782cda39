"""Numerical gradient checks (distnn.testing.check_grad, float64) for every op.

Each case is (name, fn, input shapes or arrays). Shapes cover broadcasting
((3,1)+(1,4), (2,3,4)*(4,)), scalars, and keepdims on and off for reductions.
"""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn.testing import check_grad


def _pos(shape, rng):
    """Positive inputs, away from 0 (log, sqrt, division, pow)."""
    return rng.uniform(0.5, 2.0, shape)


def _away_from_zero(shape, rng):
    """Values with |x| >= 0.1 so kinks (abs, relu) stay out of the finite-difference step."""
    x = rng.uniform(0.1, 2.0, shape)
    return x * rng.choice([-1.0, 1.0], shape)


def _distinct(shape, rng):
    """A permutation of spread-out values: no ties for max/min."""
    n = int(np.prod(shape)) if shape else 1
    return (rng.permutation(n) * 0.37 - n * 0.1).reshape(shape)


BROADCAST_SHAPES = [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((4,), (2, 3, 4)), ((), (3,)), ((2, 1, 4), (3, 1))]

BINARY = {
    "add": (lambda a, b: a + b, np.random.Generator.standard_normal),
    "sub": (lambda a, b: a - b, np.random.Generator.standard_normal),
    "mul": (lambda a, b: a * b, np.random.Generator.standard_normal),
    "div": (lambda a, b: a / b, _pos),
    "pow": (lambda a, b: a ** b, _pos),
    "maximum": (F.maximum, np.random.Generator.standard_normal),
    "minimum": (F.minimum, np.random.Generator.standard_normal),
}


def _draw(maker, shape, rng):
    if maker is np.random.Generator.standard_normal:
        return rng.standard_normal(shape)
    return maker(shape, rng)


@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("op", list(BINARY))
def test_binary_broadcasting(op, shapes, rng):
    fn, maker = BINARY[op]
    a, b = (_draw(maker, s, rng) for s in shapes)
    check_grad(fn, a, b)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow"])
def test_binary_with_python_scalar(op, rng):
    fn = BINARY[op][0]
    x = _pos((3, 4), rng)
    check_grad(lambda t: fn(t, 1.7), x)
    check_grad(lambda t: fn(1.3, t), x)


MATMUL_SHAPES = [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (4, 5)),
                 ((3, 4), (4,)), ((4,), (4,)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,))]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul(sa, sb, rng):
    check_grad(lambda a, b: a @ b, rng.standard_normal(sa), rng.standard_normal(sb))


@pytest.mark.parametrize("ta,tb", [(True, False), (False, True), (True, True)])
def test_matmul_transposed_operands(ta, tb, rng):
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((5, 4))
    check_grad(lambda x, y: (x.T if ta else x.reshape(3, 4)) @ (y.T if tb else y.reshape(4, 5)), a, b)


@pytest.mark.parametrize("shape_x", [(5, 3), (2, 5, 3), (3,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(shape_x, bias, rng):
    x, w, b = rng.standard_normal(shape_x), rng.standard_normal((4, 3)), rng.standard_normal(4)
    if bias:
        check_grad(F.linear, x, w, b)
    else:
        check_grad(lambda x, w: F.linear(x, w), x, w)


UNARY = {
    "neg": (lambda x: -x, np.random.Generator.standard_normal),
    "exp": (F.exp, np.random.Generator.standard_normal),
    "log": (F.log, _pos),
    "sqrt": (F.sqrt, _pos),
    "abs": (F.abs, _away_from_zero),
    "clip": (lambda x: F.clip(x, -0.5, 0.7), _away_from_zero),
    "clip_lo_only": (lambda x: x.clip(min=0.3), _away_from_zero),
    "pow_const": (lambda x: x ** 3, np.random.Generator.standard_normal),
    "rpow": (lambda x: 2.0 ** x, np.random.Generator.standard_normal),
    "relu": (F.relu, _away_from_zero),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), _away_from_zero),
    "elu": (lambda x: F.elu(x, alpha=1.3), _away_from_zero),
    "gelu": (F.gelu, np.random.Generator.standard_normal),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), np.random.Generator.standard_normal),
    "tanh": (F.tanh, np.random.Generator.standard_normal),
    "sigmoid": (F.sigmoid, np.random.Generator.standard_normal),
    "softplus": (F.softplus, np.random.Generator.standard_normal),
    "softplus_beta_threshold": (lambda x: F.softplus(4 * x, beta=2.0, threshold=3.0), _away_from_zero),
    "softmax_last": (lambda x: F.softmax(x, dim=-1), np.random.Generator.standard_normal),
    "softmax_axis0": (lambda x: F.softmax(x, axis=0), np.random.Generator.standard_normal),
    "log_softmax_last": (lambda x: F.log_softmax(x, dim=-1), np.random.Generator.standard_normal),
    "log_softmax_axis0": (lambda x: F.log_softmax(x, axis=0), np.random.Generator.standard_normal),
    "dropout": (lambda x: F.dropout(x, 0.4, training=True, generator=np.random.default_rng(7)),
                np.random.Generator.standard_normal),
    "dropout_eval": (lambda x: F.dropout(x, 0.4, training=False), np.random.Generator.standard_normal),
}


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4)])
@pytest.mark.parametrize("op", list(UNARY))
def test_unary(op, shape, rng):
    fn, maker = UNARY[op]
    check_grad(fn, _draw(maker, shape, rng))


def test_where(rng):
    cond = rng.random((3, 4)) > 0.5
    check_grad(lambda a, b: F.where(cond, a, b), rng.standard_normal((3, 4)), rng.standard_normal((1, 4)))
    check_grad(lambda a: F.where(cond, a, 0.0), rng.standard_normal((3, 1)))


REDUCE_AXES = [None, 0, 1, -1, (0, 2)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", REDUCE_AXES, ids=str)
@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "var"])
def test_reductions(op, axis, keepdims, rng):
    x = _distinct((2, 3, 4), rng)
    check_grad(lambda t: getattr(t, op)(axis=axis, keepdims=keepdims), x)


def test_var_ddof_and_0d(rng):
    check_grad(lambda t: t.var(axis=1, ddof=1), rng.standard_normal((3, 5)))
    check_grad(lambda t: F.var(t, ddof=1), rng.standard_normal(6))
    check_grad(lambda t: t.sum(), rng.standard_normal(()))


def test_max_ties_share_gradient():
    x = distnn.Tensor(np.array([1.0, 3.0, 3.0, 2.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5, 0.0])


SHAPE_OPS = {
    "reshape": ((2, 3, 4), lambda x: x.reshape(4, 6)),
    "reshape_-1": ((2, 3, 4), lambda x: x.reshape((-1, 2))),
    "view": ((2, 3, 4), lambda x: x.view(6, 4) * 2),
    "transpose_swap": ((2, 3, 4), lambda x: x.transpose(0, 2)),
    "transpose_perm": ((2, 3, 4), lambda x: F.transpose(x, (1, 2, 0))),
    "permute": ((2, 3, 4), lambda x: x.permute(2, 0, 1)),
    "T": ((3, 4), lambda x: x.T),
    "expand": ((3, 1), lambda x: x.expand(2, 3, 4)),
    "expand_-1": ((3, 1), lambda x: x.expand(-1, 5)),
    "broadcast_to": ((1, 4), lambda x: F.broadcast_to(x, (2, 3, 4))),
    "squeeze": ((3, 1, 4, 1), lambda x: x.squeeze()),
    "squeeze_axis": ((3, 1, 4, 1), lambda x: x.squeeze(1)),
    "unsqueeze": ((3, 4), lambda x: x.unsqueeze(1)),
    "flatten": ((2, 3, 4), lambda x: x.flatten()),
    "flatten_1": ((2, 3, 4), lambda x: x.flatten(1)),
    "getitem_slice": ((4, 5), lambda x: x[1:3, ::2]),
    "getitem_int": ((4, 5), lambda x: x[2]),
    "getitem_neg_step": ((4, 5), lambda x: x[::-1, 1]),
    "getitem_none_ellipsis": ((2, 3, 4), lambda x: x[..., None, 1:]),
    "getitem_int_array_repeats": ((5, 3), lambda x: x[np.array([0, 2, 2, 4, 0])]),
    "getitem_pairs": ((4, 5), lambda x: x[np.array([0, 1, 1, 3]), np.array([4, 0, 0, 2])]),
    "getitem_list": ((4, 5), lambda x: x[[3, 3, 1]]),
    "getitem_bool": ((4, 5), lambda x: x[np.arange(20).reshape(4, 5) % 3 == 0]),
    "getitem_mixed": ((3, 4, 5), lambda x: x[1:, np.array([0, 3, 0])]),
    "getitem_tensor_index": ((5, 3), lambda x: x[distnn.Tensor(np.array([4, 1, 4]))]),
    "pad": ((2, 3), lambda x: F.pad(x, ((1, 2), (0, 1)), value=0.5)),
    "pad_int": ((2, 3), lambda x: F.pad(x, 1)),
    "split_sections": ((6, 4), lambda x: F.split(x, 3, axis=0)[1] * F.split(x, 3, axis=0)[2]),
    "split_points": ((3, 7), lambda x: F.split(x, [2, 5], axis=1)[2].sum(axis=1) + F.split(x, [2, 5], axis=1)[0][:, 0]),
}


@pytest.mark.parametrize("op", list(SHAPE_OPS))
def test_shape_ops(op, rng):
    shape, fn = SHAPE_OPS[op]
    check_grad(fn, rng.standard_normal(shape))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat_stack(axis, rng):
    a, b, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    check_grad(lambda x, y, z: F.concat([x, y, z], axis=axis), a, b, c)
    check_grad(lambda x, y, z: F.stack([x, y, z], axis=axis), a, b, c)
    check_grad(lambda x, y: F.cat([x, y * 2, x], axis=axis), a, b)


def test_concat_unequal_sizes(rng):
    check_grad(lambda x, y: F.concat([x, y], axis=1), rng.standard_normal((2, 3)), rng.standard_normal((2, 5)))


# ------------------------------------------------------------------ losses
def _labels(rng, shape, C):
    return rng.integers(0, C, shape)


CE_CASES = {
    "mean": dict(),
    "sum": dict(reduction="sum"),
    "none": dict(reduction="none"),
    "smoothing": dict(label_smoothing=0.2),
    "weight": dict(weight=np.array([0.5, 2.0, 1.0, 0.1])),
    "weight_smoothing_sum": dict(weight=np.array([0.5, 2.0, 1.0, 0.1]), label_smoothing=0.3, reduction="sum"),
    "ignore_index": dict(ignore_index=2),
}


@pytest.mark.parametrize("case", list(CE_CASES))
def test_cross_entropy(case, rng):
    kw = CE_CASES[case]
    x, t = rng.standard_normal((6, 4)), _labels(rng, 6, 4)
    t[1] = 2  # so ignore_index has something to ignore
    check_grad(lambda z: F.cross_entropy(z, t, **kw), x)


def test_cross_entropy_spatial_and_1d(rng):
    x, t = rng.standard_normal((2, 4, 3, 2)), _labels(rng, (2, 3, 2), 4)
    check_grad(lambda z: F.cross_entropy(z, t, label_smoothing=0.1), x)
    check_grad(lambda z: F.cross_entropy(z, np.array(3)), rng.standard_normal(5))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss(reduction, rng):
    x, t = rng.standard_normal((5, 3)), _labels(rng, 5, 3)
    check_grad(lambda z: F.nll_loss(F.log_softmax(z), t, reduction=reduction), x)


@pytest.mark.parametrize("kw", [dict(), dict(reduction="sum"), dict(reduction="none"),
                                dict(weight=np.array([0.2, 1.0, 3.0])), dict(pos_weight=np.array([2.0, 0.5, 1.0]))],
                         ids=["mean", "sum", "none", "weight", "pos_weight"])
def test_bce_with_logits(kw, rng):
    x, y = rng.standard_normal((4, 3)) * 3, rng.random((4, 3))
    check_grad(lambda z: F.binary_cross_entropy_with_logits(z, y, **kw), x)
    check_grad(lambda z, t: F.binary_cross_entropy_with_logits(z, t, **kw), x, y)  # target gradient too


@pytest.mark.parametrize("kw", [dict(), dict(reduction="sum"), dict(reduction="none"),
                                dict(weight=np.array([0.2, 1.0, 3.0]))], ids=["mean", "sum", "none", "weight"])
def test_bce_on_probabilities(kw, rng):
    p, y = rng.uniform(0.1, 0.9, (4, 3)), rng.random((4, 3))
    check_grad(lambda z: F.binary_cross_entropy(z, y, **kw), p)
    check_grad(lambda z, t: F.binary_cross_entropy(z, t, **kw), p, y)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("loss", ["mse_loss", "l1_loss", "huber_loss"])
def test_regression_losses(loss, reduction, rng):
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    check_grad(lambda a, b: getattr(F, loss)(a, b, reduction=reduction), x, y)


@pytest.mark.parametrize("p", [1, 2])
def test_multi_margin_loss(p, rng):
    x, t = rng.standard_normal((5, 4)), _labels(rng, 5, 4)
    check_grad(lambda z: F.multi_margin_loss(z, t, p=p, margin=0.7), x)


def test_check_grad_catches_a_wrong_backward(rng):
    """The checker itself must be able to fail: a Function with a deliberately wrong gradient."""

    class BadSquare(distnn.Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, g):
            return (g * self.x,)  # should be 2 * x

    with pytest.raises(AssertionError, match="gradient check failed"):
        check_grad(lambda t: BadSquare.apply(t), rng.standard_normal((3, 2)))


def test_check_grad_names_the_wrong_input(rng):
    class BadSecond(distnn.Function):
        def forward(self, a, b):
            self.a, self.b = a, b
            return a * b

        def backward(self, g):
            return g * self.b, 2 * g * self.a  # the second is wrong

    with pytest.raises(AssertionError, match=r"wrong: input 1 \(shape \(3,\)\)"):
        check_grad(lambda x, y: BadSecond.apply(x, y), rng.standard_normal(3), rng.standard_normal(3))
