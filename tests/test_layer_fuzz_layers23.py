"""Seeded fuzz of the layers added with LSTM's ``proj_size`` against PyTorch (the oracle), with
tests/layer_fuzz_harness.py: random valid hyper-parameters and shapes, the same float64 weights in both
libraries, and outputs, input gradients and parameter gradients compared to tight tolerances.

Covered: LSTM with ``proj_size`` (multi-layer, bidirectional, batch_first, unbatched, given or zero
initial states), RMSNorm and F.rms_norm, F.interpolate and Upsample ('nearest', 'nearest-exact',
'linear', 'bilinear', 'trilinear', 'area'; size or scale_factor, align_corners, recompute_scale_factor),
F.unfold/F.fold and Unfold/Fold, Conv3d and F.conv3d (groups, stride, dilation, padding 'same'/'valid',
padding modes), BatchNorm3d (training and eval steps, running statistics).

Left out, at their generators: PyTorch's nearest gradient for 3-D and 5-D inputs where its backward takes
a shortcut its forward does not (only the forward is compared there), and 'area' to an empty output
(PyTorch's forward runs, its backward refuses; distnn's forward refuses).

Also: the constructors' parameters, initialisation and refusals against PyTorch's, a float32 check per
layer, and a small model using each trained through the public API (its loss must fall).

``DISTNN_LAYER_FUZZ_CASES`` sets the number of cases per op (default 4), ``DISTNN_LAYER_FUZZ_START`` the
first seed, as for tests/layer_fuzz_harness.py.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402

from layer_fuzz_harness import G, C, layer_input as _input, float32_pair, op_registry, run_cases, trains  # noqa: E402

TF = torch.nn.functional
OPS, op = op_registry()


# ---- LSTM with projections
@op("LSTM proj_size")
def _lstm_proj(c):
    H = c.draw(hidden=c.int(2, 5))
    I, P, L, bias, bf, bi = c.draw(input_size=c.int(1, 4), proj_size=c.int(1, H - 1), num_layers=c.int(1, 3),
                                   bias=c.coin(0.7), batch_first=c.coin(), bidirectional=c.coin())
    train = c.draw(train=c.coin())
    kw = dict(num_layers=L, bias=bias, batch_first=bf, bidirectional=bi, proj_size=P,
              dropout=c.draw(dropout=0.0 if train else c.pick(0.0, 0.5)))  # (eval: dropout does nothing)
    dm, tm = dnn.LSTM(I, H, **kw), torch.nn.LSTM(I, H, **kw)
    dm.train(train)
    tm.train(train)
    c.randomize(dm)
    T, N = c.draw(T=c.int(1, 5), N=c.pick(None, c.dim(3)))
    x = c.normal(*((T, I) if N is None else (N, T, I) if bf else (T, N, I)))
    DL = L * (2 if bi else 1)
    lead = (DL,) if N is None else (DL, N)
    h0 = c.draw(h0=c.pick(None, "const", "grad", "mixed"))
    if h0 is None:
        return c.run(dm, tm, [_input(c, x.shape)], dm, tm)
    wrap_h, wrap_c = {"const": (C, C), "grad": (G, G), "mixed": c.pick((C, G), (G, C))}[h0]
    hx = (wrap_h(c.normal(*lead, P)), wrap_c(c.normal(*lead, H)))
    return c.run(dm, tm, [_input(c, x.shape), hx], dm, tm)


# ---- RMS normalization
@op("RMSNorm/F.rms_norm")
def _rms_norm(c):
    nd = c.int(1, 3)
    shape = tuple(c.dim(4) for _ in range(nd + c.int(0, 2)))
    ns = c.draw(shape=shape, normalized_shape=shape[len(shape) - nd:])[1]
    affine, eps = c.draw(affine=c.coin(0.7), eps=c.pick(None, None, 1e-5, 0.1, 2.0))
    scale = c.draw(scale=c.pick(1.0, 1e-4, 100.0))  # (small inputs: eps matters)
    if c.draw(module=c.coin(0.7)):
        norm_arg = ns[0] if len(ns) == 1 and c.coin() else list(ns)
        dm = dnn.RMSNorm(norm_arg, eps=eps, elementwise_affine=affine)
        tm = torch.nn.RMSNorm(norm_arg, eps=eps, elementwise_affine=affine)
        c.randomize(dm)
        return c.run(dm, tm, [G(c.normal(*shape) * scale) if c.coin(0.85) else C(c.normal(*shape) * scale)], dm, tm)
    args = [G(c.normal(*shape) * scale), G(c.normal(*ns)) if affine else None]
    return c.run(lambda x, w: DF.rms_norm(x, ns, w, eps), lambda x, w: TF.rms_norm(x, ns, w, eps), args)


# ---- interpolation
@op("F.interpolate/Upsample")
def _interpolate(c):
    mode = c.draw(mode=c.pick("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "area", "nearest",
                              "bilinear"))
    dim = {"linear": 1, "bilinear": 2, "trilinear": 3}.get(mode) or c.int(1, 3 if mode != "area" else 2)
    shape = c.draw(shape=(c.int(0, 3) if c.coin(0.05) else c.int(1, 3), c.int(1, 3))
                   + tuple(c.int(1, 7 if dim < 3 else 4) for _ in range(dim)))
    align = c.draw(align_corners=c.pick(None, True, False) if mode in ("linear", "bilinear", "trilinear") else None)
    recompute = None
    if c.draw(by=c.pick("size", "scale")) == "size":
        size = c.pick(c.int(1, 9), tuple(c.int(1, 9 if dim < 3 else 5) for _ in range(dim)))
        scale = None
    else:
        size = None

        def factor():  # exact and inexact factors, up and down, and now and then one that PyTorch's
            return c.pick(2.0, 3.0, 0.5, 1.0, 1.5, 2.5, 0.7, 1.3, 1.01, 0.99, 1 / 3, float(c.rng.uniform(0.3, 3.5)))
        scale = c.pick(factor(), tuple(factor() for _ in range(dim)))
        recompute = c.pick(None, True, False)
    c.draw(size=size, scale_factor=scale, recompute_scale_factor=recompute)
    kw = dict(size=size, scale_factor=scale, mode=mode, recompute_scale_factor=recompute)
    if align is not None:
        kw["align_corners"] = align
    if mode == "area" and scale is not None and any(
            int(n * f) < 1 for n, f in zip(shape[2:], scale if isinstance(scale, tuple) else (scale,) * dim)):
        # PyTorch's adaptive pooling to an empty output runs forward and refuses backward; distnn's refuses
        # forward (the existing adaptive pools'). Left out.
        return False
    x = c.normal(*shape, ties=True)
    arg = G(x)
    if mode == "nearest" and dim != 2 and scale is not None and not recompute and _nearest_backward_differs(shape,
                                                                                                             scale):
        # PyTorch's nearest backward takes an output as long as the input for a copy, and one twice as long for
        # i >> 1, whatever the scale; its forward does so for 4-D inputs only (scale_factor 1.01 on 5 values of
        # a 3-D input: forward reads 0, 0, 1, 2, 3, backward sends to 0, 1, 2, 3, 4). distnn's gradient is that
        # of the forward: only the forward is compared there.
        arg = C(x)
    if c.draw(module=c.coin(0.3)):
        return c.run(dnn.Upsample(**kw), torch.nn.Upsample(**kw), [arg])
    return c.run(lambda a: DF.interpolate(a, **kw), lambda a: TF.interpolate(a, **kw), [arg])


def _nearest_backward_differs(shape, scale):
    spatial = shape[2:]
    scales = scale if isinstance(scale, tuple) else (scale,) * len(spatial)
    return any(int(n * s) in (n, 2 * n) and n * s != int(n * s) for n, s in zip(spatial, scales))


# ---- unfold and fold
def _pair_or_int(c, lo, hi):
    return c.pick(c.int(lo, hi), (c.int(lo, hi), c.int(lo, hi)))


def _blocks(c):
    return c.draw(kernel_size=_pair_or_int(c, 1, 3), dilation=c.pick(1, _pair_or_int(c, 1, 3)),
                  padding=c.pick(0, _pair_or_int(c, 0, 2)), stride=c.pick(1, _pair_or_int(c, 1, 3)))


def _two(v):
    return (v, v) if isinstance(v, int) else tuple(v)


@op("F.unfold/Unfold")
def _unfold(c):
    k, d, p, s = _blocks(c)
    shape = c.draw(shape=((c.int(0, 3) if c.coin(0.1) else c.int(1, 3),) if c.coin(0.8) else ())
                   + (c.int(1, 3), c.int(1, 7), c.int(1, 7)))
    x = c.normal(*shape)
    if c.draw(module=c.coin(0.4)):
        return c.run(dnn.Unfold(k, d, p, s), torch.nn.Unfold(k, d, p, s), [G(x)])
    return c.run(lambda a: DF.unfold(a, k, d, p, s), lambda a: TF.unfold(a, k, d, p, s), [G(x)])


@op("F.fold/Fold")
def _fold(c):
    k, d, p, s = _blocks(c)
    size = c.draw(output_size=_pair_or_int(c, 1, 7))
    blocks = [(n + 2 * pp - dd * (kk - 1) - 1) // ss + 1
              for n, kk, dd, pp, ss in zip(_two(size), _two(k), _two(d), _two(p), _two(s))]
    C_ = c.int(1, 3)
    kk = _two(k)[0] * _two(k)[1]
    rows, L = C_ * kk, max(blocks[0], 0) * max(blocks[1], 0)
    if c.coin(0.05):  # now and then a wrong shape: both must refuse
        rows, L = c.pick((rows + 1, L), (rows, L + 1))
    shape = c.draw(shape=((c.int(0, 3) if c.coin(0.1) else c.int(1, 3),) if c.coin(0.8) else ()) + (rows, max(L, 1)))
    x = c.normal(*shape)
    if c.draw(module=c.coin(0.4)):
        return c.run(dnn.Fold(size, k, d, p, s), torch.nn.Fold(size, k, d, p, s), [G(x)])
    return c.run(lambda a: DF.fold(a, size, k, d, p, s), lambda a: TF.fold(a, size, k, d, p, s), [G(x)])


# ---- 3-D convolution and batch norm
def _triple_or_int(c, lo, hi):
    return c.pick(c.int(lo, hi), tuple(c.int(lo, hi) for _ in range(3)))


@op("Conv3d/F.conv3d")
def _conv3d(c):
    groups = c.pick(1, 1, 2)
    cin, cout = groups * c.int(1, 2), groups * c.int(1, 2)
    k = _triple_or_int(c, 1, 3)
    stride = c.pick(1, _triple_or_int(c, 1, 2))
    dilation = c.pick(1, _triple_or_int(c, 1, 2))
    padding = c.pick(0, _triple_or_int(c, 0, 2), "valid", "same")
    if padding == "same":
        stride = 1
    bias = c.coin(0.7)
    shape = ((c.int(0, 2) if c.coin(0.1) else c.int(1, 2),) if c.coin(0.85) else ()) + \
        (cin,) + tuple(c.int(1, 5) for _ in range(3))
    c.draw(groups=groups, cin=cin, cout=cout, k=k, stride=stride, dilation=dilation, padding=padding, bias=bias,
           shape=shape)
    if c.draw(functional=c.coin(0.3)):
        args = [G(c.normal(*shape)), G(c.normal(cout, cin // groups, *((k,) * 3 if isinstance(k, int) else k))),
                G(c.normal(cout)) if bias else None]
        return c.run(lambda x, w, b: DF.conv3d(x, w, b, stride, padding, dilation, groups),
                     lambda x, w, b: TF.conv3d(x, w, b, stride, padding, dilation, groups), args)
    mode = c.draw(padding_mode=c.pick("zeros", "zeros", "reflect", "replicate", "circular"))
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias, padding_mode=mode)
    try:
        tm = torch.nn.Conv3d(cin, cout, k, **kw)
    except (ValueError, RuntimeError):
        return False
    dm = dnn.Conv3d(cin, cout, k, **kw)
    c.randomize(dm)
    return c.run(dm, tm, [_input(c, shape)], dm, tm)


@op("BatchNorm3d")
def _batchnorm3d(c):
    C_ = c.int(1, 3)
    shape = c.draw(shape=(c.dim(3), C_, c.int(1, 3), c.int(1, 3), c.int(1, 3)))
    affine, track, momentum, eps = c.draw(affine=c.coin(), track=c.coin(0.7),
                                          momentum=c.pick(0.1, 0.5, None, 0.0, 1.0), eps=c.pick(1e-5, 1e-3, 0.5))
    modes = c.draw(modes=[c.coin(0.7) for _ in range(3)])
    kw = dict(eps=eps, momentum=momentum, affine=affine, track_running_stats=track)
    dm, tm = dnn.BatchNorm3d(C_, **kw), torch.nn.BatchNorm3d(C_, **kw)
    c.randomize(dm)
    inputs = [c.normal(*shape) * c.pick(1.0, 3.0) + c.pick(0.0, 2.0) for _ in range(3)]
    return c.run(dm, tm, lambda s: [G(inputs[s])], dm, tm, steps=3, modes=modes)


# ---------------------------------------------------------------------------- the fuzz
@pytest.mark.filterwarnings("ignore:dropout option adds dropout after all but last recurrent layer")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", sorted(OPS))
def test_layers23_fuzz_matches_pytorch(name):
    run_cases(name, OPS[name])


# ---------------------------------------------------------------------------- constructors, refusals, repr
def _same_state(dm, tm):
    dstate, tstate = dm.state_dict(), tm.state_dict()
    assert list(dstate) == list(tstate)  # (the same order too: PyTorch's registration order)
    for k, v in tstate.items():
        assert tuple(np.asarray(dstate[k]).shape) == tuple(v.shape), k
    assert repr(dm) == repr(tm)


@pytest.mark.parametrize("kw", [dict(), dict(num_layers=2, bidirectional=True), dict(bias=False, num_layers=3)])
def test_lstm_proj_size_parameters_initialisation_and_repr_are_pytorchs(kw):
    dm, tm = dnn.LSTM(3, 6, proj_size=2, **kw), torch.nn.LSTM(3, 6, proj_size=2, **kw)
    _same_state(dm, tm)
    assert dm.weight_hr_l0.shape == (2, 6) and dm.weight_hh_l0.shape == (24, 2)
    bound = 1 / np.sqrt(6)  # every parameter U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), W_hr too
    for name, p in dm.named_parameters():
        w = np.asarray(p.data)
        assert np.abs(w).max() <= bound, name
    assert np.abs(np.asarray(dm.weight_hr_l0.data)).max() > 0.5 * bound


def test_lstm_proj_size_refusals_are_pytorchs():
    for bad, match in ((-1, "positive integer or zero"), (6, "smaller than hidden_size"), (7, "smaller than")):
        with pytest.raises(ValueError, match=match):
            torch.nn.LSTM(3, 6, proj_size=bad)
        with pytest.raises(ValueError, match=match):
            dnn.LSTM(3, 6, proj_size=bad)
    m = dnn.LSTM(3, 6, proj_size=2, num_layers=2).double()
    x = distnn.tensor(np.zeros((4, 5, 3)))
    out, (h, c) = m(x)
    assert out.shape == (4, 5, 2) and h.shape == (2, 5, 2) and c.shape == (2, 5, 6)
    with pytest.raises(ValueError, match="h_0"):  # h_0 of hidden_size, not proj_size: refused as in PyTorch
        m(x, (distnn.tensor(np.zeros((2, 5, 6))), distnn.tensor(np.zeros((2, 5, 6)))))
    with pytest.raises(ValueError, match="c_0"):
        m(x, (distnn.tensor(np.zeros((2, 5, 2))), distnn.tensor(np.zeros((2, 5, 2)))))


def test_rms_norm_parameters_and_repr_are_pytorchs():
    for args, kw in (((4,), {}), (([3, 4],), dict(eps=1e-3)), ((5,), dict(elementwise_affine=False))):
        dm, tm = dnn.RMSNorm(*args, **kw), torch.nn.RMSNorm(*args, **kw)
        _same_state(dm, tm)
        for k, v in tm.state_dict().items():
            np.testing.assert_array_equal(np.asarray(dm.state_dict()[k]), v.numpy())
    with pytest.raises(ValueError, match="normalized_shape"):
        DF.rms_norm(distnn.tensor(np.zeros((2, 3))), (4,))
    # eps=None is the dtype's machine epsilon: visible on an all-zero row (0 / sqrt(0 + eps) = 0) and on tiny ones
    x = np.full((2, 3), 1e-9)
    for dtype in (np.float32, np.float64):
        ours = np.asarray(DF.rms_norm(distnn.tensor(x.astype(dtype)), (3,)).data)
        ref = TF.rms_norm(torch.from_numpy(x.astype(dtype)), (3,)).numpy()
        np.testing.assert_allclose(ours, ref, rtol=1e-6 if dtype == np.float32 else 1e-12)
        assert ours.dtype == dtype


def test_interpolate_refusals_and_upsample_repr_are_pytorchs():
    x3, x4 = np.zeros((1, 2, 5)), np.zeros((1, 2, 4, 5))
    cases = [(x4, dict(size=3, align_corners=True), ValueError), (x4, dict(size=3, scale_factor=2.0), ValueError),
             (x4, dict(), ValueError), (x3, dict(size=3, mode="bilinear"), NotImplementedError),
             (x4, dict(size=3, mode="linear"), NotImplementedError), (x4, dict(size=(3,)), ValueError),
             (x4, dict(size=3, recompute_scale_factor=True), ValueError)]
    for x, kw, err in cases:
        with pytest.raises(err):
            TF.interpolate(torch.from_numpy(x), **kw)
        with pytest.raises(err):
            DF.interpolate(distnn.tensor(x), **kw)
    for kw in (dict(scale_factor=2), dict(size=(3, 4), mode="bilinear", align_corners=True),
               dict(scale_factor=(2, 1.5), mode="nearest-exact")):
        assert repr(dnn.Upsample(**kw)) == repr(torch.nn.Upsample(**kw))
    assert repr(dnn.UpsamplingBilinear2d(scale_factor=2)) == repr(torch.nn.UpsamplingBilinear2d(scale_factor=2))
    assert repr(dnn.UpsamplingNearest2d(size=3)) == repr(torch.nn.UpsamplingNearest2d(size=3))
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(np.asarray(dnn.UpsamplingBilinear2d(scale_factor=2)(distnn.tensor(x)).data),
                               torch.nn.UpsamplingBilinear2d(scale_factor=2)(torch.from_numpy(x)).numpy(),
                               rtol=1e-12, atol=1e-12)


def test_fold_and_unfold_repr_and_refusals_are_pytorchs():
    for dm, tm in ((dnn.Unfold(2, padding=1), torch.nn.Unfold(2, padding=1)),
                   (dnn.Fold((4, 5), (2, 3), stride=2), torch.nn.Fold((4, 5), (2, 3), stride=2))):
        assert repr(dm) == repr(tm)
    with pytest.raises(ValueError, match="sliding blocks"):
        DF.unfold(distnn.tensor(np.zeros((1, 2, 1, 5))), 2)
    with pytest.raises(ValueError, match="divisible"):
        DF.fold(distnn.tensor(np.zeros((1, 11, 12))), (4, 5), 2)
    with pytest.raises(ValueError, match="sliding blocks"):
        DF.fold(distnn.tensor(np.zeros((1, 12, 11))), (4, 5), 2)


def test_conv3d_and_batch_norm3d_parameters_and_initialisation_are_pytorchs():
    for dm, tm in ((dnn.Conv3d(4, 6, (2, 3, 1), groups=2, padding="same"),
                    torch.nn.Conv3d(4, 6, (2, 3, 1), groups=2, padding="same")),
                   (dnn.Conv3d(2, 3, 2, stride=2, bias=False, padding_mode="circular"),
                    torch.nn.Conv3d(2, 3, 2, stride=2, bias=False, padding_mode="circular")),
                   (dnn.BatchNorm3d(4), torch.nn.BatchNorm3d(4))):
        _same_state(dm, tm)
    w = np.asarray(dnn.Conv3d(4, 6, (2, 3, 1), groups=2).weight.data)
    bound = 1 / np.sqrt(2 * 2 * 3 * 1)  # kaiming_uniform_(a=sqrt(5)): 1/sqrt(fan_in), fan_in C_in/groups * kernel
    assert w.shape == (6, 2, 2, 3, 1) and bound * 0.7 < np.abs(w).max() <= bound
    with pytest.raises(ValueError, match="BatchNorm3d"):
        dnn.BatchNorm3d(3)(distnn.tensor(np.zeros((2, 3, 4, 4))))


# ---------------------------------------------------------------------------- float32
@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("layer", ["LSTM", "RMSNorm", "Upsample", "Unfold", "Fold", "Conv3d", "BatchNorm3d"])
def test_layer_float32_matches_pytorch(layer):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    make, shape = {
        "LSTM": (lambda lib: lib.LSTM(5, 8, num_layers=2, proj_size=3, bidirectional=True, batch_first=True),
                 (4, 6, 5)),
        "RMSNorm": (lambda lib: lib.RMSNorm((4, 5)), (3, 4, 5)),
        "Upsample": (lambda lib: lib.Upsample(scale_factor=1.7, mode="bilinear"), (2, 3, 5, 6)),
        "Unfold": (lambda lib: lib.Unfold((2, 3), dilation=2, padding=1, stride=(2, 1)), (2, 3, 7, 6)),
        "Fold": (lambda lib: lib.Fold((5, 6), 2, padding=1, stride=2), (2, 12, 12)),
        "Conv3d": (lambda lib: lib.Conv3d(4, 6, (2, 3, 3), stride=(1, 2, 1), padding=1, groups=2), (2, 4, 3, 6, 5)),
        "BatchNorm3d": (lambda lib: lib.BatchNorm3d(3), (4, 3, 2, 3, 3)),
    }[layer]
    tm = make(torch.nn)
    if layer == "RMSNorm":
        with torch.no_grad():
            tm.weight.normal_()
    float32_pair(make(dnn), tm, rng.standard_normal(shape).astype(np.float32))


# ---------------------------------------------------------------------------- training through the public API
class _Patches(dnn.Module):
    """A 2x2 stride-2 convolution written as unfold, a linear map of the patches, and fold back (an autoencoder)."""

    def __init__(self):
        super().__init__()
        self.enc, self.dec = dnn.Linear(4, 6), dnn.Linear(6, 4)

    def forward(self, x):
        cols = DF.unfold(x, 2, stride=2).transpose(1, 2)  # (N, L, 4)
        return DF.fold(self.dec(DF.relu(self.enc(cols))).transpose(1, 2), (8, 8), 2, stride=2)


@pytest.mark.parametrize("layer", ["LSTM proj_size", "RMSNorm", "Upsample", "Unfold/Fold", "Conv3d"])
def test_a_small_model_with_the_layer_trains(layer):
    distnn.manual_seed(0)
    rng = np.random.default_rng(0)
    if layer == "LSTM proj_size":  # the running sum of a sequence, through a projected LSTM
        x = rng.standard_normal((32, 6, 2)).astype(np.float32)
        target = np.cumsum(x[..., :1], axis=1) / 3
        model = dnn.LSTM(2, 16, num_layers=2, proj_size=1, batch_first=True)
    elif layer == "RMSNorm":
        x = rng.standard_normal((64, 8)).astype(np.float32) * 3
        target = np.tanh(x[:, :2] - x[:, 2:4])
        model = dnn.Sequential(dnn.Linear(8, 32), dnn.RMSNorm(32), dnn.ReLU(), dnn.Linear(32, 2))
    elif layer == "Upsample":  # a 3x3 image to 6x6: each value doubled and shifted, over its 2x2 block
        x = rng.standard_normal((32, 1, 3, 3)).astype(np.float32)
        target = np.repeat(np.repeat(x, 2, axis=2), 2, axis=3) * 2 - 0.5
        model = dnn.Sequential(dnn.Conv2d(1, 8, 1), dnn.Upsample(scale_factor=2), dnn.Conv2d(8, 1, 1))
    elif layer == "Conv3d":  # a 3-D blur learnt by a 3-D convolution with BatchNorm3d before it
        x = rng.standard_normal((16, 1, 4, 5, 5)).astype(np.float32)
        target = (x[:, :, :-1, :-1, :-1] + x[:, :, 1:, 1:, 1:]) / 2
        model = dnn.Sequential(dnn.BatchNorm3d(1), dnn.Conv3d(1, 4, 2), dnn.ReLU(), dnn.Conv3d(4, 1, 1))
    else:
        x = rng.uniform(0, 1, (32, 1, 8, 8)).astype(np.float32)
        target = x
        model = _Patches()
    first, last = trains(model, x, target, steps=40, lr=0.02)
    assert last < 0.6 * first, (first, last)
