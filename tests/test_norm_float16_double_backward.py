"""Double backward of the normalizations with a float16 input (float32 or float16 parameters), against torch
2.13 (CPU): the first-order gradients built with ``create_graph=True`` and the second-order ones come back in
each input's dtype (float16 for the input and for the incoming gradient), as torch's, and their values are
float16-accurate against torch in float64 on the same values. distnn's graph backward recomputed the statistics
in float16: the digits eps is recovered from were lost (layer norm's gradient 4e-3 off), and the squares of
values near 300 overflowed to inf."""
import warnings

import numpy as np
import pytest

import distnn
import distnn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

R = np.random.default_rng(0)
X = R.standard_normal((4, 4, 3)) * 3 + 5
V = R.standard_normal((4, 4, 3))
W4, B4 = R.standard_normal(4) + 1, R.standard_normal(4)
W3, B3 = R.standard_normal(3) + 1, R.standard_normal(3)
OPS = ["layer_norm", "rms_norm", "group_norm", "batch_norm", "batch_norm (eval)", "instance_norm",
       "instance_norm (eval)"]


def _grads(lib, op, p_dtype, scale=1.0, in_float64=False):
    """The first-order gradients (create_graph) of ``op`` for (x, weight[, bias]) with incoming gradient v, then
    the gradients of the sum of their squares for (x, weight[, bias], v): numpy arrays (None when unused)."""
    def cast(a, dt):
        a = np.asarray(a, dt)  # (the values rounded to dt; in float64 on request: the exact answer)
        return a.astype(np.float64) if in_float64 else a

    def leaf(a, dt):
        return (torch.tensor if lib is torch else distnn.tensor)(cast(a, dt), requires_grad=True)

    def const(a):
        return (torch.tensor if lib is torch else distnn.tensor)(cast(a, p_dtype))

    fn = TF if lib is torch else F
    x, v = leaf(X * scale, "float16"), leaf(V, "float16")
    trailing = op in ("layer_norm", "rms_norm")
    w, b = (leaf(W3, p_dtype), leaf(B3, p_dtype)) if trailing else (leaf(W4, p_dtype), leaf(B4, p_dtype))
    stats = [const(np.full(4, 0.1 * scale)), const(np.full(4, 1.5 * scale * scale))]
    if op == "layer_norm":
        y = fn.layer_norm(x, (3,), w, b)
    elif op == "rms_norm":
        b = None
        y = fn.rms_norm(x, (3,), w)
    elif op == "group_norm":
        y = fn.group_norm(x, 2, w, b)
    elif op.startswith("batch_norm"):
        y = fn.batch_norm(x, *stats, w, b, training=op == "batch_norm")
    else:
        y = fn.instance_norm(x, *stats, w, b, use_input_stats=op == "instance_norm")
    grad = torch.autograd.grad if lib is torch else distnn.autograd.grad
    inputs = [x, w] + ([b] if b is not None else [])
    first = grad(y, inputs, grad_outputs=v, create_graph=True)
    second = grad(sum((g * g).sum() for g in first), inputs + [v], allow_unused=True)

    def arr(t):
        return None if t is None else t.detach().numpy() if lib is torch else np.asarray(t.data)
    return [arr(t) for t in first] + [arr(t) for t in second]


def _dtypes(arrays):
    return [None if a is None else a.dtype.name for a in arrays]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("p_dtype", ["float32", "float16"])
def test_first_and_second_order_gradients_have_torchs_dtypes(op, p_dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch's rms_norm: mixed dtypes take no fused kernel)
        theirs = _grads(torch, op, p_dtype)
    ours = _grads(distnn, op, p_dtype)
    assert _dtypes(ours) == _dtypes(theirs)
    assert ours[0].dtype == np.float16 and ours[-1].dtype == np.float16  # (the input's and v's)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("scale", [1.0, 300.0])
def test_float16_double_backward_is_float16_accurate(op, scale):
    """Each gradient within 1e-3 of its largest value (float16's resolution: 2^-11 = 4.9e-4 relative) of the
    float64 answer; values near 300 stay finite (their float16 squares would be inf)."""
    ours = _grads(distnn, op, "float32", scale)
    exact = _grads(torch, op, "float32", scale, in_float64=True)
    for i, (a, e) in enumerate(zip(ours, exact)):
        assert (a is None) == (e is None), i
        if a is None:
            continue
        assert np.isfinite(a).all(), (i, a)
        np.testing.assert_allclose(a.astype(np.float64), e, rtol=0, atol=1e-3 * np.abs(e).max() + 1e-6,
                                   err_msg=f"gradient {i}")
