"""Seeded fuzz (tests/layer_fuzz_harness.py) of distnn's normalization, embedding and recurrent layers against
PyTorch over their hyper-parameters: BatchNorm1d/2d and F.batch_norm (running statistics compared after every
step), LayerNorm, Embedding (max_norm renormalizing the table, from_pretrained), F.one_hot, RNN, LSTM, GRU and
their cells.

Left out, at its generator with the reason: batch_norm with a non-contiguous weight (PyTorch inconsistent)."""
from __future__ import annotations

import math

import pytest

import distnn.functional as DF
from distnn import nn as dnn

from layer_fuzz_harness import C, G, TF, layer_input, op_registry, run_cases, run_functional_norm


torch = pytest.importorskip("torch")
OPS, op = op_registry()


# ---- normalization
@op("BatchNorm")
def _batchnorm(c):
    which = c.draw(which=c.pick("1d", "2d"))
    C_ = c.int(1, 4)
    shape = (c.dim(4), C_) + ((c.int(1, 3),) * c.int(0, 1) if which == "1d" else (c.int(1, 3), c.int(1, 3)))
    affine, track, momentum, eps = c.draw(affine=c.coin(), track=c.coin(0.7),
                                          momentum=c.pick(0.1, 0.5, None, 0.0, 1.0), eps=c.pick(1e-5, 1e-3, 0.5))
    modes = c.draw(modes=[c.coin(0.7) for _ in range(4)])
    c.draw(shape=shape)
    kw = dict(eps=eps, momentum=momentum, affine=affine, track_running_stats=track)
    dcls, tcls = (dnn.BatchNorm1d, torch.nn.BatchNorm1d) if which == "1d" else (dnn.BatchNorm2d, torch.nn.BatchNorm2d)
    dm, tm = dcls(C_, **kw), tcls(C_, **kw)
    c.randomize(dm)
    inputs = [c.normal(*shape) * c.pick(1.0, 3.0) + c.pick(0.0, 2.0) for _ in range(4)]
    return c.run(dm, tm, lambda s: [G(inputs[s])], dm, tm, steps=4, modes=modes)


@op("F.batch_norm")
def _f_batchnorm(c):
    C_ = c.int(1, 4)
    shape = c.draw(shape=(c.dim(4), C_) + tuple(c.int(1, 3) for _ in range(c.int(0, 2))))
    training, momentum, eps, w, b, running = c.draw(training=c.coin(), momentum=c.pick(0.1, 0.7, 0.0),
                                                    eps=c.pick(1e-5, 0.1), weight=c.coin(), bias=c.coin(),
                                                    running=c.coin(0.7))
    # (PyTorch's batch_norm backward reads a non-contiguous weight as if it were contiguous: NaN or wrong
    # input gradients. Its weight and bias are kept contiguous here.)
    return run_functional_norm(c, shape, C_, w, b, running, lambda *a: DF.batch_norm(*a, training, momentum, eps),
                               lambda *a: TF.batch_norm(*a, training, momentum, eps))


@op("LayerNorm")
def _layernorm(c):
    nd = c.int(1, 3)
    shape = tuple(c.dim(4) for _ in range(nd + c.int(0, 2)))
    ns = c.draw(shape=shape, normalized_shape=shape[len(shape) - nd:])[1]
    affine, bias, eps = c.draw(affine=c.coin(0.7), bias=c.coin(0.7), eps=c.pick(1e-5, 0.1))
    if c.coin(0.7):
        norm_arg = ns[0] if len(ns) == 1 and c.coin() else list(ns)
        dm = dnn.LayerNorm(norm_arg, eps=eps, elementwise_affine=affine, bias=bias)
        tm = torch.nn.LayerNorm(norm_arg, eps=eps, elementwise_affine=affine, bias=bias)
        c.randomize(dm)
        return c.run(dm, tm, [layer_input(c, shape)], dm, tm)
    args = [G(c.normal(*shape)), G(c.normal(*ns)) if affine else None, G(c.normal(*ns)) if bias else None]
    return c.run(lambda x, w, b: DF.layer_norm(x, ns, w, b, eps), lambda x, w, b: TF.layer_norm(x, ns, w, b, eps),
                 args)


