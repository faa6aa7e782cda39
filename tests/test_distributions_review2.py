"""Review findings in distnn.distributions, with torch.distributions (2.13) as the oracle: Uniform checks
``low < high`` at construction, as PyTorch's ``less_than(high)``/``greater_than(low)`` arg_constraints."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.distributions as D  # noqa: E402


@pytest.mark.parametrize("low, high", [([0.0, 0.0], [1.0, 0.0]), ([1.0], [0.0]), (0.0, 0.0), (2.0, 1.0)])
def test_uniform_refuses_low_not_below_high_as_torch(low, high):
    def make(mod, wrap, **kw):
        return mod.Uniform(wrap(low), wrap(high), **kw)

    with pytest.raises(ValueError, match="LessThan"):
        make(torch.distributions, lambda v: torch.tensor(v) if isinstance(v, list) else v)
    with pytest.raises(ValueError, match="LessThan"):
        make(D, lambda v: distnn.tensor(np.asarray(v)) if isinstance(v, list) else v)
    make(D, lambda v: distnn.tensor(np.asarray(v)) if isinstance(v, list) else v, validate_args=False)  # unchecked


def test_uniform_valid_bounds_still_accepted_with_tensor_and_number_mixed():
    u = D.Uniform(distnn.tensor(np.array([0.0, -1.0])), 2.0)
    assert u.batch_shape == (2,)
    ut = torch.distributions.Uniform(torch.tensor([0.0, -1.0], dtype=torch.float64), 2.0)
    np.testing.assert_allclose(distnn.to_numpy(u.log_prob(distnn.tensor(np.array([1.0, 1.5]))).data),
                               ut.log_prob(torch.tensor([1.0, 1.5], dtype=torch.float64)).numpy())
    assert "LessThan" in repr(D.constraints.less_than(1.0))


@pytest.mark.usefixtures("kl_registries_restored")
def test_kl_dispatch_warns_when_two_registrations_are_equally_specific_as_torch():
    class MyNormal(D.Normal):
        pass

    class MyNormal2(MyNormal):
        pass

    @D.register_kl(MyNormal, D.Normal)
    def _left(p, q):
        return distnn.tensor(1.0)

    @D.register_kl(D.Normal, MyNormal)
    def _right(p, q):
        return distnn.tensor(2.0)

    class TMy(torch.distributions.Normal):
        pass

    class TMy2(TMy):
        pass

    torch.distributions.register_kl(TMy, torch.distributions.Normal)(lambda p, q: torch.tensor(1.0))
    torch.distributions.register_kl(torch.distributions.Normal, TMy)(lambda p, q: torch.tensor(2.0))
    with pytest.warns(RuntimeWarning, match=r"Ambiguous kl_divergence\(TMy2, TMy2\). Please register_kl\(TMy, TMy\)"):
        expected = torch.distributions.kl_divergence(TMy2(0.0, 1.0), TMy2(0.0, 1.0)).item()
    with pytest.warns(RuntimeWarning,
                      match=r"Ambiguous kl_divergence\(MyNormal2, MyNormal2\). Please register_kl\(MyNormal, MyNormal\)"):
        assert D.kl_divergence(MyNormal2(0.0, 1.0), MyNormal2(0.0, 1.0)).item() == expected
    # one registration more specific on both sides: no warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        D.kl_divergence(MyNormal2(0.0, 1.0), D.Normal(0.0, 1.0))
