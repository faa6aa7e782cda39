"""PackedSequence, ``distnn.nn.utils.rnn`` and RNN/LSTM/GRU on packed batches against PyTorch (the oracle).

float64, weights copied by state_dict key, dropout off (or eval mode): outputs, the index Tensors, and the
gradients of the padded input, the initial states and every parameter compared at rtol 1e-9 (relative to
each array's largest magnitude) over seeded random configurations: RNN tanh/relu, LSTM (with and without
proj_size), GRU; 1-3 layers, bidirectional, bias, batch_first packing, given or zero initial states,
enforce_sorted True (sorted lengths) or False (unsorted, with ties), lengths from 1 to T.

``DISTNN_PACKED_CASES`` sets the number of seeded cases per test (default 12), ``DISTNN_PACKED_START`` the
first seed.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
from distnn import nn  # noqa: E402
from distnn.nn.utils import rnn as DR  # noqa: E402
from oracle_checks import close  # noqa: E402
from torch_twins import copy_torch_weights  # noqa: E402

TR = torch.nn.utils.rnn
pytestmark = pytest.mark.filterwarnings("ignore:dropout option adds dropout after all but last")
CASES = int(os.environ.get("DISTNN_PACKED_CASES", "12"))
START = int(os.environ.get("DISTNN_PACKED_START", "0"))
SEEDS = range(START, START + CASES)


def same_index(d, t, what):
    if t is None:
        assert d is None, f"{what}: distnn has {d}, PyTorch None"
        return
    assert d is not None, f"{what}: distnn has None"
    assert d.data.dtype == np.int64, f"{what}: dtype {d.data.dtype}"
    assert np.array_equal(d.data, t.numpy()), f"{what}: {d.data} vs {t.numpy()}"


def same_packed(pd, pt, what="packed"):
    assert isinstance(pd, DR.PackedSequence)
    close(pd.data.data, pt.data.detach().numpy(), f"{what} data")
    same_index(pd.batch_sizes, pt.batch_sizes, f"{what} batch_sizes")
    same_index(pd.sorted_indices, pt.sorted_indices, f"{what} sorted_indices")
    same_index(pd.unsorted_indices, pt.unsorted_indices, f"{what} unsorted_indices")


def pair(a):
    return distnn.Tensor(a.copy(), requires_grad=True), torch.tensor(a, requires_grad=True)


def draw_lengths(rng, B, T, sorted_):
    lengths = rng.integers(1, T + 1, B)
    lengths[rng.integers(B)] = T  # (the padded input is as long as the longest sequence, mostly)
    if rng.random() < 0.3 and B > 1:
        lengths[1] = lengths[0]  # ties: the stable order must be PyTorch's
    return np.sort(lengths)[::-1].copy() if sorted_ else lengths


def backward_both(outs_d, outs_t, rng):
    """Weight every output with the same random array and run both backwards."""
    total_d = total_t = 0
    for d, t in zip(outs_d, outs_t):
        w = rng.standard_normal(tuple(t.shape))
        total_d = total_d + (d * distnn.Tensor(w)).sum()
        total_t = total_t + (t * torch.tensor(w)).sum()
    total_d.backward()
    total_t.backward()


# ---------------------------------------------------------------- the utilities
@pytest.mark.parametrize("seed", SEEDS)
def test_pack_and_pad_match_torch(seed):
    rng = np.random.default_rng(seed)
    B, T, F = int(rng.integers(1, 6)), int(rng.integers(1, 6)), int(rng.integers(1, 4))
    batch_first, enforce_sorted = bool(rng.integers(2)), bool(rng.integers(2))
    lengths = draw_lengths(rng, B, T, enforce_sorted)
    lengths_arg = [lengths.tolist(), lengths, distnn.Tensor(lengths)][rng.integers(3)]
    xd, xt = pair(rng.standard_normal((B, T, F) if batch_first else (T, B, F)))
    pd = DR.pack_padded_sequence(xd, lengths_arg, batch_first=batch_first, enforce_sorted=enforce_sorted)
    pt = TR.pack_padded_sequence(xt, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=enforce_sorted)
    same_packed(pd, pt)
    out_first = bool(rng.integers(2))
    total = None if rng.random() < 0.5 else T + int(rng.integers(0, 3))
    value = float(rng.choice([0.0, -1.5, 7.0]))
    yd, ld = DR.pad_packed_sequence(pd, batch_first=out_first, padding_value=value, total_length=total)
    yt, lt = TR.pad_packed_sequence(pt, batch_first=out_first, padding_value=value, total_length=total)
    close(yd.data, yt.detach().numpy(), "padded")
    same_index(ld, lt, "lengths")
    backward_both([yd], [yt], rng)
    close(xd.grad, xt.grad.numpy(), "gradient of the padded input")


@pytest.mark.parametrize("seed", SEEDS)
def test_pad_sequence_pack_sequence_and_their_inverses_match_torch(seed):
    rng = np.random.default_rng(seed)
    B, F = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    enforce_sorted = bool(rng.integers(2))
    lengths = draw_lengths(rng, B, int(rng.integers(1, 6)), enforce_sorted)
    seqs = [pair(rng.standard_normal((n, F))) for n in lengths]
    batch_first, side = bool(rng.integers(2)), str(rng.choice(["left", "right"]))
    value = float(rng.choice([0.0, 3.0]))
    pd = DR.pad_sequence([d for d, _ in seqs], batch_first=batch_first, padding_value=value, padding_side=side)
    pt = TR.pad_sequence([t for _, t in seqs], batch_first=batch_first, padding_value=value, padding_side=side)
    close(pd.data, pt.detach().numpy(), "pad_sequence")
    kd = DR.pack_sequence([d for d, _ in seqs], enforce_sorted=enforce_sorted)
    kt = TR.pack_sequence([t for _, t in seqs], enforce_sorted=enforce_sorted)
    same_packed(kd, kt, "pack_sequence")
    ud, ut = DR.unpack_sequence(kd), TR.unpack_sequence(kt)
    assert len(ud) == len(ut) == B
    for i, (d, t) in enumerate(zip(ud, ut)):
        close(d.data, t.detach().numpy(), f"unpack_sequence {i}")
    vd = DR.unpad_sequence(pd, distnn.Tensor(lengths) if side == "right" else lengths, batch_first=batch_first)
    vt = TR.unpad_sequence(pt.clone(), torch.tensor(lengths), batch_first=batch_first)  # (it transposes in place)
    backward_both([pd, kd.data] + ud + vd, [pt, kt.data] + list(ut) + list(vt), rng)
    for i, (d, t) in enumerate(seqs):
        close(d.grad, t.grad.numpy(), f"gradient of sequence {i}")


def test_packed_sequence_is_a_namedtuple_and_inverts_its_order():
    p = DR.PackedSequence(distnn.Tensor(np.zeros((4, 2))), [2, 1, 1], [1, 0])
    data, batch_sizes, sorted_indices, unsorted_indices = p
    assert p._fields == TR.PackedSequence._fields
    assert unsorted_indices.data.tolist() == [1, 0]
    assert DR.invert_permutation([2, 0, 1]).data.tolist() == TR.invert_permutation(torch.tensor([2, 0, 1])).tolist()
    assert DR.invert_permutation(None) is None
    assert p.float().data.dtype == np.float32 and not p.is_cuda


# ---------------------------------------------------------------- the recurrent layers
MODES = ["RNN", "RNN-relu", "LSTM", "LSTM-proj", "GRU"]


def make(mode, I, H, rng, **kw):
    name = mode.split("-")[0]
    extra = {}
    if mode == "RNN-relu":
        extra["nonlinearity"] = "relu"
    if mode == "LSTM-proj":
        extra["proj_size"] = int(rng.integers(1, H))
    tm = getattr(torch.nn, name)(I, H, **kw, **extra, dtype=torch.float64)
    dm = getattr(nn, name)(I, H, **kw, **extra, dtype=np.float64)
    with torch.no_grad():  # (random weights of a larger spread than the default init: a stricter comparison)
        for p in tm.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.8, 0.8, tuple(p.shape))))
    copy_torch_weights(tm, dm, same_keys=True)
    return dm, tm, extra.get("proj_size", 0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", SEEDS)
def test_recurrent_layer_on_a_packed_batch_matches_torch(mode, seed):
    rng = np.random.default_rng([seed, MODES.index(mode)])
    I, H, L = int(rng.integers(1, 4)), int(rng.integers(2, 5)), int(rng.integers(1, 4))
    bidir, bias, batch_first = bool(rng.integers(2)), rng.random() < 0.8, bool(rng.integers(2))
    train = bool(rng.integers(2))
    kw = dict(num_layers=L, bias=bias, batch_first=batch_first, bidirectional=bidir,
              dropout=0.0 if train else float(rng.choice([0.0, 0.5])))  # (eval: dropout does nothing)
    dm, tm, P = make(mode, I, H, rng, **kw)
    dm.train(train)
    tm.train(train)
    B, T = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    enforce_sorted = bool(rng.integers(2))
    lengths = draw_lengths(rng, B, T, enforce_sorted)
    xd, xt = pair(rng.standard_normal((B, T, I) if batch_first else (T, B, I)))
    pd = DR.pack_padded_sequence(xd, lengths, batch_first=batch_first, enforce_sorted=enforce_sorted)
    pt = TR.pack_padded_sequence(xt, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=enforce_sorted)
    D = 2 if bidir else 1
    lstm = mode.startswith("LSTM")
    states = []
    if rng.random() < 0.6:
        states = [pair(rng.standard_normal((L * D, B, P or H)))]
        if lstm:
            states.append(pair(rng.standard_normal((L * D, B, H))))
    hx_d = (tuple(d for d, _ in states) if lstm else states[0][0]) if states else None
    hx_t = (tuple(t for _, t in states) if lstm else states[0][1]) if states else None
    od, hd = dm(pd, hx_d)
    ot, ht = tm(pt, hx_t)
    same_packed(od, ot, "output")
    hd, ht = (list(hd), list(ht)) if lstm else ([hd], [ht])
    for i, (d, t) in enumerate(zip(hd, ht)):
        close(d.data, t.detach().numpy(), ["h_n", "c_n"][i])
    backward_both([od.data] + hd, [ot.data] + ht, rng)
    close(xd.grad, xt.grad.numpy(), "gradient of the input")
    for i, (d, t) in enumerate(states):
        close(d.grad, t.grad.numpy(), ["gradient of h_0", "gradient of c_0"][i])
    dparams = dict(dm.named_parameters())
    for name, p in tm.named_parameters():
        close(dparams[name].grad, p.grad.numpy(), f"gradient of {name}")


def test_packed_run_equals_each_sequence_run_alone():
    """Each packed sequence's output and final state are those of the sequence run by itself (no torch)."""
    rng = np.random.default_rng(5)
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64)
    lengths = [2, 5, 3]
    seqs = [distnn.Tensor(rng.standard_normal((n, 3))) for n in lengths]
    out, (h, c) = lstm(DR.pack_sequence(seqs, enforce_sorted=False))
    padded, _ = DR.pad_packed_sequence(out)
    for b, s in enumerate(seqs):
        o1, (h1, c1) = lstm(s)  # unbatched
        np.testing.assert_allclose(padded.data[: lengths[b], b], o1.data, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(h.data[:, b], h1.data, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(c.data[:, b], c1.data, rtol=1e-12, atol=1e-14)
        assert np.all(padded.data[lengths[b]:, b] == 0)


def test_packed_lstm_with_dropout_trains_and_gives_gradients():
    rng = np.random.default_rng(0)
    lstm = nn.LSTM(2, 3, num_layers=2, dropout=0.5, dtype=np.float64)
    x = distnn.Tensor(rng.standard_normal((4, 3, 2)), requires_grad=True)
    out, h = lstm(DR.pack_padded_sequence(x, [2, 4, 1], enforce_sorted=False))
    (out.data.sum() + h[0].sum()).backward()
    assert x.grad is not None and np.all(x.grad[3:, 0] == 0) and np.all(x.grad[1:, 2] == 0)


# ---------------------------------------------------------------- refusals
def test_refusals_say_what_is_wrong():
    x = distnn.Tensor(np.zeros((4, 3, 2)))
    with pytest.raises(ValueError, match="must be sorted in decreasing order when `enforce_sorted` is True"):
        DR.pack_padded_sequence(x, [2, 4, 1])
    with pytest.raises(ValueError, match="greater than 0"):
        DR.pack_padded_sequence(x, [4, 0, 1], enforce_sorted=False)
    with pytest.raises(ValueError, match=r"exceed the input's 4 time steps"):
        DR.pack_padded_sequence(x, [5, 2, 1])
    with pytest.raises(ValueError, match="exceed the input's 3 time steps"):
        DR.pack_padded_sequence(x, [4, 2, 1, 1], batch_first=True)  # ((B, T) = (4, 3))
    with pytest.raises(ValueError, match="expected 3 lengths"):
        DR.pack_padded_sequence(x, [4, 2])
    with pytest.raises(ValueError, match="1-D"):
        DR.pack_padded_sequence(x, [[4, 2, 1]])
    with pytest.raises(ValueError, match="empty batch"):
        DR.pack_padded_sequence(distnn.Tensor(np.zeros((4, 0, 2))), [])
    p = DR.pack_padded_sequence(x, [4, 2, 1])
    with pytest.raises(ValueError, match="total_length=3 and max sequence length being 4"):
        DR.pad_packed_sequence(p, total_length=3)
    with pytest.raises(TypeError, match="PackedSequence"):
        DR.pad_packed_sequence(x)
    with pytest.raises(ValueError, match="padding_side to be one of left or right"):
        DR.pad_sequence([x[:, 0]], padding_side="middle")
    with pytest.raises(ValueError, match="empty list"):
        DR.pad_sequence([])
    with pytest.raises(ValueError, match="must agree past the time axis"):
        DR.pad_sequence([distnn.Tensor(np.zeros((2, 3))), distnn.Tensor(np.zeros((2, 4)))])
    with pytest.raises(ValueError, match=r"input_size=5"):
        nn.GRU(5, 3)(p)
    with pytest.raises(ValueError, match=r"expected h_0 of shape \(1, 3, 4\)"):
        nn.RNN(2, 4).double()(p, distnn.Tensor(np.zeros((1, 2, 4))))
    with pytest.raises(TypeError, match="LSTM hx must be a tuple"):
        nn.LSTM(2, 4).double()(p, distnn.Tensor(np.zeros((1, 3, 4))))
