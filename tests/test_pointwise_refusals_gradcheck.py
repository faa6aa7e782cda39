"""Pointwise ops' refusals as PyTorch 2.13's (integer inputs where it has no kernel, mixed dtypes, a bad
rounding mode, shapes that do not broadcast), and compositions of them passing the finite-difference gradient
checker."""
from __future__ import annotations

import numpy as np
import pytest

import distnn
from distnn.testing import check_grad


torch = pytest.importorskip("torch")


R = np.random.default_rng(0)


@pytest.mark.parametrize("call, torch_call, error", [
    (lambda d: d.hypot(distnn.tensor([1, 2]), distnn.tensor([1, 2])),
     lambda: torch.hypot(torch.tensor([1, 2]), torch.tensor([1, 2])), NotImplementedError),
    (lambda d: d.logaddexp(distnn.tensor([1, 2]), distnn.tensor([1, 2])),
     lambda: torch.logaddexp(torch.tensor([1, 2]), torch.tensor([1, 2])), NotImplementedError),
    (lambda d: d.lerp(distnn.tensor(np.array([1.0])), distnn.tensor([2.0], dtype=np.float32), 0.5),
     lambda: torch.lerp(torch.tensor([1.0], dtype=torch.float64), torch.tensor([2.0]), 0.5), RuntimeError),
    (lambda d: d.lerp(distnn.tensor([1, 2]), distnn.tensor([1, 2]), 0.5),
     lambda: torch.lerp(torch.tensor([1, 2]), torch.tensor([1, 2]), 0.5), NotImplementedError),
    (lambda d: d.addcdiv(distnn.tensor([1, 2]), distnn.tensor([1, 2]), distnn.tensor([1, 2])),
     lambda: torch.addcdiv(torch.tensor([1, 2]), torch.tensor([1, 2]), torch.tensor([1, 2])), RuntimeError),
    (lambda d: d.divide(distnn.tensor([1.0]), 2.0, rounding_mode="round"),
     lambda: torch.divide(torch.tensor([1.0]), 2.0, rounding_mode="round"), (ValueError, RuntimeError)),
    (lambda d: d.neg(distnn.tensor([True])), lambda: torch.neg(torch.tensor([True])), RuntimeError),
    (lambda d: d.atan2(distnn.tensor(np.ones((2, 3))), distnn.tensor(np.ones((4, 1, 2)))),
     lambda: torch.atan2(torch.ones(2, 3), torch.ones(4, 1, 2)), (ValueError, RuntimeError)),
], ids=["hypot_int", "logaddexp_int", "lerp_mixed", "lerp_int", "addcdiv_int", "divide_mode", "neg_bool",
        "broadcast"])
def test_refusals_as_pytorchs(call, torch_call, error):
    with pytest.raises(error):
        torch_call()
    with pytest.raises(error):
        call(distnn)


@pytest.mark.parametrize("fn, arrays", [
    (lambda x: distnn.erfinv(x) * distnn.erfc(x) + distnn.sinc(x) * distnn.logit(x.sigmoid()),
     [R.uniform(-0.9, 0.9, 6)]),
    (lambda x: (x.asinh() + x.atan() + x.expm1() + x.log1p().square() + x.rsqrt()), [R.uniform(0.2, 2, (2, 3))]),
    (lambda a, b: distnn.atan2(a, b) + distnn.hypot(a, b) + distnn.logaddexp2(a, b) * distnn.xlogy(a, b.abs()),
     [R.standard_normal((2, 3)), R.standard_normal((3,))]),
    (lambda a, b, w: distnn.lerp(a, b, w) + distnn.copysign(a, b) + distnn.fmax(a, b) * distnn.fmod(a, b + 5),
     [R.standard_normal((3, 4)), R.standard_normal((1, 4)), R.standard_normal((3, 1))]),
    (lambda a, b: distnn.addcdiv(a, a, b, value=0.3) + distnn.float_power(b.abs(), a).astype(np.float64),
     [R.standard_normal((2, 2)), R.uniform(0.5, 2, (2, 2))]),
])
def test_gradients_pass_the_finite_difference_checker(fn, arrays):
    assert check_grad(fn, *arrays)
