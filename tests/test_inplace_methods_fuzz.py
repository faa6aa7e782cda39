"""Seeded fuzz of the in-place Tensor methods against torch (the oracle): random method, shape (0-d to 3-d),
dtype (float32, float64, int64, int32, bool) and operand (a number, or a tensor that broadcasts to the
tensor's shape, of a random dtype). Where torch refuses (a result that needs promotion), distnn must refuse
too; where torch computes, the values and the dtype must match, and for float64 the gradient of a chain
``y = x * 1; y.<op>_(...); (y * w).sum().backward()`` too. Each failure names the case's seed.

``DISTNN_INPLACE_FUZZ_CASES`` sets the number of cases (default 300), ``DISTNN_INPLACE_FUZZ_START`` the first seed.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from distnn import Tensor  # noqa: E402

CASES = int(os.environ.get("DISTNN_INPLACE_FUZZ_CASES", "300"))
START = int(os.environ.get("DISTNN_INPLACE_FUZZ_START", "0"))
DTYPES = ("float32", "float64", "int64", "int32", "bool")
UNARY = ("neg_", "abs_", "sign_", "sgn_", "sqrt_", "rsqrt_", "square_", "exp_", "exp2_", "expm1_", "log_", "log2_",
         "log10_", "log1p_", "sin_", "cos_", "tan_", "asin_", "acos_", "atan_", "sinh_", "cosh_", "tanh_", "asinh_",
         "atanh_", "sigmoid_", "relu_", "logit_", "erf_", "erfc_", "erfinv_", "reciprocal_", "ceil_", "floor_",
         "round_", "trunc_", "frac_", "deg2rad_", "rad2deg_", "sinc_", "nan_to_num_", "logical_not_",
         "bitwise_not_")
BINARY = ("add_", "sub_", "mul_", "div_", "true_divide_", "floor_divide_", "pow_", "atan2_", "hypot_", "copysign_",
          "fmod_", "remainder_", "xlogy_", "eq_", "ne_", "lt_", "le_", "gt_", "ge_", "logical_and_", "logical_or_",
          "logical_xor_", "bitwise_and_", "bitwise_or_", "bitwise_xor_", "clamp_min_", "clamp_max_")
# torch 2.13 has no derivative for these in place (distnn gives the out-of-place op's): the gradient is not compared
NO_TORCH_GRAD = {"asinh_", "atanh_", "floor_divide_"}


def _array(rng, shape, dtype):
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.startswith("int"):
        return rng.integers(1, 6, shape).astype(dtype)
    return rng.uniform(0.1, 0.9, shape).astype(dtype)  # (inside every op's domain: log, asin, logit, ...)


def _case(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in rng.integers(1, 5, int(rng.integers(0, 4))))
    dtype = DTYPES[int(rng.integers(len(DTYPES)))]
    x = _array(rng, shape, dtype)
    if rng.random() < 0.5:
        return UNARY[int(rng.integers(len(UNARY)))], x, ()
    name = BINARY[int(rng.integers(len(BINARY)))]
    if rng.random() < 0.4:
        other = [1.5, 2, True, 0.3][int(rng.integers(4))]
    else:
        tail = shape[len(shape) - int(rng.integers(0, len(shape) + 1)):]
        other = _array(rng, tuple(1 if rng.random() < 0.3 else s for s in tail), DTYPES[int(rng.integers(5))])
    return name, x, (other,)


def _run(lib, name, x, args, grad):
    def T(a, g=False):
        return torch.tensor(a, requires_grad=g) if lib == "torch" else Tensor(np.array(a), requires_grad=g)

    leaf = T(x, grad)
    y = leaf * 1 if grad else leaf
    getattr(y, name)(*[T(a) if isinstance(a, np.ndarray) else a for a in args])
    values = y.detach().numpy() if lib == "torch" else np.asarray(y.data)
    if not grad or name in NO_TORCH_GRAD:
        return values, None
    w = np.linspace(-1, 1, values.size).reshape(values.shape)
    try:
        (y * T(w)).sum().backward()
    except RuntimeError:
        if lib == "torch":  # (torch's pow backward with a bool exponent computes ``exponent - 1`` and refuses)
            return values, None
        raise
    return values, leaf.grad.numpy(force=True) if lib == "torch" else np.asarray(leaf.grad)


@pytest.mark.parametrize("seed", range(START, START + CASES))
def test_inplace_fuzz_against_torch(seed):
    name, x, args = _case(seed)
    grad = x.dtype == np.float64
    try:
        tv, tg = _run("torch", name, x, args, grad)
    except NotImplementedError:
        pytest.skip(f"torch has no kernel for {name} on {x.dtype}")
    except TypeError:
        pytest.skip(f"torch's {name} takes no number")  # (e.g. atan2_(1.5): torch's signature wants a tensor)
    except RuntimeError as e:
        with pytest.raises((RuntimeError, TypeError)) as refused:
            _run("distnn", name, x, args, grad)
        # (the promotion refusal in torch's words; distnn's bitwise ops refuse a float operand before the cast)
        if "can't be cast to the desired output type" in str(e) and not isinstance(refused.value, NotImplementedError):
            assert "can't be cast to the desired output type" in str(refused.value), (seed, name, refused.value)
        return
    dv, dg = _run("distnn", name, x, args, grad)
    assert dv.dtype == tv.dtype, (seed, name)
    tol = 1e-5 if x.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(dv, tv, rtol=tol, atol=tol, err_msg=f"seed {seed}: {name} {x.dtype} {args}")
    if tg is not None and dg is not None:
        np.testing.assert_allclose(dg, tg, rtol=1e-10, atol=1e-12, err_msg=f"seed {seed}: gradient of {name}")