# ---- embedding
@op("Embedding")
def _embedding(c):
    num, dim = c.draw(num=c.int(1, 8), dim=c.int(1, 5))
    pad = c.draw(padding_idx=c.pick(None, c.int(-num, num - 1)))
    max_norm = c.draw(max_norm=c.pick(None, None, c.rng.uniform(0.3, 2.0)))
    norm_type = c.draw(norm_type=c.pick(2.0, 1.0, 3.0, 0.5, math.inf))
    sgf = c.draw(scale_grad_by_freq=c.coin(0.3))
    ishape = c.draw(ishape=tuple(c.dim(4) for _ in range(c.int(0, 3))))
    idx = c.rng.integers(0, num, size=ishape)
    kw = dict(padding_idx=pad, max_norm=max_norm, norm_type=norm_type, scale_grad_by_freq=sgf)
    how = c.draw(how=c.pick("module", "functional", "from_pretrained"))
    if how == "functional":
        w = c.normal(num, dim)
        return c.run(lambda i, wt: DF.embedding(i, wt, **kw), lambda i, wt: TF.embedding(i, wt, **kw),
                     [C(idx), G(w)])
    if how == "from_pretrained":
        freeze = c.draw(freeze=c.coin())
        w = c.normal(num, dim)
        dm = dnn.Embedding.from_pretrained(w.copy(), freeze=freeze, **kw)
        tm = torch.nn.Embedding.from_pretrained(torch.from_numpy(w.copy()), freeze=freeze, **kw)
    else:
        dm, tm = dnn.Embedding(num, dim, **kw), torch.nn.Embedding(num, dim, **kw)
        c.randomize(dm)
    return c.run(dm, tm, [C(idx)], dm, tm, steps=2)


@op("F.one_hot")
def _one_hot(c):
    n = c.draw(num_classes=c.pick(-1, c.int(1, 6)))
    ishape = c.draw(ishape=tuple(c.dim(4) for _ in range(c.int(0, 3))))
    idx = c.rng.integers(0, 6 if n == -1 else n, size=ishape)
    return c.run(lambda i: DF.one_hot(i, n), lambda i: TF.one_hot(i, n), [C(idx)], backward=False)


# ---- recurrent
def _rnn_module(c, kind):
    I, H, L, bias, bf, bi = c.draw(input_size=c.int(1, 4), hidden=c.int(1, 4), num_layers=c.int(1, 3),
                                   bias=c.coin(0.7), batch_first=c.coin(), bidirectional=c.coin())
    train = c.draw(train=c.coin())
    kw = dict(num_layers=L, bias=bias, batch_first=bf, bidirectional=bi,
              dropout=c.draw(dropout=0.0 if train else c.pick(0.0, 0.5)))  # (eval: dropout does nothing)
    if kind == "RNN":
        kw["nonlinearity"] = c.draw(nonlinearity=c.pick("tanh", "relu"))
    dm, tm = getattr(dnn, kind)(I, H, **kw), getattr(torch.nn, kind)(I, H, **kw)
    dm.train(train)
    tm.train(train)
    return dm, tm, I, H, L * (2 if bi else 1), bf


@op("RNN/LSTM/GRU")
def _rnn(c):
    kind = c.draw(kind=c.pick("RNN", "LSTM", "GRU"))
    dm, tm, I, H, DL, bf = _rnn_module(c, kind)
    c.randomize(dm)
    T, N = c.draw(T=c.int(1, 5), N=c.pick(None, c.dim(3)))
    x = c.normal(*((T, I) if N is None else (N, T, I) if bf else (T, N, I)))
    return _run_with_state(c, dm, tm, x, (DL, H) if N is None else (DL, N, H), lstm=kind == "LSTM")


def _run_with_state(c, dm, tm, x, hshape, lstm):
    """Run the recurrent module pair on ``x`` with no initial state, a constant one or one that needs grad
    (LSTM's a pair (h, c)), as drawn."""
    h0 = c.draw(h0=c.pick(None, "const", "grad"))
    if h0 is None:
        return c.run(dm, tm, [G(x)], dm, tm)
    wrap = C if h0 == "const" else G
    hx = (wrap(c.normal(*hshape)), wrap(c.normal(*hshape))) if lstm else wrap(c.normal(*hshape))
    return c.run(dm, tm, [G(x), hx], dm, tm)


@op("RNNCell/LSTMCell/GRUCell")
def _cells(c):
    kind = c.draw(kind=c.pick("RNNCell", "LSTMCell", "GRUCell"))
    I, H, bias = c.draw(input_size=c.int(1, 4), hidden=c.int(1, 4), bias=c.coin(0.7))
    kw = dict(bias=bias)
    if kind == "RNNCell":
        kw["nonlinearity"] = c.draw(nonlinearity=c.pick("tanh", "relu"))
    dm, tm = getattr(dnn, kind)(I, H, **kw), getattr(torch.nn, kind)(I, H, **kw)
    c.randomize(dm)
    N = c.draw(N=c.pick(None, c.dim(3)))
    x = c.normal(*((I,) if N is None else (N, I)))
    return _run_with_state(c, dm, tm, x, (H,) if N is None else (N, H), lstm=kind == "LSTMCell")


@pytest.mark.filterwarnings("ignore:dropout option adds dropout after all but last recurrent layer")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's, where a result is NaN as PyTorch's (empty means)
@pytest.mark.parametrize("name", sorted(OPS))
def test_layer_fuzz_matches_pytorch(name):
    run_cases(name, OPS[name])
