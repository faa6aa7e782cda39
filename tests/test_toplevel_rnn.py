"""PyTorch's functional RNN entry points and cells on distnn (torch_toplevel_rnn.py) against torch 2.13 with the
same flat weights: outputs, final states and every input's and weight's gradient (float64 tight), both
overloads (padded, batch_first, and packed), bidirectional stacks, LSTM projections, refusals."""
import numpy as np
import pytest

import distnn
from tensor_ops_oracle import compare, rand

torch = pytest.importorskip("torch")

DTYPES = [np.float64, np.float32]
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "gru": 3, "lstm": 4}


def _weights(mode, I, H, layers, D, bias=True, P=None, seed=10):
    """torch's flat weights: per layer and direction w_ih, w_hh[, b_ih, b_hh][, w_hr]."""
    G, out, s = GATES[mode], [], seed
    for layer in range(layers):
        for _ in range(D):
            width = I if layer == 0 else (P or H) * D
            group = [rand(G * H, width, seed=s) * 0.5, rand(G * H, P or H, seed=s + 1) * 0.5]
            if bias:
                group += [rand(G * H, seed=s + 2) * 0.3, rand(G * H, seed=s + 3) * 0.3]
            if P:
                group.append(rand(P, H, seed=s + 4) * 0.5)
            out += group
            s += 5
    return out


def _plain(mode, layers, bidirectional, batch_first, has_biases=True):
    def fn(m, x, h0, *rest):
        if mode == "lstm":
            c0, ws = rest[0], list(rest[1:])
            return m.lstm(x, (h0, c0), ws, has_biases, layers, 0.0, False, bidirectional, batch_first)
        return getattr(m, mode)(x, h0, list(rest), has_biases, layers, 0.0, False, bidirectional, batch_first)
    return fn


def _case(mode, layers, D, batch_first, bias=True, P=None, T=4, N=3, I=5, H=4):
    x = rand(N, T, I) if batch_first else rand(T, N, I)
    states = [rand(layers * D, N, P or H, seed=1)] + ([rand(layers * D, N, H, seed=2)] if mode == "lstm" else [])
    return [x, *states, *_weights(mode, I, H, layers, D, bias, P)]


CASES = [(f"{mode}_{layers}l_{'bi' if D == 2 else 'uni'}{'_bf' if bf else ''}{'' if bias else '_nobias'}",
          _plain(mode, layers, D == 2, bf, bias), _case(mode, layers, D, bf, bias))
         for mode in GATES for layers, D, bf, bias in [(1, 1, False, True), (2, 2, False, True), (2, 1, True, False)]]
CASES += [("lstm_proj_bi", _plain("lstm", 2, True, False), _case("lstm", 2, 2, False, P=3)),
          ("lstm_proj_nobias", _plain("lstm", 1, False, True, False), _case("lstm", 1, 1, True, False, P=2))]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_functional_rnns_match_torch(name, fn, arrays, dtype):
    compare(torch, fn, arrays, dtype)


_BATCH_SIZES = np.array([3, 3, 2, 1])  # (lengths 4, 3, 2: sorted longest first, as a PackedSequence's)


def _packed(mode, layers, bidirectional):
    def fn(m, data, bs, h0, *rest):
        if mode == "lstm":
            return m.lstm(data, bs, (h0, rest[0]), list(rest[1:]), True, layers, 0.0, False, bidirectional)
        return getattr(m, mode)(data, bs, h0, list(rest), True, layers, 0.0, False, bidirectional)
    return fn


PACKED = [(f"{mode}_packed_{layers}l_{'bi' if bi else 'uni'}", _packed(mode, layers, bi),
           [rand(int(_BATCH_SIZES.sum()), 5), _BATCH_SIZES, rand(layers * (1 + bi), 3, 4, seed=1)]
           + ([rand(layers * (1 + bi), 3, 4, seed=2)] if mode == "lstm" else [])
           + _weights(mode, 5, 4, layers, 1 + bi))
          for mode in GATES for layers, bi in [(1, False), (2, True)]]


@pytest.mark.parametrize("name,fn,arrays", PACKED, ids=[c[0] for c in PACKED])
def test_packed_overloads_match_torch(name, fn, arrays):
    compare(torch, fn, arrays, np.float64)


def _cell(mode, bias):
    def fn(m, x, h, *rest):
        if mode == "lstm":
            return m.lstm_cell(x, (h, rest[0]), *rest[1:]) if bias else m.lstm_cell(x, (h, rest[0]), *rest[1:3])
        f = getattr(m, f"{mode}_cell")
        return f(x, h, *rest) if bias else f(x, h, *rest[:2])
    return fn


CELLS = [(f"{mode}_cell{'' if bias else '_nobias'}", _cell(mode, bias),
          [rand(3, 5), rand(3, 4, seed=1)] + ([rand(3, 4, seed=2)] if mode == "lstm" else [])
          + _weights(mode, 5, 4, 1, 1, bias))
         for mode in GATES for bias in (True, False)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name,fn,arrays", CELLS, ids=[c[0] for c in CELLS])
def test_cells_match_torch(name, fn, arrays, dtype):
    compare(torch, fn, arrays, dtype)


def test_dropout_between_layers_only_when_training():
    arrays = _case("gru", 2, 1, False)
    x, h0, ws = distnn.tensor(arrays[0]), distnn.tensor(arrays[1]), [distnn.tensor(w) for w in arrays[2:]]
    plain = distnn.gru(x, h0, ws, True, 2, 0.0, True, False, False)[0].numpy()
    np.testing.assert_array_equal(distnn.gru(x, h0, ws, True, 2, 0.7, False, False, False)[0].numpy(), plain)
    distnn.manual_seed(0)
    assert not np.allclose(distnn.gru(x, h0, ws, True, 2, 0.7, True, False, False)[0].numpy(), plain)


def test_refusals_name_the_problem():
    arrays = _case("rnn_tanh", 1, 1, False)
    x, h0, ws = distnn.tensor(arrays[0]), distnn.tensor(arrays[1]), [distnn.tensor(w) for w in arrays[2:]]
    with pytest.raises(ValueError, match="expected 8 weights"):
        distnn.rnn_tanh(x, h0, ws, True, 2, 0.0, False, False, False)
    with pytest.raises(ValueError, match="input must be 3-D"):
        distnn.rnn_tanh(x[0], h0, ws, True, 1, 0.0, False, False, False)
    with pytest.raises(TypeError, match="takes 9 positional arguments"):
        distnn.rnn_tanh(x, h0, ws)
    with pytest.raises(TypeError, match="hx must be a tuple"):
        distnn.lstm_cell(x[0], h0[0], *ws)
    with pytest.raises(ValueError, match="expected input \\(N, input_size\\) and hx"):
        distnn.gru_cell(x[0], h0[0][:2], *ws)
