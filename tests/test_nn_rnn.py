"""Recurrent layers and Embedding vs PyTorch with copied weights, gradient checks, truncated BPTT."""
import re

import numpy as np
import pytest

import distnn
from distnn import nn
from distnn.functional import rnn as R
from distnn.testing import check_grad
from torch_twins import copy_torch_weights

RTOL = 1e-4


def close(actual, expected, rtol=RTOL, atol=1e-6, what=""):
    """Max error relative to the largest magnitude of the expected array (float32 tolerance).

    ``atol`` covers gradients that are zero in exact arithmetic (a bias before a
    BatchNorm) and come out as float32 rounding noise in both frameworks.
    """
    expected = np.asarray(expected)
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} vs {expected.shape}"
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    diff = float(np.abs(actual - expected).max()) if expected.size else 0.0
    assert diff <= rtol * scale + atol, f"{what}: max error {diff:.3g} vs largest value {scale:.3g} (rtol {rtol})"


def loss_weights(torch, shapes, rng):
    """Random weightings so every output element gets a distinct gradient."""
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def compare_grads(torch, tm, dm, pairs):
    dparams = dict(dm.named_parameters())
    for name, p in tm.named_parameters():
        close(dparams[name].grad, p.grad.numpy(), what=f"grad of {name}")
    for d, t, what in pairs:
        close(d.grad, t.grad.numpy(), what=f"grad of {what}")


KINDS = {
    "lstm": (lambda t, *a, **k: t.nn.LSTM(*a, **k), nn.LSTM),
    "gru": (lambda t, *a, **k: t.nn.GRU(*a, **k), nn.GRU),
    "rnn_tanh": (lambda t, *a, **k: t.nn.RNN(*a, **k), nn.RNN),
    "rnn_relu": (lambda t, *a, **k: t.nn.RNN(*a, nonlinearity="relu", **k),
                 lambda *a, **k: nn.RNN(*a, nonlinearity="relu", **k)),
}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("bidirectional,batch_first,with_state", [
    (False, False, False), (False, True, True), (True, False, True), (True, True, False),
])
def test_recurrent_matches_torch(torch, kind, bidirectional, batch_first, with_state, rng):
    T, N, I, H, L = 6, 3, 5, 4, 2
    make_t, make_d = KINDS[kind]
    kw = dict(num_layers=L, batch_first=batch_first, bidirectional=bidirectional)
    tm, dm = make_t(torch, I, H, **kw), make_d(I, H, **kw)
    copy_torch_weights(tm, dm, same_keys=True)
    x = rng.standard_normal((N, T, I) if batch_first else (T, N, I)).astype(np.float32)
    xt, xd = torch.tensor(x, requires_grad=True), distnn.Tensor(x.copy(), requires_grad=True)
    D = 2 if bidirectional else 1
    states_t, states_d = [], []
    if with_state:
        n_states = 2 if kind == "lstm" else 1
        for _ in range(n_states):
            h = rng.standard_normal((L * D, N, H)).astype(np.float32)
            states_t.append(torch.tensor(h, requires_grad=True))
            states_d.append(distnn.Tensor(h.copy(), requires_grad=True))
    hx_t = (tuple(states_t) if kind == "lstm" else states_t[0]) if with_state else None
    hx_d = (tuple(states_d) if kind == "lstm" else states_d[0]) if with_state else None
    out_t, hn_t = tm(xt, hx_t)
    out_d, hn_d = dm(xd, hx_d)
    outs_t = [out_t] + (list(hn_t) if kind == "lstm" else [hn_t])
    outs_d = [out_d] + (list(hn_d) if kind == "lstm" else [hn_d])
    ws = loss_weights(torch, [o.shape for o in outs_t], rng)
    sum(((o * torch.tensor(w)).sum() for o, w in zip(outs_t, ws))).backward()
    total = None
    for o, w in zip(outs_d, ws):
        term = (o * distnn.Tensor(w)).sum()
        total = term if total is None else total + term
    total.backward()
    for o_d, o_t, what in zip(outs_d, outs_t, ["output", "h_n", "c_n"]):
        close(o_d.numpy(), o_t.detach().numpy(), what=what)
    compare_grads(torch, tm, dm, [(xd, xt, "input")] + [(d, t, "h0/c0") for d, t in zip(states_d, states_t)])


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_no_bias_and_unbatched_match_torch(torch, kind, rng):
    make_t, make_d = KINDS[kind]
    tm, dm = make_t(torch, 3, 4, bias=False), make_d(3, 4, bias=False)
    copy_torch_weights(tm, dm, same_keys=True)
    assert not any("bias" in n for n, _ in dm.named_parameters())
    x = rng.standard_normal((5, 3)).astype(np.float32)  # unbatched (L, input_size)
    xt, xd = torch.tensor(x, requires_grad=True), distnn.Tensor(x.copy(), requires_grad=True)
    out_t, _ = tm(xt)
    out_d, _ = dm(xd)
    close(out_d.numpy(), out_t.detach().numpy(), what="output")
    w = rng.standard_normal(out_t.shape).astype(np.float32)
    (out_t * torch.tensor(w)).sum().backward()
    (out_d * distnn.Tensor(w)).sum().backward()
    compare_grads(torch, tm, dm, [(xd, xt, "input")])


