"""LocalResponseNorm, CrossMapLRN2d, F.pdist, TripletMarginWithDistanceLoss, the F.upsample aliases and the
exported RNN bases against PyTorch: float32 forward and gradients (loosely; float64 is fuzzed tightly in
test_layer_fuzz_lrn_pdist.py), chosen edge cases, refusals (type and gist of PyTorch's message), reprs,
deprecation warnings, numerical gradient checks and a small model trained through LocalResponseNorm.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402
from distnn import optim  # noqa: E402
from distnn.testing import check_grad  # noqa: E402

TF = torch.nn.functional
R = np.random.default_rng(2026)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)


def _both(fd, ft, *arrays, dtype=np.float64, rtol=1e-10, atol=1e-12):
    """fd and ft on the same inputs: outputs and input gradients (for a random upstream gradient) compared."""
    dins = [distnn.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    tins = [torch.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    yd, yt = fd(*dins), ft(*tins)
    assert yd.dtype == dtype and tuple(yd.shape) == tuple(yt.shape)
    np.testing.assert_allclose(np.asarray(yd.data), yt.detach().numpy(), rtol=rtol, atol=atol)
    g = R.standard_normal(tuple(yt.shape)).astype(dtype)
    (yd * distnn.tensor(g)).sum().backward()
    (yt * torch.from_numpy(g)).sum().backward()
    for d, t in zip(dins, tins):
        np.testing.assert_allclose(np.asarray(d.grad.data), t.grad.numpy(), rtol=rtol, atol=atol)
    return np.asarray(yd.data), [np.asarray(d.grad.data) for d in dins]


# ---------------------------------------------------------------------------- float32 against PyTorch
F32 = dict(dtype=np.float32, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 6, 5), (2, 7, 3, 4), (1, 5, 2, 3, 2)])
def test_local_response_norm_float32_matches_pytorch(shape):
    x = R.standard_normal(shape) * 2
    _both(dnn.LocalResponseNorm(3, 0.5, 0.8, 1.2), torch.nn.LocalResponseNorm(3, 0.5, 0.8, 1.2), x, **F32)
    _both(lambda t: DF.local_response_norm(t, 10), lambda t: TF.local_response_norm(t, 10), x, **F32)


@pytest.mark.parametrize("size", [2, 3, 4, 9])
def test_cross_map_lrn2d_float32_matches_pytorch(size):
    x = R.standard_normal((2, 7, 3, 4))
    _both(dnn.CrossMapLRN2d(size, 0.9, 0.6, 1.5), torch.nn.CrossMapLRN2d(size, 0.9, 0.6, 1.5), x, **F32)


def test_cross_map_lrn2d_keeps_pytorchs_window_and_backward():
    # PyTorch's running sum never takes channel 0 out: channel 5 of 6 (size 3) still divides by x0^2 + ...;
    # and its backward is its own formula, not the derivative of that forward (checked numerically)
    x = np.zeros((1, 6, 1, 1))
    x[0, 0] = 10.0
    x[0, 5] = 1.0
    y = dnn.CrossMapLRN2d(3, alpha=3.0, beta=1.0, k=1.0)(distnn.tensor(x))
    assert np.asarray(y.data)[0, 5, 0, 0] == pytest.approx(1.0 / (1.0 + (100.0 + 1.0)))
    xr = R.standard_normal((1, 6, 2, 2))
    yd, (gd,) = _both(dnn.CrossMapLRN2d(3, 2.0, 0.75, 1.0), torch.nn.CrossMapLRN2d(3, 2.0, 0.75, 1.0), xr)
    with pytest.raises(AssertionError):
        check_grad(lambda t: dnn.CrossMapLRN2d(3, 2.0, 0.75, 1.0)(t), distnn.tensor(xr, requires_grad=True))


@pytest.mark.parametrize("p", [0, 0.5, 1, 2, 3.5, math.inf])
def test_pdist_float32_matches_pytorch(p):
    _both(lambda t: DF.pdist(t, p), lambda t: TF.pdist(t, p), R.standard_normal((6, 4)), **F32)


def test_pdist_gradients_at_equal_rows_and_ties_are_pytorchs():
    x = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.0, 2.0, 5.0], [1.0, 0.0, 4.0], [3.0, 0.0, 1.0]])
    for p in (0, 0.5, 1, 1.5, 2, 3, math.inf):
        out, (g,) = _both(lambda t: DF.pdist(t, p), lambda t: TF.pdist(t, p), x)
        assert out[0] == 0.0 and out.shape == (10,)  # rows 0 and 1: the first pair
    # the two equal rows get no gradient from their own pair, whatever its upstream gradient
    xd = distnn.tensor(x, requires_grad=True)
    (DF.pdist(xd) * distnn.tensor(np.eye(10)[0])).sum().backward()
    assert not np.asarray(xd.grad.data).any()
    # p = inf: rows 0 and 4 differ by (-2, 2, 2): each tied coordinate gets the whole gradient, as PyTorch's
    xd = distnn.tensor(x, requires_grad=True)
    (DF.pdist(xd, math.inf) * distnn.tensor(np.eye(10)[3])).sum().backward()
    np.testing.assert_array_equal(np.asarray(xd.grad.data)[0], [-1.0, 1.0, 1.0])


def test_pdist_shapes_and_order():
    x = R.standard_normal((5, 3))
    out = np.asarray(DF.pdist(distnn.tensor(x)).data)
    i, j = np.triu_indices(5, 1)
    np.testing.assert_allclose(out, np.linalg.norm(x[i] - x[j], axis=1), rtol=1e-12)
    assert DF.pdist(distnn.tensor(np.zeros((1, 3)))).shape == (0,)
    assert DF.pdist(distnn.tensor(np.zeros((0, 3)))).shape == (0,)
    np.testing.assert_array_equal(np.asarray(DF.pdist(distnn.tensor(np.zeros((3, 0)))).data), np.zeros(3))


@pytest.mark.parametrize("swap", [False, True])
def test_triplet_with_distance_float32_matches_pytorch(swap):
    a, p, n = (R.standard_normal((5, 4)) for _ in range(3))
    _both(dnn.TripletMarginWithDistanceLoss(swap=swap), torch.nn.TripletMarginWithDistanceLoss(swap=swap), a, p, n,
          **F32)
    kw = dict(margin=0.3, swap=swap, reduction="none")
    _both(lambda *t: DF.triplet_margin_with_distance_loss(
              *t, distance_function=lambda u, v: 1.0 - DF.cosine_similarity(u, v), **kw),
          lambda *t: TF.triplet_margin_with_distance_loss(
              *t, distance_function=lambda u, v: 1.0 - TF.cosine_similarity(u, v), **kw), a, p, n, **F32)


def test_triplet_with_distance_default_is_triplet_margin_loss():
    a, p, n = (distnn.tensor(R.standard_normal((6, 3))) for _ in range(3))
    for swap in (False, True):
        got = DF.triplet_margin_with_distance_loss(a, p, n, swap=swap, margin=0.7)
        want = DF.triplet_margin_loss(a, p, n, margin=0.7, swap=swap)
        np.testing.assert_allclose(np.asarray(got.data), np.asarray(want.data), rtol=1e-12)


def test_upsample_aliases_are_interpolate_with_pytorchs_warnings():
    x = R.standard_normal((2, 3, 4, 5))
    cases = [("upsample", dict(scale_factor=2, mode="bilinear", align_corners=False)),
             ("upsample_nearest", dict(size=(7, 3))), ("upsample_bilinear", dict(scale_factor=1.5))]
    for name, kw in cases:
        with pytest.warns(UserWarning, match=rf"`nn\.functional\.{name}` is deprecated\. Use `nn\.functional\."
                                             r"interpolate` instead\.") as rec:
            _both(lambda t: getattr(DF, name)(t, **kw), lambda t: getattr(TF, name)(t, **kw), x)
        assert any(r.filename == __file__ for r in rec), "the warning points at the caller's line, as PyTorch's"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bil = np.asarray(DF.upsample_bilinear(distnn.tensor(x), size=(6, 6)).data)
    aligned = np.asarray(DF.interpolate(distnn.tensor(x), size=(6, 6), mode="bilinear", align_corners=True).data)
    default = np.asarray(DF.interpolate(distnn.tensor(x), size=(6, 6), mode="bilinear").data)
    np.testing.assert_array_equal(bil, aligned)
    assert not np.allclose(bil, default)


# ---------------------------------------------------------------------------- numerical gradients
def test_gradients_are_numerically_right():
    check_grad(lambda t: DF.local_response_norm(t, 3, 0.5, 0.8, 1.2), distnn.tensor(R.standard_normal((2, 5, 3)),
                                                                                    requires_grad=True))
    check_grad(lambda t: DF.local_response_norm(t, 4, 1.0, 0.6, 2.0),
               distnn.tensor(R.standard_normal((1, 4, 2, 2, 2)), requires_grad=True))
    for p in (1.5, 2, 3):
        check_grad(lambda t: DF.pdist(t, p), distnn.tensor(R.standard_normal((4, 3)), requires_grad=True))
    a, pos, neg = (distnn.tensor(R.standard_normal((4, 3)), requires_grad=True) for _ in range(3))
    check_grad(lambda *t: DF.triplet_margin_with_distance_loss(*t, margin=5.0, swap=True), a, pos, neg)


# ---------------------------------------------------------------------------- refusals
def _refusals(fd, ft, arg_d, arg_t, match):
    with pytest.raises(Exception) as te:
        ft(arg_t)
    with pytest.raises(type(te.value), match=match):
        fd(arg_d)


def test_refusals_are_pytorchs():
    x2 = np.zeros((2, 3))
    _refusals(lambda x: DF.local_response_norm(x, 2), lambda x: TF.local_response_norm(x, 2), distnn.tensor(x2),
              torch.tensor(x2), "3D or higher dimensionality input")
    _refusals(lambda x: DF.local_response_norm(x, 2.5), lambda x: TF.local_response_norm(x, 2.5),
              distnn.tensor(np.zeros((1, 2, 3))), torch.zeros(1, 2, 3), "size must be an int")
    x3 = np.zeros((1, 2, 3))
    _refusals(dnn.CrossMapLRN2d(3), torch.nn.CrossMapLRN2d(3), distnn.tensor(x3), torch.tensor(x3),
              "Expected input to be 4D, got 3D instead")
    for bad, match in [(np.zeros((2, 2, 2)), "only supports 2D tensors, got: 3D"),
                       (np.zeros(3), "only supports 2D tensors, got: 1D"),
                       (np.zeros((2, 2), np.int64), "only supports floating-point dtypes")]:
        _refusals(DF.pdist, torch.pdist, distnn.tensor(bad), torch.tensor(bad), match)
    for p in (-1.0, float("nan")):
        _refusals(lambda x: DF.pdist(x, p), lambda x: torch.pdist(x, p), distnn.tensor(x2), torch.tensor(x2),
                  "only supports non-negative p values")
    a2, a1 = np.zeros((2, 3)), np.zeros(3)
    for fn in (DF.triplet_margin_with_distance_loss, TF.triplet_margin_with_distance_loss):
        lib = distnn.tensor if fn is DF.triplet_margin_with_distance_loss else torch.tensor
        with pytest.raises(ValueError, match="margin must be greater than 0, got 0"):
            fn(lib(a2), lib(a2), lib(a2), margin=0)
        with pytest.raises(ValueError, match="'avg' is not a valid value for reduction|avg is not a valid value"):
            fn(lib(a2), lib(a2), lib(a2), reduction="avg")
        with pytest.raises(RuntimeError, match="anchor 2D, positive 1D, and negative 2D inputs"):
            fn(lib(a2), lib(a1), lib(a2))
        with pytest.raises(TypeError):  # (positional margin: keyword-only, as PyTorch's)
            fn(lib(a2), lib(a2), lib(a2), None, 1.0)
    for mod in (dnn.TripletMarginWithDistanceLoss, torch.nn.TripletMarginWithDistanceLoss):
        with pytest.raises(ValueError, match="TripletMarginWithDistanceLoss: expected margin to be greater than 0, "
                                             "got -1.0 instead"):
            mod(margin=-1.0)
    with pytest.raises(ValueError, match="size must be greater than zero"):  # (PyTorch: at the first forward)
        dnn.LocalResponseNorm(0)
    with pytest.raises(ValueError, match="size must be greater than zero"):  # (PyTorch: ZeroDivisionError)
        dnn.CrossMapLRN2d(0)


# ---------------------------------------------------------------------------- modules
def test_reprs_and_state_are_pytorchs():
    pairs = [(dnn.LocalResponseNorm(3), torch.nn.LocalResponseNorm(3)),
             (dnn.LocalResponseNorm(2, alpha=0.5, beta=1.0, k=2.0), torch.nn.LocalResponseNorm(2, 0.5, 1.0, 2.0)),
             (dnn.CrossMapLRN2d(5), torch.nn.CrossMapLRN2d(5)),
             (dnn.CrossMapLRN2d(5, 0.1, 0.5, 2), torch.nn.CrossMapLRN2d(5, 0.1, 0.5, 2)),
             (dnn.TripletMarginWithDistanceLoss(), torch.nn.TripletMarginWithDistanceLoss()),
             (dnn.TripletMarginWithDistanceLoss(distance_function=lambda a, b: a, margin=2.0, swap=True),
              torch.nn.TripletMarginWithDistanceLoss(distance_function=lambda a, b: a, margin=2.0, swap=True))]
    for d, t in pairs:
        assert repr(d) == repr(t)
        assert dict(d.state_dict()) == {} == dict(t.state_dict())
    loss = dnn.TripletMarginWithDistanceLoss()
    assert isinstance(loss.distance_function, dnn.PairwiseDistance)
    assert dict(loss.named_children()).keys() == {"distance_function"}


def test_rnn_bases_are_exported_with_pytorchs_names():
    for cls in (dnn.RNN, dnn.LSTM, dnn.GRU):
        assert isinstance(cls(3, 4), dnn.RNNBase)
        assert issubclass(getattr(torch.nn, cls.__name__), torch.nn.RNNBase)
    for cls in (dnn.RNNCell, dnn.LSTMCell, dnn.GRUCell):
        assert isinstance(cls(3, 4), dnn.RNNCellBase)
        assert issubclass(getattr(torch.nn, cls.__name__), torch.nn.RNNCellBase)
    assert repr(dnn.RNNBase("LSTM", 3, 4)) == repr(torch.nn.RNNBase("LSTM", 3, 4))
    assert repr(dnn.RNNCellBase(3, 4, True, 2)) == repr(torch.nn.RNNCellBase(3, 4, True, 2))


def test_a_small_model_with_local_response_norm_trains():
    rng = np.random.default_rng(0)
    x = distnn.tensor(rng.standard_normal((16, 2, 6, 6)).astype(np.float32))
    y = distnn.tensor((np.asarray(x.data).mean(axis=(1, 2, 3)) > 0).astype(np.int64))
    model = dnn.Sequential(dnn.Conv2d(2, 6, 3, padding=1), dnn.ReLU(), dnn.LocalResponseNorm(3, alpha=1.0, k=2.0),
                           dnn.Flatten(), dnn.Linear(6 * 36, 2))
    opt = optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(30):
        loss = DF.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(np.asarray(loss.data)))
    assert losses[-1] < 0.5 * losses[0]


def test_triplet_with_distance_passes_the_gradient_at_the_hinges_corner():
    # margin + d(a, p) - d(a, n) = 1 + 1 - 2 = 0 exactly: PyTorch's clamp_min passes the gradient there
    a, p, n = np.zeros((2, 2)), np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[2.0, 0.0], [0.0, 3.0]])
    out, grads = _both(lambda *t: DF.triplet_margin_with_distance_loss(
                           *t, distance_function=lambda u, v: (u - v).abs().sum(-1), reduction="sum"),
                       lambda *t: TF.triplet_margin_with_distance_loss(
                           *t, distance_function=lambda u, v: (u - v).abs().sum(-1), reduction="sum"), a, p, n)
    assert out == 0.0 and grads[1][0].any()
