"""The normalizations' dtypes against torch 2.13 (CPU): a float16 input with float32 (or float16, or no)
parameters is normalized in float32 and comes back float16, its gradient float16 and the parameters' in their
own dtype; rms_norm returns its input's dtype whatever its weight's; integer inputs are refused with torch's
NotImplementedError (numpy computed all of these in float32 or float64)."""
import warnings

import numpy as np
import pytest

import distnn
import distnn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

R = np.random.default_rng(0)
X = R.standard_normal((4, 4, 3))
W4, B4 = R.standard_normal(4) + 1, R.standard_normal(4)
W3, B3 = R.standard_normal(3) + 1, R.standard_normal(3)
GY = np.linspace(-1, 1, X.size).reshape(X.shape)


def _run(lib, op, x_dtype, p_dtype, affine=True, in_float64=False):
    """op's output, running statistics and gradients (input's, then parameters') as numpy arrays; with
    ``in_float64``, computed in float64 from the same (rounded) values: the exact answer to compare with."""
    def leaf(a, dt):
        a = np.asarray(a, dt).astype(np.float64 if in_float64 else dt)
        return torch.tensor(a, requires_grad=True) if lib is torch else distnn.tensor(a, requires_grad=True)

    def const(a):  # (the running statistics: the parameters' dtype)
        a = np.array(a, p_dtype).astype(np.float64 if in_float64 else p_dtype)
        return torch.tensor(a) if lib is torch else distnn.tensor(a)

    fn = TF if lib is torch else F
    x = leaf(X, x_dtype)
    trailing = op in ("layer_norm", "rms_norm")  # (their parameters are over the last dimension, the others' C)
    params = [leaf(W3, p_dtype), leaf(B3, p_dtype)] if trailing else [leaf(W4, p_dtype), leaf(B4, p_dtype)]
    params = params if affine else [None, None]
    stats = [const(np.full(4, 0.1)), const(np.full(4, 1.5))]
    if op == "layer_norm":
        y = fn.layer_norm(x, (3,), *params)
    elif op == "rms_norm":
        params = params[:1]
        y = fn.rms_norm(x, (3,), params[0] if affine else None)
    elif op == "group_norm":
        y = fn.group_norm(x, 2, *params)
    elif op.startswith("batch_norm"):
        y = fn.batch_norm(x, *stats, *params, training=op == "batch_norm")
    else:
        y = fn.instance_norm(x, *stats, *params, use_input_stats=op == "instance_norm")
    gy = GY.astype(x_dtype).astype(np.float64 if in_float64 else x_dtype)
    y.backward(torch.tensor(gy) if lib is torch else distnn.tensor(gy))

    def arr(t):
        return t.detach().numpy() if lib is torch else np.asarray(t.data)
    return [arr(y)] + [arr(s) for s in stats] + [arr(x.grad)] + [arr(p.grad) for p in params if p is not None]


OPS = ["layer_norm", "rms_norm", "group_norm", "batch_norm", "batch_norm (eval)", "instance_norm",
       "instance_norm (eval)"]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("p_dtype,affine", [("float32", True), ("float16", True), ("float32", False)])