@pytest.mark.parametrize("cell", ["LSTMCell", "GRUCell", "RNNCell"])
@pytest.mark.parametrize("with_state", [False, True])
def test_cells_match_torch(torch, cell, with_state, rng):
    tm, dm = getattr(torch.nn, cell)(4, 3), getattr(nn, cell)(4, 3)
    copy_torch_weights(tm, dm, same_keys=True)
    assert list(dm.state_dict()) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    x = rng.standard_normal((2, 4)).astype(np.float32)
    xt, xd = torch.tensor(x, requires_grad=True), distnn.Tensor(x.copy(), requires_grad=True)
    n_states = 2 if cell == "LSTMCell" else 1
    st = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(n_states)] if with_state else []
    st_t = [torch.tensor(s, requires_grad=True) for s in st]
    st_d = [distnn.Tensor(s.copy(), requires_grad=True) for s in st]
    pack = (lambda s: tuple(s)) if cell == "LSTMCell" else (lambda s: s[0])
    out_t = tm(xt, pack(st_t) if with_state else None)
    out_d = dm(xd, pack(st_d) if with_state else None)
    out_t = list(out_t) if cell == "LSTMCell" else [out_t]
    out_d = list(out_d) if cell == "LSTMCell" else [out_d]
    ws = loss_weights(torch, [o.shape for o in out_t], rng)
    sum((o * torch.tensor(w)).sum() for o, w in zip(out_t, ws)).backward()
    total = (out_d[0] * distnn.Tensor(ws[0])).sum()
    for o, w in zip(out_d[1:], ws[1:]):
        total = total + (o * distnn.Tensor(w)).sum()
    total.backward()
    for a, b in zip(out_d, out_t):
        close(a.numpy(), b.detach().numpy(), what="cell output")
    compare_grads(torch, tm, dm, [(xd, xt, "input")] + [(d, t, "state") for d, t in zip(st_d, st_t)])


@pytest.mark.parametrize("reverse", [False, True])
def test_fused_layers_check_grad_float64(reverse, rng):
    T, B, I, H = 3, 2, 3, 2
    x = rng.standard_normal((T, B, I))
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))

    def w(g):
        return [rng.standard_normal((g * H, I)) * 0.5, rng.standard_normal((g * H, H)) * 0.5,
                rng.standard_normal(g * H) * 0.5, rng.standard_normal(g * H) * 0.5]

    check_grad(lambda *a: R.LSTMLayer.apply(*a, reverse=reverse), x, h0, c0, *w(4))
    check_grad(lambda *a: R.GRULayer.apply(*a, reverse=reverse), x, h0, *w(3))
    check_grad(lambda *a: R.RNNLayer.apply(*a, nonlinearity="tanh", reverse=reverse), x, h0, *w(1))
    check_grad(lambda *a: R.RNNLayer.apply(*a, nonlinearity="relu", reverse=reverse), x, h0, *w(1))


