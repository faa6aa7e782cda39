"""Shared by the tests/test_nn_layers_*.py files: a distnn layer and its torch twin (weights copied) on the
same input, outputs and every gradient compared (compare), and a seeded normal draw (randn)."""
import numpy as np

import distnn

from torch_twins import torch_state_as_numpy


def close(a, b, rtol=1e-4, what=""):
    """Elementwise within rtol, with an absolute floor of rtol times the tensor's scale."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    scale = max(float(np.abs(b).max()) if b.size else 0.0, 1e-12)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, err_msg=what)


def compare(torch, dmod, tmod, x, *, grad_input=True, rtol=1e-4, seed=0):
    """Load tmod's weights into dmod, run both on x, compare outputs, input grads and parameter grads."""
    dmod.load_state_dict(torch_state_as_numpy(tmod))
    xd = distnn.Tensor(x.copy(), requires_grad=grad_input)
    xt = torch.tensor(x.copy(), requires_grad=grad_input)
    yd, yt = dmod(xd), tmod(xt)
    close(yd.numpy(), yt.detach().numpy(), rtol, "output")
    g = np.random.default_rng(seed).standard_normal(yt.shape).astype(x.dtype)
    yd.backward(g)
    yt.backward(torch.tensor(g))
    if grad_input:
        close(xd.grad, xt.grad.numpy(), rtol, "input grad")
    tparams = dict(tmod.named_parameters())
    dparams = dict(dmod.named_parameters())
    assert list(dparams) == list(tparams)
    for name, p in dparams.items():
        assert p.grad is not None, f"no grad for {name}"
        close(p.grad, tparams[name].grad.numpy(), rtol, f"grad of {name}")
    return yd, yt


def randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)
