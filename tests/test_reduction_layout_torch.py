"""The layout of reductions and scans of a tensor that is not row-major, against torch (the oracle).

PyTorch 2.13's reductions give a row-major result whatever their input's layout (``x.permute(2, 0, 1).sum(-1)`` is
contiguous); numpy's follow the input's memory order. distnn's match torch's: ``stride()``, ``is_contiguous()``
and whether a later ``view(-1)`` is allowed, over inputs laid out in several ways (permuted, channels_last,
stepped, transposed) and dims reduced with and without keepdim.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
from tensor_ops_oracle import layout_signature  # noqa: E402

OPS = {
    "sum": lambda L, t, d, k: t.sum(d, keepdim=k),
    "mean": lambda L, t, d, k: t.mean(d, keepdim=k),
    "amax": lambda L, t, d, k: t.amax(d, keepdim=k),
    "amin": lambda L, t, d, k: t.amin(d, keepdim=k),
    "var": lambda L, t, d, k: t.var(d, keepdim=k),
    "std": lambda L, t, d, k: t.std(d, keepdim=k),
    "prod": lambda L, t, d, k: t.prod(d, keepdim=k),
    "logsumexp": lambda L, t, d, k: t.logsumexp(d, keepdim=k),
    "nansum": lambda L, t, d, k: t.nansum(d, keepdim=k),
    "nanmean": lambda L, t, d, k: t.nanmean(d, keepdim=k),
    "all": lambda L, t, d, k: (t > 0.5).all(d, keepdim=k),
    "any": lambda L, t, d, k: (t > 0.5).any(d, keepdim=k),
    "var_mean": lambda L, t, d, k: L.var_mean(t, d, keepdim=k)[0],
    "std_mean": lambda L, t, d, k: L.std_mean(t, d, keepdim=k)[1],
    "aminmax": lambda L, t, d, k: L.aminmax(t, dim=d, keepdim=k)[0],
    "count_nonzero": lambda L, t, d, k: L.count_nonzero(t, d),
    "cumsum": lambda L, t, d, k: t.cumsum(d),
}
LAYOUTS = {
    "permute(2, 0, 1)": (lambda t: t.permute(2, 0, 1), (2, 3, 4)),
    "transpose(0, 2)": (lambda t: t.transpose(0, 2), (2, 3, 4)),
    "channels_last": (lambda t: t.permute(0, 3, 1, 2), (2, 3, 4, 5)),
    "stepped": (lambda t: t[:, :, ::2], (2, 3, 4)),
    "contiguous": (lambda t: t, (2, 3, 4)),
}


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_reduction_layout_as_torch(op, layout):
    make, shape = LAYOUTS[layout]
    a = np.random.default_rng(0).uniform(-1, 1, shape)
    x_t, x_d = make(torch.tensor(a)), make(distnn.Tensor(a.copy()))
    for d in range(-x_t.dim(), x_t.dim()):
        for keepdim in (False, True):
            r_t, r_d = OPS[op](torch, x_t, d, keepdim), OPS[op](distnn, x_d, d, keepdim)
            np.testing.assert_allclose(np.asarray(r_d.data), r_t.numpy(), rtol=1e-12, atol=1e-12)
            assert layout_signature(r_d) == layout_signature(r_t), f"{op}({d}, keepdim={keepdim}) of {layout}: distnn " \
                                                 f"{r_d.stride()} vs torch {r_t.stride()}"


def test_keepdim_result_of_a_permuted_tensor_takes_a_view():
    """The case that distnn refused: the keepdim sum of a permuted tensor is row-major, so view(-1) is allowed,
    and its strides (size-1 dims too, the result being fresh) are torch's."""
    a = np.arange(24.0).reshape(2, 3, 4)
    r_t = torch.tensor(a).permute(2, 0, 1).sum(1, keepdim=True)
    r_d = distnn.Tensor(a).permute(2, 0, 1).sum(1, keepdim=True)
    assert r_d.stride() == r_t.stride() == (3, 3, 1)
    assert r_d.is_contiguous()
    np.testing.assert_array_equal(np.asarray(r_d.view(-1).data), r_t.view(-1).numpy())


def test_reduction_gradient_of_a_permuted_tensor():
    """The relaid result keeps the graph: the gradient through it is torch's."""
    a = np.random.default_rng(1).uniform(-1, 1, (2, 3, 4))
    x_t, x_d = torch.tensor(a, requires_grad=True), distnn.Tensor(a.copy(), requires_grad=True)
    w = np.linspace(0.5, 1.5, 8).reshape(4, 2)
    for L, x in ((torch, x_t), (distnn, x_d)):
        r = x.permute(2, 0, 1).amax(-1)
        (r.view(-1) * (torch.tensor(w) if L is torch else distnn.Tensor(w)).view(-1)).sum().backward()
    np.testing.assert_allclose(np.asarray(x_d.grad), x_t.grad.numpy(), rtol=1e-12)