def test_truncated_bptt_by_detach_matches_torch(torch, rng):
    """Two chunks, state detached in between: grads equal PyTorch doing the same, and
    the second chunk's loss sends nothing into the first chunk's input."""
    tm, dm = torch.nn.LSTM(3, 4, num_layers=2), nn.LSTM(3, 4, num_layers=2)
    copy_torch_weights(tm, dm, same_keys=True)
    chunks = [rng.standard_normal((5, 2, 3)).astype(np.float32) for _ in range(2)]
    ws = [rng.standard_normal((5, 2, 4)).astype(np.float32) for _ in range(2)]
    xs_t = [torch.tensor(c, requires_grad=True) for c in chunks]
    xs_d = [distnn.Tensor(c.copy(), requires_grad=True) for c in chunks]

    hx_t = hx_d = None
    for i in range(2):
        out_t, (h_t, c_t) = tm(xs_t[i], hx_t)
        out_d, (h_d, c_d) = dm(xs_d[i], hx_d)
        (out_t * torch.tensor(ws[i])).sum().backward()
        (out_d * distnn.Tensor(ws[i])).sum().backward()
        hx_t = (h_t.detach(), c_t.detach())
        hx_d = (h_d.detach(), c_d.detach())
        assert not hx_d[0].requires_grad and hx_d[0].is_leaf
        if i == 0:
            g_first = xs_d[0].grad.copy()
        close(out_d.numpy(), out_t.detach().numpy(), what=f"chunk {i} output")
    # Chunk 2's backward did not reach chunk 1's input: its grad is what chunk 1's own loss gave.
    np.testing.assert_array_equal(xs_d[0].grad, g_first)
    compare_grads(torch, tm, dm, [(xs_d[0], xs_t[0], "chunk 0 input"), (xs_d[1], xs_t[1], "chunk 1 input")])


def test_interlayer_dropout_train_vs_eval(torch, rng):
    tm, dm = torch.nn.GRU(3, 4, num_layers=2, dropout=0.5), nn.GRU(3, 4, num_layers=2, dropout=0.5,
                                                                   generator=np.random.default_rng(0))
    copy_torch_weights(tm, dm, same_keys=True)
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    tm.eval()
    dm.eval()
    close(dm(distnn.Tensor(x))[0].numpy(), tm(torch.tensor(x))[0].detach().numpy(), what="eval output")
    dm.train()
    dm.generator = np.random.default_rng(0)
    a = dm(distnn.Tensor(x))[0].numpy()
    dm.generator = np.random.default_rng(0)
    b = dm(distnn.Tensor(x))[0].numpy()
    np.testing.assert_array_equal(a, b)  # same generator state -> same masks
    assert not np.allclose(a, tm(torch.tensor(x))[0].detach().numpy(), atol=1e-3)  # dropout did act


