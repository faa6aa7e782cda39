"""Review findings in distnn.nn.utils, with torch (2.13) as the oracle: ``clip_grad_norm_`` and
``clip_grad_value_`` take PyTorch's ``foreach`` keyword (a PyTorch script passing it ran into a TypeError)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
from distnn.nn import utils as U  # noqa: E402


def _pair(seed):
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal((3, 4)) * 3, rng.standard_normal(5)]
    ours = [distnn.nn.Parameter(np.zeros_like(g)) for g in grads]
    theirs = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in grads]
    for p, q, g in zip(ours, theirs, grads):
        p.grad = distnn.tensor(g.copy())
        q.grad = torch.tensor(g.copy())
    return ours, theirs


@pytest.mark.parametrize("foreach", [None, True, False])
def test_clip_grad_norm_and_value_take_foreach_as_torch(foreach):
    ours, theirs = _pair(0)
    total = U.clip_grad_norm_(ours, 1.5, norm_type=2.0, foreach=foreach)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, 1.5, norm_type=2.0, foreach=foreach)
    np.testing.assert_allclose(total, ttotal.item(), rtol=1e-12)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(distnn.to_numpy(p.grad), q.grad.numpy(), rtol=1e-12)

    ours, theirs = _pair(1)
    U.clip_grad_value_(ours, 0.7, foreach=foreach)
    torch.nn.utils.clip_grad_value_(theirs, 0.7, foreach=foreach)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(distnn.to_numpy(p.grad), q.grad.numpy(), rtol=1e-12)
