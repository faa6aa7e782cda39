"""F.conv_tbc against PyTorch (outputs and the gradients to input, weight and bias; float64 tight, float32
loose; a fuzz over lengths, channels, kernel widths and positive, zero and negative pads) and its refusals;
PyTorch's aliases: F.native_channel_shuffle (channel_shuffle's values), nn.NLLLoss2d (with its FutureWarning) and the
F.GRID_SAMPLE_*_MODES tables.
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


def _conv_tbc_both(x, w, b, pad, dtype):
    ta = [torch.tensor(a.astype(dtype), requires_grad=True) for a in (x, w, b)]
    da = [dn.Tensor(a.astype(dtype), requires_grad=True) for a in (x, w, b)]
    yt, yd = TF.conv_tbc(*ta, pad), F.conv_tbc(*da, pad)
    u = np.random.default_rng(0).standard_normal(tuple(yt.shape)).astype(dtype)
    (yt * torch.tensor(u)).sum().backward()
    (yd * dn.Tensor(u)).sum().backward()
    assert yd.shape == tuple(yt.shape) and yd.dtype == dtype
    return [np.asarray(yd.data)] + [np.asarray(d.grad) for d in da], [yt.detach().numpy()] + [t.grad.numpy()
                                                                                              for t in ta]


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-4)])
def test_conv_tbc_fuzz_matches_pytorch(dtype, tol):
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    for case in range(40):
        T, B, Ci, Co = (int(v) for v in rng.integers(1, 6, 4))
        kw = int(rng.integers(1, T + 3))
        pad = int(rng.integers(-1, 3))
        if T + 2 * pad - kw + 1 < 0:
            continue
        x, w, b = rng.standard_normal((T, B, Ci)), rng.standard_normal((kw, Ci, Co)), rng.standard_normal(Co)
        ours, theirs = _conv_tbc_both(x, w, b, pad, dtype)
        for what, a, t in zip(("output", "input grad", "weight grad", "bias grad"), ours, theirs):
            np.testing.assert_allclose(a, t, rtol=tol, atol=tol, err_msg=f"{what}, case {case}")


def test_conv_tbc_numerical_gradient_and_no_taps():
    rng = np.random.default_rng(2)
    check_grad(lambda x, w, b: F.conv_tbc(x, w, b, 1), rng.standard_normal((4, 2, 3)),
               rng.standard_normal((3, 3, 2)), rng.standard_normal(2))
    # a kernel of width 0 gives the bias at T + 1 steps, as PyTorch's
    y = F.conv_tbc(dn.Tensor(np.zeros((3, 2, 2))), dn.Tensor(np.zeros((0, 2, 3))), dn.Tensor(np.arange(3.0)))
    np.testing.assert_array_equal(y.data, np.broadcast_to(np.arange(3.0), (4, 2, 3)))


@pytest.mark.parametrize("shapes, pad, error, match", [
    (((3, 2), (2, 2, 3), (3,)), 0, RuntimeError, "Input must have 3 dims"),
    (((3, 2, 2), (2, 2), (3,)), 0, RuntimeError, "Weight tensor must have 3 dims"),
    (((3, 2, 2), (2, 2, 3), (3, 1)), 0, RuntimeError, "Bias must be 1-D"),
    (((3, 2, 2), (2, 4, 3), (3,)), 0, RuntimeError, "input channels"),
    (((3, 2, 2), (2, 2, 3), (4,)), 0, RuntimeError, "Bias size must equal dim 2"),
    (((3, 2, 2), (5, 2, 3), (3,)), 0, RuntimeError, "negative dimension -1"),
    (((3, 2, 2), (2, 2, 3), (3,)), 1.5, TypeError, "'pad' .* must be int"),
    (((3, 2, 2), (2, 2, 3), None), 0, TypeError, "'bias' .* must be Tensor"),
])
def test_conv_tbc_refusals_match_pytorch(shapes, pad, error, match):
    def arrays(make):
        return [None if s is None else make(np.zeros(s)) for s in shapes]

    with pytest.raises(error, match=match):
        F.conv_tbc(*arrays(dn.Tensor), pad)
    with pytest.raises(error, match=match):
        TF.conv_tbc(*arrays(torch.tensor), pad)


def test_conv_tbc_refuses_mixed_dtypes_as_pytorch():
    args = (np.zeros((3, 2, 2)), np.zeros((2, 2, 3), np.float32), np.zeros(3))
    with pytest.raises(RuntimeError, match="same dtype"):
        F.conv_tbc(*(dn.Tensor(a) for a in args))
    with pytest.raises(RuntimeError, match="same dtype"):
        TF.conv_tbc(*(torch.tensor(a) for a in args))


def test_native_channel_shuffle_is_channel_shuffle():
    x = np.arange(24.0).reshape(2, 6, 2)
    np.testing.assert_array_equal(F.native_channel_shuffle(dn.Tensor(x), 3).data,
                                  TF.native_channel_shuffle(torch.tensor(x), 3).numpy())
    with pytest.raises(ValueError, match="divisible by groups"):  # (channel_shuffle's, as distnn gives it)
        F.native_channel_shuffle(dn.Tensor(x), 4)


def test_nll_loss_2d_warns_and_is_nll_loss():
    rng = np.random.default_rng(3)
    logp = np.ascontiguousarray(np.log(rng.dirichlet(np.ones(4), size=(2, 3, 5)).transpose(0, 3, 1, 2)))  # (N, C, H, W)
    target = rng.integers(0, 4, (2, 3, 5))
    target[0, 0, 0] = 1
    w = rng.random(4)
    with pytest.warns(FutureWarning, match="`NLLLoss2d` has been deprecated"):
        ours = dn.nn.NLLLoss2d(weight=dn.Tensor(w), ignore_index=1, reduction="sum")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch.nn.NLLLoss2d(weight=torch.tensor(w), ignore_index=1, reduction="sum")
    assert isinstance(ours, dn.nn.NLLLoss) and repr(ours).startswith("NLLLoss2d(") and repr(theirs) == "NLLLoss2d()"
    xd, xt = dn.Tensor(logp, requires_grad=True), torch.tensor(logp, requires_grad=True)
    ld, lt = ours(xd, target), theirs(xt, torch.tensor(target))
    ld.backward()
    lt.backward()
    np.testing.assert_allclose(float(ld.data), lt.item(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(xd.grad), xt.grad.numpy(), rtol=1e-12)


def test_grid_sample_mode_tables_are_pytorch_s():
    assert F.GRID_SAMPLE_INTERPOLATION_MODES == TF.GRID_SAMPLE_INTERPOLATION_MODES
    assert F.GRID_SAMPLE_PADDING_MODES == TF.GRID_SAMPLE_PADDING_MODES