def test_default_init_range_and_names():
    m = nn.LSTM(3, 16, num_layers=2, bidirectional=True)
    names = [n for n, _ in m.named_parameters()]
    assert names[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert "weight_ih_l1_reverse" in names and m.weight_ih_l1.shape == (64, 32)
    k = 1 / np.sqrt(16)
    for p in m.parameters():
        assert np.abs(p.data).max() <= k and np.abs(p.data).max() > 0.8 * k


class _Holder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.LSTM(7, 4)


def test_bad_input_errors_name_the_layer():
    m = _Holder()
    with pytest.raises(ValueError, match=r"LSTM 'encoder'.*input has 5 features.*input_size is 7.*\(3, 2, 5\)"):
        m.encoder(distnn.Tensor(np.zeros((3, 2, 5), np.float32)))
    with pytest.raises(ValueError, match=r"LSTM 'encoder'.*3-D input.*got shape \(3, 2, 5, 7\)"):
        m.encoder(distnn.Tensor(np.zeros((3, 2, 5, 7), np.float32)))
    with pytest.raises(ValueError, match=r"LSTM 'encoder'.*h_0 of shape \(1, 2, 4\).*\(1, 3, 4\)"):
        z = distnn.Tensor(np.zeros((1, 3, 4), np.float32))
        m.encoder(distnn.Tensor(np.zeros((3, 2, 7), np.float32)), (z, z))
    with pytest.raises(ValueError, match=r"GRUCell.*expected input \(N, 4\)"):
        nn.GRUCell(4, 2)(distnn.Tensor(np.zeros((2, 3), np.float32)))


# ------------------------------------------------------------------ Embedding
def test_embedding_matches_torch_with_padding(torch, rng):
    tm, dm = torch.nn.Embedding(6, 3, padding_idx=2), nn.Embedding(6, 3, padding_idx=2)
    assert np.all(dm.weight.data[2] == 0)  # padding row starts at zero
    copy_torch_weights(tm, dm, same_keys=True)
    idx = np.array([[0, 2, 5, 5], [2, 1, 0, 3]])
    out_t, out_d = tm(torch.tensor(idx)), dm(idx)
    close(out_d.numpy(), out_t.detach().numpy(), what="embedding output")
    w = rng.standard_normal(out_t.shape).astype(np.float32)
    (out_t * torch.tensor(w)).sum().backward()
    (out_d * distnn.Tensor(w)).sum().backward()
    close(dm.weight.grad, tm.weight.grad.numpy(), what="embedding grad")  # repeated index 5 accumulates
    assert np.all(dm.weight.grad[2] == 0)
    with pytest.raises(IndexError, match=r"Embedding.*\[0, 6\].*num_embeddings is 6"):
        dm(np.array([0, 6]))
    with pytest.raises(TypeError, match="integers"):
        dm(np.array([0.5]))


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("batch_first,shape", [(False, (0, 2, 7)), (True, (2, 0, 7)), (False, (0, 7)),
                                               (True, (0, 7))])
def test_an_empty_sequence_is_refused_naming_the_layer(kind, batch_first, shape):
    # PyTorch refuses a sequence of length 0; distnn's LSTM once returned c_0 as h_n without a word.
    m = nn.Sequential(getattr(nn, kind)(7, 4, batch_first=batch_first))
    with pytest.raises(ValueError, match=rf"{kind} '0'.*sequence length.*0.*" + re.escape(str(shape))):
        m[0](distnn.Tensor(np.zeros(shape, np.float32)))
    if len(shape) == 3:  # a batch of no sequences of length 3 is not an empty sequence (as PyTorch)
        ok_shape = (0, 3, 7) if batch_first else (3, 0, 7)
        assert m[0](distnn.Tensor(np.zeros(ok_shape, np.float32)))[0].shape == ok_shape[:2] + (4,)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"])
@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
def test_integer_or_bool_input_is_refused_as_torch_refuses_it(torch, kind, dtype):
    # numpy failed deep in a gate's ufunc ("Cannot cast ufunc 'multiply' output ..."), naming no layer
    cell = kind.endswith("Cell")
    shape = (2, 3) if cell else (4, 2, 3)
    x = np.ones(shape, dtype)
    with pytest.raises(Exception) as expected:
        getattr(torch.nn, kind)(3, 5)(torch.tensor(x))
    m = nn.Sequential(getattr(nn, kind)(3, 5))
    if cell:  # (PyTorch's cells say it in their matrix product's words)
        gist = str(expected.value)
        assert gist.startswith("mat1 and mat2 must have the same dtype, but got")
    else:
        gist = re.escape(str(expected.value))  # (the whole of it: dtypes named as torch.int64)
    with pytest.raises(expected.type, match=rf"{kind} '0'.*{gist}"):
        m[0](distnn.Tensor(x))
    if not cell:  # a packed sequence too
        packed = nn.utils.rnn.pack_padded_sequence(distnn.Tensor(x), [4, 3])
        with pytest.raises(ValueError, match=r"input dtype"):
            m[0](packed)
