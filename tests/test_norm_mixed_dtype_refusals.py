"""The normalizations' mixed-dtype rules against torch 2.13's CPU kernels, over every combination of float16,
float32, float64 (or none) for the input, weight, bias and running statistics, training and eval: the same
refusals (RuntimeError, message up to distnn's parenthetical hint) or the same result (dtype, values, updated
running statistics). torch's rules: when the first of weight, bias, running_mean, running_var given differs
from the input ("mixed"), all must be float32 and the input float16; otherwise each must be the input's dtype
("expected scalar type Half but found Float", the running statistics checked first in training, last in eval).
Instance norm first casts its running statistics to the weight's dtype (the input's without one) when the
running mean has another. distnn refused float32 statistics with a float16 weight and input under the mixed
message, float64 with float16 parameters as "all inputs must share same datatype", and any instance-norm
statistics of another dtype than the input's."""
import itertools
import warnings

import numpy as np
import pytest

import distnn
import distnn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

DTYPES = [None, "float16", "float32", "float64"]
X = np.random.default_rng(0).random((4, 4, 3)) * 2 + 1


def _run(lib, op, x_dtype, w_dtype, b_dtype, stats_dtypes, training):
    """("ok", output, running statistics after) or (error type, message before distnn's hint)."""
    def make(dtype, n, value):
        if dtype is None:
            return None
        a = np.full(n, value, dtype)
        return torch.from_numpy(a) if lib is torch else distnn.tensor(a)

    fn = TF if lib is torch else F
    x = X.astype(x_dtype)
    x = torch.from_numpy(x) if lib is torch else distnn.tensor(x)
    n = 3 if op == "layer_norm" else 4
    w, b = make(w_dtype, n, 1.5), make(b_dtype, n, 0.25)
    m, v = make(stats_dtypes[0], 4, 0.1), make(stats_dtypes[1], 4, 2.0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if op == "batch_norm":
                y = fn.batch_norm(x, m, v, w, b, training=training)
            elif op == "instance_norm":
                y = fn.instance_norm(x, m, v, w, b, use_input_stats=training)
            elif op == "layer_norm":
                y = fn.layer_norm(x, (3,), w, b)
            else:
                y = fn.group_norm(x, 2, w, b)
    except Exception as e:
        return type(e).__name__, str(e).split(" (")[0]

    def arr(t):
        return t.detach().numpy() if lib is torch else t.numpy()
    return "ok", arr(y), [arr(s) for s in (m, v) if s is not None]


def _cases(op):
    stats = [(None, None)] + list(itertools.product(DTYPES[1:], DTYPES[1:])) if "batch" in op or "inst" in op \
        else [(None, None)]
    for x_dtype, w_dtype, b_dtype, s in itertools.product(DTYPES[1:], DTYPES, DTYPES, stats):
        for training in (True, False) if s[0] is not None else (True,):
            mode = "train" if training else "eval"
            yield pytest.param(op, x_dtype, w_dtype, b_dtype, s, training,
                               id=f"{op}-x{x_dtype}-w{w_dtype}-b{b_dtype}-s{s[0]},{s[1]}-{mode}")


CASES = [c for op in ("batch_norm", "instance_norm", "layer_norm", "group_norm") for c in _cases(op)]


@pytest.mark.parametrize("op,x_dtype,w_dtype,b_dtype,stats,training", CASES)
def test_mixed_dtypes_are_refused_or_computed_as_torch(op, x_dtype, w_dtype, b_dtype, stats, training):
    theirs = _run(torch, op, x_dtype, w_dtype, b_dtype, stats, training)
    ours = _run(distnn, op, x_dtype, w_dtype, b_dtype, stats, training)
    assert ours[0] == theirs[0], (ours[:2], theirs[:2])
    if theirs[0] != "ok":
        assert ours[1] == theirs[1]
        return
    # (torch normalizes a float16 input without float32 parameters in float16: 0.004 off on a 3-value instance)
    tol = 1e-2 if x_dtype == "float16" else 3e-3 if "float16" in (w_dtype, b_dtype) + stats else 1e-5
    for a, b in zip([ours[1]] + ours[2], [theirs[1]] + theirs[2]):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), rtol=tol, atol=tol)
