"""F.grid_sample's 5-D inputs (trilinear and nearest) and 4-D 'bicubic' mode against PyTorch (the oracle):
outputs and the gradients to the input and the grid, float64 to 1e-10 and float32 loosely, fuzzed over
shapes, grids inside and outside [-1, 1] (on quarter points too: voxels hit exactly, borders, rounding
ties), padding modes and align_corners; numerical gradients; a 3-D spatial transformer (affine_grid then
grid_sample) differentiated to theta.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn as dn  # noqa: E402
import distnn.functional as F  # noqa: E402
from distnn.testing import check_grad  # noqa: E402

TF = torch.nn.functional
PADDINGS = ("zeros", "border", "reflection")


def _case(rng, k, quarter):
    """An input with k spatial axes (1 to 5 long) and a grid of 1 to 4 points per axis."""
    N, C = (int(v) for v in rng.integers(1, 4, size=2))
    x = rng.standard_normal((N, C) + tuple(int(v) for v in rng.integers(1, 6, size=k)))
    reach = float(rng.choice([1.0, 1.5, 4.0]))  # (inside, a little outside, several reflections away)
    g = rng.uniform(-reach, reach, (N,) + tuple(int(v) for v in rng.integers(1, 5, size=k)) + (k,))
    if quarter:
        g = np.round(g * 4) / 4
    return x, g


def _both(x, g, dtype, **kw):
    """(distnn's, torch's) output, input gradient and grid gradient for the same upstream gradient."""
    u = np.random.default_rng(1).standard_normal((x.shape[0], x.shape[1]) + g.shape[1:-1]).astype(dtype)
    xd, gd = dn.Tensor(x.astype(dtype), requires_grad=True), dn.Tensor(g.astype(dtype), requires_grad=True)
    y = F.grid_sample(xd, gd, **kw)
    (y * dn.Tensor(u)).sum().backward()
    xt = torch.tensor(x.astype(dtype), requires_grad=True)
    gt = torch.tensor(g.astype(dtype), requires_grad=True)
    yt = TF.grid_sample(xt, gt, **kw)
    (yt * torch.tensor(u)).sum().backward()
    return ((np.asarray(y.data), np.asarray(xd.grad), np.asarray(gd.grad)),
            (yt.detach().numpy(), xt.grad.numpy(), gt.grad.numpy()))


CASES = [(3, "bilinear"), (3, "nearest"), (2, "bicubic")]


@pytest.mark.parametrize("k, mode", CASES)
@pytest.mark.parametrize("padding_mode", PADDINGS)
@pytest.mark.parametrize("align_corners", [False, True])
def test_fuzz_matches_pytorch_float64(k, mode, padding_mode, align_corners):
    torch.set_num_threads(1)
    rng = np.random.default_rng([k, len(mode), PADDINGS.index(padding_mode), int(align_corners)])
    for case in range(16):
        x, g = _case(rng, k, quarter=case % 2 == 0)
        ours, theirs = _both(x, g, np.float64, mode=mode, padding_mode=padding_mode, align_corners=align_corners)
        for what, a, b in zip(("output", "input grad", "grid grad"), ours, theirs):
            assert a.shape == b.shape and a.dtype == b.dtype, what
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"{what}, case {case}, x {x.shape}")


@pytest.mark.parametrize("k, mode", CASES)
@pytest.mark.parametrize("padding_mode", PADDINGS)
def test_float32_matches_pytorch(k, mode, padding_mode):
    rng = np.random.default_rng(5)
    for case in range(4):
        x, g = _case(rng, k, quarter=False)  # (no exact ties: float32 may round a tie the other way)
        ours, theirs = _both(x, g, np.float32, mode=mode, padding_mode=padding_mode, align_corners=case % 2 == 0)
        for what, a, b in zip(("output", "input grad", "grid grad"), ours, theirs):
            assert a.dtype == np.float32, what
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=what)


@pytest.mark.parametrize("k, mode", [(3, "bilinear"), (2, "bicubic")])
def test_numerical_gradient(k, mode):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2) + (3, 4, 5)[-k:])
    g = rng.uniform(-1.3, 1.3, (2, 2, 3) + (2,) * (k - 2) + (k,))  # (random points: none on a kink)
    for pad in PADDINGS:
        check_grad(lambda a, b: F.grid_sample(a, b, mode=mode, padding_mode=pad, align_corners=False), x, g)


def test_bicubic_reads_the_identity_grid_back_and_keeps_constants():
    # the identity grid (align_corners=True, pixel centres) reads the input back exactly
    x = np.random.default_rng(3).standard_normal((1, 2, 4, 5))
    theta = np.eye(2, 3)[None]
    grid = F.affine_grid(dn.Tensor(theta), (1, 2, 4, 5), align_corners=True)
    y = F.grid_sample(dn.Tensor(x), grid, mode="bicubic", align_corners=True)
    np.testing.assert_allclose(np.asarray(y.data), x, atol=1e-12)
    # the weights sum to 1: a constant image stays constant anywhere with border padding
    g = np.random.default_rng(4).uniform(-3, 3, (1, 3, 4, 2))
    y = F.grid_sample(dn.Tensor(np.full((1, 1, 3, 8), 2.5)), dn.Tensor(g), mode="bicubic", padding_mode="border",
                      align_corners=False)
    np.testing.assert_allclose(np.asarray(y.data), 2.5, atol=1e-12)


@pytest.mark.parametrize("padding_mode", PADDINGS)
def test_3d_spatial_transformer_gradient_to_theta_matches_pytorch(padding_mode):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 2, 4, 5, 3))
    theta = np.eye(3, 4)[None] + 0.3 * rng.standard_normal((2, 3, 4))
    size = (2, 2, 3, 4, 5)
    target = rng.standard_normal(size)
    td, xd = dn.Tensor(theta, requires_grad=True), dn.Tensor(x, requires_grad=True)
    out = F.grid_sample(xd, F.affine_grid(td, size, align_corners=False), padding_mode=padding_mode,
                        align_corners=False)
    ((out - dn.Tensor(target)) ** 2).mean().backward()
    tt, xt = torch.tensor(theta, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_t = TF.grid_sample(xt, TF.affine_grid(tt, size, align_corners=False), padding_mode=padding_mode,
                           align_corners=False)
    ((out_t - torch.tensor(target)) ** 2).mean().backward()
    np.testing.assert_allclose(np.asarray(out.data), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(td.grad), tt.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.asarray(xd.grad), xt.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_nearest_5d_grid_gets_zero_gradient_and_rounds_half_to_even():
    x = np.arange(5.0).reshape(1, 1, 1, 1, 5)
    gd = dn.Tensor(np.array([[[[[-0.75, 0.0, 0.0], [0.25, 0.0, 0.0]]]]]), requires_grad=True)
    y = F.grid_sample(dn.Tensor(x), gd, mode="nearest", align_corners=True)  # (0.5 and 2.5: ties)
    np.testing.assert_array_equal(np.asarray(y.data).ravel(), [0.0, 2.0])
    y.sum().backward()
    np.testing.assert_array_equal(np.asarray(gd.grad), 0.0)
