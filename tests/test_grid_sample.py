"""F.affine_grid and F.grid_sample against PyTorch (the oracle): outputs and the gradients to the input,
the grid and theta, float64 to 1e-10 and float32 loosely; a seeded fuzz over shapes, grids inside and
outside [-1, 1] (on quarter points too: corners exactly on pixels, borders and rounding ties), modes,
padding modes and align_corners; a spatial transformer (affine_grid then grid_sample) differentiated to
theta; the warnings and refusals PyTorch gives.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn as dn  # noqa: E402
import distnn.functional as F  # noqa: E402
from distnn.testing import check_grad  # noqa: E402

TF = torch.nn.functional
MODES = ("bilinear", "nearest")
PADDINGS = ("zeros", "border", "reflection")


def _grid_case(rng, quarter):
    N, C, H, W = (int(v) for v in rng.integers(1, 4, size=1).tolist() + rng.integers(1, 7, size=3).tolist())
    Ho, Wo = (int(v) for v in rng.integers(1, 6, size=2))
    x = rng.standard_normal((N, C, H, W))
    reach = float(rng.choice([1.0, 1.5, 4.0]))  # (inside, a little outside, several reflections away)
    g = rng.uniform(-reach, reach, (N, Ho, Wo, 2))
    if quarter:  # (points on pixel centres, borders and halfway: floor, clip and rounding ties)
        g = np.round(g * 4) / 4
    return x, g


def _both(x, g, dtype, **kw):
    """(distnn's, torch's) output, input gradient and grid gradient for the same upstream gradient."""
    u = np.random.default_rng(1).standard_normal((x.shape[0], x.shape[1]) + g.shape[1:3]).astype(dtype)
    xd, gd = dn.Tensor(x.astype(dtype), requires_grad=True), dn.Tensor(g.astype(dtype), requires_grad=True)
    y = F.grid_sample(xd, gd, **kw)
    (y * dn.Tensor(u)).sum().backward()
    xt = torch.tensor(x.astype(dtype), requires_grad=True)
    gt = torch.tensor(g.astype(dtype), requires_grad=True)
    yt = TF.grid_sample(xt, gt, **kw)
    (yt * torch.tensor(u)).sum().backward()
    ours = (np.asarray(y.data), np.asarray(xd.grad), np.asarray(gd.grad))
    return ours, (yt.detach().numpy(), xt.grad.numpy(), gt.grad.numpy())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("padding_mode", PADDINGS)
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_fuzz_matches_pytorch_float64(mode, padding_mode, align_corners):
    torch.set_num_threads(1)
    rng = np.random.default_rng([MODES.index(mode), PADDINGS.index(padding_mode), int(align_corners)])
    for case in range(24):
        x, g = _grid_case(rng, quarter=case % 2 == 0)
        ours, theirs = _both(x, g, np.float64, mode=mode, padding_mode=padding_mode, align_corners=align_corners)
        for what, a, b in zip(("output", "input grad", "grid grad"), ours, theirs):
            assert a.shape == b.shape and a.dtype == b.dtype, what
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"{what}, case {case}, x {x.shape}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("padding_mode", PADDINGS)
def test_grid_sample_float32_matches_pytorch(mode, padding_mode):
    rng = np.random.default_rng(5)
    for case in range(6):
        x, g = _grid_case(rng, quarter=False)  # (no exact ties: float32 may round a tie the other way)
        ours, theirs = _both(x, g, np.float32, mode=mode, padding_mode=padding_mode, align_corners=case % 2 == 0)
        for what, a, b in zip(("output", "input grad", "grid grad"), ours, theirs):
            assert a.dtype == np.float32, what
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=what)


def test_nearest_rounds_half_to_even_and_border_points_get_no_grid_gradient():
    x = np.arange(5.0).reshape(1, 1, 1, 5)
    # align_corners=True on 5 pixels: g = -0.75 -> 0.5 and g = 0.25 -> 2.5, both ties: rounded to 0 and 2
    g = np.array([[[[-0.75, 0.0], [0.25, 0.0]]]])
    y = F.grid_sample(dn.Tensor(x), dn.Tensor(g), mode="nearest", align_corners=True)
    np.testing.assert_array_equal(np.asarray(y.data).ravel(), [0.0, 2.0])
    # border padding: a point exactly on the last pixel, and one beyond it, have a zero x-gradient
    gd = dn.Tensor(np.array([[[[1.0, 0.0], [3.0, 0.0], [0.5, 0.0]]]]), requires_grad=True)
    F.grid_sample(dn.Tensor(x), gd, padding_mode="border", align_corners=True).sum().backward()
    np.testing.assert_allclose(np.asarray(gd.grad)[0, 0, :, 0], [0.0, 0.0, 2.0])


def test_grid_sample_numerical_gradient():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 4, 5))
    g = rng.uniform(-1.3, 1.3, (2, 3, 2, 2))  # (random points: none on a kink)
    for pad in PADDINGS:
        check_grad(lambda a, b: F.grid_sample(a, b, padding_mode=pad, align_corners=False), x, g)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(2, 3, 4, 5), (1, 1, 1, 3), (3, 2, 6, 1), (2, 1, 3, 4, 5), (1, 2, 1, 2, 3)])
def test_affine_grid_matches_pytorch(size, align_corners):
    k = len(size) - 2
    rng = np.random.default_rng(len(size) + sum(size))
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        theta = rng.standard_normal((size[0], k, k + 1)).astype(dtype)
        td = dn.Tensor(theta, requires_grad=True)
        tt = torch.tensor(theta, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (the unit-size warning: checked below)
            grid = F.affine_grid(td, size, align_corners=align_corners)
            gt = TF.affine_grid(tt, size, align_corners=align_corners)
        u = rng.standard_normal(gt.shape).astype(dtype)
        (grid * dn.Tensor(u)).sum().backward()
        (gt * torch.tensor(u)).sum().backward()
        assert grid.shape == tuple(gt.shape) and grid.dtype == dtype
        np.testing.assert_allclose(np.asarray(grid.data), gt.detach().numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(np.asarray(td.grad), tt.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("padding_mode", PADDINGS)
@pytest.mark.parametrize("align_corners", [False, True])
def test_spatial_transformer_gradient_to_theta_matches_pytorch(padding_mode, align_corners):
    """affine_grid then grid_sample, a loss on the warped image: gradients to theta and to the image."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 2, 7, 6))
    theta = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]) + 0.4 * rng.standard_normal((3, 2, 3))
    target = rng.standard_normal((3, 2, 5, 8))
    size = (3, 2, 5, 8)
    td, xd = dn.Tensor(theta, requires_grad=True), dn.Tensor(x, requires_grad=True)
    out = F.grid_sample(xd, F.affine_grid(td, size, align_corners=align_corners), padding_mode=padding_mode,
                        align_corners=align_corners)
    loss = ((out - dn.Tensor(target)) ** 2).mean()
    loss.backward()
    tt, xt = torch.tensor(theta, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_t = TF.grid_sample(xt, TF.affine_grid(tt, size, align_corners=align_corners), padding_mode=padding_mode,
                           align_corners=align_corners)
    loss_t = ((out_t - torch.tensor(target)) ** 2).mean()
    loss_t.backward()
    np.testing.assert_allclose(float(loss.data), loss_t.item(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(td.grad), tt.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.asarray(xd.grad), xt.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_align_corners_none_warns_as_pytorch():
    x, g, theta = np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 1, 2)), np.eye(2, 3)[None]
    for fn in (lambda: F.grid_sample(dn.Tensor(x), dn.Tensor(g)), lambda: F.affine_grid(theta, (1, 1, 2, 2))):
        with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
            fn()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.grid_sample(dn.Tensor(x), dn.Tensor(g), align_corners=False)
        F.affine_grid(theta, (1, 1, 2, 2), align_corners=False)
    with pytest.warns(UserWarning, match="unit-size grids"):
        F.affine_grid(theta, (1, 1, 1, 2), align_corners=True)


def _refusals():
    x4, g4 = np.zeros((2, 1, 3, 3)), np.zeros((2, 2, 2, 2))
    return [
        ((x4, g4), dict(mode="bicubicc"), ValueError, "expected mode"),
        ((x4, g4), dict(padding_mode="wrap"), ValueError, "expected padding_mode"),
        ((x4, g4.astype(np.float32)), {}, RuntimeError, "expected scalar type"),
        ((x4, np.zeros((2, 2, 2, 2, 2))), {}, RuntimeError, "same number of dimensions"),
        ((x4, np.zeros((1, 2, 2, 2))), {}, RuntimeError, "same batch size"),
        ((x4, np.zeros((2, 2, 2, 3))), {}, RuntimeError, "size 2 in last dimension"),
        ((np.zeros((2, 1, 0, 3)), g4), {}, RuntimeError, "non-empty spatial dimensions"),
        ((np.zeros((1, 1, 2, 2, 2)), np.zeros((1, 1, 1, 1, 3))), dict(mode="bicubic"), RuntimeError,
         "bicubic interpolation only supports 4D"),
        ((np.zeros((1, 1, 2, 2, 2)), np.zeros((1, 1, 1, 1, 2))), {}, RuntimeError, "size 3 in last dimension"),
    ]


@pytest.mark.parametrize("args, kw, error, match", _refusals())
def test_grid_sample_refusals_match_pytorch(args, kw, error, match):
    kw = dict(kw, align_corners=False)
    with pytest.raises(error, match=match):
        F.grid_sample(*(dn.Tensor(a) for a in args), **kw)
    with pytest.raises(error, match=match):
        TF.grid_sample(*(torch.tensor(a) for a in args), **kw)


@pytest.mark.parametrize("theta, size, error, match", [
    (np.zeros((1, 2, 3), dtype=np.int64), (1, 1, 2, 2), ValueError, "floating point"),
    (np.zeros((1, 3, 4)), (1, 1, 2, 2), ValueError, "Nx2x3"),
    (np.zeros((1, 2, 3)), (1, 1, 2, 2, 2), ValueError, "Nx3x4"),
    (np.zeros((1, 2, 3)), (1, 1, 2), NotImplementedError, "only supports 4D and 5D"),
    (np.zeros((1, 2, 3)), (1, 1, 0, 2), ValueError, "non-zero, positive"),
])
def test_affine_grid_refusals_match_pytorch(theta, size, error, match):
    with pytest.raises(error, match=match):
        F.affine_grid(dn.Tensor(theta), size, align_corners=False)
    with pytest.raises(error, match=match):
        TF.affine_grid(torch.tensor(theta), size, align_corners=False)
