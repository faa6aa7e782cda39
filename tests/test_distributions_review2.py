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
