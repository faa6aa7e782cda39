"""distnn vs PyTorch: forward values and gradients of every functional op and of random
expressions, in float64 (rtol 1e-5) and float32 (rtol 1e-4).

Tolerances are relative to the largest reference magnitude of each compared array
(``atol = rtol * max|ref|``), so elements that cancel to ~0 do not demand more
precision than the dtype has.
"""
import numpy as np
import pytest

import distnn.functional as F
from distnn import Tensor

RTOL = {np.float64: 1e-5, np.float32: 1e-4}
DTYPES = [np.float64, np.float32]


def assert_close(actual, expected, rtol, what, scale=0.0):
    """``scale``: a magnitude the values' rounding is relative to where it exceeds the reference's own (a
    result that cancels to ~0 from larger terms, as a singular matrix's determinant)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != reference {expected.shape}"
    # (the finite elements' scale: a NaN made atol NaN, every element then compared exactly; an inf, infinite)
    finite = np.abs(expected[np.isfinite(expected)])
    scale = max(float(finite.max()) if finite.size else 0.0, scale)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * max(scale, 1e-3), err_msg=what)


def compare(torch, d_fn, t_fn, arrays, dtype, seed=0):
    """Run ``d_fn`` on distnn tensors and ``t_fn`` on torch tensors; compare outputs and input grads."""
    rtol = RTOL[dtype]
    arrays = [np.asarray(a, dtype=dtype) for a in arrays]
    d_in = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    d_out, t_out = d_fn(*d_in), t_fn(*t_in)
    assert d_out.dtype == dtype, f"output dtype {d_out.dtype} != input dtype {np.dtype(dtype)}"
    assert_close(d_out.numpy(), t_out.detach().numpy(), rtol, "forward")
    u = np.random.default_rng(seed).standard_normal(t_out.shape).astype(dtype)
    (d_out * Tensor(u)).sum().backward()
    (t_out * torch.tensor(u)).sum().backward()
    for i, (d, t) in enumerate(zip(d_in, t_in)):
        tg = t.grad.numpy() if t.grad is not None else np.zeros(d.shape, dtype)
        dg = d.grad if d.grad is not None else np.zeros(d.shape, dtype)
        assert dg.dtype == dtype, f"grad {i} dtype {dg.dtype}"
        assert_close(dg, tg, rtol, f"gradient of input {i}")


R = np.random.default_rng(42)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)


def N(*args, **kwargs):
    """R.standard_normal looked up at each call: while a test runs, R is its own generator (DRAW_PER_TEST)."""
    return R.standard_normal(*args, **kwargs)


POS = R.uniform(0.5, 2.0, (3, 4))
LABELS = np.array([0, 3, 1, 1, 2, 3])
LABELS_IGN = np.array([0, 3, -100, 1, 2, 3])
CW = np.array([0.5, 2.0, 1.0, 0.25])
COND = R.random((3, 4)) > 0.5
IDX = np.array([2, 0, 2, 1])

# name: (inputs, distnn fn, torch fn taking the torch module first)
OPS = {
    # elementwise
    "add": ([N((3, 1)), N((1, 4))], F.add, lambda t, a, b: a + b),
    "sub": ([N((2, 3, 4)), N((4,))], F.sub, lambda t, a, b: a - b),
    "mul": ([N((3, 4)), N((3, 4))], F.mul, lambda t, a, b: a * b),
    "div": ([N((3, 4)), POS], F.div, lambda t, a, b: a / b),
    "pow": ([POS, N((4,))], F.pow, lambda t, a, b: a ** b),
    "pow_scalar": ([N((3, 4))], lambda a: a ** 3, lambda t, a: a ** 3),
    "neg": ([N((3, 4))], F.neg, lambda t, a: -a),
    "exp": ([N((3, 4))], F.exp, lambda t, a: a.exp()),
    "log": ([POS], F.log, lambda t, a: a.log()),
    "sqrt": ([POS], F.sqrt, lambda t, a: a.sqrt()),
    "abs": ([N((3, 4))], F.abs, lambda t, a: a.abs()),
    "clip": ([N((3, 4))], lambda a: F.clip(a, -0.5, 0.5), lambda t, a: t.clamp(a, -0.5, 0.5)),
    "maximum": ([N((3, 4)), N((4,))], F.maximum, lambda t, a, b: t.maximum(a, b)),
    "minimum": ([N((3, 1)), N((3, 4))], F.minimum, lambda t, a, b: t.minimum(a, b)),
    "where": ([N((3, 4)), N((1, 4))], lambda a, b: F.where(COND, a, b),
              lambda t, a, b: t.where(t.as_tensor(COND), a, b)),
    "matmul": ([N((2, 3, 4)), N((4, 5))], F.matmul, lambda t, a, b: a @ b),
    "matmul_batched": ([N((2, 1, 3, 4)), N((3, 4, 2))], F.matmul, lambda t, a, b: a @ b),
    "matmul_vec": ([N((4,)), N((2, 4, 3))], F.matmul, lambda t, a, b: a @ b),
    "matmul_T": ([N((5, 3)), N((4, 3))], lambda a, b: a @ b.T, lambda t, a, b: a @ b.T),
    "linear": ([N((5, 3)), N((4, 3)), N((4,))], F.linear, lambda t, x, w, b: t.nn.functional.linear(x, w, b)),
    "linear_3d_nobias": ([N((2, 5, 3)), N((4, 3))], F.linear, lambda t, x, w: t.nn.functional.linear(x, w)),
    # reductions
    "sum": ([N((2, 3, 4))], lambda a: F.sum(a, axis=(0, 2)), lambda t, a: a.sum(dim=(0, 2))),
    "sum_keepdims": ([N((2, 3, 4))], lambda a: a.sum(axis=1, keepdims=True), lambda t, a: a.sum(1, keepdim=True)),
    "mean": ([N((2, 3, 4))], lambda a: F.mean(a, axis=-1), lambda t, a: a.mean(-1)),
    "mean_all": ([N((2, 3, 4))], F.mean, lambda t, a: a.mean()),
    "max": ([N((2, 3, 4))], lambda a: F.max(a, axis=1), lambda t, a: t.amax(a, 1)),
    "max_all": ([N((2, 3, 4))], F.max, lambda t, a: a.max()),
    "min_keepdims": ([N((2, 3, 4))], lambda a: a.min(axis=(0, 2), keepdims=True),
                     lambda t, a: t.amin(a, (0, 2), keepdim=True)),
    "var": ([N((3, 5))], lambda a: F.var(a, axis=1), lambda t, a: t.var(a, 1, correction=0)),
    "var_ddof1": ([N((3, 5))], lambda a: a.var(axis=0, ddof=1, keepdims=True),
                  lambda t, a: t.var(a, 0, correction=1, keepdim=True)),
    # shapes
    "reshape": ([N((2, 3, 4))], lambda a: F.reshape(a, (4, -1)), lambda t, a: a.reshape(4, -1)),
    "transpose": ([N((2, 3, 4))], lambda a: F.transpose(a, (2, 0, 1)), lambda t, a: a.permute(2, 0, 1)),
    "transpose_swap": ([N((2, 3, 4))], lambda a: a.transpose(0, 2), lambda t, a: a.transpose(0, 2)),
    "broadcast_to": ([N((3, 1))], lambda a: F.broadcast_to(a, (2, 3, 4)), lambda t, a: a.expand(2, 3, 4)),
    "expand": ([N((1, 4))], lambda a: F.expand(a, (3, 4)), lambda t, a: a.expand(3, 4)),
    "squeeze": ([N((3, 1, 4))], lambda a: F.squeeze(a, 1), lambda t, a: a.squeeze(1)),
    "unsqueeze": ([N((3, 4))], lambda a: F.unsqueeze(a, 0), lambda t, a: a.unsqueeze(0)),
    "flatten": ([N((2, 3, 4))], lambda a: F.flatten(a, 1), lambda t, a: t.flatten(a, 1)),
    "getitem": ([N((3, 4))], lambda a: a[IDX, 1:], lambda t, a: a[t.as_tensor(IDX), 1:]),
    "concat": ([N((2, 3)), N((2, 5))], lambda a, b: F.concat([a, b, a], axis=1), lambda t, a, b: t.cat([a, b, a], 1)),
    "cat": ([N((2, 3)), N((1, 3))], lambda a, b: F.cat([a, b]), lambda t, a, b: t.cat([a, b])),
    "stack": ([N((2, 3)), N((2, 3))], lambda a, b: F.stack([a, b], axis=1), lambda t, a, b: t.stack([a, b], 1)),
    "split": ([N((3, 7))], lambda a: F.split(a, [2, 5], axis=1)[1] * F.split(a, [2, 5], axis=1)[2].sum(1, True),
              lambda t, a: t.split(a, [2, 3, 2], 1)[1] * t.split(a, [2, 3, 2], 1)[2].sum(1, keepdim=True)),
    "pad": ([N((2, 3))], lambda a: F.pad(a, ((1, 2), (0, 1)), value=0.5),
            lambda t, a: t.nn.functional.pad(a, (0, 1, 1, 2), value=0.5)),
    # activations
    "relu": ([N((3, 4))], F.relu, lambda t, a: t.relu(a)),
    "leaky_relu": ([N((3, 4))], lambda a: F.leaky_relu(a, 0.2), lambda t, a: t.nn.functional.leaky_relu(a, 0.2)),
    "elu": ([N((3, 4))], lambda a: F.elu(a, 1.5), lambda t, a: t.nn.functional.elu(a, 1.5)),
    "gelu": ([N((3, 4))], F.gelu, lambda t, a: t.nn.functional.gelu(a)),
    "gelu_tanh": ([N((3, 4))], lambda a: F.gelu(a, approximate="tanh"),
                  lambda t, a: t.nn.functional.gelu(a, approximate="tanh")),
    "tanh": ([N((3, 4))], F.tanh, lambda t, a: t.tanh(a)),
    "sigmoid": ([N((3, 4)) * 5], F.sigmoid, lambda t, a: t.sigmoid(a)),
    "softplus": ([N((3, 4)) * 5], lambda a: F.softplus(a, beta=2.0, threshold=4.0),
                 lambda t, a: t.nn.functional.softplus(a, beta=2.0, threshold=4.0)),
    "softmax": ([N((3, 4)) * 3], F.softmax, lambda t, a: t.softmax(a, -1)),
    "softmax_axis0": ([N((3, 4))], lambda a: F.softmax(a, axis=0), lambda t, a: t.softmax(a, 0)),
    "softmax_dim": ([N((2, 3, 4))], lambda a: a.softmax(dim=1), lambda t, a: a.softmax(dim=1)),
    "log_softmax_dim": ([N((2, 3, 4))], lambda a: F.log_softmax(a, dim=0), lambda t, a: a.log_softmax(dim=0)),
    "log_softmax": ([N((3, 4)) * 3], F.log_softmax, lambda t, a: t.log_softmax(a, -1)),
    "log_softmax_large": ([N((3, 4)) * 1000], F.log_softmax, lambda t, a: t.log_softmax(a, -1)),
    # losses
    "cross_entropy": ([N((6, 4))], lambda x: F.cross_entropy(x, LABELS),
                      lambda t, x: t.nn.functional.cross_entropy(x, t.as_tensor(LABELS))),
    "cross_entropy_sum": ([N((6, 4))], lambda x: F.cross_entropy(x, LABELS, reduction="sum"),
                          lambda t, x: t.nn.functional.cross_entropy(x, t.as_tensor(LABELS), reduction="sum")),
    "cross_entropy_none": ([N((6, 4))], lambda x: F.cross_entropy(x, LABELS, reduction="none"),
                           lambda t, x: t.nn.functional.cross_entropy(x, t.as_tensor(LABELS), reduction="none")),
    "cross_entropy_smoothing": ([N((6, 4))], lambda x: F.cross_entropy(x, LABELS, label_smoothing=0.1),
                                lambda t, x: t.nn.functional.cross_entropy(x, t.as_tensor(LABELS),
                                                                           label_smoothing=0.1)),
    "cross_entropy_weight_smooth_ignore": (
        [N((6, 4))], lambda x: F.cross_entropy(x, LABELS_IGN, weight=CW, label_smoothing=0.2),
        lambda t, x: t.nn.functional.cross_entropy(x, t.as_tensor(LABELS_IGN), weight=t.as_tensor(CW, dtype=x.dtype),
                                                   label_smoothing=0.2)),
    "cross_entropy_spatial": (
        [N((2, 4, 3))], lambda x: F.cross_entropy(x, LABELS.reshape(2, 3)),
        lambda t, x: t.nn.functional.cross_entropy(x, t.as_tensor(LABELS.reshape(2, 3)))),
    "cross_entropy_large_logits": ([N((6, 4)) * 1e3], lambda x: F.cross_entropy(x, LABELS),
                                   lambda t, x: t.nn.functional.cross_entropy(x, t.as_tensor(LABELS))),
    "nll_loss": ([N((6, 4))], lambda x: F.nll_loss(F.log_softmax(x), LABELS_IGN, weight=CW),
                 lambda t, x: t.nn.functional.nll_loss(t.log_softmax(x, -1), t.as_tensor(LABELS_IGN),
                                                       weight=t.as_tensor(CW, dtype=x.dtype))),
    "bce_with_logits": ([N((4, 3)) * 4, R.random((4, 3))], F.binary_cross_entropy_with_logits,
                        lambda t, x, y: t.nn.functional.binary_cross_entropy_with_logits(x, y)),
    "bce_with_logits_weights": (
        [N((4, 3)) * 40], lambda x: F.binary_cross_entropy_with_logits(
            x, np.eye(4, 3), weight=CW[:3], pos_weight=CW[1:], reduction="sum"),
        lambda t, x: t.nn.functional.binary_cross_entropy_with_logits(
            x, t.as_tensor(np.eye(4, 3), dtype=x.dtype), weight=t.as_tensor(CW[:3], dtype=x.dtype),
            pos_weight=t.as_tensor(CW[1:], dtype=x.dtype), reduction="sum")),
    "mse_loss": ([N((4, 3)), N((4, 3))], F.mse_loss, lambda t, a, b: t.nn.functional.mse_loss(a, b)),
    "l1_loss": ([N((4, 3)), N((4, 3))], lambda a, b: F.l1_loss(a, b, reduction="sum"),
                lambda t, a, b: t.nn.functional.l1_loss(a, b, reduction="sum")),
    "huber_loss": ([N((4, 3)) * 2, N((4, 3))], lambda a, b: F.huber_loss(a, b, delta=0.7),
                   lambda t, a, b: t.nn.functional.huber_loss(a, b, delta=0.7)),
    "multi_margin_loss": ([N((6, 4))], lambda x: F.multi_margin_loss(x, LABELS, p=2, margin=0.8, weight=CW),
                          lambda t, x: t.nn.functional.multi_margin_loss(
                              x, t.as_tensor(LABELS), p=2, margin=0.8, weight=t.as_tensor(CW, dtype=x.dtype))),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("op", list(OPS))
def test_functional_op_matches_torch(op, dtype, torch):
    arrays, d_fn, t_fn = OPS[op]
    compare(torch, d_fn, lambda *xs: t_fn(torch, *xs), arrays, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_dropout_matches_torch_given_the_mask(dtype, torch):
    """Inverted dropout: kept units scaled by 1/(1-p), the same mask in backward."""
    p, x = 0.3, N((50, 40))
    gen = np.random.default_rng(3)
    probe = F.dropout(Tensor(np.ones_like(x, dtype=dtype)), p, training=True, generator=np.random.default_rng(3))
    mask = probe.numpy()
    assert set(np.unique(mask)) <= {0.0, dtype(1 / (1 - p))}
    assert abs((mask == 0).mean() - p) < 0.05
    compare(torch, lambda a: F.dropout(a, p, training=True, generator=gen),
            lambda a: a * torch.tensor(mask), [x], dtype)
    y = Tensor(x.astype(dtype))
    assert F.dropout(y, p, training=False) is y


# ------------------------------------------------------------------ random expressions
def _random_expression(seed):
    """A random program over (3, 4)-broadcastable tensors, as a list of steps for both frameworks."""
    rng = np.random.default_rng(seed)
    unary = [
        ("tanh", lambda d: d.tanh(), lambda t, x: x.tanh()),
        ("sigmoid", lambda d: d.sigmoid(), lambda t, x: x.sigmoid()),
        ("relu", lambda d: d.relu(), lambda t, x: x.relu()),
        ("exp(tanh)", lambda d: d.tanh().exp(), lambda t, x: x.tanh().exp()),
        ("square", lambda d: d * d, lambda t, x: x * x),
        ("softplus", F.softplus, lambda t, x: t.nn.functional.softplus(x)),
        ("scale", lambda d: 0.5 * d - 1.0, lambda t, x: 0.5 * x - 1.0),
        ("sum0", lambda d: d.sum(axis=0, keepdims=True), lambda t, x: x.sum(0, keepdim=True)),
        ("mean1", lambda d: d.mean(axis=-1, keepdims=True), lambda t, x: x.mean(-1, keepdim=True)),
        ("softmax", lambda d: d.softmax(), lambda t, x: x.softmax(-1)),
        ("abs+1 log", lambda d: (d.abs() + 1.0).log(), lambda t, x: (x.abs() + 1.0).log()),
    ]
    binary = [
        ("+", lambda a, b: a + b, lambda t, a, b: a + b),
        ("-", lambda a, b: a - b, lambda t, a, b: a - b),
        ("*", lambda a, b: a * b, lambda t, a, b: a * b),
        ("/", lambda a, b: a / (b * b + 1.0), lambda t, a, b: a / (b * b + 1.0)),
        ("max", F.maximum, lambda t, a, b: t.maximum(a, b)),
    ]
    steps = []
    for _ in range(14):
        if rng.random() < 0.45:
            steps.append(("u", int(rng.integers(len(unary))), int(rng.integers(1 << 30))))
        else:
            steps.append(("b", int(rng.integers(len(binary))), int(rng.integers(1 << 30)), int(rng.integers(1 << 30))))
    return unary, binary, steps


def _evaluate(program, lib, torch, inputs):
    unary, binary, steps = program
    m = inputs[3]  # the (4, 4) leaf closes the program with a matmul; the rest broadcast to (3, 4)
    pool = [x for i, x in enumerate(inputs) if i != 3]
    for step in steps:
        if step[0] == "u":
            _, k, i = step
            x = pool[i % len(pool)]
            pool.append(unary[k][1](x) if lib == "distnn" else unary[k][2](torch, x))
        else:
            _, k, i, j = step
            a, b = pool[i % len(pool)], pool[j % len(pool)]
            pool.append(binary[k][1](a, b) if lib == "distnn" else binary[k][2](torch, a, b))
    return (pool[-1] + pool[0]) @ m + pool[-2]  # pool[0] is (3, 4): the sum broadcasts to it


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("seed", range(12))
def test_random_expressions_match_torch(seed, dtype, torch):
    program = _random_expression(seed)
    rng = np.random.default_rng(seed + 100)
    arrays = [rng.standard_normal(s) for s in [(3, 4), (4,), (3, 1), (4, 4), (1, 4)]]
    compare(torch, lambda *xs: _evaluate(program, "distnn", torch, xs),
            lambda *xs: _evaluate(program, "torch", torch, xs), arrays, dtype, seed=seed)


def test_mlp_training_step_matches_torch(torch):
    """A two-layer MLP step with cross-entropy, float32, parameters compared after SGD."""
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((16, 8)).astype(np.float32), rng.integers(0, 3, 16)
    init = [rng.standard_normal(s).astype(np.float32) * 0.3 for s in [(6, 8), (6,), (3, 6), (3,)]]
    dp = [Tensor(a.copy(), requires_grad=True) for a in init]
    tp = [torch.tensor(a, requires_grad=True) for a in init]
    for _ in range(3):
        loss_d = F.cross_entropy(F.linear(F.relu(F.linear(Tensor(x), dp[0], dp[1])), dp[2], dp[3]), y)
        tf = torch.nn.functional
        loss_t = tf.cross_entropy(tf.linear(tf.relu(tf.linear(torch.tensor(x), tp[0], tp[1])), tp[2], tp[3]),
                                  torch.as_tensor(y))
        assert_close(loss_d.item(), loss_t.item(), 1e-5, "loss")
        loss_d.backward()
        loss_t.backward()
        for d, t in zip(dp, tp):
            assert_close(d.grad, t.grad.numpy(), 1e-4, "grad")
            d.data -= 0.1 * d.grad
            d.grad = None
            with torch.no_grad():
                t -= 0.1 * t.grad
            t.grad = None
