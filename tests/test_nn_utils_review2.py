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


@pytest.mark.parametrize("dim", [2, -3, 5])
@pytest.mark.parametrize("which", ["hooked", "parametrization"])
def test_weight_norm_refuses_a_dim_out_of_range_as_torch(dim, which):
    from distnn.nn.utils import parametrizations

    ours = U.weight_norm if which == "hooked" else parametrizations.weight_norm
    theirs = torch.nn.utils.weight_norm if which == "hooked" else torch.nn.utils.parametrizations.weight_norm
    with pytest.raises(IndexError, match="Dimension out of range"):
        theirs(torch.nn.Linear(4, 3), dim=dim)
    with pytest.raises(IndexError, match="Dimension out of range"):
        ours(distnn.nn.Linear(4, 3), dim=dim)


@pytest.mark.parametrize("dim", [0, 1, -1, -2, None])
def test_weight_norm_in_range_dims_still_as_torch(dim):
    from distnn.nn.utils import parametrizations

    m = distnn.nn.Linear(4, 3).double()
    t = torch.nn.Linear(4, 3).double()
    with torch.no_grad():
        t.weight.copy_(torch.tensor(distnn.to_numpy(m.weight.data)))
    parametrizations.weight_norm(m, dim=dim)
    torch.nn.utils.parametrizations.weight_norm(t, dim=dim)
    g, tg = m.parametrizations.weight.original0, t.parametrizations.weight.original0
    assert tuple(g.shape) == tuple(tg.shape)
    np.testing.assert_allclose(distnn.to_numpy(g.data), tg.detach().numpy(), rtol=1e-12)