def test_a_float16_input_is_normalized_in_float32_and_comes_back_float16(op, p_dtype, affine):
    theirs = _run(torch, op, "float16", p_dtype, affine)
    ours = _run(distnn, op, "float16", p_dtype, affine)
    assert [a.dtype for a in ours] == [a.dtype for a in theirs]
    assert ours[0].dtype == np.float16 and ours[3].dtype == np.float16
    # the values against torch's in float64 from the same values (torch's own all-float16 instance norm loses
    # 0.005 on the input's gradient of a 3-value instance; distnn's float32 arithmetic stays within float16's)
    exact = _run(torch, op, "float16", p_dtype, affine, in_float64=True)
    for a, b in zip(ours, exact):
        np.testing.assert_allclose(a.astype(np.float64), b, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("x_dtype,w_dtype", [("float32", "float64"), ("float64", "float32"), ("float16", "float32"),
                                             ("float16", "float64"), ("float32", "float16")])
def test_rms_norm_returns_its_inputs_dtype_whatever_its_weights(x_dtype, w_dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch's note that a mixed pair cannot take its fused kernel)
        theirs = _run(torch, "rms_norm", x_dtype, w_dtype)
    ours = _run(distnn, "rms_norm", x_dtype, w_dtype)
    assert [a.dtype for a in ours] == [a.dtype for a in theirs]
    assert ours[0].dtype == np.dtype(x_dtype) and ours[-1].dtype == np.dtype(w_dtype)
    tol = 4e-3 if "float16" in (x_dtype, w_dtype) else 1e-5
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), rtol=tol, atol=tol)


def test_rms_norm_module_with_float64_weight_keeps_a_float32_input():
    m = distnn.nn.RMSNorm(3).double()
    x = distnn.tensor(X.astype(np.float32))
    assert m(x).dtype == np.float32


REFUSED = {  # call(lib, functional, make(dtype, *shape)) with an integer input: torch's kernel names
    "layer_norm": (lambda F_, t: F_.layer_norm(t("int64", 2, 4, 3), (3,)), "\"LayerNormKernelImpl\" not implemented "
                                                                          "for 'Long'"),
    "layer_norm: int weight": (lambda F_, t: F_.layer_norm(t("int32", 2, 4, 3), (3,), t("int32", 3)),
                               "\"LayerNormKernelImpl\" not implemented for 'Int'"),
    "layer_norm: bool": (lambda F_, t: F_.layer_norm(t("bool", 2, 4, 3), (3,)),
                         "\"LayerNormKernelImpl\" not implemented for 'Bool'"),
    "rms_norm": (lambda F_, t: F_.rms_norm(t("int64", 2, 4, 3), (3,)), "\"rms_norm\" not implemented for 'Long'"),
    "rms_norm: float weight": (lambda F_, t: F_.rms_norm(t("int64", 2, 4, 3), (3,), t("float32", 3)),
                               "\"rms_norm\" not implemented for 'Long'"),
    "group_norm": (lambda F_, t: F_.group_norm(t("int64", 2, 4, 3), 2), "\"GroupNormKernelImpl\" not implemented "
                                                                        "for 'Long'"),
    "batch_norm": (lambda F_, t: F_.batch_norm(t("int64", 2, 4, 3), None, None, training=True),
                   "\"batch_norm\" not implemented for 'Long'"),
    "batch_norm: eval": (lambda F_, t: F_.batch_norm(t("int64", 2, 4, 3), t("int64", 4), t("int64", 4)),
                         "\"batch_norm\" not implemented for 'Long'"),
    "instance_norm": (lambda F_, t: F_.instance_norm(t("int64", 2, 4, 3)), "\"batch_norm\" not implemented for "
                                                                           "'Long'"),
    # (with float parameters the mixed-dtype refusal comes first, there as here)
    "layer_norm: float weight": (lambda F_, t: F_.layer_norm(t("int64", 2, 4, 3), (3,), t("float32", 3)),
                                 "mixed dtype (CPU): all inputs must share same datatype"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_an_integer_input_is_refused_as_torch(name):
    call, gist = REFUSED[name]

    def run(lib):
        def make(dtype, *shape):
            a = np.ones(shape, dtype)
            return torch.from_numpy(a) if lib is torch else distnn.tensor(a)
        with pytest.raises(Exception) as caught:
            call(TF if lib is torch else F, make)
        return caught.value
    theirs, ours = run(torch), run(distnn)
    assert type(theirs).__name__ in {c.__name__ for c in type(ours).__mro__}, (ours, theirs)
    assert gist in str(theirs) and gist in str(ours), (str(ours), str(theirs))
